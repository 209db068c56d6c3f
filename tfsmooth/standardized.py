"""A model of a user's points in their own units, fitted in standardised units.

With a per-coordinate shift m and scale s (the training points' mean and standard deviation),
the inner model (plain or pair, built with the config's sigma and initialisation, which assume
data of unit scale) models z = (x - m) / s. The map x = f(z) = m + s z is the TFP bijector
`tfb.Shift(m)(tfb.Scale(s))`, so a standardised plain model is, underneath, the
`tfd.TransformedDistribution` of the inner density by f, and in the user's units

  log p(x) = log p_z(f^-1(x)) + log |det J_{f^-1}(x)| = log p_z((x - m) / s) - sum_d log s_d.

Samples, denoised points and smoothed points are f(z). `wrap(inner, shift, scale)` gives a
`Standardized` (plain inner model) or a `StandardizedPair` (a smoothed pair, whose p(x~) and
joint p(x~, x) transform likewise); either answers the model interface of `models.interface`
in the user's units, trains the inner model on z, and holds no weights of its own.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth.models import base
from tfsmooth.models import interface

tfb = tfp.bijectors
tfd = tfp.distributions


def wrap(inner, shift, scale):
  """`inner` (a `DensityModel` or a smoothed pair) on (x - shift) / scale, in x's units."""
  return (StandardizedPair if inner.smoothed else Standardized)(inner, shift, scale)


class Standardized(base.TrainableModel):
  """`inner` on (x - shift) / scale: x = f(z) = shift + scale z (module docstring).

  A plain inner model's density in the user's units is `distribution()`, the
  `tfd.TransformedDistribution` of the inner density by the bijector
  f = `tfb.Shift(shift)(tfb.Scale(scale))`; draws and denoised points are f of the inner
  model's, and `fit` trains the inner model on z.

  #### Mathematical Details

  With z = f^-1(x) = (x - m) / s per coordinate,

    log p(x) = log p_z((x - m) / s) - sum_d log s_d,

  and the inner model's bounds on log p_z (a pair's ELBO and IW bound) move by the same
  constant, so they stay bounds on log p(x).

  #### Examples

  >>> from tfsmooth import seeds, standardized
  >>> from tfsmooth.models import made
  >>> model = standardized.wrap(made.MADE(2, (8,), 2), shift=[10.0, -3.0], scale=[2.0, 0.5])
  >>> model.build_variables()
  >>> x = tf.constant([[11.0, -3.2]])
  >>> inner = model.inner.log_prob((x - [10.0, -3.0]) / [2.0, 0.5])
  >>> bool(abs(model.log_prob(x) - (inner - np.log(2.0 * 0.5)))[0] < 1e-5)
  True
  >>> model.draw(seeds.rows(0, 'samples', 0, 4))['samples'].shape
  TensorShape([4, 2])
  """

  def __init__(self, inner, shift, scale, **kwargs):
    super().__init__(**kwargs)
    self.inner = inner
    self.event_shape = inner.event_shape
    self.shift = np.asarray(shift, np.float32)
    self.scale = np.asarray(scale, np.float32)
    self.log_jacobian = float(np.sum(np.log(self.scale)))
    for name in ('smoothed', 'exact_likelihood', 'samplers', 'denoisers', 'can_inpaint'):
      setattr(self, name, getattr(inner, name))

  @property
  def conditions(self):
    return self.inner.conditions

  def sampler_conditions(self, sampler):
    """The inner model's: which conditions `sampler` reads (the annealed sampler no sigma)."""
    return interface.sampler_conditions(self.inner, sampler)

  @property
  def bijector(self):
    """f: z -> x = shift + scale z (per coordinate)."""
    return tfb.Shift(self.shift)(tfb.Scale(self.scale))

  def _to_z(self, x):
    return self.bijector.inverse(tf.convert_to_tensor(x, tf.float32))

  def _to_x(self, z):
    return self.bijector.forward(z)

  def _log_det(self, x):
    """log |det J_{f^-1}| at x: -sum_d log s_d."""
    return self.bijector.inverse_log_det_jacobian(tf.convert_to_tensor(x, tf.float32), 1)

  def build_variables(self):
    self.inner.build_variables()
    self.built = True

  def training_loss(self, x, seed=None, **conditions):
    """The inner model's loss on z (the log-Jacobian is a constant)."""
    return self.inner.training_loss(self._to_z(x), seed, **conditions)

  def distribution(self, **conditions):
    """The inner density transformed to the user's units (plain inner models)."""
    return tfd.TransformedDistribution(self.inner.distribution(**conditions), self.bijector)

  def log_prob(self, x, **conditions):
    """log p(x) in the user's units: the log-density of `distribution()`."""
    return self.distribution(**conditions).log_prob(tf.convert_to_tensor(x, tf.float32))

  def likelihood(self, x, seeds=None, num_samples=1, **conditions):
    x = tf.convert_to_tensor(x, tf.float32)
    record = self.inner.likelihood(self._to_z(x), seeds, num_samples, **conditions)
    log_det = self._log_det(x)
    return record._replace(log_prob=record.log_prob + log_det, elbo=record.elbo + log_det)

  def draw(self, seeds, samplers=None, **conditions):
    drawn = self.inner.draw(seeds, samplers, **conditions)
    return {name: self._to_x(z) for name, z in drawn.items()}

  def denoise(self, x_tilde, seeds, denoisers=None, **conditions):
    denoised = self.inner.denoise(self._to_z(x_tilde), seeds, denoisers, **conditions)
    return {name: self._to_x(z) for name, z in denoised.items()}

  def inpaint(self, x, num_known_rows, seeds, **conditions):
    return self._to_x(self.inner.inpaint(self._to_z(x), num_known_rows, seeds, **conditions))

  def facts(self):
    """The inner model's facts (sigma in standardised units) and the standardisation."""
    return {
        **self.inner.facts(),
        'standardized': {'shift': self.shift.tolist(), 'scale': self.scale.tolist()},
    }


