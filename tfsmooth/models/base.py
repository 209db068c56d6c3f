"""The Keras setup every tfsmooth model shares, and the `DensityModel` contract.

`TrainableModel` is what a plain density, a smoothed pair and a model in the user's units have
in common as Keras models: float32 data under any dtype policy, weights built by
`build_variables()`, a per-example `training_loss(x, seed)` that `model(x, seed=...)` returns,
and Keras's own training loop: `model.compile(optimizer=...)` then `model.fit(x)` (an array or a
`tf.data.Dataset` of x, no targets) minimises the mean training loss, with a fresh noise seed
per step from a `keras.random.SeedGenerator`.

A `DensityModel` is a `TrainableModel` whose `distribution(conditioning)` returns a
`tfd.Distribution` whose `log_prob` and seeded `sample` work eagerly, under `tf.function` and
under any `tf.distribute` strategy:

  * unconditional (`conditional=False`): `distribution()` is p(x), batch shape [],
    event shape `event_shape`;
  * conditional (`conditional=True`): `distribution(c)` is p(x | c) for a batch of
    conditioning values `c` of shape [N, *event_shape] (in tfsmooth, c is the smoothed
    x~); batch shape [N], same event shape.

The trainer, the two-stage model and the exporters use nothing but this contract and the
trained-model interface of `models.interface`.
"""

import math

import keras
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.models import interface

# Re-exported: the interface's record and argument checks, used by every model module.
Likelihood = interface.Likelihood
check_seeds = interface.check_seeds
choose = interface.choose


