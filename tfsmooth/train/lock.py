"""A workdir's lock: one training run writes a workdir at a time.

The same `launch/train.py` command started twice on one workdir (two terminals, a job scheduler
retrying) would otherwise train twice to the end, both writing the same checkpoints and records.
The writer of a workdir takes its lock, the file `workdir/train.lock`:

  with lock.held(workdir):            # or: handle = lock.acquire(workdir) ... handle.release()
    ...                               # train, evaluate, write records and plots

The file is a JSON record of its holder: a random token, host name (and Linux boot id), process
id (with its start time, so that a reused pid is not mistaken for the holder, and its pid
namespace, so that containers sharing a host name are not taken for one machine), the command
line, when it started, and a heartbeat time that a daemon thread rewrites every
`heartbeat_seconds` (60 s), with the limit after which a silent holder counts as dead
(`stale_seconds`, 600 s).

A second writer is refused (`errors.UserError`, one paragraph naming the holder's host, pid,
start time and command, and what to do: wait, stop it, or use another --workdir). A lock left
by a dead run is taken over with a warning: on the same host (same host name, boot id and pid
namespace) when its process is gone (`os.kill(pid, 0)`; a zombie or a reused pid count as
gone); from another host (shared storage) when its heartbeat is older than the limit the record
states. The lock is removed on release: at the end of the `with` block or `release()` (normal
end, an exception, Ctrl-C, `errors.Preempted` after the trainer's SIGTERM checkpoint), at
interpreter exit (`atexit`, a backstop for a handle never released), and on a SIGTERM that
arrives outside the trainer's own handler (the process then dies of SIGTERM as it would have).
Only `kill -9`, a crash of the machine or a lost connection to the storage leave it behind, for
the rules above to take over.

Several workers of one run are not two runs: only the chief (`strategy.is_chief_task`, by
TF_CONFIG) takes the lock. A non-chief worker takes nothing and writes nothing; it only reads
the lock, and is refused if a live run of another cluster holds it (so that a whole second
multi-worker run fails at once rather than hang on its refused chief). The record keeps a
fingerprint of the TF_CONFIG cluster, by which a worker knows its own chief's lock; the workers
may start in any order. Read-only users (evaluate, sample, export) neither take nor check it.

What the storage can guarantee. Every access goes through `tf.io.gfile`, so the workdir may be a
local path or a URL (gs://, s3://, ram://). gfile has no atomic create-if-absent (no O_EXCL, no
object-store precondition such as GCS's ifGenerationMatch=0), so taking the lock is read, then
write (a temporary renamed into place: readers never see half a record; on object stores a
rename is a copy, and an object appears whole), then wait, then read back: the taker holds the
lock only if the file still carries its own random token after the wait, and is refused
(naming the other run) if not. Two starters that both find the workdir free both write; the
later write stands, and the earlier writer sees the other's token when it reads back, provided
the later one wrote within the earlier one's wait. The wait is max(0.2 s, 4 x the time the
taker's own read and write took), so the window that remains is a second starter whose own
read-to-write took four times longer than ours (a process or storage stall between its check and
its write): then both hold the lock. A holder's heartbeat thread reads the record back before
each refresh and logs an error, and stops refreshing, if another run's token is there: the race
is then visible in the logs, and the heartbeat never steals the lock back (the same holds for a
holder cut off from the storage for longer than the limit, whose lock another host then takes
over while it still runs). The design needs
read-after-write consistency (local and NFS-with-close-to-open file systems, GCS, and S3 since
2020 give it) and clocks that agree within a small part of the stale limit across hosts (the
heartbeat is the writer's clock, compared with the reader's: NTP suffices for 600 s). A lock is
advisory: it keeps tfsmooth's trainers apart, not other programs.
"""

import atexit
import contextlib
import hashlib
import json
import os
import shlex
import signal
import socket
import sys
import threading
import time
import uuid

from absl import logging
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.train import strategy as strategy_lib

