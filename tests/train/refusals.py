"""Storage that refuses writes, for the write-failure tests: each `refuse_*` patches one writer
so that it fails as a full disk makes it fail, with the error and leftovers seen on a real full
file system (a 700 kB tmpfs, TF 2.21):

  * the checkpoint writer (`SaveV2`) raises `ResourceExhaustedError('{{function_node
    __wrapped__SaveV2_...}} <dir>/ckpt-N_temp/part-00000-of-00001.data-00000-of-00001.tempstate
    <digits>; No space left on device [Op:SaveV2]')` and leaves `ckpt-N_temp/` behind; a save
    can also fail later, while merging its index (`ckpt-N.index` cut short) or writing the
    state file (`checkpoint.tmp<hex>` cut short: TF's atomic write leaves its temporary);
  * a `tf.io.gfile.GFile` write raises `ResourceExhaustedError('<path>; No space left on
    device')` and leaves the bytes that fitted;
  * a summary writer raises it from its flush ('...; No space left on device\\n\\tFailed to
    flush N events to <events file>').

Each takes `setattr` (pytest's `monkeypatch.setattr`, or the builtin in a driver process).
`install_from_environment` installs the refusal that `$TFSMOOTH_REFUSE` names, for drivers.
"""

import contextlib
import os
import uuid

import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management
from tensorflow.python.lib.io import file_io

NO_SPACE = 'No space left on device'
ENVIRONMENT = 'TFSMOOTH_REFUSE'


def _no_space(message):
  return tf.errors.ResourceExhaustedError(None, None, message)


def refuse_checkpoint_saves(setattr, directory, nth=1, point='data'):
  """The `nth` save (1-based) of a checkpoint into a directory named `directory` (its last
  path component: 'checkpoints' or 'best') fails at `point`:

  'data': SaveV2 fails writing the temporary shard (leaves `ckpt-N_temp/` with a partial file);
  'index': the merge fails writing the index (leaves the data file and a cut `ckpt-N.index`);
  'state': the data and index are written, then the state file's write fails (leaves
  `checkpoint.tmp<hex>` cut short; the state file still lists the earlier checkpoints).
  Later saves succeed. Returns the list of prefixes refused (filled as it happens)."""
  refused = []
  counts = {'saves': 0}
  save = tf.train.CheckpointManager.save

  def refusing_save(manager, checkpoint_number=None, **kwargs):
    if os.path.basename(manager.directory.rstrip('/')) != directory:
      return save(manager, checkpoint_number, **kwargs)
    counts['saves'] += 1
    if counts['saves'] != nth:
      return save(manager, checkpoint_number, **kwargs)
    prefix = os.path.join(manager.directory, f'ckpt-{checkpoint_number}')
    refused.append(prefix)
    if point == 'data':
      temporary = os.path.join(
          f'{prefix}_temp', 'part-00000-of-00001.data-00000-of-00001.tempstate4242'
      )
      tf.io.gfile.makedirs(os.path.dirname(temporary))
      with tf.io.gfile.GFile(temporary, 'wb') as f:
        f.write(b'\0' * 100)
      raise _no_space(
          '{{function_node __wrapped__SaveV2_dtypes_3_device_/job:localhost/replica:0/task:0/'
          f'device:CPU:0}}}} {temporary}; {NO_SPACE} [Op:SaveV2]'
      )
    if point == 'index':
      with tf.io.gfile.GFile(f'{prefix}.data-00000-of-00001', 'wb') as f:
        f.write(b'\0' * 1000)
      with tf.io.gfile.GFile(f'{prefix}.index', 'wb') as f:
        f.write(b'\0' * 10)
      raise _no_space(
          '{{function_node __wrapped__MergeV2Checkpoints_device_/job:localhost/replica:0/'
          f'task:0/device:CPU:0}}}} {prefix}.index.tempstate4242; {NO_SPACE} '
          '[Op:MergeV2Checkpoints]'
      )
    with _refusing_state_file():
      return save(manager, checkpoint_number, **kwargs)

  setattr(tf.train.CheckpointManager, 'save', refusing_save)
  return refused


