"""Row-seeded sampling (what the exported signatures serve): row i depends on seeds[i] alone."""

import numpy as np
import tensorflow as tf

from tfsmooth.models import base
from tfsmooth.models import made
from tfsmooth.models import pixelcnn

SEEDS = tf.constant([[3, 0], [3, 1], [4, 7]], tf.int32)


def _perturbed(model):
  model.build_variables()
  rng = np.random.default_rng(0)
  for v in model.trainable_variables:
    v.assign(v + 0.1 * rng.standard_normal(v.shape).astype(np.float32))
  return model


def test_made_rows_are_single_draws_of_their_own_seed():
  model = _perturbed(made.MADE(2, (8,), 2))
  rows = model.sample_rows(SEEDS).numpy()
  for i in range(3):
    np.testing.assert_allclose(rows[i], model.sample(1, SEEDS[i])[0].numpy(), rtol=1e-5)
  np.testing.assert_allclose(model.sample_rows(SEEDS[1:]).numpy(), rows[1:], rtol=1e-6)


def test_pixelcnn_batched_rows_equal_one_draw_per_seed():
  """PixelCNN's one-pass `sample_rows` / `complete_rows` equal the generic per-row definition
  (one `sample(1, seed)` / `complete` call per row)."""
  prior = _perturbed(
      pixelcnn.PixelCNN(
          (4, 4, 1),
          likelihood='logistic',
          nr_resnet=1,
          nr_filters=4,
          nr_logistic_mix=2,
          dropout=0.0,
      )
  )
  conditional = _perturbed(
      pixelcnn.PixelCNN(
          (4, 4, 1), conditional=True, nr_resnet=1, nr_filters=4, nr_logistic_mix=2, dropout=0.0
      )
  )
  x_tilde = prior.sample_rows(SEEDS)
  np.testing.assert_allclose(
      x_tilde.numpy(), base.DensityModel.sample_rows(prior, SEEDS).numpy(), rtol=1e-5, atol=1e-6
  )
  x = conditional.sample_rows(SEEDS, conditioning=x_tilde)
  np.testing.assert_array_equal(
      x.numpy(), base.DensityModel.sample_rows(conditional, SEEDS, conditioning=x_tilde).numpy()
  )
  filled = conditional.complete_rows(x, 2, SEEDS[::-1], conditioning=x_tilde)
  np.testing.assert_array_equal(filled.numpy()[:, :2], x.numpy()[:, :2])
  np.testing.assert_array_equal(
      filled.numpy(),
      base.DensityModel.complete_rows(conditional, x, 2, SEEDS[::-1], conditioning=x_tilde).numpy(),
  )


def test_pixelcnn_rows_complete_below_their_own_known_rows():
  """One batch with a different number of known rows per image (as TF Serving batches requests)
  equals each image completed alone, with both samplers."""
  model = _perturbed(
      pixelcnn.PixelCNN(
          (4, 4, 1),
          likelihood='logistic',
          nr_resnet=1,
          nr_filters=4,
          nr_logistic_mix=2,
          dropout=0.0,
      )
  )
  x = tf.random.stateless_uniform((3, 4, 4, 1), (0, 1), -1.0, 1.0)
  counts = tf.constant([3, 0, 1])
  for sampler in ('cached', 'naive'):
    model.sampler = sampler
    filled = model.complete_rows(x, counts, SEEDS).numpy()
    alone = base.DensityModel.complete_rows(model, x, counts, SEEDS).numpy()
    np.testing.assert_allclose(filled, alone, rtol=1e-5, atol=1e-6)
    for i, count in enumerate(counts.numpy()):
      np.testing.assert_array_equal(filled[i, :count], x.numpy()[i, :count])
      assert not np.allclose(filled[i, count:], x.numpy()[i, count:])
