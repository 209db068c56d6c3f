"""The two-stage smoothed model: p(x~), p(x | x~) and the smoothing kernel q(x~ | x).

Training maximises, over fresh noise every batch (paper eq. 4),

  J = E_x E_{x~ ~ q(.|x)} [ log p(x~) + log p(x | x~) ].

Likelihood bounds, with x~_k ~ q(. | x), k = 1..K, and log w_k = log p(x~_k) + log p(x | x~_k)
- log q(x~_k | x):

  ELBO (paper eq. 3):        log p(x) >= (1/K) sum_k log w_k
  importance-weighted bound: log p(x) >= log (1/K) sum_k w_k      (ours; tighter)

The IW bound tends to log p(x) as K grows only where q(. | x) covers the model's posterior
p(x~ | x): true for Gaussian and Laplace q, not for Uniform q, whose support is a box of
half-width sqrt(3) sigma (measured on modes6_1d: 0.04-0.25 nats above the exact NLL).

Sampling: two-step x~ ~ p(x~), x ~ p(x | x~); single-step (Gaussian q only, paper eq. 2)
x_bar = x~ + sigma^2 grad_x~ log p(x~), with the full gradient through the network.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth import kernels as kernels_lib
from tfsmooth.models import base

samplers = tfp.random


class SmoothedModel(keras.Model):
  """p(x) = int p(x~) p(x | x~) dx~ with its smoothing kernel q(x~ | x).

  Args:
    prior: unconditional `DensityModel`, p(x~).
    conditional: conditional `DensityModel` with the same event shape, p(x | x~).
    kernel: `SmoothingKernel` used to smooth the data.
  """

  def __init__(self, prior, conditional, kernel, **kwargs):
    super().__init__(**kwargs)
    if prior.conditional or not conditional.conditional:
      raise errors.UserError(
          'SmoothedModel needs an unconditional prior p(x~) and a conditional model p(x | x~).'
      )
    if prior.event_shape != conditional.event_shape:
      raise errors.UserError(
          f'p(x~) models events of shape {prior.event_shape} but p(x | x~) '
          f'{conditional.event_shape}; they must agree.'
      )
    if not isinstance(kernel, kernels_lib.SmoothingKernel):
      raise TypeError(f'kernel must be a SmoothingKernel, got {type(kernel).__name__}.')
    self.prior = prior
    self.conditional = conditional
    self.kernel = kernel
    self.event_shape = prior.event_shape

  def build_variables(self):
    self.prior.build_variables()
    self.conditional.build_variables()
    self.built = True

  def build(self, input_shape=None):
    del input_shape
    self.build_variables()

  @property
  def num_params(self):
    return self.prior.num_params + self.conditional.num_params

  def training_loss(self, x, seed):
    """Per-example -[log p(x~) + log p(x | x~)] with one fresh x~ ~ q(. | x)."""
    x = self.prior.check_events(x, 'x')
    x_tilde = self.kernel.smooth(x, seed)
    return -(self.prior.log_prob(x_tilde) + self.conditional.log_prob(x, x_tilde))

  def call(self, x, seed=None, training=None):
    """`model(x, seed=..., training=True)`: `training_loss` with `training` seen by sub-layers."""
    del training  # Keras passes it on to the sub-layers.
    return self.training_loss(x, seed)

  def log_terms(self, x, num_samples, seed):
    """K draws x~_k ~ q(. | x) and the terms of their weights.

    `seed` is one seed [2] for the batch, or one per row [N, 2]: then row i's draws, and so its
    terms and bounds, depend on seed[i] alone, whatever else is in the batch.
    Returns (x~ [K, N, ...], log q(x~_k | x), log p(x~_k), log p(x | x~_k)), the last three [K, N].
    """
    x = self.prior.check_events(x, 'x')
    q = self.kernel(x)
    if tf.convert_to_tensor(seed).shape.rank == 2:
      draws = base.map_rows(
          lambda a: self.kernel(a[0]).sample(num_samples, seed=a[1]),
          (x, seed),
          fn_output_signature=tf.TensorSpec((num_samples,) + self.event_shape),
      )
      x_tilde = tf.transpose(draws, [1, 0] + list(range(2, 2 + len(self.event_shape))))
    else:
      x_tilde = q.sample(num_samples, seed=seed)
    log_q = q.log_prob(x_tilde)
    flat_tilde = tf.reshape(x_tilde, (-1,) + self.event_shape)
    flat_x = tf.reshape(tf.broadcast_to(x, tf.shape(x_tilde)), (-1,) + self.event_shape)
    unflatten = lambda t: tf.reshape(t, tf.shape(log_q))  # noqa: E731
    return (
        x_tilde,
        log_q,
        unflatten(self.prior.log_prob(flat_tilde)),
        unflatten(self.conditional.log_prob(flat_x, flat_tilde)),
    )

  def log_weights(self, x, num_samples, seed):
    """log w_k = log p(x~_k) + log p(x | x~_k) - log q(x~_k | x): shape [K, N]."""
    _, log_q, log_prior, log_conditional = self.log_terms(x, num_samples, seed)
    return log_prior + log_conditional - log_q

  def bounds(self, x, num_samples, seed):
    """(ELBO, importance-weighted bound) on log p(x), per example, from the same K draws."""
    log_w = self.log_weights(x, num_samples, seed)
    elbo = tf.reduce_mean(log_w, axis=0)
    iw = tf.reduce_logsumexp(log_w, axis=0) - math.log(num_samples)
    return elbo, iw

  def sample_smoothed(self, num_samples, seed):
    """x~ ~ p(x~)."""
    return self.prior.sample(num_samples, seed=seed)

  def sample(self, num_samples, seed):
    """Two-step samples: x~ ~ p(x~), then x ~ p(x | x~)."""
    prior_seed, conditional_seed = samplers.split_seed(seed)
    return self.denoise(self.sample_smoothed(num_samples, prior_seed), conditional_seed)

  def sample_rows(self, seeds):
    """Two-step draws (x, x~), row i from seeds[i] [N, 2] alone."""
    prior_seeds, conditional_seeds = _split_rows(seeds, 2)
    x_tilde = self.prior.sample_rows(prior_seeds)
    return self.conditional.sample_rows(conditional_seeds, conditioning=x_tilde), x_tilde

  def denoise_rows(self, x_tilde, seeds):
    """x ~ p(x | x~), row i from seeds[i] [N, 2] alone."""
    return self.conditional.sample_rows(seeds, conditioning=x_tilde)

  def inpaint_rows(self, x, num_known_rows, seeds):
    """`inpaint` with row i drawn from seeds[i] [N, 2] alone."""
    x = self.prior.check_events(x, 'x')
    smooth_seeds, prior_seeds, conditional_seeds = _split_rows(seeds, 3)
    x_tilde = base.map_rows(
        lambda a: self.kernel.smooth(a[0], a[1]),
        (x, smooth_seeds),
        fn_output_signature=tf.TensorSpec(self.event_shape),
    )
    x_tilde = self.prior.complete_rows(x_tilde, num_known_rows, prior_seeds)
    return self.conditional.complete_rows(
        x, num_known_rows, conditional_seeds, conditioning=x_tilde
    )

  def sample_single_step(self, num_samples, seed):
    """Single-step samples: x~ ~ p(x~) denoised by x~ + sigma^2 grad log p(x~)."""
    return self.denoise_single_step(self.sample_smoothed(num_samples, seed))

  def denoise(self, x_tilde, seed):
    """x ~ p(x | x~) for given smoothed (noisy) points x~."""
    return self.conditional.sample(None, seed=seed, conditioning=x_tilde)

  def inpaint(self, x, num_known_rows, seed):
    """Completes images x [N, H, W, C] below their top `num_known_rows` rows (paper Fig. 14).

    x~_top = x_top + e, e ~ q; x~_bottom ~ p(x~_bottom | x~_top); then
    x_bottom ~ p(x_bottom | x_top, x~) with the stacked model. Needs models with a
    `complete(x_known, num_known_rows, seed, conditioning=None)` sampler (PixelCNN).
    """
    x = self.prior.check_events(x, 'x')
    smooth_seed, prior_seed, conditional_seed = samplers.split_seed(seed, 3)
    x_tilde = self.prior.complete(self.kernel.smooth(x, smooth_seed), num_known_rows, prior_seed)
    return self.conditional.complete(x, num_known_rows, conditional_seed, conditioning=x_tilde)

  def denoise_single_step(self, x_tilde):
    """x_bar = x~ + sigma^2 grad_x~ log p(x~) (Tweedie's formula; Gaussian q only)."""
    if not self.kernel.is_gaussian:
      raise errors.UserError(
          'Single-step (gradient) denoising is derived for Gaussian smoothing; '
          f'this model uses {self.kernel.name}. Use denoise() (p(x | x~)) '
          'instead.'
      )
    x_tilde = self.prior.check_events(x_tilde, 'x_tilde')
    return x_tilde + self.kernel.sigma**2 * score(self.prior, x_tilde)


def score(model, x):
  """grad_x log p(x), the full gradient through the network (all earlier dimensions)."""
  with tf.GradientTape() as tape:
    tape.watch(x)
    log_prob = model.log_prob(x)
  return tape.gradient(log_prob, x)


def _split_rows(seeds, n):
  """Per-row `split_seed`: seeds [N, 2] -> n seed arrays [N, 2]."""
  split = base.map_rows(
      lambda s: tf.stack(samplers.split_seed(s, n)),
      seeds,
      fn_output_signature=tf.TensorSpec([n, 2], tf.int32),
  )
  return tf.unstack(split, axis=1)
