"""The closed forms that benchmarks/denoising_1d.py uses as ground truth."""

import numpy as np
import pytest
from scipy import stats

from tfsmooth.evaluation import gaussian_mixture_1d

MEANS, SCALE = [-0.3, 0.3], 0.1


@pytest.fixture(params=[0.3, 0.1])
def truth(request):
  return gaussian_mixture_1d.GaussianMixturePosterior(MEANS, SCALE, request.param)


def _bayes_posterior(truth, x_tilde, grid):
  """p(x | x~) on a grid from Bayes' rule, p_data(x) N(x~; x, sigma^2), normalised numerically."""
  p_data = np.mean(stats.norm.pdf(grid[:, None], MEANS, SCALE), axis=1)
  joint = p_data * stats.norm.pdf(x_tilde, grid, truth.sigma)
  return joint / (np.sum(joint) * (grid[1] - grid[0]))


def test_smoothed_density_is_the_convolution(truth):
  x_tilde = np.array([-0.7, -0.2, 0.0, 0.15, 0.6])
  grid = np.linspace(-2, 2, 40001)
  p_data = np.mean(stats.norm.pdf(grid[:, None], MEANS, SCALE), axis=1)
  numeric = [
      np.sum(p_data * stats.norm.pdf(t, grid, truth.sigma)) * (grid[1] - grid[0]) for t in x_tilde
  ]
  np.testing.assert_allclose(np.exp(truth.smoothed_log_prob(x_tilde)), numeric, rtol=1e-6)


def test_score_is_the_derivative_of_the_log_density(truth):
  x_tilde = np.linspace(-1, 1, 41)
  h = 1e-5
  finite_difference = (
      truth.smoothed_log_prob(x_tilde + h) - truth.smoothed_log_prob(x_tilde - h)
  ) / (2 * h)
  np.testing.assert_allclose(truth.score(x_tilde), finite_difference, rtol=1e-6, atol=1e-6)


def test_posterior_matches_bayes_rule_and_tweedie_gives_its_mean(truth):
  grid = np.linspace(-1.5, 1.5, 30001)
  for x_tilde in (-0.4, 0.0, 0.05, 0.5):
    numeric = _bayes_posterior(truth, x_tilde, grid)
    closed = np.exp(truth.posterior_log_prob(grid, np.full(len(grid), x_tilde)))
    np.testing.assert_allclose(closed, numeric, rtol=1e-5, atol=1e-8)
    numeric_mean = np.sum(grid * numeric) * (grid[1] - grid[0])
    mixture_mean = np.dot(truth.responsibilities([x_tilde])[0], truth.posterior_means([x_tilde])[0])
    assert mixture_mean == pytest.approx(numeric_mean, abs=1e-7)
    assert truth.single_step([x_tilde])[0] == pytest.approx(numeric_mean, abs=1e-7)


def test_posterior_at_zero_is_bimodal_with_the_stated_modes(truth):
  # m_k(0) = sigma^2 mu_k / (s^2 + sigma^2); v = s^2 sigma^2 / (s^2 + sigma^2).
  t2 = SCALE**2 + truth.sigma**2
  np.testing.assert_allclose(
      truth.posterior_means([0.0])[0], np.multiply(MEANS, truth.sigma**2 / t2)
  )
  assert truth.variance == pytest.approx(SCALE**2 * truth.sigma**2 / t2)
  np.testing.assert_allclose(truth.responsibilities([0.0])[0], [0.5, 0.5])


def test_posterior_samples_follow_the_posterior(truth):
  rng = np.random.default_rng(0)
  x_tilde = np.full(200_000, 0.1)
  samples = truth.posterior_sample(x_tilde, rng)
  r = truth.responsibilities([0.1])[0]
  m = truth.posterior_means([0.1])[0]
  assert np.mean(samples) == pytest.approx(np.dot(r, m), abs=3e-3 * truth.sigma)
  assert np.mean(samples > 0) == pytest.approx(
      np.dot(r, stats.norm.sf(0.0, m, np.sqrt(truth.variance))), abs=5e-3
  )


def test_gap_fraction():
  points = np.array([-0.2, -0.05, 0.0, 0.099, 0.1, 0.3])
  assert gaussian_mixture_1d.gap_fraction(points) == pytest.approx(0.5)


def test_gap_probability_is_the_mass_of_the_data_density_in_the_gap():
  grid = np.linspace(-0.1, 0.1, 20001)
  density = np.mean(stats.norm.pdf(grid[:, None], MEANS, SCALE), axis=1)
  numeric = np.trapezoid(density, grid)
  assert gaussian_mixture_1d.gap_probability(MEANS, SCALE) == pytest.approx(numeric, rel=1e-8)
  assert gaussian_mixture_1d.gap_probability([0.0], 1.0, gap=1.0) == pytest.approx(0.682689492)
