"""The interface every trained tfsmooth model answers, as types, and its argument checks.

Callers ask the model instead of branching on its kind. `TrainedModel` names what every trained
model answers: a plain density (MADE, RealNVP, PixelCNN++), a smoothed pair, a model in the
user's units (`standardized`) and a loaded SavedModel (`export.loaded.ExportedModel`);
`SmoothedPair` adds what a two-stage model has besides (its kernel, smoothing, p(x~)).

  model.likelihood(x, seeds, num_samples)  `Likelihood` of each row of x
  model.samplers, model.draw(seeds)         {sampler: x} per seed row
  model.denoisers, model.denoise(x~, seeds) {denoiser: x} for given smoothed x~ (pairs)
  model.can_inpaint, model.inpaint(x, num_known_rows, seeds)
  model.exact_likelihood, model.smoothed, model.event_shape, model.facts()
  model.conditions                          the per-row inputs the model is conditioned on

Per-row seeds. Every draw takes one stateless seed per row, integer [N, 2]: row i of a result
depends on seeds[i] and row i of the inputs alone, whatever else is in the batch (so results do
not depend on how a batch is split across replicas or requests). `tfsmooth.seeds.rows` makes
them.

Conditions. A model may be conditioned on per-row inputs besides x: a class label, a noise
level. `model.conditions` maps the keyword of each to its `Condition` (dtype, accepted range,
the value of a row given none), and every member above takes them as keywords
(`model.draw(seeds, labels=y)`), one value per row. Generic code passes a `conditions` dict
through (`model.draw(seeds, **conditions)`) and exporters add one signature input per
`Condition`, so a new kind of conditioning needs no new branch in the callers. A model without
conditions refuses any, naming what to drop. A sampler may read fewer conditions than the model
takes (the annealed sampler sets its own noise levels): `sampler_conditions(model, sampler)`
asks the model which (a model may answer with a `sampler_conditions(sampler)` method; one that
does not reads every condition in every sampler), and a draw given a condition its sampler
does not read ignores it.
"""

import dataclasses
from typing import Mapping, NamedTuple, Protocol, runtime_checkable

import tensorflow as tf

from tfsmooth import errors


class Likelihood(NamedTuple):
  """log p(x) per row: exact (`log_prob` and `elbo` equal, `num_samples` 1), or a pair's
  importance-weighted lower bound `log_prob` = log (1/K) sum_k w_k and its `elbo` from the same
  K draws, both <= log p(x). Always log-densities (higher is better), never NLLs."""

  log_prob: tf.Tensor
  elbo: tf.Tensor
  num_samples: int
  exact: bool


@dataclasses.dataclass(frozen=True)
class Condition:
  """A per-row input a model is conditioned on, besides x and the seeds.

  Attributes:
    keyword: its keyword in the Python interface, e.g. 'labels' or 'sigma'.
    input_name: its input in the export signatures (one value per row), e.g. 'label'.
    dtype: tf.int32 (a class) or tf.float32 (a level).
    low, high: the accepted values, both inclusive.
    default: the value of a row given none (a null class; a reference noise level).
    what: what the values mean, for messages and the export's metadata.
    names: for classes, the name of each value (the last one may be the null class).
    sweep: values at which a run also reports its test figures (e.g. noise levels across the
      range), beside those at the default.
  """

  keyword: str
  input_name: str
  dtype: tf.DType
  low: float
  high: float
  default: float
  what: str
  names: tuple = ()
  sweep: tuple = ()

  def describe(self):
    """The JSON-ready record of this condition (for an export's metadata)."""
    record = {
        'input': self.input_name,
        'dtype': self.dtype.name,
        'range': [self.low, self.high],
        'default': self.default,
        'what': self.what,
    }
    if self.names:
      record['names'] = list(self.names)
    if self.sweep:
      record['sweep'] = list(self.sweep)
    return record

  @classmethod
  def from_record(cls, keyword, record):
    """The `Condition` an export's metadata describes (`describe`)."""
    return cls(
        keyword,
        record['input'],
        tf.as_dtype(record['dtype']),
        record['range'][0],
        record['range'][1],
        record['default'],
        record['what'],
        tuple(record.get('names', ())),
        tuple(record.get('sweep', ())),
    )

  def check(self, values, rows):
    """`values` as a [N] tensor of `dtype`, N = `rows` (a tensor or int); known values are
    checked to lie in [low, high] (a `UserError` naming the keyword and the fix)."""
    values = tf.convert_to_tensor(values)
    if values.dtype.is_floating != self.dtype.is_floating:
      raise errors.UserError(
          f'{self.keyword} must be {self.dtype.name} values ({self.what}); got '
          f'{values.dtype.name}.'
      )
    values = tf.cast(values, self.dtype)
    if values.shape.rank is not None and values.shape.rank != 1:
      raise errors.UserError(
          f'{self.keyword} must hold one value per row, shape [N]; got shape '
          f'{tuple(values.shape)}. Give one value per row of the input.'
      )
    static_rows = tf.get_static_value(rows)
    if values.shape[0] is not None and static_rows is not None and values.shape[0] != static_rows:
      raise errors.UserError(
          f'{self.keyword} has {values.shape[0]} values but the input has {static_rows} rows: '
          f'give one value of {self.keyword} per row.'
      )
    known = tf.get_static_value(values)
    if known is not None and known.size:
      low, high = known.min(), known.max()
      if not (low >= self.low and high <= self.high):
        raise errors.UserError(
            f'{self.keyword} holds values from {low} to {high}, outside [{self.low}, '
            f'{self.high}] ({self.what}). Give values in that range.'
        )
    return values

  def fill(self, rows):
    """[rows] of the default value (rows given none)."""
    return tf.fill(tf.reshape(rows, [1]), tf.constant(self.default, self.dtype))

  def for_training(self, values, seed):
    """The values a training step uses for `values` (a subclass may drop labels to a null
    class, or draw noise levels), from the step's `seed`; here as given."""
    del seed
    return values


