"""Smoothing kernels q(x~ | x) as TFP distributions, and the paper's sigma heuristic.

Every kernel is symmetric and stationary, factorises over dimensions, and is
parameterised by its per-dimension standard deviation sigma, so kernels of different
families are comparable in a sweep:

  gaussian:  x~_i ~ Normal(x_i, sigma)
  laplace:   x~_i ~ Laplace(x_i, b),          b = sigma / sqrt(2)
  uniform:   x~_i ~ Uniform(x_i - a, x_i + a), a = sigma * sqrt(3)
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors

tfd = tfp.distributions

KERNELS = ('gaussian', 'laplace', 'uniform')


def _elementwise(name, x, sigma):
  if name == 'gaussian':
    return tfd.Normal(x, sigma)
  if name == 'laplace':
    return tfd.Laplace(x, sigma / math.sqrt(2.0))
  half_width = sigma * math.sqrt(3.0)
  return tfd.Uniform(x - half_width, x + half_width)


class SmoothingKernel:
  """q(x~ | x) of one family and standard deviation sigma, over events of `event_ndims` dims.

  `kernel(x)` is the distribution q(. | x) with batch shape x.shape[:-event_ndims];
  `kernel.smooth(x, seed)` draws x~ from it.
  """

  def __init__(self, name='gaussian', sigma=0.3, event_ndims=1):
    if name not in KERNELS:
      raise errors.UserError(
          f'Unknown smoothing kernel {name!r}; choose one of {", ".join(KERNELS)}.'
      )
    sigma = float(sigma)
    if not sigma > 0 or not math.isfinite(sigma):
      raise errors.UserError(
          f'Smoothing sigma must be a finite number > 0, got {sigma}. '
          'Set e.g. --config.smoothing.sigma=0.3, or use a baseline model.'
      )
    self.name = name
    self.sigma = sigma
    self.event_ndims = int(event_ndims)

  def __call__(self, x):
    x = tf.convert_to_tensor(x)
    sigma = tf.constant(self.sigma, x.dtype)
    return tfd.Independent(
        _elementwise(self.name, x, sigma), reinterpreted_batch_ndims=self.event_ndims
    )

  def smooth(self, x, seed):
    """x~ = x + e, e ~ q(. | 0): one smoothed copy of every row of x."""
    return self(x).sample(seed=seed)

  @property
  def is_gaussian(self):
    return self.name == 'gaussian'

  def __repr__(self):
    return f'SmoothingKernel({self.name!r}, sigma={self.sigma})'


def median_heuristic_sigma(points, max_points=2000, seed=0):
  """The paper's sigma (App. C.1): median pairwise Euclidean distance / (2 sqrt(D)).

  `points` is [N, ...]; each row is flattened to D values. At most `max_points`
  rows (a seeded random subset) enter the O(N^2) distance computation.
  """
  points = np.asarray(points, np.float64)
  if points.ndim < 2 or points.shape[0] < 2:
    raise errors.UserError(
        f'The sigma heuristic needs at least 2 points of shape [N, ...]; '
        f'got an array of shape {points.shape}.'
    )
  points = points.reshape(points.shape[0], -1)
  if not np.all(np.isfinite(points)):
    raise errors.UserError('The sigma heuristic got NaN or infinite values; clean the data first.')
  if points.shape[0] > max_points:
    rows = np.random.default_rng(seed).choice(points.shape[0], max_points, replace=False)
    points = points[rows]
  sq_norms = np.sum(points**2, axis=1)
  sq_dists = sq_norms[:, None] + sq_norms[None, :] - 2.0 * points @ points.T
  upper = np.triu_indices(points.shape[0], k=1)
  distances = np.sqrt(np.maximum(sq_dists[upper], 0.0))
  return float(np.median(distances) / (2.0 * math.sqrt(points.shape[1])))
