"""Test-set likelihoods in nats per point: exact for a DensityModel, bounds for a SmoothedModel."""

import numpy as np
import tensorflow as tf


def exact_nll(model, points, batch_size=4096):
  """Mean -log p(x) over `points` (nats per point)."""
  log_prob = tf.function(model.log_prob)
  values = [
      log_prob(tf.constant(points[i : i + batch_size])).numpy()
      for i in range(0, len(points), batch_size)
  ]
  return float(-np.mean(np.concatenate(values)))


def smoothed_bounds(model, points, num_samples, seed=0, batch_size=None, max_rows=200_000):
  """Per-point (ELBO, importance-weighted bound) on log p(x), each [N].

  Every point gets `num_samples` noise draws; a batch holds `batch_size` points (by default as
  many as keep it within `max_rows` draws); batch b uses the stateless seed (seed, b).
  """
  batch_size = batch_size or max(1, max_rows // num_samples)
  bounds = tf.function(lambda x, s: model.bounds(x, num_samples, s))
  elbo, iw = [], []
  for index, start in enumerate(range(0, len(points), batch_size)):
    e, w = bounds(tf.constant(points[start : start + batch_size]), tf.constant([seed, index]))
    elbo.append(e.numpy())
    iw.append(w.numpy())
  return np.concatenate(elbo), np.concatenate(iw)


def smoothed_nll(model, points, num_samples, seed=0, batch_size=None):
  """(NLL from the ELBO, NLL from the IW bound): both upper bounds on -log p, nats per point."""
  elbo, iw = smoothed_bounds(model, points, num_samples, seed, batch_size)
  return float(-np.mean(elbo)), float(-np.mean(iw))


def decompose(model, dataset, points, num_samples, seed=0, batch_size=1000):
  """Where a Gaussian-smoothed pair loses likelihood: its two terms against the truth.

  For x~ ~ N(x, sigma^2 I), K draws per point, exactly
    -log p(x) = -log p(x~) - log p(x | x~) + log q(x~ | x),
  with the true p(x~) in closed form (`dataset.gaussian_smoothed`) and the true
  p(x | x~) = p(x) q(x~ | x) / p(x~). The model's -ELBO is the same sum with p_theta, so
    nll_elbo - true_nll = (prior_nll - true_prior_nll) + (conditional_nll - true_conditional_nll).
  Returns those six means in nats per point.
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
  for index, start in enumerate(range(0, len(points), batch_size)):
    x = points[start : start + batch_size]
    x_tilde, log_q, log_prior, log_conditional = (
        t.numpy().astype(np.float64) for t in log_terms(tf.constant(x), tf.constant([seed, index]))
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
  rows = len(points) * num_samples
  return {key: value / rows for key, value in sums.items()}
