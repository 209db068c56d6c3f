"""The workdir lock (tfsmooth/train/lock.py): a live holder refuses a second writer in one
paragraph naming it; a dead one's lock (its process gone on this host, or its heartbeat older
than the limit on another host) is taken over with a warning; release leaves nothing behind;
the workers of the holder's own cluster are not refused; ram:// works.

The live holders are real processes (a subprocess holding the lock, killed at the end); the
dead ones are records written here by hand in the documented format, so that the rules are
checked against what a record says rather than against the module's own writer.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.train import lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER = {'worker': ['127.0.0.1:20001', '127.0.0.1:20002']}
# A process that takes the lock of argv[1] and holds it until its stdin closes.
HOLDER = """
import sys
from tfsmooth.train import lock
handle = lock.acquire(sys.argv[1])
print('held', flush=True)
sys.stdin.read()
handle.release()
"""


def _tf_config(cluster, index):
  return json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})


def _start_holder(workdir, tf_config=None):
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', 'PYTHONPATH': REPO}
  env.pop('TF_CONFIG', None)
  if tf_config:
    env['TF_CONFIG'] = tf_config
  holder = subprocess.Popen(
      [sys.executable, '-c', HOLDER, str(workdir), '--marker=holder-of-the-test'],
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL,
      env=env,
      text=True,
  )
  assert holder.stdout.readline().strip() == 'held'
  return holder


def _stop(holder):
  if holder.poll() is None:
    holder.stdin.close()
    holder.wait(timeout=60)


@pytest.fixture(scope='module')
def live_holder(tmp_path_factory):
  """(workdir, pid) of a live run holding its lock: the chief (worker 0) of CLUSTER."""
  workdir = tmp_path_factory.mktemp('held')
  holder = _start_holder(workdir, _tf_config(CLUSTER, 0))
  yield str(workdir), holder.pid
  _stop(holder)


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch):
  monkeypatch.delenv('TF_CONFIG', raising=False)


def _lock_file(workdir):
  with open(os.path.join(workdir, 'train.lock')) as f:
    return json.load(f)


def _boot_id():
  with open('/proc/sys/kernel/random/boot_id') as f:
    return f.read().strip()


def _write_record(workdir, **fields):
  """A lock record as a run of another process would have left it."""
  record = {
      'format': 1,
      'token': 'f' * 32,
      'host': socket.gethostname(),
      'boot_id': _boot_id(),
      'pid': 1,
      'command': 'python launch/train.py --workdir=elsewhere',
      'cluster': None,
      'started': time.time() - 7200,
      'started_utc': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(time.time() - 7200)),
      'heartbeat': time.time(),
      'stale_after': 600.0,
      **fields,
  }
  tf.io.gfile.makedirs(workdir)
  with tf.io.gfile.GFile(os.path.join(workdir, 'train.lock'), 'w') as f:
    f.write(json.dumps(record))
  return record


def test_a_second_writer_is_refused_in_one_paragraph_naming_the_holder(live_holder):
  workdir, pid = live_holder
  before = _lock_file(workdir)
  with pytest.raises(errors.UserError) as refused:
    lock.acquire(workdir)
  message = str(refused.value)
  assert '\n' not in message
  assert f'process {pid} on host {socket.gethostname()}' in message
  assert f'running since {before["started_utc"]}' in message
  assert 'holder-of-the-test' in message  # its command line
  assert f'kill {pid}' in message and '--workdir' in message
  assert _lock_file(workdir) == before  # the refused writer wrote nothing


def test_a_worker_of_the_holders_own_run_is_not_refused(live_holder, monkeypatch):
  workdir, pid = live_holder
  before = _lock_file(workdir)
  monkeypatch.setenv('TF_CONFIG', _tf_config(CLUSTER, 1))
  with lock.held(workdir) as handle:
    assert not handle.held  # a non-chief takes nothing
  assert _lock_file(workdir) == before
  # A worker of another multi-worker run is refused, as its chief would be.
  other = {'worker': ['127.0.0.1:30001', '127.0.0.1:30002']}
  monkeypatch.setenv('TF_CONFIG', _tf_config(other, 1))
  with pytest.raises(errors.UserError, match=f'process {pid} on host'):
    lock.acquire(workdir)


def test_a_dead_process_on_this_host_is_taken_over_with_a_warning(tmp_path, caplog):
  finished = subprocess.Popen([sys.executable, '-c', 'pass'])
  finished.wait()  # reaped: its pid names no process now
  dead_pid = finished.pid
  workdir = str(tmp_path / 'w')
  _write_record(workdir, pid=dead_pid)
  with caplog.at_level('WARNING'):
    handle = lock.acquire(workdir)
  try:
    warnings = ' '.join(r.getMessage() for r in caplog.records if r.levelname == 'WARNING')
    assert f'process {dead_pid} on host {socket.gethostname()}' in warnings
    assert f'process {dead_pid} is no longer running' in warnings
    assert handle.held and _lock_file(workdir)['pid'] == os.getpid()
  finally:
    handle.release()
  assert os.listdir(workdir) == []


def test_a_stale_heartbeat_from_another_host_is_taken_over_and_a_fresh_one_refuses(
    tmp_path, caplog
):
  workdir = str(tmp_path / 'w')
  # Fresh (a minute old, under the stated 600 s): the run on the other host counts as live.
  fresh = _write_record(workdir, host='node-7.example', pid=4242, heartbeat=time.time() - 60)
  with pytest.raises(errors.UserError) as refused:
    lock.acquire(workdir)
  message = str(refused.value)
  assert 'process 4242 on host node-7.example' in message and '\n' not in message
  stale_at = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(fresh['heartbeat'] + 600))
  assert 'older than 10 min' in message and f'stale at {stale_at}' in message
  # An hour old: the run is dead.
  _write_record(workdir, host='node-7.example', pid=4242, heartbeat=time.time() - 3600)
  with caplog.at_level('WARNING'):
    with lock.held(workdir) as handle:
      assert _lock_file(workdir)['token'] == handle.record['token']
  warnings = ' '.join(r.getMessage() for r in caplog.records if r.levelname == 'WARNING')
  assert 'process 4242 on host node-7.example' in warnings
  assert 'heartbeat is 60 min old, over the 10 min' in warnings
  assert os.listdir(workdir) == []


def test_on_ram_the_holder_refreshes_its_heartbeat_and_release_leaves_nothing():
  workdir = 'ram://lock_test/run'
  handle = lock.acquire(workdir, heartbeat_seconds=0.05, stale_seconds=1.0)
  first = lock.read(workdir)
  assert (first['pid'], first['host']) == (os.getpid(), socket.gethostname())
  deadline = time.time() + 30
  while lock.read(workdir)['heartbeat'] == first['heartbeat'] and time.time() < deadline:
    time.sleep(0.05)
  assert lock.read(workdir)['heartbeat'] > first['heartbeat']
  handle.release()
  handle.release()  # idempotent
  assert tf.io.gfile.listdir(workdir) == []
  with pytest.raises(RuntimeError):  # an error inside the block releases the lock too
    with lock.held(workdir):
      raise RuntimeError
  assert tf.io.gfile.listdir(workdir) == []


def test_a_writer_that_lands_while_we_wait_to_read_back_wins(tmp_path, monkeypatch):
  """Both starters found the workdir free; the later write stands and the earlier writer,
  reading back, sees the other's token and is refused."""
  workdir = str(tmp_path / 'w')
  sleep = time.sleep
  other = {}

  def other_writes_then_sleep(seconds):
    if not other:
      other.update(_write_record(workdir, host='node-9.example', pid=99, token='e' * 32))
    sleep(seconds)

  monkeypatch.setattr(lock.time, 'sleep', other_writes_then_sleep)
  with pytest.raises(errors.UserError, match='process 99 on host node-9.example'):
    lock.acquire(workdir)
  assert _lock_file(workdir)['token'] == 'e' * 32  # the winner's lock is left alone


def test_sigterm_outside_the_trainer_releases_the_lock(tmp_path):
  holder = _start_holder(tmp_path)
  assert _lock_file(tmp_path)['pid'] == holder.pid
  holder.send_signal(signal.SIGTERM)
  assert holder.wait(timeout=60) == -signal.SIGTERM  # it still dies of SIGTERM
  assert os.listdir(tmp_path) == []


def test_a_host_of_our_name_in_another_boot_is_judged_by_its_heartbeat(tmp_path):
  """Another boot id (this machine rebooted, or another machine of the same name): the pid
  means nothing here, so the heartbeat decides, as for another host."""
  workdir = str(tmp_path / 'w')
  _write_record(workdir, pid=999_999_999, boot_id='another-boot', heartbeat=time.time() - 60)
  with pytest.raises(errors.UserError, match='process 999999999 on host'):
    lock.acquire(workdir)
  _write_record(workdir, pid=999_999_999, boot_id='another-boot', heartbeat=time.time() - 3600)
  with lock.held(workdir) as handle:
    assert handle.held
  assert os.listdir(workdir) == []