LOCK_FILE = 'train.lock'
FORMAT = 1
HEARTBEAT_SECONDS = 60.0  # how often the holder rewrites its heartbeat
STALE_SECONDS = 600.0  # a lock on another host with an older heartbeat belongs to a dead run
MIN_SETTLE_SECONDS = 0.2  # the least wait between writing the lock and reading it back
SETTLE_FACTOR = 4.0  # the wait in units of the time our own read and write took
_COMMAND_CHARS = 300

_HELD = set()  # handles of this process that hold their lock
_GUARD = threading.RLock()  # _HELD and the SIGTERM handler (RLock: the handler may interrupt us)
_previous_sigterm = None  # SIG_DFL while our handler is installed, else None


def path_of(workdir):
  """The lock file of `workdir`."""
  return os.path.join(os.fspath(workdir), LOCK_FILE)


def read(workdir):
  """The record of `workdir`'s lock (a dict), or None where there is no lock."""
  record, _ = _read(path_of(workdir))
  return record


class WorkdirLock:
  """A handle on a workdir's lock: `held` while this process holds it (a non-chief worker's
  handle never does: it only checked the lock). `release()` (or leaving a `with` block) removes
  the lock file if it is still this handle's, and stops the heartbeat; it is idempotent."""

  def __init__(self, workdir, record=None, heartbeat_seconds=HEARTBEAT_SECONDS):
    self.workdir = os.fspath(workdir)
    self.path = path_of(workdir)
    self.record = record
    self._heartbeat_seconds = heartbeat_seconds
    self._stop = threading.Event()
    self._thread = None

  @property
  def held(self):
    return self in _HELD

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()

  def release(self):
    """Stops the heartbeat and removes the lock file if it still carries this handle's token."""
    with _GUARD:
      if self not in _HELD:
        return
      _HELD.discard(self)
      if not _HELD:
        _restore_sigterm()
    self._stop.set()
    if self._thread is not None and self._thread is not threading.current_thread():
      self._thread.join(timeout=10.0)
    record, _ = _read(self.path)
    if record is None:
      logging.warning('The lock %s was already gone when this run released it.', self.path)
    elif record.get('token') != self.record['token']:
      logging.warning(
          'The lock %s now belongs to %s; this run leaves it in place.',
          self.path,
          _describe(record),
      )
    else:
      try:
        tf.io.gfile.remove(self.path)
      except (tf.errors.OpError, OSError) as e:  # e.g. write access lost: keep the run's own error
        logging.warning(
            'Could not remove the lock %s (%s); the next start takes it over once this '
            'process is gone.',
            self.path,
            e,
        )

  def _start_heartbeat(self):
    self._thread = threading.Thread(
        target=self._beat, name=f'tfsmooth-lock-heartbeat {self.path}', daemon=True
    )
    self._thread.start()

  def _beat(self):
    """Rewrites the record's heartbeat every `heartbeat_seconds` while the lock is ours."""
    while not self._stop.wait(self._heartbeat_seconds):
      try:
        record, _ = _read(self.path)
        if self._stop.is_set():
          return
        if record is None or record.get('token') != self.record['token']:
          logging.error(
              'The lock %s was taken over by %s while this run held it: two runs may now be '
              'writing this workdir. This run stops refreshing the lock.',
              self.path,
              'nobody (the file is gone)' if record is None else _describe(record),
          )
          return
        self.record = {**self.record, **_heartbeat_fields()}
        _write(self.path, self.record)
      except (tf.errors.OpError, OSError) as e:  # a storage hiccup: try again next time
        logging.warning('Could not refresh the lock %s: %s', self.path, e)


