"""The contract every density model in tfsmooth follows.

A `DensityModel` is a Keras 3 model that owns the weights; its `distribution(conditioning)`
returns a `tfd.Distribution` whose `log_prob` and seeded `sample` work eagerly, under
`tf.function` and under any `tf.distribute` strategy:

  * unconditional (`conditional=False`): `distribution()` is p(x), batch shape [],
    event shape `event_shape`;
  * conditional (`conditional=True`): `distribution(c)` is p(x | c) for a batch of
    conditioning values `c` of shape [N, *event_shape] (in tfsmooth, c is the smoothed
    x~); batch shape [N], same event shape.

The trainer, the two-stage model and the exporters use nothing but this interface.

A trained model that scores and draws x (a plain `DensityModel` or a `SmoothedModel` pair)
answers one interface, so that callers ask the model instead of branching on its kind:

  model.likelihood(x, seeds, num_samples)  `Likelihood` of each row of x
  model.samplers, model.draw(seeds)         {sampler: x} per seed row [N, 2]
  model.denoisers, model.denoise(x~, seeds) {denoiser: x} for given smoothed x~ (pairs)
  model.can_inpaint, model.inpaint(x, num_known_rows, seeds)
  model.exact_likelihood, model.smoothed, model.facts()

Every draw takes one stateless seed per row: row i of a result depends on seeds[i] and row i
of the inputs alone, whatever else is in the batch (so results do not depend on how a batch is
split across replicas or requests).
"""

import math
from typing import NamedTuple

import keras
import tensorflow as tf

from tfsmooth import errors


class Likelihood(NamedTuple):
  """log p(x) per row: exact (`log_prob` and `elbo` equal, `num_samples` 1), or a pair's
  importance-weighted bound `log_prob` = log (1/K) sum_k w_k and its `elbo` from the same K
  draws, both <= log p(x)."""

  log_prob: tf.Tensor
  elbo: tf.Tensor
  num_samples: int
  exact: bool


class DensityModel(keras.Model):
  """Base class: a trainable p(x) or p(x | c) over events of shape `event_shape`.

  Subclasses define `distribution(self, conditioning=None) -> tfd.Distribution`.
  """

  def __init__(self, event_shape, conditional=False, **kwargs):
    # Data and densities stay float32 under a mixed-precision policy; the layers inside cast
    # their own inputs to the compute dtype.
    kwargs.setdefault('autocast', False)
    super().__init__(**kwargs)
    self.event_shape = tuple(int(d) for d in event_shape)
    self.conditional = bool(conditional)

  def log_prob(self, x, conditioning=None):
    """log p(x) or log p(x | conditioning), one value per row of x."""
    x = self.check_events(x, 'x')
    return self.distribution(self._check_conditioning(conditioning)).log_prob(x)

  def training_loss(self, x, seed=None):
    """Per-example training loss -log p(x) (`seed` unused: the loss is deterministic)."""
    del seed
    return -self.log_prob(x)

  def call(self, x, seed=None, training=None):
    """`model(x, seed=..., training=True)`: the per-example training loss in a Keras call
    context, so that layers such as dropout see `training`."""
    del training  # Keras passes it on to the sub-layers.
    return self.training_loss(x, seed)

  def check_events(self, x, what):
    """Converts x to float32 and checks that its trailing dims are `event_shape`."""
    x = tf.convert_to_tensor(x, tf.float32)
    n = len(self.event_shape)
    trailing = tuple(x.shape)[-n:] if x.shape.rank is not None else self.event_shape
    if len(trailing) < n or any(
        d is not None and d != e for d, e in zip(trailing, self.event_shape)
    ):
      raise errors.UserError(
          f'{what} has shape {tuple(x.shape)}, but {type(self).__name__} '
          f'models events of shape {self.event_shape}: the trailing dimensions '
          'must match (check the data dimension against the model config).'
      )
    return x

  def sample(self, num_samples, seed, conditioning=None):
    """Seeded draws: [num_samples, *event_shape], or one draw per conditioning row."""
    if self.conditional:
      return self.distribution(self._check_conditioning(conditioning)).sample(seed=seed)
    return self.distribution().sample(num_samples, seed=seed)

  def sample_rows(self, seeds, conditioning=None):
    """One draw per row of `seeds` [N, 2] (given conditioning [N, ...] for p(x | c)).

    Row i is `sample(1, seeds[i])` (or the draw for conditioning[i] alone): it depends on its
    own seed and conditioning only, whatever else is in the batch.
    """
    spec = tf.TensorSpec(self.event_shape, tf.float32)
    if conditioning is None:
      return map_rows(lambda s: self.sample(1, s)[0], seeds, fn_output_signature=spec)
    conditioning = self._check_conditioning(conditioning)
    return map_rows(
        lambda a: self.sample(None, a[0], conditioning=a[1][None])[0],
        (seeds, conditioning),
        fn_output_signature=spec,
    )

  def complete_rows(self, x_known, num_known_rows, seeds, conditioning=None):
    """Per-row `complete` (models that have it, e.g. PixelCNN): row i completes x_known[i]
    below its top num_known_rows (one count, or counts [N]) rows from seeds[i] [N, 2] alone."""
    spec = tf.TensorSpec(self.event_shape, tf.float32)
    x_known = self.check_events(x_known, 'x_known')
    rows = tf.broadcast_to(tf.convert_to_tensor(num_known_rows, tf.int32), tf.shape(seeds)[:1])
    if conditioning is None:
      return map_rows(
          lambda a: self.complete(a[0][None], a[1], a[2])[0],
          (x_known, rows, seeds),
          fn_output_signature=spec,
      )
    conditioning = self._check_conditioning(conditioning)
    return map_rows(
        lambda a: self.complete(a[0][None], a[1], a[2], conditioning=a[3][None])[0],
        (x_known, rows, seeds, conditioning),
        fn_output_signature=spec,
    )

  # The trained-model interface (an unconditional model's own samples and exact likelihood).
  smoothed = False
  exact_likelihood = True
  samplers = ('samples',)
  denoisers = ()

  @property
  def can_inpaint(self):
    """Whether the model completes images below given rows (it has a `complete` sampler)."""
    return hasattr(self, 'complete')

  def likelihood(self, x, seeds=None, num_samples=1):
    """Exact `Likelihood` of each row of x (`seeds` and `num_samples` unused)."""
    del seeds, num_samples
    log_prob = self.log_prob(x)
    return Likelihood(log_prob, log_prob, 1, True)

  def draw(self, seeds, samplers=None):
    """{'samples': x ~ p(x)}, row i from seeds[i] [N, 2] alone."""
    choose(self, 'samplers', samplers)
    return {'samples': self.sample_rows(check_seeds(seeds))}

  def inpaint(self, x, num_known_rows, seeds):
    """x below its top num_known_rows[i] rows drawn from p(x_bottom | x_top), row i from
    seeds[i] alone."""
    return self.complete_rows(x, num_known_rows, check_seeds(seeds, x))

  def facts(self):
    """What a metrics record or an export states about the model beyond its parameters."""
    return {}

  def build_variables(self):
    """Creates the weights by scoring a dummy batch (call inside `strategy.scope()`)."""
    x = tf.zeros((1,) + self.event_shape)
    self.log_prob(x, x if self.conditional else None)
    self.built = True

  def build(self, input_shape=None):
    del input_shape  # the event shape is fixed at construction
    self.build_variables()

  @property
  def num_params(self):
    """Number of trainable scalars (after `build_variables`)."""
    return int(sum(math.prod(v.shape) for v in self.trainable_variables))

  def _check_conditioning(self, conditioning):
    if self.conditional and conditioning is None:
      raise errors.UserError(
          f'{type(self).__name__} is conditional: pass conditioning=x_tilde '
          f'of shape [N, {", ".join(map(str, self.event_shape))}].'
      )
    if not self.conditional and conditioning is not None:
      raise errors.UserError(f'{type(self).__name__} is unconditional: do not pass conditioning.')
    return None if conditioning is None else self.check_events(conditioning, 'conditioning')