class TrainableModel(keras.Model):
  """Base of every tfsmooth model (module docstring): Keras setup written once.

  Subclasses define `build_variables()` and `training_loss(x, seed, **conditions)`. A plain
  density, a smoothed pair and a `Standardized` model are all `TrainableModel`s, so each trains
  with Keras's own loop: `model.compile(optimizer=...)` then `model.fit(x)`, x an array or a
  `tf.data.Dataset` of x (no targets), a freshly constructed model included. That loop is for
  quick experiments on one device; for EMA weights, several workers, TPUs, preemption-safe
  checkpoints and best-on-validation selection use the trainer (`launch/train.py`).

  #### Mathematical Details

  `fit` minimises, over batches B_t of the data, the model's own mean training loss

    L_t = (1 / |B_t|) sum_{x in B_t} training_loss(x, seed_t)   (+ the layers' extra losses),

  with training_loss(x) = -log p(x) for a density and -[log p(x~) + log p(x | x~)],
  x~ ~ q(. | x), for a smoothed pair (the negative of Meng et al.'s objective [1], eq. 4), and
  seed_t the t-th seed of the `keras.random.SeedGenerator(seed)` that `compile` makes: fresh
  noise every step, the same noise for the same seed.

  #### Examples

  A pair of tiny MADEs trained by Keras on 2-D points:

  >>> from tfsmooth import kernels, smoothing
  >>> from tfsmooth.models import made
  >>> keras.utils.set_random_seed(0)
  >>> pair = smoothing.SmoothedModel(
  ...     made.MADE(2, (16,), 2), made.MADE(2, (16,), 2, conditional=True),
  ...     kernels.SmoothingKernel('gaussian', 0.3))
  >>> x = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
  >>> pair.compile(optimizer=keras.optimizers.Adam(1e-2), seed=0)
  >>> losses = pair.fit(x, batch_size=64, epochs=4, verbose=0).history['loss']
  >>> bool(losses[-1] < losses[0])
  True

  A `tf.data.Dataset` of x works the same way; a loss is refused (the model has its own):

  >>> _ = pair.fit(tf.data.Dataset.from_tensor_slices(x).batch(64), epochs=1, verbose=0)
  >>> pair.compile(optimizer='adam', loss='mse')
  Traceback (most recent call last):
  ...
  tfsmooth.errors.UserError: SmoothedModel.compile takes no loss: ...

  #### References

  [1]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  """

  # The trained-model interface's defaults (`models.interface.TrainedModel`).
  smoothed = False
  exact_likelihood = True
  samplers = ('samples',)
  denoisers = ()
  conditions = {}

  def __init__(self, **kwargs):
    # Data and densities stay float32 under a mixed-precision policy; the layers inside cast
    # their own inputs to the compute dtype.
    kwargs.setdefault('autocast', False)
    super().__init__(**kwargs)
    object.__setattr__(self, '_fit_seeds', None)  # untracked: not among the model's weights

  def build_variables(self):
    """Creates the weights (call inside `strategy.scope()`)."""
    raise NotImplementedError

  def build(self, input_shape=None):
    del input_shape  # the event shape is fixed at construction
    self.build_variables()

  def __call__(self, *args, **kwargs):
    # An unbuilt model (a first call in `fit`) builds before Keras opens its name scope, which
    # would otherwise prefix every weight's path with the model's name ('smoothed_model_1/...'):
    # weights keep the paths that `build_variables()` gives, by which checkpoints key them.
    if not self.built:
      self.build_variables()
    return super().__call__(*args, **kwargs)

  @property
  def num_params(self):
    """Number of trainable scalars (after `build_variables`)."""
    return int(sum(math.prod(v.shape) for v in self.trainable_variables))

  def facts(self):
    """What a metrics record or an export states about the model beyond its parameters."""
    return {}

  def call(self, inputs, seed=None, training=None):
    """`model(x, seed=..., training=True)`: the per-example training loss in a Keras call
    context, so that layers such as dropout see `training`. `inputs` is x, or a dict of x
    and the model's conditions ({'x': ..., 'labels': ...}). Without a seed (inside `fit`),
    the seed is the next of the generator `compile` made."""
    del training  # Keras passes it on to the sub-layers.
    if isinstance(inputs, dict):
      inputs = dict(inputs)
      x = inputs.pop('x')
    else:
      x, inputs = inputs, {}
    if seed is None and self._fit_seeds is not None:
      seed = tf.cast(self._fit_seeds.next(), tf.int32)
    if self.conditions:
      inputs = interface.training_conditions(self, inputs, interface.rows_of(x), seed)
    return self.training_loss(x, seed, **inputs)

  def compile(self, optimizer='adam', *, seed=0, **kwargs):
    """Keras `compile` for `model.fit(x)`: the loss is the model's own mean training loss (no
    `loss` argument), and each step draws its noise from `keras.random.SeedGenerator(seed)`.
    Keras's default `jit_compile='auto'` stays off on a CPU-only host (XLA's CPU convolutions
    are slower here). For EMA weights, several workers, TPUs, preemption-safe checkpoints and
    best-on-validation selection use the trainer (`launch/train.py`) instead."""
    if kwargs.get('loss') is not None:
      raise errors.UserError(
          f'{type(self).__name__}.compile takes no loss: the model minimises its own training '
          "loss (-log p(x), or a pair's -[log p(x~) + log p(x | x~)]). Drop loss=."
      )
    kwargs.pop('loss', None)
    object.__setattr__(self, '_fit_seeds', keras.random.SeedGenerator(seed, name='fit_seeds'))
    super().compile(optimizer=optimizer, **kwargs)

  def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
    """The mean of the per-example losses `y_pred` (what `call` returns), plus layer losses."""
    del x, y, training
    if sample_weight is None:
      loss = tf.reduce_mean(y_pred)
    else:
      weights = tf.cast(sample_weight, y_pred.dtype)
      loss = tf.reduce_sum(y_pred * weights) / tf.reduce_sum(weights)
    if self.losses:
      loss += tf.add_n([tf.cast(extra, loss.dtype) for extra in self.losses])
    return loss


