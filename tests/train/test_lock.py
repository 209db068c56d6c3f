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


# The end to end check: launch/train.py started twice on one workdir.
TRAIN = [
    'launch/train.py',
    '--config=tfsmooth/configs/rings.py',
    '--config.model.hidden_sizes=16,16',
    '--config.conditional_model.hidden_sizes=16,16',
    '--config.train.steps=40',
    '--config.train.batch_size=64',
    '--config.train.log_every=20',
    '--config.train.eval_every=20',
    '--config.train.checkpoint_every=20',
    '--config.train.jit_compile=False',
    '--config.eval.iw_samples=2',
    '--config.eval.validation_samples=2',
    '--config.eval.density_iw_samples=2',
    '--config.eval.num_plot_samples=100',
]


def _files(workdir):
  """{relative path: bytes} of every file under `workdir`."""
  out = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      with open(os.path.join(root, name), 'rb') as f:
        out[os.path.relpath(os.path.join(root, name), workdir)] = f.read()
  return out


def test_a_second_launch_on_a_live_workdir_is_refused_and_the_first_finishes(tmp_path):
  """The first launch is stopped (SIGSTOP) once it holds the lock, so that it is certainly alive
  while the second runs; the second exits 2 with one paragraph naming it and changes no file of
  the workdir; the first, continued, trains to the end and leaves its metrics, a loadable last
  checkpoint and no lock."""
  workdir = str(tmp_path / 'run')
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', 'PYTHONPATH': REPO}
  env.pop('TF_CONFIG', None)
  command = [sys.executable, *TRAIN, f'--workdir={workdir}']
  first = subprocess.Popen(
      command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
  )
  try:
    deadline = time.time() + 300
    while not (lock.read(workdir) or {}).get('pid') == first.pid:
      assert first.poll() is None and time.time() < deadline, 'the first launch never held the lock'
      time.sleep(0.2)
    first.send_signal(signal.SIGSTOP)
    before = _files(workdir)
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert _files(workdir) == before  # the refused launch wrote nothing, config.json included
    first.send_signal(signal.SIGCONT)
    assert second.returncode == 2, second.stderr
    message = second.stderr.strip()
    assert message.startswith('Error: The workdir') and '\n\n' not in message
    assert f'process {first.pid} on host {socket.gethostname()}' in ' '.join(message.split())
    out, err = first.communicate(timeout=600)
  finally:
    first.send_signal(signal.SIGCONT)
    if first.poll() is None:
      first.kill()
  assert first.returncode == 0, err[-3000:]
  with open(os.path.join(workdir, 'metrics.json')) as f:
    assert json.load(f)['steps'] == 40
  last = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  assert last.endswith('ckpt-40')
  assert tf.train.load_checkpoint(last).get_variable_to_shape_map()
  assert not os.path.exists(os.path.join(workdir, 'train.lock'))
