"""Training at scale and under faults: per-worker input, two workers, EMA, signals, bad checkpoints."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.train import tiny
from tfsmooth import errors
from tfsmooth.models import pixelcnn
from tfsmooth.train import checkpoints
from tfsmooth.train import inputs
from tfsmooth.train import strategy as strategy_lib
from tfsmooth.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 300


def _driver(workdir, output, steps, strategy='default', tf_config=None, eval_every=None):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('TF_CONFIG', None)
  if tf_config:
    env['TF_CONFIG'] = json.dumps(tf_config)
  return subprocess.Popen(
      [
          sys.executable,
          os.path.join(ROOT, 'tests', 'train', 'train_driver.py'),
          str(workdir),
          str(output),
          str(steps),
          strategy,
      ]
      + ([str(eval_every)] if eval_every else []),
      cwd=ROOT,
      env=env,
      stderr=subprocess.PIPE,
      text=True,
  )


def _workers(workdir, outputs, steps, eval_every=None):
  """Two `multi_worker` drivers on free 127.0.0.1 ports sharing `workdir` (worker 0: chief)."""
  cluster = {'worker': [f'127.0.0.1:{p}' for p in tiny.free_ports(2)]}
  return [
      _driver(
          workdir,
          output,
          steps,
          'multi_worker',
          {'cluster': cluster, 'task': {'type': 'worker', 'index': i}},
          eval_every,
      )
      for i, output in enumerate(outputs)
  ]


def _saved(path):
  with np.load(path) as f:
    arrays = [k for k in f.files if k.startswith('arr_')]
    return [f[k] for k in sorted(arrays, key=lambda k: int(k.split('_')[1]))]


def _weights(model):
  return [v.numpy() for v in model.trainable_variables]


def _assert_equal(a, b, **tolerance):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, **(tolerance or dict(rtol=1e-5, atol=1e-6)))


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """Weights of an uninterrupted in-process run of STEPS steps."""
  result = trainer.train(
      tiny.model, tiny.dataset, tiny.config(STEPS), str(tmp_path_factory.mktemp('straight'))
  )
  return _weights(result.model)


def test_worker_shards_are_disjoint_and_cover_the_global_batch():
  examples = lambda: tf.data.Dataset.range(10_000)  # noqa: E731
  global_batch, replicas = 8, 4
  single = inputs.input_fn(examples, global_batch, replicas)(
      tf.distribute.InputContext(1, 0, replicas)
  )
  single = [c.numpy() for c in single.take(2 * replicas)]  # chunk r of step t: replica r
  for pipelines in (2, 4):
    local = replicas // pipelines
    shards = [
        [
            c.numpy()
            for c in inputs.input_fn(examples, global_batch, replicas)(
                tf.distribute.InputContext(pipelines, i, replicas)
            ).take(2 * local)
        ]
        for i in range(pipelines)
    ]
    for step in range(2):
      batch = np.concatenate([single[step * replicas + r] for r in range(replicas)])
      parts = [s[step * local + r] for s in shards for r in range(local)]
      assert sorted(np.concatenate(parts)) == sorted(batch)  # disjoint and covering
      for r, part in enumerate(parts):  # global replica r gets the same chunk as in one process
        np.testing.assert_array_equal(part, single[step * replicas + r])
  resumed = inputs.input_fn(examples, global_batch, replicas, start_step=1)(
      tf.distribute.InputContext(1, 0, replicas)
  )
  np.testing.assert_array_equal(next(iter(resumed)).numpy(), single[replicas])


def test_two_workers_match_one_process_with_two_replicas(tmp_path):
  steps = 20
  workers = _workers(tmp_path / 'multi', [tmp_path / f'worker{i}.npz' for i in range(2)], steps)
  for w in workers:
    _, err = w.communicate(timeout=240)
    assert w.returncode == 0, err[-3000:]
  mirrored = strategy_lib.get_strategy('mirrored')
  assert mirrored.num_replicas_in_sync == 2
  result = trainer.train(
      tiny.model, tiny.dataset, tiny.config(steps), str(tmp_path / 'one'), mirrored
  )
  _assert_equal(_saved(tmp_path / 'worker0.npz'), _weights(result.model), rtol=1e-4, atol=1e-5)
  _assert_equal(_saved(tmp_path / 'worker1.npz'), _saved(tmp_path / 'worker0.npz'))
  assert sorted(os.listdir(tmp_path / 'multi' / 'checkpoints'))[-1].startswith(f'ckpt-{steps}')
  assert not [name for name in os.listdir(tmp_path / 'multi') if name.startswith('scratch')]


def test_sigterm_to_one_worker_checkpoints_both_at_the_same_step(tmp_path):
  workers = _workers(tmp_path / 'run', [tmp_path / f'worker{i}.npz' for i in range(2)], 3000)
  for line in workers[1].stderr:
    if '/3000 loss' in line:
      break
  workers[1].send_signal(signal.SIGTERM)
  messages = []
  for w in workers:
    _, err = w.communicate(timeout=240)
    assert w.returncode == 0, err[-3000:]
    messages.append(err.split('SIGTERM received: ')[1])
  stopped = int(messages[0].split('stopped at step ')[1].split('/')[0])
  assert f'stopped at step {stopped}/' in messages[1]  # PreemptionCheckpointHandler agreed
  latest = tf.train.latest_checkpoint(str(tmp_path / 'run' / 'checkpoints'))
  assert latest.endswith(f'ckpt-{stopped}')
  assert sorted(os.listdir(tmp_path / 'run')) == ['checkpoints', 'summaries']


def _saved_ema(prefix):
  """The EMA averages a checkpoint file holds, in `model.trainable_variables` order (saved as
  ema/<position>/<path>), read from the file alone."""
  reader = tf.train.load_checkpoint(prefix)
  names = sorted(n for n, _ in tf.train.list_variables(prefix) if n.startswith('ema/'))
  return [reader.get_tensor(n) for n in names]


def test_two_workers_end_on_the_chiefs_best_checkpoint_run_after_run(tmp_path):
  # As it failed: each validation (every 4 steps, with a checkpoint) is the best yet, so the
  # chief replaces best/ckpt-<N-4> with best/ckpt-N right before the end, where every worker
  # loads the best weights (a worker that read best/ too soon loaded ckpt-<N-4>, or failed on
  # its deleted files). A fresh run, a resumed one, then a rerun with nothing left to train:
  # its best was saved by an earlier process.
  workdir = tmp_path / 'run'
  for run, steps in enumerate((16, 32, 32)):
    outputs = [tmp_path / f'run{run}_worker{i}.npz' for i in range(2)]
    workers = _workers(workdir, outputs, steps, eval_every=4)
    for w in workers:
      _, err = w.communicate(timeout=240)
      assert w.returncode == 0, f'run {run}: {err[-3000:]}'
    best = checkpoints.candidates(str(workdir / 'best'))
    assert [os.path.basename(p) for p in best] == [f'ckpt-{steps}']  # the last is the best
    expected = _saved_ema(best[0])
    for output in outputs:
      with np.load(output) as f:
        assert (int(f['step']), int(f['best_step'])) == (steps, steps)
      _assert_equal(_saved(output), expected, rtol=0, atol=0)
  assert not [name for name in os.listdir(workdir) if name.startswith('scratch')]


def _wait_for_progress(process):
  for line in process.stderr:
    if f'/{STEPS} loss' in line:
      return


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGKILL])
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, signum, straight):
  workdir = tmp_path / 'run'
  process = _driver(workdir, tmp_path / 'first.npz', STEPS)
  if signum == signal.SIGKILL:
    for line in process.stderr:  # past the first periodic checkpoint
      if f'step 220/{STEPS}' in line:
        break
  else:
    _wait_for_progress(process)
  process.send_signal(signum)
  err = process.stderr.read()
  process.wait(timeout=120)
  if signum == signal.SIGTERM:
    assert process.returncode == 0, err[-3000:]
    assert 'SIGTERM received: stopped at step' in err and 'Rerun' in err
    stopped = int(err.split('stopped at step ')[1].split('/')[0])
    assert 0 < stopped < STEPS
    assert tf.train.latest_checkpoint(str(workdir / 'checkpoints')).endswith(f'ckpt-{stopped}')
  else:
    assert process.returncode == -signal.SIGKILL
  rerun = _driver(workdir, tmp_path / 'rerun.npz', STEPS)
  _, err = rerun.communicate(timeout=240)
  assert rerun.returncode == 0, err[-3000:]
  assert 'Resumed from' in err
  _assert_equal(_saved(tmp_path / 'rerun.npz'), straight)


def test_ema_equals_its_closed_form(tmp_path):
  decay = 0.9
  initial = []

  def model_fn():
    model = tiny.model()
    model.build_variables()
    initial.append(_weights(model))
    return model

  raw = []
  for steps in (1, 2, 3):  # one step per call, so each step's raw weights are checkpointed
    result = trainer.train(
        model_fn,
        tiny.dataset,
        tiny.config(steps, checkpoint_every=1, ema_decay=decay),
        str(tmp_path),
    )
    fresh = tiny.model()
    checkpoints.restore_model(fresh, str(tmp_path / 'checkpoints'), ema=False)
    raw.append(_weights(fresh))
  assert result.ema
  # ema_t = d_t ema_{t-1} + (1 - d_t) w_t with d_t = min(d, (1 + t) / (10 + t)), ema_0 = w_0
  expected = initial[0]
  for t, weights in enumerate(raw, start=1):
    d = min(decay, (1 + t) / (10 + t))
    expected = [d * e + (1 - d) * w for e, w in zip(expected, weights)]
  _assert_equal(_weights(result.model), expected)
  fresh = tiny.model()
  checkpoints.restore_best(fresh, str(tmp_path))  # EMA by default
  _assert_equal(_weights(fresh), expected)


def test_workdir_without_ema_restores_and_resumes(tmp_path):
  trainer.train(tiny.model, tiny.dataset, tiny.config(5, ema_decay=0.0), str(tmp_path))
  raw = tiny.model()
  checkpoints.restore_best(raw, str(tmp_path))
  resumed = trainer.train(tiny.model, tiny.dataset, tiny.config(6, ema_decay=0.5), str(tmp_path))
  assert resumed.step == 6 and resumed.ema


def test_truncated_checkpoint_is_named_set_aside_and_the_previous_one_used(tmp_path, caplog):
  workdir = tmp_path / 'run'
  config = tiny.config(10, checkpoint_every=5)
  trainer.train(tiny.model, tiny.dataset, config, str(workdir))
  checkpoints = workdir / 'checkpoints'
  index = checkpoints / 'ckpt-10.index'
  index.write_bytes(index.read_bytes()[:20])
  (checkpoints / 'ckpt-15_temp').mkdir()  # left by a save killed midway
  with caplog.at_level('WARNING'):
    result = trainer.train(tiny.model, tiny.dataset, config, str(workdir))
  assert 'ckpt-10 is unreadable' in caplog.text and 'ckpt-10.index' in caplog.text
  assert (checkpoints / 'unreadable' / 'ckpt-10.index').stat().st_size == 20
  assert not (checkpoints / 'ckpt-15_temp').exists()
  assert result.step == 10
  _assert_equal(
      _weights(result.model),
      _weights(trainer.train(tiny.model, tiny.dataset, config, str(tmp_path / 'straight')).model),
  )


def test_unreadable_only_checkpoint_gives_a_clear_error(tmp_path):
  trainer.train(tiny.model, tiny.dataset, tiny.config(5, checkpoint_every=5), str(tmp_path))
  data = tmp_path / 'checkpoints' / 'ckpt-5.data-00000-of-00001'
  data.write_bytes(data.read_bytes()[:100])
  with pytest.raises(errors.UserError, match='ckpt-5.data-00000-of-00001.*backup'):
    checkpoints.restore_best(tiny.model(), str(tmp_path))


def test_tpu_without_a_tpu_fails_fast_with_the_fix():
  with pytest.raises(errors.UserError, match='tpu_address'):
    strategy_lib.get_strategy('tpu')


def _tiny_pixelcnn():
  return pixelcnn.PixelCNN(
      (8, 8, 1), likelihood='logistic', nr_resnet=1, nr_filters=8, nr_logistic_mix=2, dropout=0.1
  )


def _images():
  images = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8, 1)).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(images).repeat()


@pytest.mark.parametrize(
    'model_fn, dataset_fn', [(tiny.model, tiny.dataset), (_tiny_pixelcnn, _images)]
)
def test_mixed_bfloat16_trains_on_cpu(tmp_path, model_fn, dataset_fn):
  config = tiny.config(3, batch_size=8, precision='mixed_bfloat16')
  result = trainer.train(model_fn, dataset_fn, config, str(tmp_path))
  model = result.model
  assert model.dtype_policy.name == 'mixed_bfloat16'
  assert model.layers and {layer.compute_dtype for layer in model.layers} == {'bfloat16'}
  assert {v.dtype for v in model.trainable_variables} == {'float32'}  # master weights
  assert result.step == 3 and all(np.all(np.isfinite(w)) for w in _weights(model))
  assert tf.keras.mixed_precision.global_policy().name == 'float32'  # the process keeps its policy
  # The network computes in bfloat16: the same weights in a float32 model score the same
  # examples to within bfloat16 rounding (8 mantissa bits), but not exactly.
  twin = model_fn()
  twin.build_variables()
  twin.set_weights(model.get_weights())
  x = next(iter(dataset_fn().batch(8)))
  mixed, full = model.log_prob(x).numpy(), twin.log_prob(x).numpy()
  assert mixed.dtype == full.dtype == np.float32
  assert not np.allclose(mixed, full, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(mixed, full, rtol=0.05, atol=0.05 * np.mean(np.abs(full)))
  with pytest.raises(errors.UserError, match='float32, mixed_bfloat16'):
    trainer.train(tiny.model, tiny.dataset, tiny.config(3, precision='float16'), str(tmp_path))


def test_replica_step_with_ema_compiles_with_xla(tmp_path):
  # jit_compile=True compiles the whole replica step (loss, gradients, Adam and EMA updates)
  # with XLA: static shapes and no host-side Python, as TPUStrategy needs.
  result = trainer.train(tiny.model, tiny.dataset, tiny.config(3, jit_compile=True), str(tmp_path))
  assert result.step == 3 and result.ema
