import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.models import made
from tfsmooth.train import checkpoints
from tfsmooth.train import ema
from tfsmooth.train import scope
from tfsmooth.train import strategy as strategy_lib
from tfsmooth.train import trainer

POINTS = np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32)


def _dataset():
  return tf.data.Dataset.from_tensor_slices(POINTS).shuffle(512, seed=0).repeat()


def _config(steps, **overrides):
  return ml_collections.ConfigDict(
      dict(
          steps=steps,
          batch_size=64,
          learning_rate=3e-3,
          seed=0,
          log_every=5,
          checkpoint_every=5,
          jit_compile=False,
          **overrides,
      )
  )


def _smoothed():
  return smoothing.SmoothedModel(
      made.MADE(2, (16,), 2),
      made.MADE(2, (16,), 2, conditional=True),
      kernels.SmoothingKernel('gaussian', 0.3),
  )


def _weights(model):
  return [v.numpy() for v in model.trainable_variables]


def test_resumed_run_continues_where_it_stopped(tmp_path, monkeypatch):
  def perturbed():  # a different initialisation: the rerun must take the checkpoint's weights
    model = _smoothed()
    model.build_variables()
    for v in model.trainable_variables:
      v.assign(v + 1.0)
    return model

  tf.keras.utils.set_random_seed(3)
  straight = trainer.train(_smoothed, _dataset, _config(20), str(tmp_path / 'straight'))
  monkeypatch.chdir(tmp_path)  # a relative workdir, as in the README's commands
  tf.keras.utils.set_random_seed(3)
  first = trainer.train(_smoothed, _dataset, _config(10), 'resumed')
  assert first.step == 10
  resumed = trainer.train(perturbed, _dataset, _config(20), 'resumed')
  assert resumed.step == 20
  for a, b in zip(_weights(straight.model), _weights(resumed.model)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert sorted(os.listdir(tmp_path / 'resumed' / 'checkpoints'))[-1].startswith('ckpt-20')
  # Evaluation restores the weights alone, into a freshly built model.
  fresh = _smoothed()
  checkpoints.restore_model(fresh, str(tmp_path / 'resumed' / 'checkpoints'))
  for a, b in zip(_weights(resumed.model), _weights(fresh)):
    np.testing.assert_array_equal(a, b)


def test_steps_per_loop_changes_only_the_round_trips(tmp_path):
  runs = {}
  for steps_per_loop in (1, 7):  # 7 does not divide the log / checkpoint cadence of 5
    tf.keras.utils.set_random_seed(3)
    runs[steps_per_loop] = trainer.train(
        _smoothed,
        _dataset,
        _config(20, steps_per_loop=steps_per_loop, keep_checkpoints=10),
        str(tmp_path / str(steps_per_loop)),
    )
  for a, b in zip(_weights(runs[1].model), _weights(runs[7].model)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  saved = [
      tf.train.get_checkpoint_state(
          str(tmp_path / str(n) / 'checkpoints')
      ).all_model_checkpoint_paths
      for n in (1, 7)
  ]
  assert (
      [os.path.basename(p) for p in saved[0]]
      == [os.path.basename(p) for p in saved[1]]
      == [f'ckpt-{step}' for step in (5, 10, 15, 20)]
  )


def test_restore_without_checkpoint_names_the_fix(tmp_path):
  with pytest.raises(FileNotFoundError, match='No checkpoint in .*train first'):
    checkpoints.restore_model(_smoothed(), str(tmp_path))


def test_mirrored_step_equals_single_device_step(tmp_path):
  def baseline():
    return made.MADE(2, (16,), 2)

  results = []
  for name in ('default', 'mirrored'):
    tf.keras.utils.set_random_seed(7)
    strategy = strategy_lib.get_strategy(name)
    result = trainer.train(baseline, _dataset, _config(3), str(tmp_path / name), strategy)
    results.append(_weights(result.model))
  assert strategy.num_replicas_in_sync == 2
  for a, b in zip(*results):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _saved_weights(prefix):
  """The model weights a checkpoint file holds, in `model.variables` order (the trainer saves
  them as weights/<position>/<path>), read from the file alone."""
  reader = tf.train.load_checkpoint(prefix)
  names = sorted(n for n, _ in tf.train.list_variables(prefix) if n.startswith('weights/'))
  return [reader.get_tensor(n) for n in names]


def test_best_checkpoint_is_selected_on_validation(tmp_path):
  scores = iter([3.0, 1.0, 2.0])
  seen = {}

  def eval_fn(model):
    score = next(scores)
    seen[score] = [v.numpy() for v in model.variables]
    return {'validation': score}

  result = trainer.train(
      _smoothed,
      _dataset,
      _config(15, eval_every=5, keep_checkpoints=5),
      str(tmp_path),
      eval_fn=eval_fn,
  )
  assert result.best_step == 10 and result.best_metric == 1.0
  assert result.step == 15
  # The returned model holds the weights of step 10 (those scored 1.0), not the last ones: as
  # the evaluation saw them, and as the ordinary step-10 and step-15 checkpoints hold them.
  final = [v.numpy() for v in result.model.variables]
  at_10 = _saved_weights(str(tmp_path / 'checkpoints' / 'ckpt-10'))
  at_15 = _saved_weights(str(tmp_path / 'checkpoints' / 'ckpt-15'))
  assert len(final) == len(at_10) == len(at_15) == len(seen[1.0])
  for restored, saved, evaluated in zip(final, at_10, seen[1.0]):
    np.testing.assert_array_equal(restored, saved)
    np.testing.assert_array_equal(restored, evaluated)
  for restored, saved in zip(final, _saved_weights(str(tmp_path / 'best' / 'ckpt-10'))):
    np.testing.assert_array_equal(restored, saved)
  assert not all(np.array_equal(a, b) for a, b in zip(final, at_15))
  for last, evaluated in zip(at_15, seen[2.0]):
    np.testing.assert_array_equal(last, evaluated)


def test_nan_loss_stops_with_a_clear_error(tmp_path):
  data = lambda: tf.data.Dataset.from_tensors(tf.fill([2], np.nan)).repeat()  # noqa: E731
  with pytest.raises(FloatingPointError, match='learning_rate'):
    trainer.train(lambda: made.MADE(2, (8,), 2), data, _config(3), str(tmp_path))


def _learning_rate_at(optimizer, step):
  """The rate the optimizer applies at update number `step` (Keras evaluates its schedule at
  `optimizer.iterations`)."""
  optimizer.iterations.assign(step)
  return float(optimizer.learning_rate)


def test_final_lr_fraction_follows_the_run_length():
  for steps in (100, 400):
    optimizer = trainer.make_optimizer(_config(steps, final_lr_fraction=0.05))
    assert _learning_rate_at(optimizer, 0) == pytest.approx(3e-3)
    assert _learning_rate_at(optimizer, steps // 2) == pytest.approx(3e-3 * 0.05**0.5, rel=1e-4)
    assert _learning_rate_at(optimizer, steps) == pytest.approx(3e-3 * 0.05, rel=1e-4)
  constant = trainer.make_optimizer(_config(100))
  assert _learning_rate_at(constant, 0) == _learning_rate_at(constant, 100) == pytest.approx(3e-3)
  with pytest.raises(ValueError, match='not both'):
    trainer.make_optimizer(_config(10, final_lr_fraction=0.05, lr_decay=0.99))


def test_unknown_strategy_lists_the_choices():
  with pytest.raises(ValueError, match='default, mirrored, multi_worker, tpu'):
    strategy_lib.get_strategy('gpu')


def test_train_step_alone_is_one_clipped_adam_step_then_the_ema_update():
  # The step on a pair (its seed draws the smoothing noise), against Keras' Adam written out
  # by hand from the same gradients, global-norm clipping included, and the EMA's closed form.
  tf.keras.utils.set_random_seed(0)
  model = _smoothed()
  model.build_variables()
  config = _config(10, grad_clip_norm=0.5)
  optimizer = trainer.make_optimizer(config)
  optimizer.build(model.trainable_variables)
  averages = ema.EMA(model.trainable_variables, 0.9)
  batch = tf.constant(POINTS[:32])
  lr, b1, b2, eps = 3e-3, optimizer.beta_1, optimizer.beta_2, optimizer.epsilon
  w = [x.astype(np.float64) for x in _weights(model)]
  m, v = [np.zeros_like(x) for x in w], [np.zeros_like(x) for x in w]
  expected_ema = w
  for t, seed in enumerate(([1, 2], [3, 4]), start=1):
    seed = tf.constant(seed, tf.int32)
    with tf.GradientTape() as tape:
      expected_loss = tf.reduce_mean(model(batch, seed=seed, training=True))
    g = [
        x.numpy().astype(np.float64)
        for x in tape.gradient(expected_loss, model.trainable_variables)
    ]
    loss = trainer.train_step(model, optimizer, averages, batch, seed)
    np.testing.assert_allclose(loss.numpy(), expected_loss.numpy(), rtol=1e-6)
    norm = np.sqrt(sum(np.sum(x**2) for x in g))
    assert norm > 0.5  # the clipping bites
    g = [x * 0.5 / norm for x in g]
    m = [b1 * a + (1 - b1) * x for a, x in zip(m, g)]
    v = [b2 * a + (1 - b2) * x**2 for a, x in zip(v, g)]
    alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
    w = [x - alpha * a / (np.sqrt(b) + eps) for x, a, b in zip(w, m, v)]
    d = min(0.9, (1 + t) / (10 + t))
    expected_ema = [d * e + (1 - d) * x for e, x in zip(expected_ema, w)]
    for got, want in zip(_weights(model), w):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(averages.averages, expected_ema):
      np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
  assert int(optimizer.iterations) == 2


def test_a_model_built_in_model_scope_trains_as_one_the_trainer_builds(tmp_path):
  config = _config(3, precision='mixed_bfloat16', ema_decay=0.5)
  tf.keras.utils.set_random_seed(4)
  built_by_trainer = trainer.train(
      lambda: made.MADE(2, (16,), 2), _dataset, config, str(tmp_path / 'a')
  )
  tf.keras.utils.set_random_seed(4)
  with scope.model_scope(config):
    model = made.MADE(2, (16,), 2)
    model.build_variables()
  assert tf.keras.mixed_precision.global_policy().name == 'float32'  # restored
  built_before = trainer.train(lambda: model, _dataset, config, str(tmp_path / 'b'))
  assert built_before.model is model and model.dtype_policy.name == 'mixed_bfloat16'
  for a, b in zip(_weights(built_by_trainer.model), _weights(model)):
    np.testing.assert_array_equal(a, b)
  # Built outside the block: another precision, or variables outside the strategy.
  plain = made.MADE(2, (16,), 2)
  plain.build_variables()
  with pytest.raises(ValueError, match='model_scope.*policy float32 where train.precision is mix'):
    trainer.train(lambda: plain, _dataset, config, str(tmp_path / 'c'))
  mirrored = strategy_lib.get_strategy('mirrored')
  with pytest.raises(ValueError, match='variables hidden_0/kernel, .* outside the strategy'):
    trainer.train(lambda: plain, _dataset, _config(3), str(tmp_path / 'd'), mirrored)
