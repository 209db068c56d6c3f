"""Paths of the user's flags checked before a program starts: local paths or URLs.

Every file the project reads or writes goes through `tf.io.gfile` (or an API that takes its
paths), so a flag may name a local path or a URL (`gs://bucket/run`, `ram://run`, `s3://...`
with a file-system plugin). A URL whose file system TensorFlow does not have here, or a
directory that cannot be written, would otherwise fail at the first file written, after the
model was built and maybe trained. `check_readable` and `check_writable` find that out first
and raise an `errors.UserError` naming the path and the flag; the binaries' runner
(`tfsmooth.programs.cli.run_main`) calls them on the directory flags and `--config.data.path`
before a program's `main` runs.
"""

import os
import uuid

import tensorflow as tf

from tfsmooth import errors


def is_url(path):
  """Whether `path` is a URL (`scheme://...`) rather than a local path."""
  return '://' in os.fspath(path)


def _schemes():
  """The URL schemes of the file systems tf.io.gfile has in this process, as `gs://, ram://`."""
  try:
    schemes = tf.io.gfile.get_registered_schemes()
  except Exception:  # pylint: disable=broad-except  # private in some TF versions
    schemes = ('gs', 'ram')
  return ', '.join(f'{s}://' for s in sorted(schemes) if s and s != 'file')


def _unavailable(path, flag, error):
  scheme = os.fspath(path).split('://', 1)[0] if is_url(path) else 'local'
  return errors.UserError(
      f'{flag}={path} is on a file system TensorFlow cannot use here ({error.message}). '
      f'tf.io.gfile has local paths and {_schemes()} in this installation; the {scheme}:// '
      'scheme needs its file-system plugin installed and loaded (s3:// and hdfs:// are in '
      f'tensorflow-io). Give a local path or a URL of one of those in {flag}; nothing was '
      'written.'
  )


def _exists(path, flag):
  """tf.io.gfile.exists(path), or the UserError of a file system that is not available."""
  try:
    return tf.io.gfile.exists(path)
  except tf.errors.UnimplementedError as e:
    raise _unavailable(path, flag, e) from None
  except tf.errors.OpError as e:
    raise errors.UserError(
        f'{flag}={path} cannot be reached ({type(e).__name__}: {e.message}). Check the path '
        f'and your access to it; nothing was written.'
    ) from None


def check_readable(path, flag, directory=False):
  """Raises `errors.UserError` naming `path` and `flag` (e.g. '--saved_model') if the file
  system of `path` is not available or `path` exists but cannot be read (with `directory`:
  or is a file). A missing `path` is the program's to report, with what belongs there.
  Returns whether `path` exists."""
  path = os.fspath(path)
  if not _exists(path, flag):
    return False
  is_dir = tf.io.gfile.isdir(path)
  if directory and not is_dir:
    raise errors.UserError(
        f'{flag}={path} names an existing file, not a directory. Give a directory path, or move '
        'the file away.'
    )
  try:
    if is_dir:
      tf.io.gfile.listdir(path)
    else:
      with tf.io.gfile.GFile(path, 'rb') as f:
        f.read(1)
  except tf.errors.OpError as e:
    raise errors.UserError(
        f'{flag}={path} cannot be read ({type(e).__name__}: {e.message}). Check your access to '
        'it, or give another path.'
    ) from None
  return True


def check_writable(path, flag):
  """Raises `errors.UserError` naming `path` and `flag` (e.g. '--workdir') unless the directory
  `path` can be made and a small file written and removed in it.

  Refused: a file system that is not available, a file, a path that cannot be made or written.
  Nothing stays behind: a local directory made for the check is removed again if still empty
  (the program makes it when it writes), so a program that refuses its input later leaves
  nothing. A URL's directory stays (on an object store an empty marker at most). Other
  workers of the same run may check and write the same directory at the same time.
  """
  path = os.fspath(path)
  check_readable(path, flag, directory=True)
  made = _missing_local_directories(path)
  probe = os.path.join(path, f'.tfsmooth-write-check-{uuid.uuid4().hex}')
  try:
    for attempt in range(_ATTEMPTS):
      tf.io.gfile.makedirs(path)
      try:
        with tf.io.gfile.GFile(probe, 'w') as f:
          f.write('tfsmooth checks that this directory can be written; delete me.\n')
        break
      except tf.errors.NotFoundError:  # another worker removed its check's directory
        if attempt == _ATTEMPTS - 1:
          raise
    tf.io.gfile.remove(probe)
  except tf.errors.OpError as e:
    raise errors.UserError(
        f'{flag}={path} cannot be written: making it and writing a test file in it failed '
        f'({type(e).__name__}: {e.message}). Check the path and your write access to it, or '
        f'give another {flag}; no file was written.'
    ) from None
  finally:
    for directory in made:  # the deepest first; os.rmdir refuses a directory with files
      try:
        os.rmdir(directory)
      except OSError:
        break


_ATTEMPTS = 5


def _missing_local_directories(path):
  """The directories that making the local `path` would create, the deepest first ([] for a
  URL)."""
  if is_url(path):
    return []
  missing, node = [], os.path.abspath(path)
  while not os.path.lexists(node) and os.path.dirname(node) != node:
    missing.append(node)
    node = os.path.dirname(node)
  return missing
