"""Test-set likelihoods in nats per point: exact for a DensityModel, bounds for a SmoothedModel."""

import numpy as np
import tensorflow as tf


def exact_nll(model, points, batch_size=4096):
  """Mean -log p(x) over `points` (nats per point)."""
  log_prob = tf.function(model.log_prob)
  values = [log_prob(tf.constant(points[i:i + batch_size])).numpy()
            for i in range(0, len(points), batch_size)]
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
    e, w = bounds(tf.constant(points[start:start + batch_size]), tf.constant([seed, index]))
    elbo.append(e.numpy())
    iw.append(w.numpy())
  return np.concatenate(elbo), np.concatenate(iw)


def smoothed_nll(model, points, num_samples, seed=0, batch_size=None):
  """(NLL from the ELBO, NLL from the IW bound): both upper bounds on -log p, nats per point."""
  elbo, iw = smoothed_bounds(model, points, num_samples, seed, batch_size)
  return float(-np.mean(elbo)), float(-np.mean(iw))
