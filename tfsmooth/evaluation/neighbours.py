"""Nearest neighbours of samples in the training set, by pixel and by feature L2 (paper App. C.5).

A model that copied its training images would show them as its samples' nearest neighbours;
the grids let one check that it does not.
"""

import os

import numpy as np
import tensorflow as tf

from tfsmooth.evaluation import plots
from tfsmooth.evaluation import sample_quality


def nearest(queries, references, k=1, batch_size=4096):
  """Indices [Q, k] of the `k` references nearest to each query, nearest first.

  Distance: squared L2 of the flattened rows, |q|^2 - 2 q.r + |r|^2 in float64, computed over
  `batch_size` references at a time.
  """
  q = np.asarray(queries, np.float64).reshape(len(queries), -1)
  distances = []
  for start in range(0, len(references), batch_size):
    r = np.asarray(references[start : start + batch_size], np.float64).reshape(-1, q.shape[1])
    distances.append((q**2).sum(1)[:, None] - 2 * q @ r.T + (r**2).sum(1)[None])
  distances = np.concatenate(distances, axis=1)
  k = min(k, distances.shape[1])
  top = np.argpartition(distances, k - 1, axis=1)[:, :k]
  order = np.argsort(np.take_along_axis(distances, top, axis=1), axis=1, kind='stable')
  return np.take_along_axis(top, order, axis=1)


def neighbour_grids(
    samples,
    train_images,
    network,
    out_dir,
    k=8,
    train_features=None,
    batch_size=500,
    prefix='nearest',
):
  """Writes `prefix`_pixel.png and `prefix`_features.png into `out_dir`.

  Each grid has one row per sample: the sample, then its `k` nearest training images, nearest
  first (by pixel L2, or by L2 between `network`'s features). `train_features` [N, F] (the
  features of `train_images`) saves recomputing them. Returns {'pixel': indices [S, k],
  'features': indices [S, k]} into `train_images`.
  """
  if train_features is None:
    train_features = sample_quality.activations(network, train_images, batch_size)['features']
  sample_features = sample_quality.activations(network, samples, batch_size)['features']
  found = {
      'pixel': nearest(samples, train_images, k),
      'features': nearest(sample_features, train_features, k),
  }
  tf.io.gfile.makedirs(out_dir)
  for name, indices in found.items():
    rows = [np.concatenate([sample[None], train_images[i]]) for sample, i in zip(samples, indices)]
    plots.save_image_grid(rows, os.path.join(out_dir, f'{prefix}_{name}.png'))
  return found
