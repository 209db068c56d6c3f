"""Tiny models of each kind with fixed weights, and the evaluation whose results must not
depend on the replica count: likelihood rows and every sampler, on 5 rows (odd, so batches do
not divide across 2 replicas)."""

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import kernels
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth import tasks
from tfsmooth.evaluation import likelihood
from tfsmooth.models import made
from tfsmooth.models import pixelcnn
from tfsmooth.models import realnvp

ROWS = 5
IMAGE = (4, 4, 1)
PIXELCNN = dict(nr_resnet=1, nr_filters=4, nr_logistic_mix=2, dropout=0.0)


def made_pair():
  return smoothing.SmoothedModel(
      made.MADE(2, (8,), 2), made.MADE(2, (8,), 2, conditional=True), kernels.SmoothingKernel()
  )


def pixelcnn_plain():
  return pixelcnn.PixelCNN(IMAGE, **PIXELCNN)


def pixelcnn_pair():
  return smoothing.SmoothedModel(
      pixelcnn.PixelCNN(IMAGE, likelihood='logistic', **PIXELCNN),
      pixelcnn.PixelCNN(IMAGE, conditional=True, **PIXELCNN),
      kernels.SmoothingKernel('gaussian', 0.5, event_ndims=3),
  )


def realnvp_plain():
  return realnvp.RealNVP(2, num_couplings=2, hidden_sizes=(8,))


KINDS = {
    'made': lambda: made.MADE(2, (8,), 2),
    'made_pair': made_pair,
    'pixelcnn': pixelcnn_plain,
    'pixelcnn_pair': pixelcnn_pair,
    'realnvp': realnvp_plain,
}


def build(kind, strategy=None):
  """The model of `kind` with the same weights whatever the strategy (seeded draws)."""
  strategy = strategy or tf.distribute.get_strategy()
  keras.utils.set_random_seed(0)  # MADE's hidden degrees are drawn at construction
  with strategy.scope():
    model = KINDS[kind]()
    model.build_variables()
  rng = np.random.default_rng(0)
  for v in model.trainable_variables:
    v.assign(0.3 * rng.standard_normal(v.shape).astype(np.float32))
  return model


def points(model):
  rng = np.random.default_rng(1)
  if len(model.event_shape) == 1:
    return rng.normal(size=(ROWS,) + model.event_shape).astype(np.float32)
  return (np.round(rng.uniform(-1, 1, (ROWS,) + model.event_shape) * 127.5) / 127.5).astype(
      np.float32
  )


def evaluate(model, strategy=None, batch_size=3):
  """{'log_prob', 'elbo', <sampler>...}: numpy rows of the model on `points`, on every replica."""
  x = points(model)
  record = likelihood.rows(
      model, x, seeds.rows(0, 'test', 0, ROWS), 4, batch_size=batch_size, strategy=strategy
  )
  out = {'log_prob': record.log_prob, 'elbo': record.elbo}
  out.update(
      tasks.draw_rows(
          model, seeds.rows(0, 'samples', 0, ROWS), batch_size=batch_size, strategy=strategy
      )
  )
  return out