def map_rows(fn, elems, fn_output_signature):
  """tf.map_fn over rows, `fn` left unconverted by AutoGraph (whose rewrite of the models'
  super() calls and Python control flow is not needed here and can fail). Called eagerly, the
  loop is traced once into a graph: an eager tf.map_fn runs Python once per row."""

  def loop():
    return tf.map_fn(
        tf.autograph.experimental.do_not_convert(fn),
        elems,
        fn_output_signature=fn_output_signature,
    )

  return tf.function(loop)() if tf.executing_eagerly() else loop()


def check_seeds(seeds, rows_of=None):
  """`seeds` as a tensor, checked to be integer [N, 2]: one stateless seed per row (N the rows of
  `rows_of` where both are known statically)."""
  seeds = tf.convert_to_tensor(seeds)
  shape = seeds.shape
  n = None if rows_of is None else tf.TensorShape(getattr(rows_of, 'shape', None))
  n = None if n is None or n.rank is None or n.rank == 0 else n[0]
  fits = shape.rank is None or (
      shape.rank == 2 and shape[1] in (None, 2) and (n is None or shape[0] in (None, n))
  )
  if not seeds.dtype.is_integer or not fits:
    rows = f' with N = {n}, the rows of the input' if n is not None else ''
    raise errors.UserError(
        f'seeds is {seeds.dtype.name} of shape {tuple(shape)}, but draws take one stateless seed '
        f'per row: integer [N, 2]{rows}. From one base seed s, tfsmooth.seeds.rows(s, '
        "'samples', 0, N) gives such rows."
    )
  return seeds


def choose(model, kind, names):
  """`names` of the model's `kind` ('samplers' or 'denoisers'; None: all of them), refused
  with the model's choices when one is unknown."""
  offered = getattr(model, kind)
  names = offered if names is None else tuple(names)
  unknown = [n for n in names if n not in offered]
  if unknown:
    raise errors.UserError(
        f'{type(model).__name__} has no {kind[:-1]} {", ".join(map(repr, unknown))}; its '
        f'{kind} are {", ".join(offered) or "none"}.'
    )
  return names
