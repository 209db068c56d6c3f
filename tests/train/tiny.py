"""The tiny model, data and config that the trainer tests share with their subprocess driver."""

import keras
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth.models import base
from tfsmooth.models import made

tfd = tfp.distributions

POINTS = np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32)


def dataset():
  return tf.data.Dataset.from_tensor_slices(POINTS).shuffle(512, seed=0).repeat()


def model():
  tf.keras.utils.set_random_seed(5)
  return made.MADE(2, (16,), 2)


def config(steps, **overrides):
  settings = dict(steps=steps, batch_size=64, learning_rate=3e-3, seed=0, log_every=20,
                  checkpoint_every=200, keep_checkpoints=2, jit_compile=False, ema_decay=0.9)
  settings.update(overrides)
  return ml_collections.ConfigDict(settings)


class MixedPrecisionGaussian(base.DensityModel):
  """p(x) = N(x; m, diag(exp(2 s))) with (m, s) from a Dense layer that computes in the Keras
  dtype policy (bfloat16 under 'mixed_bfloat16') and float32 outputs, for the precision test.
  The model itself does not autocast: the data stay float32."""

  def __init__(self):
    super().__init__((2,), autocast=False)
    self.dense = keras.layers.Dense(4)

  def distribution(self, conditioning=None):
    del conditioning
    params = tf.cast(self.dense(tf.ones((1, 2))), tf.float32)[0]
    return tfd.Independent(tfd.Normal(params[:2], tf.exp(params[2:])), 1)
