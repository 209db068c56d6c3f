"""Polyak (exponential moving) averages of a model's trainable weights, with warm-up.

With decay d > 0, ema_0 = w_0 and after update t (t = 1, 2, ...)

    ema_t = d_t ema_{t-1} + (1 - d_t) w_t,   d_t = min(d, (1 + t) / (10 + t)),

the warm-up of `tf.train.ExponentialMovingAverage(num_updates=t)`: without it the random initial
weights keep the share d^t, still 5% after 3000 steps at d = 0.999. The trainer updates the
averages after every step, evaluates and selects checkpoints on them (`swapped`), checkpoints them
beside the raw weights and ends with them in the model (`keep`).
"""

import contextlib

import tensorflow as tf

from tfsmooth import errors


def decay_of(config):
  """`train.ema_decay` (0 or None: no averages), checked."""
  decay = float(config.get('ema_decay') or 0.0)
  if not 0 <= decay < 1:
    raise errors.UserError(f'train.ema_decay must be in [0, 1) (0 = no EMA), got {decay}.')
  return decay


class EMA:
  """The averages of `weights` (a model's trainable variables) at `decay`; none at decay 0.

  Make it where the weights were made (inside `strategy.scope()`): each average is a variable
  updated identically on every replica (aggregation ONLY_FIRST_REPLICA).
  """

  def __init__(self, weights, decay):
    self.decay = decay
    self.weights = list(weights) if decay else []
    self.averages = [
        tf.Variable(
            tf.identity(v),
            trainable=False,
            name='ema',
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        for v in self.weights
    ]

  def __bool__(self):
    return bool(self.averages)

  def update(self, t):
    """Moves the averages towards the weights after update number `t` (a scalar tensor)."""
    t = tf.cast(t, tf.float32)
    decay = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
    for average, v in zip(self.averages, self.weights):
      average.assign(decay * average + (1.0 - decay) * v)

  def _swap(self):
    for average, v in zip(self.averages, self.weights):
      raw = tf.identity(v)
      v.assign(average)
      average.assign(raw)

  @contextlib.contextmanager
  def swapped(self):
    """The averages in the model for the block (exactly: assignments only), then the raw
    weights back."""
    self._swap()
    try:
      yield
    finally:
      self._swap()

  def keep(self):
    """Leaves the averages in the model for good."""
    for average, v in zip(self.averages, self.weights):
      v.assign(average)
