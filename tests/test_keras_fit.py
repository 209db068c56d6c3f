"""Keras's shape (issue 23, item 5): `model.compile(optimizer=...)` then `model.fit(x)` trains
any tfsmooth model, a freshly constructed one included, with x an array or a tf.data.Dataset of
x without targets.

Checked another way than through fit's own history: the held-out loss of the trained weights
against the initial weights (as fit built them), both by the model's own training loss at
fixed seeds; the loss of every step against the training loss at the seed a fresh
keras.random.SeedGenerator(seed) gives; a fit-trained model's weights against a model built
by build_variables() (the same variables in the same order under the same paths, so that
checkpoints, which key weights by position and path, and exports, by position, take them).
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth import standardized
from tfsmooth.data import synthetic
from tfsmooth.models import made
from tfsmooth.models import pixelcnn
from tfsmooth.train import checkpoints

SHIFT, SCALE = [100.0, -50.0], [10.0, 0.5]


def _pair():
  return smoothing.SmoothedModel(
      made.MADE(2, (16,), 2),
      made.MADE(2, (16,), 2, conditional=True, ordering_seed=1),
      kernels.SmoothingKernel('gaussian', 0.3),
  )


def _made():
  return made.MADE(2, (16,), 2)


def _standardized():
  return standardized.wrap(made.MADE(2, (16,), 2), SHIFT, SCALE)


def _pixelcnn():
  return pixelcnn.PixelCNN((8, 8, 1), nr_resnet=1, nr_filters=4, nr_logistic_mix=2)


@pytest.fixture(scope='module')
def points():
  """(train, held_out) rings points, [512, 2] and [256, 2]."""
  x = synthetic.get_dataset('rings').sample(768, seed=0).astype(np.float32)
  return x[:512], x[512:]


def _images():
  """Eight 8-bit 8 x 8 grey images in [-1, 1]: vertical gradients plus noise."""
  rng = np.random.default_rng(0)
  levels = np.linspace(0, 255, 8)[None, :, None, None] + rng.normal(0, 20, (8, 8, 8, 1))
  return (np.round(np.clip(levels, 0, 255)) / 127.5 - 1.0).astype(np.float32)


def _own_loss(model, x, num_seeds=4):
  """The model's mean training loss over x, averaged over fixed noise seeds."""
  return float(
      np.mean(
          [tf.reduce_mean(model.training_loss(x, tf.constant([s, 7]))) for s in range(num_seeds)]
      )
  )


def _assign(model, values):
  for v, value in zip(model.variables, values):
    v.assign(value)


def _keys(model):
  """{checkpoint key: shape}, Keras's process-wide numbering of dropout seed generators
  ('seed_generator_17/...') read as one name: it differs between two models of one process
  whoever builds them."""
  return {
      re.sub(r'seed_generator_\d+/', 'seed_generator/', key): tuple(v.shape)
      for key, v in checkpoints.keyed_variables(model).items()
  }


def _fresh_and_initial(build, seed):
  """(a freshly constructed model, unbuilt; a model with the weights it will start from).

  Under the same Keras seed, the weights that a first call (inside fit) builds are those that
  build_variables() builds (test_a_model_that_fit_builds_starts_from_build_variables_weights).
  """
  keras.utils.set_random_seed(seed)
  initial = build()
  initial.build_variables()
  keras.utils.set_random_seed(seed)
  fresh = build()
  assert not fresh.built
  return fresh, initial


def test_a_model_that_fit_builds_starts_from_build_variables_weights(points):
  fresh, initial = _fresh_and_initial(_pair, 4)
  fresh.compile(optimizer=keras.optimizers.SGD(0.0))  # a step that leaves the weights
  fresh.fit(points[0], batch_size=128, epochs=1, verbose=0)
  # Built by fit: the variables build_variables() gives, by position and path, and values.
  assert _keys(fresh) == _keys(initial)
  for a, b in zip(fresh.variables, initial.variables, strict=True):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize('feed', ['array', 'dataset'])
def test_a_few_fit_epochs_lower_a_fresh_pairs_held_out_loss(feed, points):
  train, held_out = points
  pair, initial = _fresh_and_initial(_pair, 0)
  pair.compile(optimizer=keras.optimizers.Adam(1e-2), seed=0)
  if feed == 'array':
    history = pair.fit(train, batch_size=64, epochs=4, verbose=0)
  else:
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(512, seed=0).batch(64)
    history = pair.fit(dataset, epochs=4, verbose=0)
  assert np.all(np.isfinite(history.history['loss']))
  before, trained = _own_loss(initial, held_out), _own_loss(pair, held_out)
  # 32 Adam steps at 1e-2 take the untrained pair's loss well down (measured: 9.6 -> 5.3-5.4).
  assert trained < before - 2.0, (before, trained)


