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

  The smoothing distribution of distribution smoothing [1]: the data x are replaced by
  x~ = x + e, e ~ q(. | 0), before the first stage p(x~) is fitted, and the second stage
  p(x | x~) undoes it. `kernel(x)` is the distribution q(. | x), a `tfd.Independent` with batch
  shape x.shape[:-event_ndims]; `kernel.smooth(x, seed)` draws x~ from it.

  #### Mathematical Details

  q factorises over the elements of an event, each centred on x_i with standard deviation
  sigma whatever the family, so that kernels of different families smooth equally far (the
  kernel study of [1], section 4.1):

    gaussian:  q(x~_i | x_i) = N(x~_i; x_i, sigma^2)
    laplace:   q(x~_i | x_i) = exp(-|x~_i - x_i| / b) / (2 b),     b = sigma / sqrt(2)
    uniform:   q(x~_i | x_i) = 1 / (2 a) on [x_i - a, x_i + a],   a = sigma sqrt(3)

  Only the Gaussian kernel has the single-step denoiser x~ + sigma^2 grad log p(x~) (Tweedie's
  formula, [1] eq. 2).

  A noise-conditional model smooths each row at its own level: `kernel(x, sigma)` and
  `kernel.smooth(x, seed, sigma)` take sigma [N], one per row of x, within `sigma_range`
  (`sigma` is then the reference level, the default of rows given none).

  Args:
    name: 'gaussian', 'laplace' or 'uniform'.
    sigma: the per-element standard deviation, a finite number > 0.
    event_ndims: trailing dimensions of x that make one event (1 for points, 3 for images).
    sigma_range: (low, high) of the per-row levels a noise-conditional model takes; None for
      a kernel of one level.

  #### Examples

  >>> from tfsmooth import kernels
  >>> kernel = kernels.SmoothingKernel('laplace', sigma=0.5)
  >>> x = tf.constant([[0.0, 1.0], [2.0, -1.0]])
  >>> kernel(x).batch_shape, kernel(x).event_shape
  (TensorShape([2]), TensorShape([2]))
  >>> x_tilde = kernel.smooth(x, seed=(1, 2))

  log q(x~ | x) is the sum of the elements' Laplace log-densities, b = sigma / sqrt(2):

  >>> b = 0.5 / np.sqrt(2.0)
  >>> by_hand = np.sum(-np.abs(x_tilde - x) / b - np.log(2.0 * b), axis=-1)
  >>> bool(np.allclose(kernel(x).log_prob(x_tilde), by_hand))
  True

  Every family has standard deviation sigma:

  >>> [round(float(kernels.SmoothingKernel(name, 0.5)(tf.zeros([1])).stddev()[0]), 5)
  ...  for name in kernels.KERNELS]
  [0.5, 0.5, 0.5]

  #### References

  [1]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  """

  def __init__(self, name='gaussian', sigma=0.3, event_ndims=1, sigma_range=None):
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
    self.sigma_range = None
    if sigma_range is not None:
      low, high = (float(v) for v in sigma_range)
      if not 0 < low < high or not math.isfinite(high) or not low <= sigma <= high:
        raise errors.UserError(
            f'A noise-conditional kernel takes levels in (low, high) with 0 < low < high and '
            f'the reference sigma {sigma} between them; got ({low}, {high}). Set '
            '--config.smoothing.sigma_min / sigma_max around --config.smoothing.sigma.'
        )
      self.sigma_range = (low, high)

  @property
  def max_sigma(self):
    """The largest level the kernel smooths with (its one sigma, or the range's top)."""
    return self.sigma if self.sigma_range is None else self.sigma_range[1]

  def _scale(self, x, sigma):
    """sigma as a tensor broadcasting against x: the kernel's, or one per row [N] -> [N, 1...]."""
    if sigma is None:
      return tf.constant(self.sigma, x.dtype)
    sigma = tf.cast(sigma, x.dtype)
    return tf.reshape(sigma, tf.concat([tf.shape(sigma), [1] * self.event_ndims], 0))

  def __call__(self, x, sigma=None):
    """q(. | x), at the kernel's sigma or at one level per row of x (`sigma` [N])."""
    x = tf.convert_to_tensor(x)
    return tfd.Independent(
        _elementwise(self.name, x, self._scale(x, sigma)),
        reinterpreted_batch_ndims=self.event_ndims,
    )

  def smooth(self, x, seed, sigma=None):
    """x~ = x + e, e ~ q(. | 0): one smoothed copy of every row of x (at its own level with
    `sigma` [N])."""
    return self(x, sigma).sample(seed=seed)

  @property
  def is_gaussian(self):
    return self.name == 'gaussian'

  def __repr__(self):
    levels = '' if self.sigma_range is None else f', sigma_range={self.sigma_range}'
    return f'SmoothingKernel({self.name!r}, sigma={self.sigma}{levels})'


def median_heuristic_sigma(points, max_points=2000, seed=0):
  """The paper's sigma (App. C.1 of [1]): median pairwise Euclidean distance / (2 sqrt(D)).

  `points` is [N, ...]; each row is flattened to D values. At most `max_points`
  rows (a seeded random subset) enter the O(N^2) distance computation.

  #### Mathematical Details

    sigma = median_{i < j} ||x_i - x_j||_2 / (2 sqrt(D)),

  the median heuristic [2] scaled as in [1] (after the analysis of [3]). For points with
  i.i.d. N(0, s^2) coordinates, ||x_i - x_j|| is close to s sqrt(2 D), so sigma is close to
  s / sqrt(2) whatever D.

  Args:
    points: array-like [N, ...], N >= 2, finite.
    max_points: the most rows that enter the distances.
    seed: seed of the subset when N > max_points.

  Returns:
    sigma, a Python float.

  #### Examples

  Two points 5 apart in D = 2 dimensions:

  >>> from tfsmooth import kernels
  >>> round(kernels.median_heuristic_sigma([[0.0, 0.0], [3.0, 4.0]]), 4)  # 5 / (2 sqrt(2))
  1.7678

  Standard normal points: sigma is about 1 / sqrt(2):

  >>> points = np.random.default_rng(0).normal(size=(500, 64))
  >>> round(kernels.median_heuristic_sigma(points), 2)
  0.7

  #### References

  [1]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021, App. C.1.
       https://arxiv.org/abs/2103.15089
  [2]: Damien Garreau, Wittawat Jitkrittum, Motonobu Kanagawa. Large sample analysis of the
       median heuristic. https://arxiv.org/abs/1707.07269
  [3]: Saeed Saremi, Aapo Hyvarinen. Neural Empirical Bayes. JMLR 20, 2019.
       https://arxiv.org/abs/1903.02334
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
