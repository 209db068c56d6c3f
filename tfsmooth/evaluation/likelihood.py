"""Likelihoods of point sets through the model interface, on every replica of a strategy.

`rows(model, points, seeds, K)` is the model's `Likelihood` of each point (exact for a plain
model; ELBO and importance-weighted bound with K draws for a pair), row i drawn from
seeds[i] alone; `mean_nll` its means, -log p(x) in nats per point.
"""

import functools

import numpy as np
import tensorflow as tf

from tfsmooth.evaluation import replicated
from tfsmooth.models import base


def default_batch_size(num_samples, max_rows=200_000):
  """Points per batch that keep a batch within `max_rows` draws of x~."""
  return max(1, max_rows // num_samples)


def rows(model, points, seeds, num_samples=1, batch_size=None, strategy=None):
  """The `Likelihood` of each point (numpy [N] fields); seeds int32 [N, 2], one per point."""
  num_samples = num_samples or 1
  log_prob, elbo = replicated.map_batches(
      _bounds_of(model, num_samples),
      (np.asarray(points, np.float32), np.asarray(seeds, np.int32)),
      batch_size or default_batch_size(num_samples),
      strategy,
  )
  exact = model.exact_likelihood
  return base.Likelihood(log_prob, elbo, 1 if exact else int(num_samples), exact)


@functools.lru_cache(maxsize=32)
def _bounds_of(model, num_samples):
  """(log_prob, elbo) of row batches: one function per (model, K), traced once."""
  return lambda x, s: tuple(model.likelihood(x, s, num_samples)[:2])


def mean_nll(model, points, seeds, num_samples=1, batch_size=None, strategy=None):
  """`Likelihood` of float means -log p(x) (or the bounds' -log) over `points`, nats/point."""
  record = rows(model, points, seeds, num_samples, batch_size, strategy)
  return record._replace(
      log_prob=-float(np.mean(record.log_prob)), elbo=-float(np.mean(record.elbo))
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