def acquire(
    workdir,
    chief=None,
    heartbeat_seconds=HEARTBEAT_SECONDS,
    stale_seconds=STALE_SECONDS,
):
  """Takes the lock of `workdir` for a training run and returns its `WorkdirLock`.

  Args:
    workdir: the run's workdir (a path or a URL); made if missing (on the chief).
    chief: whether this process is its run's chief; None reads TF_CONFIG
      (`strategy.is_chief_task`, True without TF_CONFIG). A non-chief worker only checks the
      lock (see the module docstring) and gets a handle that holds nothing.
    heartbeat_seconds: how often the holder refreshes its heartbeat.
    stale_seconds: the limit this holder states in its record: a reader on another host takes
      the lock over once the heartbeat is older. Keep it several times `heartbeat_seconds`.

  Raises:
    errors.UserError: a live run of another process (another cluster, for a non-chief) holds
      the lock; one paragraph naming it and what to do.
  """
  workdir = os.fspath(workdir)
  path = path_of(workdir)
  if chief is None:
    chief = strategy_lib.is_chief_task()
  if not chief:
    record, _ = _read(path)
    if record is not None and record.get('cluster') != _cluster():
      live, _ = _judge(record)
      if live is True:
        raise errors.UserError(_refusal(workdir, record))
    return WorkdirLock(workdir)
  if not stale_seconds > heartbeat_seconds > 0:
    raise ValueError(
        f'Need stale_seconds > heartbeat_seconds > 0, got {stale_seconds}, {heartbeat_seconds}.'
    )
  began = time.monotonic()
  tf.io.gfile.makedirs(workdir)
  existing, unreadable = _read(path)
  if existing is not None:
    live, reason = _judge(existing)
    if live == 'self':
      _supersede(existing)
    elif live:
      raise errors.UserError(_refusal(workdir, existing))
    else:
      logging.warning(
          'Taking over the lock %s left by a run that is gone: %s (%s). Training resumes '
          'from its last checkpoint as usual.',
          path,
          _describe(existing),
          reason,
      )
  elif unreadable:
    logging.warning('Taking over the lock %s, which could not be read (%s).', path, unreadable)
  record = {
      'format': FORMAT,
      'token': uuid.uuid4().hex,
      'host': socket.gethostname(),
      'boot_id': _boot_id(),
      'pid': os.getpid(),
      'pid_start': _process_start(os.getpid()),
      'pid_namespace': _pid_namespace(),
      'command': _command(),
      'cluster': _cluster(),
      'started': time.time(),
      'started_utc': _utc(time.time()),
      'heartbeat_every': float(heartbeat_seconds),
      'stale_after': float(stale_seconds),
      **_heartbeat_fields(),
  }
  _write(path, record)
  time.sleep(max(MIN_SETTLE_SECONDS, SETTLE_FACTOR * (time.monotonic() - began)))
  back, _ = _read(path)
  if back is None or back.get('token') != record['token']:
    if back is None:
      raise errors.UserError(
          f'The lock {path} vanished while this run was taking it: another process is '
          'handling this workdir at the same moment. Check for another training run on '
          f'{workdir}, then rerun the same command, or pass another --workdir.'
      )
    raise errors.UserError(_refusal(workdir, back))
  handle = WorkdirLock(workdir, record, heartbeat_seconds)
  with _GUARD:
    _HELD.add(handle)
    _install_sigterm()
  handle._start_heartbeat()  # pylint: disable=protected-access
  logging.info('Holding the lock %s (process %d on %s).', path, record['pid'], record['host'])
  return handle


@contextlib.contextmanager
def held(workdir, chief=None, **kwargs):
  """`acquire(workdir, chief, **kwargs)` for the `with` block; released however it ends."""
  handle = acquire(workdir, chief, **kwargs)
  try:
    yield handle
  finally:
    handle.release()


