"""Likelihoods of point sets through the model interface, on every replica of a strategy.

`rows(model, points, seeds, K)` is the model's `Likelihood` of each point (log-densities:
exact for a plain model; the importance-weighted bound and the ELBO with K draws for a pair),
row i drawn from seeds[i] alone; `mean_nll` their means as an `NLL`, -log p(x) in nats per
point (positive; lower is better).
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfsmooth.evaluation import replicated
from tfsmooth.models import interface


class NLL(NamedTuple):
  """Mean negative log-likelihoods of a point set: `nll` the exact NLL, or for a pair the
  upper bound from the importance-weighted bound with `num_samples` draws; `nll_elbo` the
  ELBO's (equal to `nll` when exact). Nats per point, or any unit `in_unit` gives."""

  nll: float
  nll_elbo: float
  num_samples: int
  exact: bool

  def in_unit(self, to_unit):
    """The same record with both figures passed through `to_unit` (e.g. nats -> bpd)."""
    return self._replace(nll=to_unit(self.nll), nll_elbo=to_unit(self.nll_elbo))


def default_batch_size(num_samples, max_rows=200_000):
  """Points per batch that keep a batch within `max_rows` draws of x~."""
  return max(1, max_rows // num_samples)


def rows(model, points, seeds, num_samples=1, batch_size=None, strategy=None, conditions=None):
  """The `Likelihood` of each point (numpy [N] fields); seeds int32 [N, 2], one per point;
  `conditions` {keyword: [N]} the model's per-row conditions, if any."""
  num_samples = num_samples or 1
  conditions = conditions or {}
  log_prob, elbo = replicated.map_batches(
      _bounds_of(model, num_samples, tuple(conditions)),
      (
          np.asarray(points, np.float32),
          np.asarray(seeds, np.int32),
          *(np.asarray(v) for v in conditions.values()),
      ),
      batch_size or default_batch_size(num_samples),
      strategy,
  )
  exact = model.exact_likelihood
  return interface.Likelihood(log_prob, elbo, 1 if exact else int(num_samples), exact)


def _bounds_of(model, num_samples, keywords):
  """(log_prob, elbo) of row batches: one function per (model, K, condition keywords), kept on
  the model (not in a global cache, so a dropped model is freed), so it is traced once."""

  def make():
    def bounds(x, s, *values):
      record = model.likelihood(x, s, num_samples, **dict(zip(keywords, values)))
      return record.log_prob, record.elbo

    return bounds

  return replicated.cached_on(model, ('likelihood', num_samples, keywords), make)


def mean_nll(model, points, seeds, num_samples=1, batch_size=None, strategy=None, conditions=None):
  """The `NLL` of `points`: means of -log p(x) (or of the bounds' -log), nats per point."""
  record = rows(model, points, seeds, num_samples, batch_size, strategy, conditions)
  return NLL(
      -float(np.mean(record.log_prob)),
      -float(np.mean(record.elbo)),
      record.num_samples,
      record.exact,
  )


def decompose(model, dataset, points, seeds, num_samples, batch_size=1000):
  """Where a Gaussian-smoothed pair loses likelihood: its two terms against the truth.

  For x~ ~ N(x, sigma^2 I), K draws per point, exactly
    -log p(x) = -log p(x~) - log p(x | x~) + log q(x~ | x),
  with the true p(x~) in closed form (`dataset.gaussian_smoothed`) and the true
  p(x | x~) = p(x) q(x~ | x) / p(x~). The model's -ELBO is the same sum with p_theta, so
    nll_elbo - true_nll = (prior_nll - true_prior_nll) + (conditional_nll - true_conditional_nll).
  Returns those six means in nats per point; seeds [N, 2], one per point.
  """
  if not model.kernel.is_gaussian:
    raise ValueError(f'decompose needs Gaussian smoothing; the model uses {model.kernel.name}.')
  smoothed_data = dataset.gaussian_smoothed(model.kernel.sigma)

  log_terms = tf.function(lambda x, s: model.log_terms(x, num_samples, s))
  sums = dict.fromkeys(
      (
          'prior_nll',
          'true_prior_nll',
          'conditional_nll',
          'true_conditional_nll',
          'nll_elbo',
          'true_nll',
      ),
      0.0,
  )
  seeds = np.asarray(seeds, np.int32)
  for start in range(0, len(points), batch_size):
    x = points[start : start + batch_size]
    x_tilde, log_q, log_prior, log_conditional = (
        t.numpy().astype(np.float64)
        for t in log_terms(tf.constant(x), tf.constant(seeds[start : start + batch_size]))
    )
    log_p_x = np.broadcast_to(dataset.log_prob(x), log_q.shape)  # one value per point, K times
    log_p_tilde = smoothed_data.log_prob(x_tilde.reshape(-1, *x.shape[1:])).reshape(log_q.shape)
    terms = dict(
        prior_nll=-log_prior,
        true_prior_nll=-log_p_tilde,
        conditional_nll=-log_conditional,
        true_conditional_nll=-(log_p_x + log_q - log_p_tilde),
        nll_elbo=-(log_prior + log_conditional - log_q),
        true_nll=-log_p_x,
    )
    for key, value in terms.items():
      sums[key] += value.sum()
  count = len(points) * num_samples
  return {key: value / count for key, value in sums.items()}
