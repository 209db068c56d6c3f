"""Closed forms for a 1-D Gaussian mixture under Gaussian smoothing (App. B.1 ground truth).

Data p(x) = sum_k w_k N(x; mu_k, s^2) smoothed by q(x~ | x) = N(x~; x, sigma^2), t^2 = s^2 + sigma^2:

  p(x~)            = sum_k w_k N(x~; mu_k, t^2)
  grad log p(x~)   = sum_k r_k(x~) (mu_k - x~) / t^2,   r_k(x~) = w_k N(x~; mu_k, t^2) / p(x~)
  p(x | x~)        = sum_k r_k(x~) N(x; m_k(x~), v),     m_k = (sigma^2 mu_k + s^2 x~) / t^2,
                                                         v = s^2 sigma^2 / t^2
  x~ + sigma^2 grad log p(x~) = E[x | x~] = sum_k r_k m_k   (Tweedie).

Ground truth of benchmarks/denoising_1d.py.
"""

import numpy as np
from scipy import special

GAP = 0.1


class GaussianMixturePosterior:
  """Closed forms for data sum_k w_k N(mu_k, s^2) under Gaussian smoothing of std sigma."""

  def __init__(self, means, scale, sigma, weights=None):
    self.means = np.asarray(means, np.float64)
    self.weights = (
        np.full(len(self.means), 1.0 / len(self.means))
        if weights is None
        else np.asarray(weights, np.float64)
    )
    self.scale, self.sigma = float(scale), float(sigma)
    self.t2 = self.scale**2 + self.sigma**2
    self.variance = self.scale**2 * self.sigma**2 / self.t2

  def _component_log_probs(self, x_tilde):
    x_tilde = np.asarray(x_tilde, np.float64).reshape(-1, 1)
    return (
        np.log(self.weights)
        - 0.5 * np.square(x_tilde - self.means) / self.t2
        - 0.5 * np.log(2 * np.pi * self.t2)
    )

  def smoothed_log_prob(self, x_tilde):
    """log p(x~), [N]."""
    return special.logsumexp(self._component_log_probs(x_tilde), axis=1)

  def responsibilities(self, x_tilde):
    """r_k(x~) = P(component k | x~), [N, K]."""
    log_r = self._component_log_probs(x_tilde)
    return np.exp(log_r - special.logsumexp(log_r, axis=1, keepdims=True))

  def score(self, x_tilde):
    """grad log p(x~), [N]."""
    x_tilde = np.asarray(x_tilde, np.float64).reshape(-1, 1)
    return np.sum(self.responsibilities(x_tilde) * (self.means - x_tilde), axis=1) / self.t2

  def posterior_means(self, x_tilde):
    """m_k(x~), [N, K]: the mean of x given x~ and component k."""
    x_tilde = np.asarray(x_tilde, np.float64).reshape(-1, 1)
    return (self.sigma**2 * self.means + self.scale**2 * x_tilde) / self.t2

  def single_step(self, x_tilde):
    """x~ + sigma^2 grad log p(x~), [N]: E[x | x~] = sum_k r_k m_k (Tweedie)."""
    return np.asarray(x_tilde, np.float64).reshape(-1) + self.sigma**2 * self.score(x_tilde)

  def posterior_log_prob(self, x, x_tilde):
    """log p(x | x~) for matching rows (or x [N] against one x~), [N]."""
    x = np.asarray(x, np.float64).reshape(-1, 1)
    log_r = np.log(np.maximum(self.responsibilities(x_tilde), 1e-300))
    log_n = -0.5 * np.square(x - self.posterior_means(x_tilde)) / self.variance - 0.5 * np.log(
        2 * np.pi * self.variance
    )
    return special.logsumexp(log_r + log_n, axis=1)

  def posterior_sample(self, x_tilde, rng):
    """One x ~ p(x | x~) per row of x~, [N]."""
    r = self.responsibilities(x_tilde)
    k = (rng.random((len(r), 1)) > np.cumsum(r, axis=1)).sum(axis=1)
    k = np.minimum(k, len(self.means) - 1)
    m = self.posterior_means(x_tilde)[np.arange(len(r)), k]
    return m + np.sqrt(self.variance) * rng.standard_normal(len(r))


def gap_fraction(x, gap=GAP):
  """Fraction of points with |x| < gap."""
  return float(np.mean(np.abs(np.asarray(x).reshape(-1)) < gap))


def gap_probability(means, scale, gap=GAP):
  """P(|x| < gap) for x from the equal mixture of N(mu_k, scale^2) over `means`:
  the mean over k of Phi((gap - mu_k) / scale) - Phi((-gap - mu_k) / scale)."""
  means = np.asarray(means, np.float64)
  return float(np.mean(special.ndtr((gap - means) / scale) - special.ndtr((-gap - means) / scale)))