def _judge(record):
  """(live, reason): live is True (a live holder), 'self' (this very process) or False (a dead
  one, `reason` saying how that is known)."""
  pid = record.get('pid')
  if _same_machine(record) and isinstance(pid, int):
    if pid == os.getpid() and record.get('pid_start') == _process_start(pid):
      return 'self', 'this process'
    if _process_alive(pid, record.get('pid_start')):
      return True, f'process {pid} is running on this host'
    return False, f'process {pid} is no longer running on this host'
  age = _heartbeat_age(record)
  limit = _stale_after(record)
  if age is None:
    return False, 'its record has no heartbeat time'
  if age > limit:
    return False, (
        f'its heartbeat is {_duration(age)} old, over the {_duration(limit)} after which a '
        'lock counts as stale'
    )
  return True, f'its heartbeat is {_duration(max(age, 0.0))} old'


def _same_machine(record):
  """Whether the record's pid can be checked here: the holder ran on this machine, in this boot
  of it and in this pid namespace (where the record says: a host of the same name but another
  boot id is another machine, or this one rebooted; another pid namespace is another container
  that shares the host's name, as with docker --network=host; either way its pid means nothing
  here)."""

  def agrees(key, ours):
    theirs = record.get(key)
    return theirs is None or ours is None or theirs == ours

  return (
      record.get('host') == socket.gethostname()
      and agrees('boot_id', _boot_id())
      and agrees('pid_namespace', _pid_namespace())
  )


def _refusal(workdir, record):
  """The one-paragraph refusal naming the run that holds `workdir`."""
  host, pid = record.get('host', '?'), record.get('pid', '?')
  started = record.get('started')
  since = record.get('started_utc') or '?'
  if isinstance(started, (int, float)):
    since += f' ({_duration(max(time.time() - started, 0.0))} ago)'
  command = record.get('command')
  age, limit = _heartbeat_age(record), _stale_after(record)
  if _same_machine(record) and isinstance(pid, int):
    death = 'If that process dies (even by kill -9), the next start takes its lock over at once.'
    stop = f'stop it (kill {pid}: the trainer saves a checkpoint on SIGTERM)'
  else:
    when = ''
    if age is not None:
      heartbeat = record.get('heartbeat')
      when = (
          f' (last heartbeat {_duration(max(age, 0.0))} ago; stale at '
          f'{_utc(heartbeat + limit)})'
      )
    death = (
        f'If that run died, its lock is taken over once its heartbeat is older than '
        f'{_duration(limit)}{when}.'
    )
    stop = f'stop it (kill {pid} on {host}: the trainer saves a checkpoint on SIGTERM)'
  return (
      f'The workdir {workdir} is in use by another training run: process {pid} on host {host}, '
      f'running since {since}'
      + (f', command: {command}' if command else '')
      + ". Two runs writing one workdir would overwrite each other's checkpoints and records, "
      f'so this one stops without writing anything. Wait for that run to finish (rerunning '
      f'the same command then resumes from its last checkpoint), {stop}, or pass another '
      f'--workdir. {death} (The lock is {path_of(workdir)}.)'
  )


def _describe(record):
  return (
      f'process {record.get("pid", "?")} on host {record.get("host", "?")}, started '
      f'{record.get("started_utc", "?")}'
  )


def _supersede(record):
  """This process took the lock before and takes it again: the old handle lets go of it."""
  with _GUARD:
    old = [h for h in _HELD if h.record and h.record.get('token') == record.get('token')]
    for handle in old:
      _HELD.discard(handle)
      handle._stop.set()  # pylint: disable=protected-access
  logging.info('This process takes its own lock %s again.', record.get('token'))


def _heartbeat_fields():
  now = time.time()
  return {'heartbeat': now, 'heartbeat_utc': _utc(now)}


def _heartbeat_age(record):
  heartbeat = record.get('heartbeat')
  return time.time() - heartbeat if isinstance(heartbeat, (int, float)) else None


def _stale_after(record):
  limit = record.get('stale_after')
  return float(limit) if isinstance(limit, (int, float)) and limit > 0 else STALE_SECONDS


def _read(path):
  """(record, None), (None, None) where there is no file, or (None, why) if unreadable."""
  try:
    with tf.io.gfile.GFile(path) as f:
      text = f.read()
  except tf.errors.NotFoundError:
    return None, None
  try:
    record = json.loads(text)
  except json.JSONDecodeError as e:
    return None, f'not JSON: {e}'
  if not isinstance(record, dict) or 'token' not in record:
    return None, 'not a lock record'
  return record, None


