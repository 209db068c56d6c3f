"""The ELBO and IW bounds of 1-D smoothed models against the true log-density of the model.

Two models whose log p(x) = log int p(x~) p(x | x~) dx~ is known another way:
  * a handmade pair, p(x~) = 0.5 N(-0.3, 0.08^2) + 0.5 N(0.3, 0.08^2) and
    p(x | x~) = N(x~, 0.06^2), whose marginal is exactly `two_gaussians_1d`
    (0.5 N(-0.3, 0.1^2) + 0.5 N(0.3, 0.1^2), as 0.08^2 + 0.06^2 = 0.1^2): log p(x) in closed form;
  * a seeded, untrained MADE pair: log p(x) by trapezoid quadrature over x~ on a wide grid.
Neither posterior p(x~ | x) is the Gaussian q(x~ | x), so both bounds are strict.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.data import synthetic
from tfsmooth.models import base
from tfsmooth.models import made

tfd = tfp.distributions

NUM_POINTS = 400
SIGMA = 0.1


class _Mixture1D(base.DensityModel):
  """p(x~) = equal mixture of N(mean_k, scale^2) over R^1."""

  def __init__(self, means, scale):
    super().__init__((1,))
    self.means, self.scale = means, scale

  def distribution(self, conditioning=None):
    del conditioning
    components = tfd.Normal(tf.constant(self.means, tf.float32)[:, None], self.scale)
    return tfd.MixtureSameFamily(
        tfd.Categorical(logits=tf.zeros(len(self.means))), tfd.Independent(components, 1)
    )


class _Shift1D(base.DensityModel):
  """p(x | x~) = N(x; x~, scale^2)."""

  def __init__(self, scale):
    super().__init__((1,), conditional=True)
    self.scale = scale

  def distribution(self, conditioning=None):
    return tfd.Independent(tfd.Normal(conditioning, self.scale), 1)


def _closed_form_pair():
  return smoothing.SmoothedModel(
      _Mixture1D([-0.3, 0.3], 0.08), _Shift1D(0.06), kernels.SmoothingKernel('gaussian', SIGMA)
  )


def _made_pair():
  keras.utils.set_random_seed(3)
  return smoothing.SmoothedModel(
      made.MADE(1, (16,), 3),
      made.MADE(1, (16,), 3, conditional=True, ordering_seed=1),
      kernels.SmoothingKernel('gaussian', 0.3),
  )


def _quadrature_log_prob(model, x, low=-15.0, high=15.0, num=6001):
  """log int p(x~) p(x | x~) dx~ per point of x [N, 1], trapezoid rule on a fixed grid."""
  grid = np.linspace(low, high, num).astype(np.float32)[:, None]
  log_weights = np.log(np.full(num, grid[1, 0] - grid[0, 0], np.float64))
  log_weights[[0, -1]] -= np.log(2.0)
  log_prior = model.prior.log_prob(grid).numpy().astype(np.float64)
  conditional = tf.function(
      lambda point: model.conditional_model.log_prob(tf.broadcast_to(point, grid.shape), grid)
  )
  out = []
  for point in x:
    joint = log_prior + conditional(point).numpy().astype(np.float64) + log_weights
    top = joint.max()
    out.append(top + np.log(np.sum(np.exp(joint - top))))
  return np.array(out)


@pytest.fixture(scope='module')
def points():
  return synthetic.get_dataset('two_gaussians_1d').sample(NUM_POINTS, seed=0).astype(np.float32)


@pytest.fixture(scope='module')
def row_seeds():
  return tf.constant(np.stack([np.full(NUM_POINTS, 17), np.arange(NUM_POINTS)], 1), tf.int32)


def test_quadrature_recovers_the_closed_form_marginal(points):
  # The quadrature used below for the MADE pair, checked where the answer is known.
  truth = synthetic.get_dataset('two_gaussians_1d').log_prob(points)
  quadrature = _quadrature_log_prob(_closed_form_pair(), points[:50], low=-2.0, high=2.0)
  np.testing.assert_allclose(quadrature, truth[:50], atol=1e-4)


def _bounds_by_k(model, points, row_seeds, ks=(1, 10, 100)):
  out = {}
  for k in ks:
    likelihood = tf.function(lambda x, s, k=k: model.likelihood(x, s, k))(points, row_seeds)
    out[k] = (likelihood.elbo.numpy(), likelihood.log_prob.numpy())
  return out


@pytest.mark.parametrize('pair', ['closed_form', 'made'])
def test_elbo_below_iw_bound_below_the_true_log_density_and_iw_tightens_with_k(
    pair, points, row_seeds
):
  if pair == 'closed_form':
    model = _closed_form_pair()
    truth = synthetic.get_dataset('two_gaussians_1d').log_prob(points)
  else:
    model = _made_pair()
    truth = _quadrature_log_prob(model, points)
  bounds = _bounds_by_k(model, points, row_seeds)
  log_p = np.mean(truth)
  elbo = {k: np.mean(e) for k, (e, _) in bounds.items()}
  iw = {k: np.mean(b) for k, (_, b) in bounds.items()}
  # One draw: the two bounds are the same number.
  np.testing.assert_allclose(bounds[1][0], bounds[1][1], rtol=1e-6)
  # ELBO <= IW_K <= log p(x), on the mean over points. Each is a Monte Carlo estimate and the
  # IW bound holds in expectation, so its mean may exceed log p only by a few standard errors
  # (of the per-point difference, which cancels the spread of log p over the points).
  for k in (10, 100):
    assert elbo[k] < iw[k] - 0.05
    excess = bounds[k][1] - truth
    assert np.mean(excess) <= 3 * np.std(excess) / np.sqrt(NUM_POINTS) + 1e-4
  assert elbo[100] < log_p - 0.3
  # The IW bound tightens as K grows (fixed per-row seeds); the ELBO only moves by MC noise.
  assert iw[1] < iw[10] - 0.02 and iw[10] < iw[100] - 0.02
  assert max(elbo.values()) - min(elbo.values()) < 0.05
  if pair == 'closed_form':
    # The ELBO keeps its gap (q is not p(x~ | x)); the IW bound reaches the truth at K = 100.
    assert log_p - elbo[100] > 1.0
    assert abs(log_p - iw[100]) < 0.01
