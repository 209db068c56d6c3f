import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import kernels
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth.data import synthetic
from tfsmooth.evaluation import likelihood
from tfsmooth.models import base
from tfsmooth.models import made

tfd = tfp.distributions


class LinearGaussian(base.DensityModel):
  """p(x~) = N(0, s^2 I), or p(x | c) = N(a c, s^2 I): every marginal is known in closed form."""

  def __init__(self, scale, slope=None, dim=2):
    super().__init__((dim,), conditional=slope is not None)
    self.scale, self.slope = scale, slope

  def distribution(self, conditioning=None):
    loc = 0.0 if conditioning is None else self.slope * conditioning
    return tfd.Independent(tfd.Normal(loc + tf.zeros(self.event_shape), self.scale), 1)


# p(x) = int N(x~; 0, 1) N(x; 0.8 x~, 0.5^2) dx~ = N(x; 0, 0.8^2 + 0.5^2).
PRIOR_SCALE, SLOPE, NOISE_SCALE = 1.0, 0.8, 0.5
MARGINAL_SCALE = math.sqrt((SLOPE * PRIOR_SCALE) ** 2 + NOISE_SCALE**2)


def _linear_gaussian_model(sigma=0.6):
  return smoothing.SmoothedModel(
      LinearGaussian(PRIOR_SCALE),
      LinearGaussian(NOISE_SCALE, SLOPE),
      kernels.SmoothingKernel('gaussian', sigma),
  )


def test_elbo_below_iw_bound_below_exact_log_likelihood():
  model = _linear_gaussian_model()
  x = tf.constant(np.random.default_rng(0).normal(size=(2000, 2)) * MARGINAL_SCALE, tf.float32)
  exact = np.mean(tfd.Independent(tfd.Normal(tf.zeros(2), MARGINAL_SCALE), 1).log_prob(x))
  rows = seeds.rows(5, 'test', 0, len(x))
  elbo, iw_2 = (b.numpy() for b in model.likelihood(x, rows, 2)[1::-1])
  iw_2000 = model.likelihood(x, rows, 2000).log_prob.numpy()
  assert np.all(elbo <= iw_2 + 1e-5)  # Jensen, draw by draw
  assert np.mean(elbo) < np.mean(iw_2) - 0.02 < np.mean(iw_2000) - 0.04
  # The IW bound converges to log p(x) from below; the ELBO keeps a gap (q is not the posterior).
  assert -0.003 < exact - np.mean(iw_2000) < 0.003
  assert exact - np.mean(elbo) > 0.04


def test_elbo_matches_closed_form():
  model = _linear_gaussian_model(sigma=0.6)
  x = tf.constant([[0.3, -1.2]])
  # E_q log p(x~) + E_q log p(x|x~) - E_q log q, q = N(x, 0.6^2 I), per dimension.
  s2 = 0.36
  e_prior = -0.5 * np.log(2 * np.pi) - 0.5 * (x.numpy() ** 2 + s2)
  e_cond = (
      -0.5 * np.log(2 * np.pi * NOISE_SCALE**2)
      - 0.5 * ((x.numpy() - SLOPE * x.numpy()) ** 2 + SLOPE**2 * s2) / NOISE_SCALE**2
  )
  entropy = 0.5 * np.log(2 * np.pi * np.e * s2)
  expected = np.sum(e_prior + e_cond + entropy)
  elbo = model.likelihood(x, tf.constant([[1, 1]]), 200_000).elbo
  assert float(elbo[0]) == pytest.approx(expected, abs=0.01)


def test_single_step_denoising_is_tweedie_on_a_gaussian():
  # With data N(0, t^2 I) and Gaussian q, p(x~) = N(0, (t^2 + sigma^2) I) and
  # E[x | x~] = x~ t^2 / (t^2 + sigma^2) = x~ + sigma^2 grad log p(x~).
  t, sigma = 0.7, 0.5
  model = smoothing.SmoothedModel(
      LinearGaussian(math.sqrt(t**2 + sigma**2)),
      LinearGaussian(1.0, 1.0),
      kernels.SmoothingKernel('gaussian', sigma),
  )
  x_tilde = tf.constant(np.random.default_rng(1).normal(size=(50, 2)), tf.float32)
  expected = x_tilde * t**2 / (t**2 + sigma**2)
  np.testing.assert_allclose(model.denoise_single_step(x_tilde), expected, rtol=1e-5, atol=1e-6)