@contextlib.contextmanager
def _refusing_state_file():
  """Within the block, writing a checkpoint state file fails as TF's atomic write does on a
  full disk: its temporary is left, cut short."""
  write = checkpoint_management.file_io.atomic_write_string_to_file

  def refusing_write(filename, contents, overwrite=True):
    del overwrite
    temporary = f'{filename}.tmp{uuid.uuid4().hex}'
    with tf.io.gfile.GFile(temporary, 'w') as f:
      f.write(contents[: len(contents) // 2])
    raise _no_space(f'{temporary}; {NO_SPACE}')

  checkpoint_management.file_io.atomic_write_string_to_file = refusing_write
  try:
    yield
  finally:
    checkpoint_management.file_io.atomic_write_string_to_file = write


class _RefusingFile:
  """A GFile opened for writing that writes the first `budget['bytes']` bytes (shared by all
  the files refused), then raises as a full disk."""

  def __init__(self, path, mode, budget, gfile):
    self._path, self._budget = path, budget
    self._file = gfile(path, mode)

  def write(self, data):
    allowed = max(0, min(len(data), self._budget['bytes']))
    if allowed:
      self._file.write(data[:allowed])
      self._budget['bytes'] -= allowed
    if allowed < len(data):
      self._file.close()
      raise _no_space(f'{self._path}; {NO_SPACE}')

  def close(self):
    self._file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def refuse_file_writes(setattr, name_part, budget=0):
  """Writes through `tf.io.gfile.GFile` (or TF's own `file_io.FileIO`, which writes a
  SavedModel's graph) to files whose name contains `name_part` fail once `budget` bytes have
  been written to them. Returns the list of paths refused."""
  fileio = file_io.FileIO  # tf.io.gfile.GFile is a subclass that adds nothing
  shared = {'bytes': budget}
  refused = []

  def opening(path, mode='r', **kwargs):
    if 'w' in mode and name_part in os.path.basename(os.fspath(path)):
      refused.append(os.fspath(path))
      return _RefusingFile(path, mode, shared, fileio)
    return fileio(path, mode, **kwargs)

  setattr(tf.io.gfile, 'GFile', opening)
  setattr(file_io, 'FileIO', opening)
  return refused


class _RefusingWriter:
  """A summary writer whose `nth` flush and later ones fail as on a full disk (as a real
  one: its events are dropped). Leaving `as_default` flushes, as TF's writer does."""

  def __init__(self, writer, directory, nth):
    self._writer, self._directory, self._nth, self._flushes = writer, directory, nth, 0

  @contextlib.contextmanager
  def as_default(self, step=None):
    with self._writer.as_default(step=step):
      yield self
    self.flush()

  def flush(self):
    self._flushes += 1
    if self._flushes >= self._nth:
      events = os.path.join(self._directory, 'events.out.tfevents.0.host.1.0.v2')
      raise _no_space(
          '{{function_node __wrapped__FlushSummaryWriter_device_/job:localhost/replica:0/'
          f'task:0/device:CPU:0}}}} {events}; {NO_SPACE}\n\tFailed to flush 2 events to '
          f'{events}\n\tFlushing first event.'
      )
    self._writer.flush()


def refuse_summary_flush(setattr, nth=1):
  """The `nth` flush of every summary file writer made from now on, and the later ones, fail.
  Returns the list of writers refused."""
  create = tf.summary.create_file_writer
  writers = []

  def creating(logdir, *args, **kwargs):
    writers.append(_RefusingWriter(create(logdir, *args, **kwargs), os.fspath(logdir), nth))
    return writers[-1]

  setattr(tf.summary, 'create_file_writer', creating)
  return writers


def install_from_environment():
  """Installs the refusal `$TFSMOOTH_REFUSE` names, if any: 'checkpoint:<dir>:<nth>:<point>'
  (`refuse_checkpoint_saves`), 'file:<name part>:<budget>' (`refuse_file_writes`) or
  'summary:<nth>' (`refuse_summary_flush`)."""
  spec = os.environ.get(ENVIRONMENT)
  if not spec:
    return
  kind, *args = spec.split(':')
  if kind == 'checkpoint':
    refuse_checkpoint_saves(setattr, args[0], int(args[1]), args[2])
  elif kind == 'file':
    refuse_file_writes(setattr, args[0], int(args[1]))
  elif kind == 'summary':
    refuse_summary_flush(setattr, int(args[0]))
  else:
    raise ValueError(f'Unknown {ENVIRONMENT}={spec!r}.')