def resolve_conditions(model, given, rows):
  """{keyword: [N] tensor} for every condition of `model`: the given values checked, the
  others filled with their defaults; N = `rows`. Keywords the model does not take are refused
  in one paragraph."""
  offered = dict(getattr(model, 'conditions', {}) or {})
  given = {k: v for k, v in (given or {}).items() if v is not None}
  unknown = [k for k in given if k not in offered]
  if unknown:
    takes = (
        f'it takes {", ".join(offered)}'
        if offered
        else 'it was trained without conditioning inputs'
    )
    raise errors.UserError(
        f'{type(model).__name__} was given {", ".join(unknown)}, but {takes}. Drop '
        f'{", ".join(f"{k}=" for k in unknown)}, or use a model trained with them (for class '
        'labels: data.labels=True).'
    )
  return {
      keyword: condition.check(given[keyword], rows) if keyword in given else condition.fill(rows)
      for keyword, condition in offered.items()
  }


def training_conditions(model, given, rows, seed):
  """`resolve_conditions`, then each condition's `for_training` with its own seed folded from
  the step's `seed` (None: as resolved)."""
  resolved = resolve_conditions(model, given, rows)
  if seed is None:
    return resolved
  seed = tf.cast(seed, tf.int32)
  return {
      keyword: model.conditions[keyword].for_training(
          values, tf.random.experimental.stateless_fold_in(seed, 1_000 + i)
      )
      for i, (keyword, values) in enumerate(sorted(resolved.items()))
  }


def rows_of(t):
  """The leading dimension of t: static where known, else a scalar tensor."""
  t = tf.convert_to_tensor(t)
  return t.shape[0] if t.shape.rank and t.shape[0] is not None else tf.shape(t)[0]


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


def sampler_conditions(model, sampler):
  """The keywords of the conditions that `sampler` of `model` reads, in `model.conditions`
  order: what the model's own `sampler_conditions(sampler)` answers (a noise-conditional pair's
  annealed sampler sets its own levels and reads no sigma), or, for a model that does not say,
  all of its conditions. Exporters give a sampler's own signature only these inputs."""
  choose(model, 'samplers', [sampler])
  answer = getattr(model, 'sampler_conditions', None)
  offered = tuple(getattr(model, 'conditions', {}) or {})
  if answer is None:
    return offered
  reads = set(answer(sampler))
  return tuple(keyword for keyword in offered if keyword in reads)


@runtime_checkable
class TrainedModel(Protocol):
  """What every trained model answers (module docstring). `**conditions` are the keywords of
  `conditions`, one value per row each."""

  event_shape: tuple
  exact_likelihood: bool
  smoothed: bool
  samplers: tuple
  denoisers: tuple
  can_inpaint: bool
  conditions: Mapping[str, Condition]

  def likelihood(self, x, seeds=None, num_samples=1, **conditions) -> Likelihood:
    """log p(x) per row: exact, or an importance-weighted bound and the ELBO from K draws."""

  def draw(self, seeds, samplers=None, **conditions) -> dict:
    """{sampler: x [N, ...]}, row i from seeds[i] [N, 2] alone."""

  def denoise(self, x_tilde, seeds, denoisers=None, **conditions) -> dict:
    """{denoiser: x [N, ...]} for given smoothed rows x~ (models with denoisers)."""

  def inpaint(self, x, num_known_rows, seeds, **conditions):
    """Images x with the rows below their top num_known_rows[i] drawn (models that inpaint)."""

  def facts(self) -> dict:
    """What a metrics record or an export states about the model beyond its parameters."""


@runtime_checkable
class SmoothedPair(TrainedModel, Protocol):
  """What a two-stage model adds: p(x) = int p(x~) p(x | x~) dx~ with its kernel q(x~ | x)."""

  kernel: object

  def smooth(self, x, seeds, **conditions):
    """x~ = x + e, e ~ q(. | 0), row i from seeds[i] alone."""

  def smoothed_log_prob(self, x_tilde, **conditions):
    """log p(x~), the first stage's exact log-density."""

  def joint_distribution(self, **conditions):
    """The pair as a TFP joint distribution over {'x_tilde', 'x'}."""
