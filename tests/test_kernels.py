import math

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import kernels


@pytest.mark.parametrize('name', kernels.KERNELS)
def test_kernel_density_integrates_to_one_with_stated_std(name):
  sigma = 0.7
  kernel = kernels.SmoothingKernel(name, sigma, event_ndims=1)
  axis = np.linspace(-8, 8, 160_001) + 0.5
  density = np.exp(kernel(tf.constant([[0.5]])).log_prob(axis[:, None].astype(np.float32)))
  assert np.trapezoid(density, axis) == pytest.approx(1.0, abs=2e-3)
  variance = np.trapezoid(density * (axis - 0.5) ** 2, axis)
  assert math.sqrt(variance) == pytest.approx(sigma, rel=2e-3)
  draws = kernel.smooth(tf.fill([100_000, 1], 0.5), tf.constant([3, 4])).numpy()
  assert np.std(draws) == pytest.approx(sigma, rel=0.02)
  assert np.mean(draws) == pytest.approx(0.5, abs=0.01)


def test_kernel_factorises_over_event_dimensions():
  kernel = kernels.SmoothingKernel('laplace', 0.3, event_ndims=3)
  x = tf.zeros([2, 4, 4, 1])
  x_tilde = kernel.smooth(x, tf.constant([0, 1]))
  log_q = kernel(x).log_prob(x_tilde)
  per_dim = kernels.SmoothingKernel('laplace', 0.3, event_ndims=0)(x).log_prob(x_tilde)
  assert log_q.shape == (2,)
  np.testing.assert_allclose(log_q, tf.reduce_sum(per_dim, [1, 2, 3]), rtol=1e-5)


@pytest.mark.parametrize('sigma', [0.0, -0.1, float('nan')])
def test_nonpositive_sigma_is_rejected_with_the_fix(sigma):
  with pytest.raises(ValueError, match='sigma must be a finite number > 0'):
    kernels.SmoothingKernel('gaussian', sigma)


def test_unknown_kernel_lists_the_choices():
  with pytest.raises(ValueError, match='gaussian, laplace, uniform'):
    kernels.SmoothingKernel('cauchy', 0.3)


def test_median_heuristic_matches_definition():
  rng = np.random.default_rng(0)
  points = rng.normal(size=(300, 2, 2))
  flat = points.reshape(300, -1)
  distances = [np.linalg.norm(flat[i] - flat[j]) for i in range(300) for j in range(i + 1, 300)]
  expected = np.median(distances) / (2 * math.sqrt(4))
  assert kernels.median_heuristic_sigma(points) == pytest.approx(expected, rel=1e-9)
  # Standard normal data in D dims: pairwise distance ~ sqrt(2D), so sigma ~ 1/sqrt(2).
  assert kernels.median_heuristic_sigma(rng.normal(size=(2000, 50))) == pytest.approx(
      1 / math.sqrt(2), rel=0.03
  )


def test_median_heuristic_rejects_nan():
  with pytest.raises(ValueError, match='NaN'):
    kernels.median_heuristic_sigma(np.array([[0.0], [np.nan]]))
