"""The two-stage smoothed model: p(x~), p(x | x~) and the smoothing kernel q(x~ | x).

Training maximises, over fresh noise every batch (paper eq. 4),

  J = E_x E_{x~ ~ q(.|x)} [ log p(x~) + log p(x | x~) ].

Likelihood bounds, with x~_k ~ q(. | x), k = 1..K, and log w_k = log p(x~_k) + log p(x | x~_k)
- log q(x~_k | x):

  ELBO (paper eq. 3):        log p(x) >= (1/K) sum_k log w_k
  importance-weighted bound: log p(x) >= log (1/K) sum_k w_k      (ours; tighter)

The IW bound tends to log p(x) as K grows only where q(. | x) covers the model's posterior
p(x~ | x): true for Gaussian and Laplace q, not for Uniform q, whose support is a box of
half-width sqrt(3) sigma (RESULTS.md, kernel study).

Samplers, all from one draw x~ ~ p(x~) per seed row: `smoothed` (x~ itself), `two_step`
(x ~ p(x | x~)) and, for Gaussian q only, `single_step` (paper eq. 2)
x_bar = x~ + sigma^2 grad_x~ log p(x~), with the full gradient through the network.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth import kernels as kernels_lib
from tfsmooth.models import base


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

  # The trained-model interface of `models.base` (samplers from one draw of x~ per row).
  smoothed = True
  exact_likelihood = False

  @property
  def denoisers(self):
    """'two_step': x ~ p(x | x~); 'single_step': x~ + sigma^2 grad log p(x~) (Gaussian q)."""
    return ('single_step', 'two_step') if self.kernel.is_gaussian else ('two_step',)

  @property
  def samplers(self):
    """'smoothed': x~ ~ p(x~), and each denoiser applied to that x~."""
    return ('smoothed',) + self.denoisers

  @property
  def can_inpaint(self):
    return self.prior.can_inpaint and self.conditional.can_inpaint

  def facts(self):
    return {
        'kernel': self.kernel.name,
        'sigma': float(self.kernel.sigma),
        'num_params_prior': self.prior.num_params,
        'num_params_conditional': self.conditional.num_params,
    }

  def log_terms(self, x, num_samples, seeds):
    """K draws x~_k ~ q(. | x) per row, row i's from seeds[i] [N, 2] alone, and their terms.

    Returns (x~ [K, N, ...], log q(x~_k | x), log p(x~_k), log p(x | x~_k)), the last three [K, N].
    """
    x = self.prior.check_events(x, 'x')
    seeds = base.check_seeds(seeds, x)
    q = self.kernel(x)
    draws = base.map_rows(
        lambda a: self.kernel(a[0]).sample(num_samples, seed=a[1]),
        (x, seeds),
        fn_output_signature=tf.TensorSpec((num_samples,) + self.event_shape),
    )
    x_tilde = tf.transpose(draws, [1, 0] + list(range(2, 2 + len(self.event_shape))))
    log_q = q.log_prob(x_tilde)
    flat_tilde = tf.reshape(x_tilde, (-1,) + self.event_shape)
    flat_x = tf.reshape(tf.broadcast_to(x, tf.shape(x_tilde)), (-1,) + self.event_shape)
    unflatten = lambda t: tf.reshape(t, tf.shape(log_q))
    return (
        x_tilde,
        log_q,
        unflatten(self.prior.log_prob(flat_tilde)),
        unflatten(self.conditional.log_prob(flat_x, flat_tilde)),
    )

  def likelihood(self, x, seeds, num_samples=1):
    """ELBO and importance-weighted bound on log p(x) from the same K draws (module doc)."""
    _, log_q, log_prior, log_conditional = self.log_terms(x, num_samples, seeds)
    log_w = log_prior + log_conditional - log_q
    elbo = tf.reduce_mean(log_w, axis=0)
    iw = tf.reduce_logsumexp(log_w, axis=0) - math.log(num_samples)
    return base.Likelihood(iw, elbo, int(num_samples), False)

  def smoothed_log_prob(self, x_tilde):
    """log p(x~) of the first stage."""
    return self.prior.log_prob(x_tilde)

  def smooth(self, x, seeds):
    """x~ = x + e, e ~ q, row i from seeds[i] alone."""
    x = self.prior.check_events(x, 'x')
    seeds = base.check_seeds(seeds, x)
    return base.map_rows(
        lambda a: self.kernel.smooth(a[0], a[1]),
        (x, seeds),
        fn_output_signature=tf.TensorSpec(self.event_shape),
    )

  def draw(self, seeds, samplers=None):
    """{sampler: [N, ...]}: x~ ~ p(x~) per row and the chosen denoisers of that same x~.

    Row i's seed splits into the seed of its x~ and the seed of its denoising."""
    samplers = base.choose(self, 'samplers', samplers)
    prior_seeds, denoise_seeds = _split_rows(base.check_seeds(seeds), 2)
    x_tilde = self.prior.sample_rows(prior_seeds)
    out = {'smoothed': x_tilde} if 'smoothed' in samplers else {}
    chosen = [name for name in self.denoisers if name in samplers]
    if chosen:
      out.update(self.denoise(x_tilde, denoise_seeds, chosen))
    return out

  def denoise(self, x_tilde, seeds, denoisers=None):
    """{denoiser: x} for given smoothed points x~: 'two_step' draws x ~ p(x | x~) (row i from
    seeds[i] alone), 'single_step' is x~ + sigma^2 grad log p(x~) (seeds unused: may be None)."""
    denoisers = base.choose(self, 'denoisers', denoisers)
    x_tilde = self.prior.check_events(x_tilde, 'x_tilde')
    out = {}
    if 'single_step' in denoisers:
      out['single_step'] = self.denoise_single_step(x_tilde)
    if 'two_step' in denoisers:
      seeds = base.check_seeds(seeds, x_tilde)
      out['two_step'] = self.conditional.sample_rows(seeds, conditioning=x_tilde)
    return out

  def inpaint(self, x, num_known_rows, seeds):
    """Completes images x [N, H, W, C] below their top num_known_rows[i] rows (paper Fig. 14),
    row i from seeds[i] alone: x~_top = x_top + e, e ~ q; x~_bottom ~ p(x~_bottom | x~_top);
    then x_bottom ~ p(x_bottom | x_top, x~) with the stacked model."""
    smooth_seeds, prior_seeds, conditional_seeds = _split_rows(base.check_seeds(seeds, x), 3)
    x_tilde = self.prior.complete_rows(self.smooth(x, smooth_seeds), num_known_rows, prior_seeds)
    return self.conditional.complete_rows(
        x, num_known_rows, conditional_seeds, conditioning=x_tilde
    )

  def denoise_single_step(self, x_tilde):
    """x_bar = x~ + sigma^2 grad_x~ log p(x~) (Tweedie's formula; Gaussian q only)."""
    if not self.kernel.is_gaussian:
      raise errors.UserError(
          'Single-step (gradient) denoising is derived for Gaussian smoothing; '
          f'this model uses {self.kernel.name}. Use the two_step denoiser (p(x | x~)) instead.'
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
      lambda s: tf.stack(tfp.random.split_seed(s, n)),
      seeds,
      fn_output_signature=tf.TensorSpec([n, 2], tf.int32),
  )
  return tf.unstack(split, axis=1)
