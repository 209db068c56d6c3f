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

Noise-conditional pairs (both stages conditioned on the level: the 'sigma' condition of
`models.context`) smooth, score, bound and sample at any level in their range, one per row
(`sigma=` [N]; the reference level where none is given), and, with a Gaussian kernel, have a
fourth sampler, `annealed` (`Annealing`): x~ ~ p(x~ | sigma_max) drawn autoregressively, then
walked down a ladder of levels with the model's own score grad log p(x~ | sigma) by Langevin
steps (annealed Langevin dynamics, Song & Ermon 2019), ending with p(x | x~, sigma_min) or the
single step there. (Tweedie steps, the denoised mean re-noised to the next level, were tried
and left out: given the true score of a 1-D mixture they miss the smoothed density by a KS
statistic of 0.04-0.05 at 4000 draws, where Langevin steps pass; tests/test_noise_conditional.py.)
"""

import dataclasses

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth import kernels as kernels_lib
from tfsmooth.models import base
from tfsmooth.models import context
from tfsmooth.models import interface

tfd = tfp.distributions
ANNEALING_ENDS = ('two_step', 'single_step')
_ANNEALED_SALT = 7919  # folded into a row's seed for the annealed sampler's draws


@dataclasses.dataclass(frozen=True)
class Annealing:
  """The `annealed` sampler of a noise-conditional pair (module docstring).

  Attributes:
    levels: L, levels of the ladder, geometric from sigma_max down to sigma_min.
    steps: T, score steps per level (L T score evaluations per sample, plus the start's and
      the end's network passes).
    step_size: epsilon, relative to the level's variance: Langevin at level sigma_l moves
      x += a/2 grad log p(x | sigma_l) + sqrt(a) z with a = epsilon sigma_l^2 (annealed
      Langevin dynamics' a_l = eps sigma_l^2 / sigma_L^2 with eps = epsilon sigma_L^2).
    end: 'two_step' (x ~ p(x | x~, sigma_min)) or 'single_step' (x~ + sigma_min^2 score).
  """

  levels: int = 10
  steps: int = 5
  step_size: float = 0.5
  end: str = 'two_step'

  def __post_init__(self):
    if self.levels < 2 or self.steps < 1 or not self.step_size > 0:
      raise errors.UserError(
          f'The annealed sampler needs levels >= 2, steps >= 1 and step_size > 0; got '
          f'{self.levels}, {self.steps}, {self.step_size} (--config.smoothing.annealed_*).'
      )
    if self.end not in ANNEALING_ENDS:
      raise errors.UserError(
          f'The annealed sampler ends with {self.end!r}: choose one of '
          f'{", ".join(ANNEALING_ENDS)} (--config.smoothing.annealed_end).'
      )

  @property
  def score_evaluations(self):
    return self.levels * self.steps + (self.end == 'single_step')


class SmoothedModel(base.TrainableModel):
  """p(x) = int p(x~) p(x | x~) dx~, fitted with its smoothing kernel q(x~ | x).

  The first stage `prior` is p(x~), a density of the smoothed data x~ = x + e, e ~ q(. | 0);
  the second, `conditional_model`, is p(x | x~). Training maximises
  E_x E_{x~ ~ q(.|x)} [log p(x~) + log p(x | x~)] (`training_loss` is its negative per
  example). `likelihood` bounds log p(x) from below with K draws x~_k ~ q(. | x) (the ELBO and
  the importance-weighted bound, module docstring); `joint_distribution()` is the exact joint
  p(x~) p(x | x~) as a TFP distribution.

  Args:
    prior: unconditional `DensityModel`, p(x~).
    conditional_model: conditional `DensityModel` with the same event shape, p(x | x~).
    kernel: `SmoothingKernel` used to smooth the data.
    annealing: the `Annealing` of the annealed sampler (noise-conditional Gaussian pairs).

  #### Examples

  A pair of tiny MADEs on 2-D points, its bounds and its samples:

  >>> from tfsmooth import kernels, seeds, smoothing
  >>> from tfsmooth.models import made
  >>> pair = smoothing.SmoothedModel(
  ...     made.MADE(2, (8,), 2), made.MADE(2, (8,), 2, conditional=True),
  ...     kernels.SmoothingKernel('gaussian', 0.3))
  >>> pair.build_variables()
  >>> x = tf.constant([[0.5, -1.0], [2.0, 0.0]])
  >>> record = pair.likelihood(x, seeds.rows(0, 'test', 0, 2), num_samples=16)
  >>> bool(tf.reduce_all(record.log_prob >= record.elbo - 1e-5))
  True
  >>> sorted(pair.draw(seeds.rows(0, 'samples', 0, 3)))
  ['single_step', 'smoothed', 'two_step']
  >>> joint = pair.joint_distribution()
  >>> joint.log_prob(joint.sample(4, seed=(1, 2))).shape
  TensorShape([4])

  #### References

  [1]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  [2]: Yuri Burda, Roger Grosse, Ruslan Salakhutdinov. Importance Weighted Autoencoders.
       ICLR 2016 (the importance-weighted bound). https://arxiv.org/abs/1509.00519
  """

  smoothed = True
  exact_likelihood = False

  def __init__(self, prior, conditional_model, kernel, annealing=None, **kwargs):
    super().__init__(**kwargs)
    if prior.conditional or not conditional_model.conditional:
      raise errors.UserError(
          'SmoothedModel needs an unconditional prior p(x~) and a conditional model p(x | x~).'
      )
    if prior.event_shape != conditional_model.event_shape:
      raise errors.UserError(
          f'p(x~) models events of shape {prior.event_shape} but p(x | x~) '
          f'{conditional_model.event_shape}; they must agree.'
      )
    if set(prior.conditions) != set(conditional_model.conditions):
      raise errors.UserError(
          f'p(x~) is conditioned on {sorted(prior.conditions) or "nothing"} but p(x | x~) on '
          f'{sorted(conditional_model.conditions) or "nothing"}; both stages take the same '
          'conditions.'
      )
    if not isinstance(kernel, kernels_lib.SmoothingKernel):
      raise TypeError(f'kernel must be a SmoothingKernel, got {type(kernel).__name__}.')
    self.prior = prior
    self.conditional_model = conditional_model
    self.kernel = kernel
    self.event_shape = prior.event_shape
    levels = prior.conditions.get(context.SIGMA)
    if (levels is None) != (kernel.sigma_range is None) or (
        levels is not None and (levels.low, levels.high) != kernel.sigma_range
    ):
      raise errors.UserError(
          'A noise-conditional pair needs its kernel and both stages on the same range of '
          f'levels: the stages take {None if levels is None else (levels.low, levels.high)}, '
          f'the kernel {kernel.sigma_range}.'
      )
    self.annealing = annealing or Annealing()

  @property
  def noise_conditional(self):
    """Whether both stages are conditioned on the noise level (one model for every sigma)."""
    return self.kernel.sigma_range is not None

  def _levels(self, conditions):
    """The per-row levels [N] of resolved `conditions` (None for a pair of one level)."""
    return conditions.get(context.SIGMA) if self.noise_conditional else None

  def _variance(self, conditions, ndims):
    """sigma^2 broadcasting against x: the kernel's, or one per row [N, 1, ...]."""
    levels = self._levels(conditions)
    if levels is None:
      return self.kernel.sigma**2
    return tf.reshape(tf.square(levels), tf.concat([tf.shape(levels), [1] * ndims], 0))

  @property
  def conditions(self):
    """The conditions both stages take (`models.interface.Condition`, by keyword)."""
    return self.prior.conditions

  def build_variables(self):
    self.prior.build_variables()
    self.conditional_model.build_variables()
    self.built = True

  def _check_x(self, x, what='x'):
    return self.prior.check_events(x, what)

  def _conditions(self, given, rows_like):
    return interface.resolve_conditions(self, given, interface.rows_of(rows_like))

  def training_loss(self, x, seed, **conditions):
    """Per-example -[log p(x~) + log p(x | x~)] with one fresh x~ ~ q(. | x)."""
    x = self._check_x(x)
    conditions = self._conditions(conditions, x)
    x_tilde = self.kernel.smooth(x, seed, self._levels(conditions))
    return -(
        self.prior.log_prob(x_tilde, **conditions)
        + self.conditional_model.log_prob(x, x_tilde, **conditions)
    )

  @property
  def denoisers(self):
    """'two_step': x ~ p(x | x~); 'single_step': x~ + sigma^2 grad log p(x~) (Gaussian q)."""
    return ('single_step', 'two_step') if self.kernel.is_gaussian else ('two_step',)

  @property
  def samplers(self):
    """'smoothed': x~ ~ p(x~), and each denoiser applied to that x~; for a noise-conditional
    Gaussian pair also 'annealed' (module docstring)."""
    annealed = ('annealed',) if self.noise_conditional and self.kernel.is_gaussian else ()
    return ('smoothed',) + self.denoisers + annealed

  def sampler_conditions(self, sampler):
    """The keywords of the conditions that `sampler` reads: every condition, except that the
    annealed sampler sets its own levels (sigma_max down to sigma_min, `Annealing`) and reads
    no sigma. An export gives a sampler's own signature only these inputs, so that it takes
    none that does nothing (`models.interface.sampler_conditions`)."""
    base.choose(self, 'samplers', [sampler])
    own = {context.SIGMA} if sampler == 'annealed' else set()
    return tuple(keyword for keyword in self.conditions if keyword not in own)

  @property
  def can_inpaint(self):
    return self.prior.can_inpaint and self.conditional_model.can_inpaint

  def facts(self):
    facts = {
        'kernel': self.kernel.name,
        'sigma': float(self.kernel.sigma),
        'num_params_prior': self.prior.num_params,
        'num_params_conditional': self.conditional_model.num_params,
    }
    if self.noise_conditional:
      facts['sigma_range'] = list(self.kernel.sigma_range)
      if 'annealed' in self.samplers:
        facts['annealing'] = dataclasses.asdict(self.annealing)
    return facts

  def log_terms(self, x, num_samples, seeds, **conditions):
    """K draws x~_k ~ q(. | x) per row, row i's from seeds[i] [N, 2] alone, and their terms.

    Returns (x~ [K, N, ...], log q(x~_k | x), log p(x~_k), log p(x | x~_k)), the last three [K, N].
    """
    x = self._check_x(x)
    seeds = base.check_seeds(seeds, x)
    conditions = self._conditions(conditions, x)
    levels = self._levels(conditions)
    q = self.kernel(x, levels)
    row_levels = tf.fill(tf.shape(x)[:1], float(self.kernel.sigma)) if levels is None else levels
    draws = base.map_rows(  # a row's level as a scalar: its draws keep the event shape
        lambda a: self.kernel(a[0], None if levels is None else a[2]).sample(
            num_samples, seed=a[1]
        ),
        (x, seeds, row_levels),
        fn_output_signature=tf.TensorSpec((num_samples,) + self.event_shape),
    )
    x_tilde = tf.transpose(draws, [1, 0] + list(range(2, 2 + len(self.event_shape))))
    log_q = q.log_prob(x_tilde)
    flat_tilde = tf.reshape(x_tilde, (-1,) + self.event_shape)
    flat_x = tf.reshape(tf.broadcast_to(x, tf.shape(x_tilde)), (-1,) + self.event_shape)
    flat_conditions = {  # row i's conditions for each of its K draws
        k: tf.reshape(tf.broadcast_to(v[None], [num_samples, tf.shape(v)[0]]), [-1])
        for k, v in conditions.items()
    }
    unflatten = lambda t: tf.reshape(t, tf.shape(log_q))
    return (
        x_tilde,
        log_q,
        unflatten(self.prior.log_prob(flat_tilde, **flat_conditions)),
        unflatten(self.conditional_model.log_prob(flat_x, flat_tilde, **flat_conditions)),
    )

  def likelihood(self, x, seeds, num_samples=1, **conditions):
    """ELBO and importance-weighted bound on log p(x) from the same K draws (module doc)."""
    _, log_q, log_prior, log_conditional = self.log_terms(x, num_samples, seeds, **conditions)
    log_w = log_prior + log_conditional - log_q
    elbo = tf.reduce_mean(log_w, axis=0)
    iw = tf.reduce_logsumexp(log_w, axis=0) - math.log(num_samples)
    return base.Likelihood(iw, elbo, int(num_samples), False)

  def smoothed_log_prob(self, x_tilde, **conditions):
    """log p(x~) of the first stage."""
    return self.prior.log_prob(x_tilde, **conditions)

  def joint_distribution(self, **conditions):
    """The pair as `tfd.JointDistributionNamed` over {'x_tilde': x~, 'x': x}: its `log_prob`
    is the exact log p(x~) + log p(x | x~) and `sample` draws x~ ~ p(x~), then x ~ p(x | x~).
    (The marginal p(x) has no closed form: `likelihood` bounds it, with q(x~ | x) as the
    proposal.)"""
    conditions = {k: v for k, v in conditions.items() if v is not None}
    if conditions:
      rows = interface.rows_of(next(iter(conditions.values())))
      conditions = self._conditions(conditions, tf.zeros([rows]))
    else:
      interface.resolve_conditions(self, {}, 1)
    return tfd.JointDistributionNamed(
        dict(
            x_tilde=self.prior.distribution(**conditions),
            x=lambda x_tilde: self.conditional_model.distribution(x_tilde, **conditions),
        )
    )

  def smooth(self, x, seeds, **conditions):
    """x~ = x + e, e ~ q, row i from seeds[i] alone."""
    x = self._check_x(x)
    seeds = base.check_seeds(seeds, x)
    levels = self._levels(self._conditions(conditions, x))
    row_levels = tf.fill(tf.shape(x)[:1], float(self.kernel.sigma)) if levels is None else levels
    return base.map_rows(
        lambda a: self.kernel.smooth(a[0], a[1], None if levels is None else a[2]),
        (x, seeds, row_levels),
        fn_output_signature=tf.TensorSpec(self.event_shape),
    )

  def draw(self, seeds, samplers=None, **conditions):
    """{sampler: [N, ...]}: x~ ~ p(x~) per row and the chosen denoisers of that same x~.

    Row i's seed splits into the seed of its x~ and the seed of its denoising."""
    samplers = base.choose(self, 'samplers', samplers)
    seeds = base.check_seeds(seeds)
    conditions = self._conditions(conditions, seeds)
    out = {}
    if 'annealed' in samplers:
      out['annealed'] = self._annealed(seeds, conditions)
    if set(samplers) - {'annealed'}:
      prior_seeds, denoise_seeds = _split_rows(seeds, 2)
      x_tilde = self.prior.sample_rows(prior_seeds, **conditions)
      if 'smoothed' in samplers:
        out['smoothed'] = x_tilde
      chosen = [name for name in self.denoisers if name in samplers]
      if chosen:
        out.update(self.denoise(x_tilde, denoise_seeds, chosen, **conditions))
    return {name: out[name] for name in samplers}

  def denoise(self, x_tilde, seeds, denoisers=None, **conditions):
    """{denoiser: x} for given smoothed points x~: 'two_step' draws x ~ p(x | x~) (row i from
    seeds[i] alone), 'single_step' is x~ + sigma^2 grad log p(x~) (seeds unused: may be None)."""
    denoisers = base.choose(self, 'denoisers', denoisers)
    x_tilde = self._check_x(x_tilde, 'x_tilde')
    conditions = self._conditions(conditions, x_tilde)
    out = {}
    if 'single_step' in denoisers:
      out['single_step'] = self.denoise_single_step(x_tilde, **conditions)
    if 'two_step' in denoisers:
      seeds = base.check_seeds(seeds, x_tilde)
      out['two_step'] = self.conditional_model.sample_rows(
          seeds, conditioning=x_tilde, **conditions
      )
    return out

  def inpaint(self, x, num_known_rows, seeds, **conditions):
    """Completes images x [N, H, W, C] below their top num_known_rows[i] rows (paper Fig. 14),
    row i from seeds[i] alone: x~_top = x_top + e, e ~ q; x~_bottom ~ p(x~_bottom | x~_top);
    then x_bottom ~ p(x_bottom | x_top, x~) with the stacked model."""
    if not self.can_inpaint:
      raise errors.UserError(
          'This pair cannot inpaint: only image pairs (PixelCNN++) complete images below '
          'given rows.'
      )
    seeds = base.check_seeds(seeds, x)
    conditions = self._conditions(conditions, seeds)
    smooth_seeds, prior_seeds, conditional_seeds = _split_rows(seeds, 3)
    x_tilde = self.prior.complete_rows(
        self.smooth(x, smooth_seeds, **conditions), num_known_rows, prior_seeds, **conditions
    )
    return self.conditional_model.complete_rows(
        x, num_known_rows, conditional_seeds, conditioning=x_tilde, **conditions
    )

  def denoise_single_step(self, x_tilde, **conditions):
    """x_bar = x~ + sigma^2 grad_x~ log p(x~) (Tweedie's formula; Gaussian q only)."""
    if not self.kernel.is_gaussian:
      raise errors.UserError(
          'Single-step (gradient) denoising is derived for Gaussian smoothing; '
          f'this model uses {self.kernel.name}. Use the two_step denoiser (p(x | x~)) instead.'
      )
    x_tilde = self._check_x(x_tilde, 'x_tilde')
    conditions = self._conditions(conditions, x_tilde)
    variance = self._variance(conditions, len(self.event_shape))
    return x_tilde + variance * score(self.prior, x_tilde, **conditions)

  def _annealed(self, seeds, conditions):
    """The annealed sampler (module docstring, `Annealing`), row i from seeds[i] alone."""
    plan = self.annealing
    low, high = self.kernel.sigma_range
    rows = tf.shape(seeds)[0]
    others = {k: v for k, v in conditions.items() if k != context.SIGMA}
    at = lambda level: {**others, context.SIGMA: tf.fill([rows], tf.cast(level, tf.float32))}  # noqa: E731,E501
    keys = base.map_rows(
        lambda s: tf.stack(
            tfp.random.split_seed(tf.random.experimental.stateless_fold_in(s, _ANNEALED_SALT), 3)
        ),
        seeds,
        fn_output_signature=tf.TensorSpec([3, 2], tf.int32),
    )
    start_seeds, noise_seeds, end_seeds = tf.unstack(keys, axis=1)
    steps = plan.levels * plan.steps
    noise = base.map_rows(  # every step's Gaussian noise of a row, from its own seed
        lambda s: tf.random.stateless_normal((steps,) + self.event_shape, s),
        noise_seeds,
        fn_output_signature=tf.TensorSpec((steps,) + self.event_shape),
    )
    x = self.prior.sample_rows(start_seeds, **at(high))
    x = anneal(x, lambda x, level: score(self.prior, x, **at(level)), noise, plan, low, high)
    if plan.end == 'single_step':
      return x + low**2 * score(self.prior, x, **at(low))
    return self.conditional_model.sample_rows(end_seeds, conditioning=x, **at(low))


def ladder(plan, low, high):
  """The levels of `plan` (an `Annealing`): geometric from `high` down to `low`."""
  return [float(v) for v in np.geomspace(high, low, plan.levels)]


def anneal(x, score_fn, noise, plan, low, high):
  """Walks x~ [N, ...] (a draw at level `high`) down the ladder of `plan` with `score_fn(x,
  level)` = grad log p(x | level): per level `plan.steps` Langevin steps x += a/2 score +
  sqrt(a) z, a = step_size level^2, z = noise[:, step] ([N, L T, ...]). Returns x at level
  `low`. Any score works: the model's, or a closed form (the tests check the walk with the
  true score of a 1-D mixture). One `tf.while_loop` over the L T steps (`level` a scalar
  tensor): a traced sampler holds one score graph, not L T copies of it (an export of the
  rings pair's 25 x 2 ladder unrolled was 7.4 MB of graph, in a loop 1.7 MB)."""
  levels = tf.constant(ladder(plan, low, high), x.dtype)

  def step(k, x):
    level = levels[k // plan.steps]
    a = plan.step_size * tf.square(level)
    z = tf.cast(tf.gather(noise, k, axis=1), x.dtype)
    return k + 1, x + 0.5 * a * score_fn(x, level) + tf.sqrt(a) * z

  total = plan.levels * plan.steps
  _, x = tf.while_loop(lambda k, _: k < total, step, (tf.constant(0), x))
  return x


def score(model, x, **conditions):
  """grad_x log p(x), the full gradient through the network (all earlier dimensions)."""
  with tf.GradientTape() as tape:
    tape.watch(x)
    log_prob = model.log_prob(x, **conditions)
  return tape.gradient(log_prob, x)


def _split_rows(seeds, n):
  """Per-row `split_seed`: seeds [N, 2] -> n seed arrays [N, 2]."""
  split = base.map_rows(
      lambda s: tf.stack(tfp.random.split_seed(s, n)),
      seeds,
      fn_output_signature=tf.TensorSpec([n, 2], tf.int32),
  )
  return tf.unstack(split, axis=1)