@pytest.mark.parametrize('build', [_made, _standardized, _pixelcnn], ids=lambda f: f.__name__[1:])
def test_fit_trains_a_fresh_plain_standardized_and_image_model(build, points):
  model, initial = _fresh_and_initial(build, 1)
  if build is _pixelcnn:
    x, batch_size, epochs = _images(), 4, 1
  else:
    x, batch_size, epochs = points[0], 64, 2
    if build is _standardized:
      x = x * SCALE + SHIFT  # the user's units
  model.compile(optimizer=keras.optimizers.Adam(1e-2))
  history = model.fit(x, batch_size=batch_size, epochs=epochs, verbose=0)
  assert np.all(np.isfinite(history.history['loss']))
  assert _keys(model) == _keys(initial)
  # -log p(x) in the data's units (dropout off outside fit): lower after training.
  before = float(-tf.reduce_mean(initial.log_prob(x)))
  trained = float(-tf.reduce_mean(model.log_prob(x)))
  # Measured: 4.52 -> 3.94 nats (MADE), 6.13 -> 5.55 (standardized: + log 5, the units), 358
  # -> 342 nats an image (PixelCNN++, two steps).
  assert trained < before - (5.0 if build is _pixelcnn else 0.3), (before, trained)


def test_fit_adds_no_variables_and_its_weights_restore_into_a_built_model(points, tmp_path):
  keras.utils.set_random_seed(2)
  built = _pair()
  built.build_variables()
  variables = list(built.variables)
  built.compile(optimizer=keras.optimizers.Adam(1e-2))
  built.fit(points[0], batch_size=128, epochs=1, verbose=0)
  assert [id(v) for v in built.variables] == [id(v) for v in variables]
  # A fresh model trained by fit writes a checkpoint that a model built the way runs and
  # evaluations build theirs (build_variables) restores, weight for weight.
  fresh = _pair()
  fresh.compile(optimizer=keras.optimizers.Adam(1e-2))
  fresh.fit(points[0], batch_size=128, epochs=1, verbose=0)
  prefix = checkpoints.model_checkpoint(fresh).write(str(tmp_path / 'weights'))
  restored = _pair()
  restored.build_variables()
  checkpoints.model_checkpoint(restored).read(prefix).assert_existing_objects_matched()
  for a, b in zip(fresh.variables, restored.variables, strict=True):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_two_fits_from_the_same_seed_give_the_same_weights(points):
  start = _pair()
  start.build_variables()
  weights = {}
  for run, seed in (('first', 3), ('again', 3), ('other seed', 4)):
    model = _pair()
    model.build_variables()
    _assign(model, [v.numpy() for v in start.variables])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), seed=seed)
    model.fit(points[0], batch_size=128, epochs=1, shuffle=False, verbose=0)
    weights[run] = [v.numpy() for v in model.variables]
  for a, b in zip(weights['first'], weights['again'], strict=True):
    np.testing.assert_array_equal(a, b)
  # The noise comes from compile's seed: another seed trains other weights.
  assert any(not np.array_equal(a, b) for a, b in zip(weights['first'], weights['other seed']))


def test_every_step_draws_the_next_seed_of_compiles_seed_generator(points):
  x = points[0][:64]
  pair = _pair()
  pair.build_variables()
  pair.compile(optimizer=keras.optimizers.SGD(0.0), seed=5)  # weights stay put
  history = pair.fit(x, batch_size=64, epochs=3, shuffle=False, verbose=0).history['loss']
  seeds = keras.random.SeedGenerator(5)
  expected = [
      float(tf.reduce_mean(pair.training_loss(x, tf.cast(seeds.next(), tf.int32))))
      for _ in range(3)
  ]
  np.testing.assert_allclose(history, expected, rtol=1e-5)
  assert len(set(np.round(history, 4))) == 3  # fresh noise every step


def test_compile_refuses_a_loss_in_one_paragraph():
  pair = _pair()
  with pytest.raises(errors.UserError) as raised:
    pair.compile(optimizer='adam', loss='mse')
  message = str(raised.value)
  assert '\n' not in message and 'takes no loss' in message and 'Drop loss=' in message
  pair.compile(optimizer='adam', loss=None)  # no loss is what it takes


@pytest.mark.skipif(
    any(d.device_type != 'CPU' for d in tf.config.list_physical_devices()),
    reason='an accelerator is present',
)
@pytest.mark.parametrize('build', [_pair, _pixelcnn], ids=['made_pair', 'pixelcnn'])
def test_compile_leaves_xla_off_on_a_cpu_only_host(build):
  model = build()
  model.compile(optimizer=keras.optimizers.Adam(1e-3))
  assert model.jit_compile is False  # XLA's CPU convolutions are slower here
  model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
  assert model.jit_compile is True  # an explicit choice stands