class StandardizedPair(Standardized):
  """A smoothed pair on (x - shift) / scale: also p(x~) and the joint in the user's units.

  Its kernel is the inner pair's, in standardised units: sigma applies to z. It has no
  closed-form p(x) (`distribution` is refused); `likelihood` bounds it as the inner pair does.

  #### Mathematical Details

  Both x~ and x map through f, so with z~ = f^-1(x~) and z = f^-1(x),

    log p(x~) = log p_z(z~) - sum_d log s_d,
    log p(x~, x) = log p_z(z~) + log p_z(z | z~) - 2 sum_d log s_d.

  #### Examples

  >>> from tfsmooth import kernels, smoothing, standardized
  >>> from tfsmooth.models import made
  >>> inner = smoothing.SmoothedModel(
  ...     made.MADE(2, (8,), 2), made.MADE(2, (8,), 2, conditional=True),
  ...     kernels.SmoothingKernel('gaussian', 0.3))
  >>> model = standardized.wrap(inner, shift=[10.0, -3.0], scale=[2.0, 0.5])
  >>> model.build_variables()
  >>> x_tilde, x = tf.constant([[11.0, -3.2]]), tf.constant([[10.6, -3.1]])
  >>> z_tilde, z = (x_tilde - [10.0, -3.0]) / [2.0, 0.5], (x - [10.0, -3.0]) / [2.0, 0.5]
  >>> by_hand = (inner.prior.log_prob(z_tilde) + inner.conditional_model.log_prob(z, z_tilde)
  ...            - 2 * np.log(2.0 * 0.5))
  >>> joint = model.joint_distribution().log_prob({'x_tilde': x_tilde, 'x': x})
  >>> bool(np.allclose(joint, by_hand, atol=1e-5))
  True
  """

  @property
  def kernel(self):
    return self.inner.kernel

  def distribution(self, **conditions):
    del conditions
    raise errors.UserError(
        'A smoothed pair has no closed-form p(x): use likelihood() for its bounds, '
        'smoothed_log_prob() for p(x~) or joint_distribution() for p(x~, x).'
    )

  def smooth(self, x, seeds, **conditions):
    return self._to_x(self.inner.smooth(self._to_z(x), seeds, **conditions))

  def smoothed_log_prob(self, x_tilde, **conditions):
    """log p(x~) in the user's units: p(x~) of the inner pair transformed by f."""
    prior = self.inner.prior.distribution(**conditions)
    return tfd.TransformedDistribution(prior, self.bijector).log_prob(x_tilde)

  def joint_distribution(self, **conditions):
    """The inner pair's joint over {'x_tilde', 'x'} with both parts transformed by f."""
    joint = self.inner.joint_distribution(**conditions)
    return tfd.TransformedDistribution(
        joint, tfb.JointMap({'x_tilde': self.bijector, 'x': self.bijector})
    )
