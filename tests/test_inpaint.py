"""PixelCNN.complete and SmoothedModel.inpaint: known rows kept, the rest sampled from them."""

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import kernels
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth.models import pixelcnn

SHAPE = (4, 8, 1)
TINY = dict(nr_resnet=1, nr_filters=8, nr_logistic_mix=2, dropout=0.0)


def _images(seed, n=3):
  """8-bit images in [-1, 1]."""
  k = tf.random.stateless_uniform((n,) + SHAPE, [seed, 0], 0, 256, tf.int32)
  return tf.cast(k, tf.float32) / 127.5 - 1.0


@pytest.fixture(scope='module')
def smoothed():
  model = smoothing.SmoothedModel(
      pixelcnn.PixelCNN(SHAPE, likelihood='logistic', **TINY),
      pixelcnn.PixelCNN(SHAPE, conditional=True, **TINY),
      kernels.SmoothingKernel('gaussian', 0.5, event_ndims=3),
  )
  model.build_variables()
  return model


def test_complete_keeps_known_rows_and_depends_on_seed_and_known_rows():
  model = pixelcnn.PixelCNN(SHAPE, **TINY)
  model.build_variables()
  x = _images(1)
  a = model.complete(x, 2, seed=[0, 1]).numpy()
  np.testing.assert_array_equal(a[:, :2], x.numpy()[:, :2])
  assert not np.array_equal(a[:, 2:], model.complete(x, 2, seed=[0, 2]).numpy()[:, 2:])
  np.testing.assert_array_equal(a, model.complete(x, 2, seed=[0, 1]).numpy())
  other = tf.concat([_images(2)[:, :2], x[:, 2:]], axis=1)
  assert not np.array_equal(a[:, 2:], model.complete(other, 2, seed=[0, 1]).numpy()[:, 2:])
  # On the 8-bit grid, and the unknown rows of x_known are ignored.
  np.testing.assert_allclose(np.round((a + 1) * 127.5), (a + 1) * 127.5, atol=1e-4)
  garbage = tf.concat([x[:, :2], _images(3)[:, 2:]], axis=1)
  np.testing.assert_array_equal(a, model.complete(garbage, 2, seed=[0, 1]).numpy())


def test_complete_with_no_known_rows_is_sampling_and_rejects_bad_rows():
  model = pixelcnn.PixelCNN(SHAPE, **TINY)
  model.build_variables()
  # Nothing known: the same draw as sampling from the same seed, whatever x_known holds.
  sampled = model.sample(3, seed=[0, 1]).numpy()
  for x_known in (_images(1), _images(2)):
    np.testing.assert_array_equal(model.complete(x_known, 0, seed=[0, 1]).numpy(), sampled)
  # Everything known: x_known itself.
  full = model.complete(_images(1, n=2), SHAPE[0], seed=[0, 1])
  np.testing.assert_array_equal(full.numpy(), _images(1, n=2).numpy())
  with pytest.raises(ValueError, match='num_known_rows'):
    model.complete(_images(1), SHAPE[0] + 1, seed=[0, 1])


def _rows(base, count, stream='inpaint'):
  return seeds.rows(base, stream, 0, count)


def test_inpaint_keeps_known_rows_and_uses_them(smoothed):
  x = _images(4)
  rows, other_rows = _rows(3, 3), _rows(3, 3, 'samples')
  a = smoothed.inpaint(x, [2] * 3, rows).numpy()
  np.testing.assert_array_equal(a[:, :2], x.numpy()[:, :2])
  np.testing.assert_array_equal(a, smoothed.inpaint(x, [2] * 3, rows).numpy())
  assert not np.array_equal(a[:, 2:], smoothed.inpaint(x, [2] * 3, other_rows).numpy()[:, 2:])
  other = tf.concat([_images(5)[:, :2], x[:, 2:]], axis=1)
  assert not np.array_equal(a[:, 2:], smoothed.inpaint(other, [2] * 3, rows).numpy()[:, 2:])


def test_inpaint_is_the_same_under_tf_function(smoothed):
  x = _images(6, n=2)
  eager = smoothed.inpaint(x, [1, 1], _rows(7, 2)).numpy()
  graph = tf.function(smoothed.inpaint)(x, tf.constant([1, 1]), _rows(7, 2)).numpy()
  np.testing.assert_allclose(eager, graph, atol=1e-6)
