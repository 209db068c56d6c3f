"""Write failures of the user's environment as one paragraph: a full disk, a quota, a lost
permission, an object store refusing a write.

Everything tfsmooth writes (checkpoints, JSON records, TensorBoard summaries, PNG plots) goes
through TensorFlow's file systems, which raise `tf.errors.OpError`s named after the POSIX error
(TensorFlow maps errno as absl does: ENOSPC and EDQUOT -> `ResourceExhaustedError`; EACCES,
EPERM and EROFS -> `PermissionDeniedError`; EFBIG -> `OutOfRangeError`; an object store's
refusal -> `PermissionDeniedError`, `UnavailableError`, ...). Seen on a full tmpfs: the
checkpoint writer's `SaveV2` op raises `ResourceExhaustedError` ("...ckpt-3_temp/part-...;
No space left on device") and leaves `ckpt-3_temp/` behind; a `tf.io.gfile.GFile` write raises
the same and leaves the file half written; a summary writer raises it from its flush.

`guarded` turns such an error, raised by a write it wraps, into `WriteFailed`: an
`errors.UserError` whose message says what could not be written and where, why, what the run
had saved before (when the caller knows: `saved`) and the fix. The binaries' runner prints it as
one paragraph with exit status 2. `write_file` writes a file whole (a temporary renamed into
place, removed if the write fails), so a failure leaves neither half a file nor a temporary.

This module imports only the standard library, TensorFlow and `errors`: any layer may use it.
"""

import contextlib
import os
import re

import tensorflow as tf

from tfsmooth import errors

# Errors of a write that say the storage refused it, not that the program is wrong. (Not
# InvalidArgument, Unimplemented, Internal: those are bugs, or a file system TensorFlow lacks,
# which the binaries check before they run.)
WRITE_ERRORS = (
    tf.errors.ResourceExhaustedError,  # no space left, quota exceeded
    tf.errors.PermissionDeniedError,  # permission lost, read-only file system, refused upload
    tf.errors.OutOfRangeError,  # file too large (EFBIG)
    tf.errors.NotFoundError,  # the folder was removed underneath the run
    tf.errors.FailedPreconditionError,  # ENOTDIR, EBUSY, an object store's precondition
    tf.errors.UnavailableError,  # storage unreachable
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.DataLossError,
    tf.errors.UnknownError,
    OSError,  # Python's own writes
)


def _reason(error):
  """The storage's own words for `error` ('No space left on device'), without TensorFlow's op
  and function names."""
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  text = error.message if isinstance(error, tf.errors.OpError) else str(error)
  text = re.sub(r'\{\{function_node [^}]*\}\}\s*', '', text).strip()
  text = text.splitlines()[0].strip() if text else ''
  text = re.sub(r'\s*\[Op:\w+\]$', '', text)
  # TensorFlow's file systems say '<path>; <strerror>'.
  return text.rsplit('; ', 1)[-1] if '; ' in text else (text or type(error).__name__)


def _kind(error):
  if isinstance(error, tf.errors.ResourceExhaustedError) or getattr(error, 'errno', None) in (
      28,  # ENOSPC
      122,  # EDQUOT
  ):
    return 'space'
  if isinstance(error, (tf.errors.PermissionDeniedError, PermissionError)):
    return 'permission'
  return 'other'


class WriteFailed(errors.UserError):
  """Writing `what` at `path` failed for a reason of the storage (`reason`, in its words).

  `kind` chooses the fix: 'space' (free space), 'permission' (restore write access), 'other'
  (check the storage), or 'chief' (on a worker stopped by its chief's failure: do what the
  chief's message says). `saved` is what the run had saved before, as a sentence (the newest intact checkpoint and its
  step: `train.checkpoints.describe_saved`), or None where the writer does not know;
  `with_saved` adds it.
  """

  def __init__(self, what, path, reason, kind='other', saved=None):
    self.what, self.path, self.reason, self.kind, self.saved = what, path, reason, kind, saved
    super().__init__(self._message())

  @classmethod
  def of(cls, what, path, error, saved=None):
    """The failure that the storage's `error` (one of `WRITE_ERRORS`) means."""
    return cls(what, path, _reason(error), _kind(error), saved)

  def with_saved(self, saved):
    """This failure, saying what the run had saved (`saved`, a sentence)."""
    failure = WriteFailed(self.what, self.path, self.reason, self.kind, saved)
    failure.__cause__ = self.__cause__
    return failure

  def _message(self):
    where = os.path.dirname(self.path.rstrip('/')) or self.path
    fix = {
        'space': f'Free space (or raise the quota) on the storage of {where}',
        'permission': f'Restore write access to {where}',
        'other': f'Check that {where} can be written (reachable, with space and write access)',
        'chief': "Do what the chief worker's message says",
    }[self.kind]
    message = f'Could not write {self.what} ({self.path}): {self.reason}. {fix}, then rerun the '
    message += 'same command.'
    if self.saved:
      message += f' {self.saved}'
    return message


def remove_quietly(path):
  """Removes the file `path` if it exists; a failure to remove it is ignored (best effort, on
  the way out of a failed write)."""
  try:
    if tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  except (tf.errors.OpError, OSError):
    pass


def _names_path_within(error, folder):
  """Whether `error` names a file within `folder` (the storage's errors name the file)."""
  folder = os.fspath(folder).rstrip('/')
  if isinstance(error, OSError):
    names = (error.filename, error.filename2)
    return any(os.fspath(n).startswith(folder) for n in names if n is not None)
  return folder in (error.message if isinstance(error, tf.errors.OpError) else str(error))


@contextlib.contextmanager
def guarded(what, path, cleanup=None, saved=None, within=None):
  """Turns a storage error (`WRITE_ERRORS`) raised inside the block into `WriteFailed(what,
  path, ..., saved)`, after calling `cleanup()` (which removes what the failed write left).

  With `within` (a folder), only an error that names a file in it counts: for a block that
  also computes (a SavedModel is traced, then written), so that an error of the computation
  keeps its own type and traceback. A `WriteFailed` of a write inside the block (a record of
  an export) becomes this block's, with its reason."""
  try:
    yield
  except WriteFailed as e:
    if cleanup is not None:
      cleanup()
    raise WriteFailed(what, path, e.reason, e.kind, saved) from e
  except WRITE_ERRORS as e:
    if within is not None and not _names_path_within(e, within):
      raise
    if cleanup is not None:
      cleanup()
    raise WriteFailed.of(what, path, e, saved) from e


def write_file(path, data, what=None, make_folder=False):
  """Writes `data` (bytes or text) whole to `path` (a local path or a URL): into a temporary
  file beside it, renamed into place, so that a reader sees the old file or the new one. With
  `make_folder`, the folder is created first. Raises `WriteFailed` (naming `what`, default the
  file's name) if the storage refuses, after removing the temporary."""
  temporary = f'{path}.tmp-{os.getpid()}'
  with guarded(what or os.path.basename(path), path, cleanup=lambda: remove_quietly(temporary)):
    folder = os.path.dirname(path)
    if make_folder and folder:
      tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(temporary, 'wb') as f:
      f.write(data.encode('utf-8') if isinstance(data, str) else data)
    tf.io.gfile.rename(temporary, path, overwrite=True)
