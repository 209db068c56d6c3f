"""A model of a user's points in their own units, fitted in standardised units.

With a per-coordinate shift m and scale s (the training points' mean and standard deviation),
the inner model (plain or pair, built with the config's sigma and initialisation, which assume
data of unit scale) models z = (x - m) / s; in the user's units

  log p(x) = log p_z((x - m) / s) - sum_d log s_d,

and samples, denoised points and smoothed points are x = m + s z. `Standardized` answers the
model interface of `models.base` in the user's units (its likelihood records, draws and
denoisers), trains the inner model on z, and holds no weights of its own.
"""

import keras
import numpy as np
import tensorflow as tf


class Standardized(keras.Model):
  """`inner` (a `DensityModel` or `SmoothedModel`) on (x - shift) / scale."""

  def __init__(self, inner, shift, scale, **kwargs):
    super().__init__(**kwargs)
    self.inner = inner
    self.event_shape = inner.event_shape
    self.shift = np.asarray(shift, np.float32)
    self.scale = np.asarray(scale, np.float32)
    self.log_jacobian = float(np.sum(np.log(self.scale)))
    for name in ('smoothed', 'exact_likelihood', 'samplers', 'denoisers', 'can_inpaint'):
      setattr(self, name, getattr(inner, name))

  def _to_z(self, x):
    return (tf.convert_to_tensor(x, tf.float32) - self.shift) / self.scale

  def _to_x(self, z):
    return z * self.scale + self.shift

  @property
  def num_params(self):
    return self.inner.num_params

  def build_variables(self):
    self.inner.build_variables()
    self.built = True

  def build(self, input_shape=None):
    del input_shape
    self.build_variables()

  def training_loss(self, x, seed=None):
    """The inner model's loss on z (the log-Jacobian is a constant)."""
    return self.inner.training_loss(self._to_z(x), seed)

  def call(self, x, seed=None, training=None):
    del training
    return self.training_loss(x, seed)

  def log_prob(self, x):
    return self.inner.log_prob(self._to_z(x)) - self.log_jacobian

  def likelihood(self, x, seeds=None, num_samples=1):
    record = self.inner.likelihood(self._to_z(x), seeds, num_samples)
    return record._replace(
        log_prob=record.log_prob - self.log_jacobian, elbo=record.elbo - self.log_jacobian
    )

  def draw(self, seeds, samplers=None):
    return {name: self._to_x(z) for name, z in self.inner.draw(seeds, samplers).items()}

  def denoise(self, x_tilde, seeds, denoisers=None):
    denoised = self.inner.denoise(self._to_z(x_tilde), seeds, denoisers)
    return {name: self._to_x(z) for name, z in denoised.items()}

  def smooth(self, x, seeds):
    return self._to_x(self.inner.smooth(self._to_z(x), seeds))

  def smoothed_log_prob(self, x_tilde):
    return self.inner.smoothed_log_prob(self._to_z(x_tilde)) - self.log_jacobian

  def inpaint(self, x, num_known_rows, seeds):
    return self._to_x(self.inner.inpaint(self._to_z(x), num_known_rows, seeds))

  def facts(self):
    """The inner model's facts (sigma in standardised units) and the standardisation."""
    return {
        **self.inner.facts(),
        'standardized': {'shift': self.shift.tolist(), 'scale': self.scale.tolist()},
    }
