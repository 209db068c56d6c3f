"""Row-seeded sampling (what the exported signatures serve): row i depends on seeds[i] alone."""

import numpy as np
import pytest
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


def _check_rows_independent_of_the_batch(draw, seeds, *conditioning):
  """draw(seeds, *conditioning) row i equals the row drawn alone, in a shuffled batch and in a
  larger batch: a row depends on its own seed (and conditioning) only."""
  rows = draw(seeds, *conditioning).numpy()
  n = len(rows)
  perm = np.array([2, 0, 1])
  shuffled = draw(tf.gather(seeds, perm), *(tf.gather(c, perm) for c in conditioning)).numpy()
  np.testing.assert_allclose(shuffled, rows[perm], rtol=1e-6, atol=1e-6)
  for i in range(n):
    alone = draw(seeds[i : i + 1], *(c[i : i + 1] for c in conditioning)).numpy()
    np.testing.assert_allclose(alone[0], rows[i], rtol=1e-6, atol=1e-6)
  extra = tf.constant([[9, 9], [5, 1], [0, 0]], tf.int32)
  larger = draw(
      tf.concat([extra, seeds], 0), *(tf.concat([c[::-1], c], 0) for c in conditioning)
  ).numpy()
  np.testing.assert_allclose(larger[len(extra) :], rows, rtol=1e-6, atol=1e-6)
  assert len({tuple(r) for r in np.round(rows, 5)}) == n  # distinct seeds, distinct rows


def test_made_rows_do_not_depend_on_the_rest_of_the_batch():
  model = _perturbed(made.MADE(2, (8,), 2))
  _check_rows_independent_of_the_batch(model.sample_rows, SEEDS)
  conditional = _perturbed(made.MADE(2, (8,), 2, conditional=True))
  c = tf.constant([[0.5, -1.0], [0.0, 0.0], [2.0, 1.0]])
  _check_rows_independent_of_the_batch(
      lambda s, c: conditional.sample_rows(s, conditioning=c), SEEDS, c
  )


def _many_seeds(n, base=11):
  return tf.constant(np.stack([np.full(n, base), np.arange(n)], 1), tf.int32)


def _ks_distance(samples, grid, log_density):
  """sup |F_empirical - F| with F the CDF of exp(log_density) on `grid` (cumulative trapezoid,
  normalised by its total, which is itself checked to be ~1)."""
  density = np.exp(log_density.astype(np.float64))
  cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
  assert cdf[-1] == pytest.approx(1.0, abs=1e-3)
  samples = np.sort(samples)
  model_cdf = np.interp(samples, grid, cdf / cdf[-1])
  n = len(samples)
  return max(np.max(np.arange(1, n + 1) / n - model_cdf), np.max(model_cdf - np.arange(n) / n))


# Kolmogorov-Smirnov: P(sqrt(n) D > 1.95) ~ 0.001 for n draws from the model's own CDF.
NUM_DRAWS = 2000
KS_LIMIT = 1.95 / np.sqrt(NUM_DRAWS)


def test_made_rows_follow_the_model_density_by_quadrature():
  """1-D MADE: the empirical CDF of sample_rows matches the CDF of exp(log_prob) integrated on
  a grid (sampling and scoring share no code beyond the network's mixture parameters)."""
  model = _perturbed(made.MADE(1, (8,), 3))
  draws = tf.function(model.sample_rows)(_many_seeds(NUM_DRAWS)).numpy()[:, 0]
  grid = np.linspace(-40.0, 40.0, 80_001)
  log_density = model.log_prob(grid[:, None].astype(np.float32)).numpy()
  assert _ks_distance(draws, grid, log_density) < KS_LIMIT
  # The check has power: the same draws against a slightly shifted density fail it.
  assert _ks_distance(draws + 0.3, grid, log_density) > KS_LIMIT


def test_conditional_made_rows_follow_their_conditional_density():
  model = _perturbed(made.MADE(1, (8,), 3, conditional=True))
  c = tf.fill([NUM_DRAWS, 1], 0.7)
  draws = tf.function(lambda s, c: model.sample_rows(s, conditioning=c))(
      _many_seeds(NUM_DRAWS, base=12), c
  ).numpy()[:, 0]
  grid = np.linspace(-40.0, 40.0, 80_001)
  points = grid[:, None].astype(np.float32)
  log_density = model.log_prob(points, np.full_like(points, 0.7)).numpy()
  assert _ks_distance(draws, grid, log_density) < KS_LIMIT
  other = model.log_prob(points, np.full_like(points, -1.5)).numpy()
  assert _ks_distance(draws, grid, other) > KS_LIMIT  # the conditioning matters


def test_2d_made_rows_follow_the_joint_density_by_quadrature():
  """The second dimension is drawn given the first: quadrant probabilities P(x1 < a, x2 < b) of
  the draws match the 2-D integral of exp(log_prob) within binomial error."""
  model = _perturbed(made.MADE(2, (8,), 2, loc_init_range=1.0))
  draws = tf.function(model.sample_rows)(_many_seeds(NUM_DRAWS, base=13)).numpy()
  axis = np.linspace(-25.0, 25.0, 1001)
  grid = np.stack(np.meshgrid(axis, axis, indexing='ij'), -1).reshape(-1, 2)
  density = np.exp(model.log_prob(grid.astype(np.float32)).numpy()).reshape(1001, 1001)
  cell = (axis[1] - axis[0]) ** 2
  for a, b in [(0.0, 0.0), (-0.5, 1.0), (1.0, -0.5), (np.median(draws[:, 0]), 0.3)]:
    expected = np.sum(density[axis < a][:, axis < b]) * cell
    observed = np.mean((draws[:, 0] < a) & (draws[:, 1] < b))
    se = np.sqrt(expected * (1 - expected) / NUM_DRAWS)
    assert abs(observed - expected) < 4 * se + 5e-3, (a, b, observed, expected)


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