def test_single_step_uses_the_full_gradient_through_made():
  keras.utils.set_random_seed(0)
  prior = made.MADE(2, hidden_sizes=(16,), num_mixtures=2)
  x = np.array([[0.4, -0.3]], np.float32)
  eps = 1e-2
  numeric = [
      (prior.log_prob(x + eps * e) - prior.log_prob(x - eps * e)).numpy()[0] / (2 * eps)
      for e in np.eye(2, dtype=np.float32)
  ]
  np.testing.assert_allclose(
      smoothing.score(prior, tf.constant(x))[0], numeric, rtol=2e-2, atol=1e-3
  )
  # x_1 also moves the conditional of x_2, so the score's first entry is not the own term
  # d/dx_1 log p(x_1) alone (which a gradient of the first dimension's factor would give). The
  # marginal p(x_1) = int p(x_1, x_2) dx_2 by quadrature over x_2, from log_prob alone.
  grid = np.linspace(-30.0, 30.0, 6001, dtype=np.float32)

  def log_marginal(x1):
    points = np.stack([np.full_like(grid, x1), grid], 1)
    return np.log(np.trapezoid(np.exp(prior.log_prob(points).numpy().astype(np.float64)), grid))

  own = (log_marginal(x[0, 0] + eps) - log_marginal(x[0, 0] - eps)) / (2 * eps)
  assert abs(own - numeric[0]) > 1e-2


def test_single_step_needs_a_gaussian_kernel():
  model = smoothing.SmoothedModel(
      LinearGaussian(1.0), LinearGaussian(1.0, 1.0), kernels.SmoothingKernel('laplace', 0.3)
  )
  with pytest.raises(ValueError, match='Gaussian smoothing'):
    model.denoise_single_step(tf.zeros([1, 2]))


def test_samplers_are_seeded_and_have_the_right_shapes():
  model = smoothing.SmoothedModel(
      made.MADE(2, (8,), 2),
      made.MADE(2, (8,), 2, conditional=True),
      kernels.SmoothingKernel('gaussian', 0.3),
  )
  rows = seeds.rows(7, 'samples', 0, 5)
  drawn = model.draw(rows)
  assert set(drawn) == {'smoothed', 'single_step', 'two_step'}
  assert all(x.shape == (5, 2) for x in drawn.values())
  np.testing.assert_array_equal(drawn['two_step'], model.draw(rows)['two_step'])
  noisy = tf.constant(np.ones((4, 2), np.float32))
  denoised = model.denoise(noisy, rows[:4])
  assert denoised['two_step'].shape == denoised['single_step'].shape == (4, 2)


def test_mismatched_stages_are_rejected():
  with pytest.raises(ValueError, match='unconditional prior'):
    smoothing.SmoothedModel(
        LinearGaussian(1.0, 1.0), LinearGaussian(1.0, 1.0), kernels.SmoothingKernel('gaussian', 0.3)
    )


@pytest.mark.parametrize('prior_scale_error', [1.0, 1.3])
def test_decompose_finds_no_excess_in_the_true_pair_and_blames_the_wrong_stage(prior_scale_error):
  # Data N(0, s^2), q = N(x, sigma^2), t^2 = s^2 + sigma^2: p(x~) = N(0, t^2) and
  # p(x | x~) = N(x~ s^2 / t^2, s^2 sigma^2 / t^2).
  s, sigma = 0.4, 0.3
  t2 = s**2 + sigma**2
  dataset = synthetic.GaussianMixture1D('gaussian', [0.0], s)
  model = smoothing.SmoothedModel(
      LinearGaussian(math.sqrt(t2) * prior_scale_error, dim=1),
      LinearGaussian(s * sigma / math.sqrt(t2), s**2 / t2, dim=1),
      kernels.SmoothingKernel('gaussian', sigma),
  )
  points = dataset.sample(2000, seed=0)
  rows = seeds.rows(0, 'test', 0, len(points))
  terms = likelihood.decompose(model, dataset, points, rows, num_samples=4, batch_size=500)
  # Exact per sample: the true pair's terms equal the truth's, and they sum to -ELBO.
  assert terms['conditional_nll'] == pytest.approx(terms['true_conditional_nll'], abs=1e-4)
  assert terms['nll_elbo'] == pytest.approx(
      likelihood.mean_nll(model, points, rows, 4, batch_size=500).nll_elbo, abs=1e-5
  )
  prior_excess = terms['prior_nll'] - terms['true_prior_nll']
  if prior_scale_error == 1.0:
    assert abs(prior_excess) < 1e-4
    assert terms['nll_elbo'] == pytest.approx(terms['true_nll'], abs=1e-4)
  else:  # KL(N(0, t^2) || N(0, 1.69 t^2)) ~ 0.0435, up to the sampling error of 8000 draws
    assert prior_excess == pytest.approx(math.log(1.3) + 0.5 / 1.69 - 0.5, abs=0.01)
