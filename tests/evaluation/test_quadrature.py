"""The 1-D quadratures against closed forms: a linear-Gaussian pair's marginal, a Gaussian KL."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.evaluation import quadrature
from tfsmooth.models import base

tfd = tfp.distributions

# p(x~) = N(0, 1) and p(x | x~) = N(0.8 x~, 0.5^2), so p(x) = N(0, 0.8^2 + 0.5^2).
PRIOR_SCALE, SLOPE, NOISE_SCALE = 1.0, 0.8, 0.5
MARGINAL_SCALE = math.hypot(SLOPE * PRIOR_SCALE, NOISE_SCALE)


class _LinearGaussian(base.DensityModel):
  """p(x) = N(0, scale^2), or p(x | c) = N(slope c, scale^2), over R^1."""

  def __init__(self, scale, slope=None):
    super().__init__((1,), conditional=slope is not None)
    self.scale, self.slope = scale, slope

  def distribution(self, conditioning=None):
    loc = tf.zeros(self.event_shape) if conditioning is None else self.slope * conditioning
    return tfd.Independent(tfd.Normal(loc, self.scale), 1)


def _pair(sigma):
  return smoothing.SmoothedModel(
      _LinearGaussian(PRIOR_SCALE),
      _LinearGaussian(NOISE_SCALE, SLOPE),
      kernels.SmoothingKernel('gaussian', sigma),
  )


@pytest.mark.parametrize('sigma', [0.3, 0.6])
def test_log_prob_is_the_closed_form_marginal(sigma):
  x = np.linspace(-2.5, 2.5, 23, dtype=np.float32)[:, None]
  truth = tfd.Normal(0.0, MARGINAL_SCALE).log_prob(x[:, 0]).numpy()
  # chunk=5: the points go through in several calls, the last one short.
  computed = quadrature.log_prob(_pair(sigma), x, chunk=5)
  assert computed.shape == (23,) and computed.dtype == np.float64
  np.testing.assert_allclose(computed, truth, atol=1e-5)


def test_a_window_narrower_than_the_posterior_loses_mass():
  # The posterior p(x~ | x) has std 0.53; a window of +- 0.3 holds less than half of it.
  x = np.array([[0.0], [1.0]], np.float32)
  truth = tfd.Normal(0.0, MARGINAL_SCALE).log_prob(x[:, 0]).numpy()
  narrow = quadrature.log_prob(_pair(0.3), x, half_width=1.0)
  assert np.all(narrow < truth - 0.5)


def test_kl_divergence_of_two_gaussians():
  # KL(N(m1, s1^2) || N(m2, s2^2)) = log(s2 / s1) + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2.
  (m1, s1), (m2, s2) = (0.2, 0.5), (-0.1, 0.8)
  grid = np.linspace(-8.0, 8.0, 16001)
  p = np.exp(tfd.Normal(np.float64(m1), s1).log_prob(grid).numpy())
  q = np.exp(tfd.Normal(np.float64(m2), s2).log_prob(grid).numpy())
  closed = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
  assert quadrature.kl_divergence(p, q, grid) == pytest.approx(closed, abs=1e-6)
  assert quadrature.kl_divergence(p, p, grid) == 0.0