class DensityModel(TrainableModel):
  """A trainable p(x) or p(x | c) over events of shape `event_shape`.

  Subclasses define `distribution(self, conditioning=None, **conditions) -> tfd.Distribution`
  (the contract of the module docstring); the rest follows from it: `log_prob`, seeded `sample`
  and `sample_rows`, the exact `likelihood` of the trained-model interface, and the training
  loss -log p(x) that `fit` and the trainer minimise. MADE, RealNVP and PixelCNN are
  `DensityModel`s.

  #### Mathematical Details

  `log_prob(x)` is `distribution().log_prob(x)` (or `distribution(c).log_prob(x)`, one c per
  row); `likelihood(x)` is that exact log p(x), with `elbo` equal to it; `training_loss(x)` is
  -log p(x), whose minimum over a batch is the maximum-likelihood fit.

  #### Examples

  A density model in a few lines: a unit-variance Gaussian with a trainable mean.

  >>> from tfsmooth.models import base
  >>> tfd = tfp.distributions
  >>> class Gaussian(base.DensityModel):
  ...   def __init__(self, size):
  ...     super().__init__((size,))
  ...     self.loc = self.add_weight(shape=(size,), initializer='zeros', name='loc')
  ...   def distribution(self, conditioning=None):
  ...     return tfd.Independent(tfd.Normal(self.loc, 1.0), reinterpreted_batch_ndims=1)
  >>> model = Gaussian(2)
  >>> x = np.random.default_rng(0).normal([3.0, -1.0], 1.0, size=(64, 2)).astype(np.float32)
  >>> bool(np.allclose(model.log_prob(x), tfd.MultivariateNormalDiag(tf.zeros(2)).log_prob(x)))
  True
  >>> model.draw(tf.constant([[0, 1], [0, 2]]))['samples'].shape
  TensorShape([2, 2])

  The gradient of the mean -log p(x) in the mean is loc - mean(x): one full-batch SGD step of
  rate 1 lands on the maximum-likelihood estimate, the data mean.

  >>> model.compile(optimizer=keras.optimizers.SGD(1.0))
  >>> _ = model.fit(x, batch_size=64, epochs=1, verbose=0)
  >>> bool(np.allclose(model.loc, x.mean(axis=0), atol=1e-5))
  True
  """

  embed = None  # a `context.ConditionEmbedding` in models with conditions

  def __init__(self, event_shape, conditional=False, **kwargs):
    super().__init__(**kwargs)
    self.event_shape = tuple(int(d) for d in event_shape)
    self.conditional = bool(conditional)  # models p(x | x~): takes `conditioning`

  def condition_vector(self, conditions):
    """h [N, dim] of the model's conditions (per row; [dim] of the defaults where none are
    given), for its network; None for a model without conditions (which refuses any)."""
    if self.embed is None:
      interface.resolve_conditions(self, conditions, 1)
      return None
    values = {
        k: conditions[k] if conditions.get(k) is not None else tf.constant(c.default, c.dtype)
        for k, c in self.conditions.items()
    }
    return self.embed(values)

  def log_prob(self, x, conditioning=None, **conditions):
    """log p(x) or log p(x | conditioning), one value per row of x."""
    x = self.check_events(x, 'x')
    conditions = interface.resolve_conditions(self, conditions, interface.rows_of(x))
    return self.distribution(self._check_conditioning(conditioning), **conditions).log_prob(x)

  def training_loss(self, x, seed=None, **conditions):
    """Per-example training loss -log p(x) (`seed` unused: the loss is deterministic)."""
    del seed
    return -self.log_prob(x, **conditions)

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

  def sample(self, num_samples, seed, conditioning=None, **conditions):
    """Seeded draws: [num_samples, *event_shape], or one draw per conditioning row; a model with
    `conditions` draws one row per value of them (the defaults for `num_samples` rows if none
    are given)."""
    if self.conditional:
      conditioning = self._check_conditioning(conditioning)
      rows = interface.rows_of(conditioning)
      conditions = interface.resolve_conditions(self, conditions, rows)
      return self.distribution(conditioning, **conditions).sample(seed=seed)
    if self.conditions:
      conditions = interface.resolve_conditions(self, conditions, num_samples)
      return self.distribution(**conditions).sample(seed=seed)
    interface.resolve_conditions(self, conditions, num_samples)  # refuses any given
    return self.distribution().sample(num_samples, seed=seed)

  def sample_rows(self, seeds, conditioning=None, **conditions):
    """One draw per row of `seeds` [N, 2] (given conditioning [N, ...] for p(x | c), and the
    model's conditions, [N] each).

    Row i is `sample(1, seeds[i])` (or the draw for conditioning[i] alone): it depends on its
    own seed, conditioning and conditions only, whatever else is in the batch.
    """
    rows = {'seed': seeds, **self._row_inputs(seeds, conditioning, conditions)}
    return map_rows(
        lambda row: self.sample(1, row['seed'], **self._one_row(row))[0],
        rows,
        fn_output_signature=tf.TensorSpec(self.event_shape, tf.float32),
    )

  def complete_rows(self, x_known, num_known_rows, seeds, conditioning=None, **conditions):
    """Per-row `complete` (models that have it, e.g. PixelCNN): row i completes x_known[i]
    below its top num_known_rows (one count, or counts [N]) rows from seeds[i] [N, 2] alone."""
    x_known = self.check_events(x_known, 'x_known')
    counts = tf.broadcast_to(tf.convert_to_tensor(num_known_rows, tf.int32), tf.shape(seeds)[:1])
    rows = {
        'x_known': x_known,
        'counts': counts,
        'seed': seeds,
        **self._row_inputs(x_known, conditioning, conditions),
    }
    return map_rows(
        lambda row: self.complete(
            row['x_known'][None], row['counts'], row['seed'], **self._one_row(row)
        )[0],
        rows,
        fn_output_signature=tf.TensorSpec(self.event_shape, tf.float32),
    )

  def _row_inputs(self, rows_like, conditioning, conditions):
    """{'conditioning': [N, ...] (conditional models), 'conditions': {keyword: [N]}}: the
    per-row inputs of a row-wise draw, checked."""
    rows = interface.rows_of(rows_like)
    out = {'conditions': interface.resolve_conditions(self, conditions, rows)}
    if self.conditional or conditioning is not None:
      out['conditioning'] = self._check_conditioning(conditioning)
    return out

  @staticmethod
  def _one_row(row):
    """The keyword arguments of one row's draw: conditioning and conditions as batches of 1."""
    out = {k: v[None] for k, v in row['conditions'].items()}
    if 'conditioning' in row:
      out['conditioning'] = row['conditioning'][None]
    return out

  @property
  def can_inpaint(self):
    """Whether the model completes images below given rows (it has a `complete` sampler)."""
    return hasattr(self, 'complete')

  def likelihood(self, x, seeds=None, num_samples=1, **conditions):
    """Exact `Likelihood` of each row of x (`seeds` and `num_samples` unused)."""
    del seeds, num_samples
    log_prob = self.log_prob(x, **conditions)
    return Likelihood(log_prob, log_prob, 1, True)

  def draw(self, seeds, samplers=None, **conditions):
    """{'samples': x ~ p(x)}, row i from seeds[i] [N, 2] alone."""
    choose(self, 'samplers', samplers)
    return {'samples': self.sample_rows(check_seeds(seeds), **conditions)}

  def denoise(self, x_tilde, seeds, denoisers=None, **conditions):
    """A plain model has no denoisers: {} for an empty choice, else refused."""
    del x_tilde, seeds, conditions
    choose(self, 'denoisers', () if denoisers is None else denoisers)
    return {}

  def inpaint(self, x, num_known_rows, seeds, **conditions):
    """x below its top num_known_rows[i] rows drawn from p(x_bottom | x_top), row i from
    seeds[i] alone."""
    if not self.can_inpaint:
      raise errors.UserError(
          f'{type(self).__name__} cannot inpaint: only image models (PixelCNN++) complete '
          'images below given rows.'
      )
    return self.complete_rows(x, num_known_rows, check_seeds(seeds, x), **conditions)

  def build_variables(self):
    """Creates the weights by scoring a dummy batch (call inside `strategy.scope()`)."""
    x = tf.zeros((1,) + self.event_shape)
    self.log_prob(x, x if self.conditional else None)
    self.built = True

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