def _write(path, record):
  """Writes `record` to `path` through a temporary renamed into place."""
  temporary = f'{path}.{record["token"]}.tmp'
  try:
    with tf.io.gfile.GFile(temporary, 'w') as f:
      f.write(json.dumps(record, indent=1) + '\n')
    tf.io.gfile.rename(temporary, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)


def _cluster():
  """A fingerprint of TF_CONFIG's cluster (the same on every worker of one run), or None."""
  config = json.loads(os.environ.get('TF_CONFIG') or '{}')
  cluster = config.get('cluster')
  if not cluster:
    return None
  return hashlib.sha256(json.dumps(cluster, sort_keys=True).encode()).hexdigest()[:16]


def _command():
  """This process's command line, its middle cut out where long (the script and the last flags,
  typically --workdir, stay)."""
  command = shlex.join([os.path.basename(sys.executable)] + sys.argv)
  if len(command) <= _COMMAND_CHARS:
    return command
  half = (_COMMAND_CHARS - 5) // 2
  return f'{command[:half]} ... {command[-half:]}'


def _boot_id():
  """Linux's id of this boot of this machine, or None elsewhere."""
  try:
    with open('/proc/sys/kernel/random/boot_id') as f:
      return f.read().strip() or None
  except OSError:
    return None


def _pid_namespace():
  """This process's pid namespace ('pid:[4026531836]') on Linux, or None elsewhere."""
  try:
    return os.readlink('/proc/self/ns/pid')
  except OSError:
    return None


def _proc_stat(pid):
  """(state, start time in clock ticks since boot) of a process from /proc, or None."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      fields = f.read().rsplit(')', 1)[1].split()
    return fields[0], int(fields[19])
  except (OSError, IndexError, ValueError):
    return None


def _process_start(pid):
  stat = _proc_stat(pid)
  return None if stat is None else stat[1]


def _process_alive(pid, start=None):
  """Whether process `pid` of this host runs (not a zombie; the same process if its recorded
  start time `start` is known)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass  # another user's process: it exists
  except OSError:
    return False
  stat = _proc_stat(pid)
  if stat is None:
    return True
  state, started = stat
  if state == 'Z':
    return False
  return start is None or started == start


def _utc(seconds):
  return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(seconds))


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds < 120:
    return f'{seconds} s'
  if seconds < 7200:
    return f'{seconds // 60} min'
  return f'{seconds / 3600:.1f} h'


def _release_all():
  for handle in list(_HELD):
    try:
      handle.release()
    except Exception as e:  # pylint: disable=broad-except  # at exit: say so, go on
      logging.warning('Could not release the lock %s: %s', handle.path, e)


def _on_sigterm(signum, frame):
  """SIGTERM outside the trainer's handler: release the locks, then die of SIGTERM as before."""
  del frame
  _release_all()
  signal.signal(signum, signal.SIG_DFL)
  os.kill(os.getpid(), signum)


def _install_sigterm():
  """Our SIGTERM handler, where SIGTERM would otherwise kill at once (the main thread only)."""
  global _previous_sigterm
  if threading.current_thread() is not threading.main_thread() or _previous_sigterm is not None:
    return
  if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _on_sigterm)
    _previous_sigterm = signal.SIG_DFL


def _restore_sigterm():
  global _previous_sigterm
  if _previous_sigterm is None or threading.current_thread() is not threading.main_thread():
    return
  if signal.getsignal(signal.SIGTERM) is _on_sigterm:
    signal.signal(signal.SIGTERM, _previous_sigterm)
  _previous_sigterm = None


atexit.register(_release_all)
# A forked child holds nothing: its exit must not remove the parent's lock.
os.register_at_fork(after_in_child=_HELD.clear)
