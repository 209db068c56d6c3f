"""The serving signatures of a trained model: their bodies, input checks and descriptions.

`Servable(model, iw_samples)` traces one function per signature of the package docstring's
table; every body checks its inputs inside the graph (`check_inputs`) before the model sees them.
A model with conditions (`model.conditions`, `models.interface.Condition`) gets one more input
per condition in every signature, named by its `input_name`, one value per row: checked like the
other inputs (one row per row of the first input, finite, within the condition's [low, high])
and passed to the model by its keyword. A sampler's own signature, sample_<sampler>, takes only
the conditions that sampler reads (`interface.sampler_conditions`: the annealed sampler sets its
own noise levels, so sample_annealed takes no sigma), so that no input of a signature does
nothing. Nothing here branches on a particular condition, sampler or the model's class: the
model interface answers what to trace.
"""

import contextlib
import functools
import inspect
import logging
import math
import statistics

import numpy as np
import tensorflow as tf

from tfsmooth.models import interface

# Signature output keys of the samplers of the model interface.
SAMPLE_KEYS = {'samples': 'x', 'two_step': 'x', 'smoothed': 'x_tilde'}
# Smoothed values beyond the data range by more than the kernel's noise bound are refused: the
# bound is exceeded with probability NOISE_TAIL per value.
NOISE_TAIL = 1e-12
# Layers' numpy arrays at least this large are captured as constants during tracing.
_CAPTURE_BYTES = 1024


def noise_bound(kernel):
  """t with P(|e| > t) = NOISE_TAIL for one value e ~ q(. | 0) of the kernel at its largest
  level (the whole half-width for the uniform kernel)."""
  sigma = float(kernel.max_sigma)
  if kernel.name == 'gaussian':
    return sigma * statistics.NormalDist().inv_cdf(1.0 - NOISE_TAIL / 2.0)
  if kernel.name == 'laplace':
    return sigma / math.sqrt(2.0) * math.log(1.0 / NOISE_TAIL)
  return sigma * math.sqrt(3.0)


def input_ranges(model):
  """{input: (low, high, what)} of the values the signatures accept.

  Images: tfsmooth's images are 8-bit values v as v / 127.5 - 1 (`data.images`), so x lies in
  [-1, 1] (the bins of the discretized logistic head), and the smoothed x_tilde that a model
  with denoisers takes within its kernel's noise bound of that range (the kernel of a
  `models.interface.SmoothedPair`). Point data has no range. Every condition's input lies in
  the condition's [low, high].
  """
  ranges = {}
  if len(model.event_shape) == 3:
    ranges['x'] = (-1.0, 1.0, 'pixel values: 8-bit value v as v / 127.5 - 1')
    if model.denoisers:
      if not isinstance(model, interface.SmoothedPair):
        raise TypeError(
            f'{type(model).__name__} has denoisers ({", ".join(model.denoisers)}) but no '
            'smoothing kernel (models.interface.SmoothedPair): the range of the x_tilde it '
            'denoises is unknown.'
        )
      kernel = model.kernel
      t = noise_bound(kernel)
      what = (
          f'smoothed pixel values: data in [-1, 1] plus {kernel.name} noise of sigma '
          f'{kernel.max_sigma:g}, beyond {t:.3g} with probability {NOISE_TAIL:g} per value'
      )
      ranges['x_tilde'] = (-1.0 - t, 1.0 + t, what)
  for condition in model.conditions.values():
    ranges[condition.input_name] = (condition.low, condition.high, condition.what)
  return ranges


def _shape_text(trailing):
  return '[' + ', '.join(['N', *map(str, trailing)]) + ']'


def _rows(t):
  """The leading dimension of t, or -1 for a scalar (so that the check itself cannot fail)."""
  return tf.concat([tf.shape(t), [-1]], 0)[0]


def _has_shape(t, trailing):
  """Whether t is [N, *trailing] (any N), as a boolean tensor that works for any rank.

  Read from the shape at run time only: a signature's declared shape is not enforced, and
  TensorFlow folds the rank (tf.rank, tf.size of the shape) into a constant from it, so an
  [N, 1] value for an [N] input would pass a check of the rank. The shape padded with -1
  instead must have -1 right after the last dimension and a dimension N >= 0 first.
  """
  rank = 1 + len(trailing)
  padded = tf.concat([tf.shape(t), tf.fill([rank + 1], -1)], 0)
  return tf.logical_and(
      tf.logical_and(padded[0] >= 0, tf.equal(padded[rank], -1)),
      tf.reduce_all(tf.equal(padded[1:rank], tf.constant(trailing, tf.int32, [len(trailing)]))),
  )


def check_inputs(inputs, trailing, ranges=None, counts=None):
  """`inputs` {name: tensor} behind in-graph checks, in order: each input is [N, *trailing[name]];
  every input has the rows of the first; float inputs are finite; inputs in `ranges`
  {name: (low, high, what)} lie in [low, high]; inputs in `counts` {name: (high, what)} lie in
  [0, high]. Each check runs after the previous one, and every returned tensor after all of
  them, so a bad request fails with the first broken rule's message, which names the input."""
  bounds = {name: (low, high, what) for name, (low, high, what) in (ranges or {}).items()}
  bounds.update({name: (0, high, what) for name, (high, what) in (counts or {}).items()})
  names = list(inputs)
  first = names[0]
  checks = []

  def add(make):
    with tf.control_dependencies(checks[-1:]):
      checks.append(make())

  def shape_check(name):
    message = f'input {name} must have shape {_shape_text(trailing[name])}; got shape'
    x = inputs[name]
    return tf.debugging.Assert(_has_shape(x, trailing[name]), [message, tf.shape(x)], summarize=8)

  def rows_check(name):
    message = (
        f'input {name} must have one row per row of input {first}; got rows ({name}, {first}):'
    )
    counts = [_rows(inputs[name]), _rows(inputs[first])]
    return tf.debugging.Assert(tf.equal(*counts), [message, *counts])

  def finite_check(name):
    return tf.debugging.assert_all_finite(inputs[name], f'input {name} contains NaN or Inf')

  def range_check(name):
    low, high, what = bounds[name]
    message = f'input {name} must hold values in [{low:.4g}, {high:.4g}] ({what}); got values from'
    x = inputs[name]
    inside = tf.reduce_all((x >= tf.cast(low, x.dtype)) & (x <= tf.cast(high, x.dtype)))
    return tf.debugging.Assert(inside, [message, tf.reduce_min(x), 'to', tf.reduce_max(x)])

  for name in names:
    add(lambda name=name: shape_check(name))
  for name in names[1:]:
    add(lambda name=name: rows_check(name))
  for name in names:
    if inputs[name].dtype.is_floating:
      add(lambda name=name: finite_check(name))
  for name in names:
    if name in bounds:
      add(lambda name=name: range_check(name))
  with tf.control_dependencies(checks[-1:]):
    return {name: tf.identity(t) for name, t in inputs.items()}


@contextlib.contextmanager
def _constants_captured(model):
  """While tracing: the numpy arrays that the model's layers hold (e.g. MADE's masks) as eager
  tensors, which a traced function captures (and the SavedModel stores once) instead of
  embedding a copy at every use in every function. Restored afterwards."""
  replaced = []
  for layer in model._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
    for name, value in list(vars(layer).items()):
      if isinstance(value, np.ndarray) and value.nbytes >= _CAPTURE_BYTES:
        replaced.append((layer, name, value))
        object.__setattr__(layer, name, tf.constant(value))
  try:
    yield
  finally:
    for layer, name, value in replaced:
      object.__setattr__(layer, name, value)


@contextlib.contextmanager
def _shared_denoise(model):
  """While tracing: the `denoise` of the model and of every pair inside it (a wrapper such as
  `standardized.Standardized` holds one) as one tf.function each, so that a pair's `draw` (whose
  two-step sampler denoises its x~) and the `denoise` signature call one traced function
  instead of tracing the conditional sampler twice. Removed afterwards."""
  patched = []
  for layer in model._flatten_layers(include_self=True, recursive=True):  # pylint: disable=protected-access
    if 'two_step' in getattr(layer, 'denoisers', ()) and callable(getattr(layer, 'denoise', None)):
      object.__setattr__(layer, 'denoise', _one_traced_denoise(layer, layer.denoise))
      patched.append(layer)
  try:
    yield
  finally:
    for layer in patched:
      object.__delattr__(layer, 'denoise')


def _one_traced_denoise(layer, method):
  """`method` (a pair's denoise), its two-step denoising through one tf.function."""
  shared = tf.function(
      lambda x_tilde, seeds, **conditions: method(x_tilde, seeds, ['two_step'], **conditions)
  )

  def denoise(x_tilde, seeds, denoisers=None, **conditions):
    chosen = tuple(layer.denoisers if denoisers is None else denoisers)
    if chosen != ('two_step',):
      return method(x_tilde, seeds, chosen, **conditions)
    return shared(x_tilde, seeds, **conditions)

  return denoise


@contextlib.contextmanager
def no_renaming_notice():
  """While saving: without tf.saved_model's "input name(s) ... with unsupported characters
  which will be renamed" notices. TF compares every input of a traced function with the name
  it gives it, the captured variable handles included (named input_N inside tf.map_fn / while
  loops): the renamed names are those captures, never a signature's inputs (x, seed, ... keep
  theirs)."""
  logger = logging.getLogger('absl')
  notice = _DropRenamingNotice()
  logger.addFilter(notice)
  try:
    yield
  finally:
    logger.removeFilter(notice)


class _DropRenamingNotice(logging.Filter):

  def filter(self, record):
    return 'with unsupported characters which will be renamed' not in record.getMessage()


class Servable(tf.Module):
  """The serving functions of a trained model (any model of the `models.interface`
  interface), as `serving_signatures` {name: concrete function}.

  Only the tf.Variables under the model's Keras variables are tracked (`model_variables`, in
  `model.variables` order; `directory.restore_weights` reads them back): TF1-style loaders (TF
  Serving, saved_model_cli run) need them, and a tracked Keras model would store every weight a
  second time under its own paths.
  """

  def __init__(self, model, iw_samples):
    super().__init__()
    self.model_variables = [v.value for v in model.variables]
    functions = _Functions(model, int(iw_samples))  # a plain object: not tracked
    seed = tf.TensorSpec([None, 2], tf.int32, name='seed')
    points = lambda name: tf.TensorSpec((None,) + functions.event_shape, tf.float32, name=name)
    conditions = {
        keyword: tf.TensorSpec([None], condition.dtype, name=condition.input_name)
        for keyword, condition in model.conditions.items()
    }
    signatures = {}

    def add(name, fn, *specs, keywords=None):
      """Signature `name`: fn of `specs` and the inputs of the conditions `keywords` (None:
      every condition of the model)."""
      specs = specs + tuple(
          spec for keyword, spec in conditions.items() if keywords is None or keyword in keywords
      )
      signatures[name] = tf.function(
          _named(fn, [spec.name for spec in specs]), input_signature=specs
      ).get_concrete_function()

    with _constants_captured(model), _shared_denoise(model):
      add('sample', functions.sample, seed)
      for sampler in model.samplers:  # a sampler of its own cost (annealed): its own signature
        if sampler not in SAMPLE_KEYS and sampler not in model.denoisers:
          add(
              f'sample_{sampler}',
              functools.partial(functions.sample_with, sampler),
              seed,
              keywords=interface.sampler_conditions(model, sampler),
          )
      if model.exact_likelihood:
        add('log_prob', functions.log_prob, points('x'))
      else:
        add('log_prob', functions.log_prob_bound, points('x'), seed)
      if 'two_step' in model.denoisers:
        add('denoise', functions.denoise, points('x_tilde'), seed)
      if 'single_step' in model.denoisers:
        add('denoise_single_step', functions.denoise_single_step, points('x_tilde'))
      if model.can_inpaint:
        rows = tf.TensorSpec([None], tf.int32, name='num_known_rows')
        add('inpaint', functions.inpaint, points('x'), rows, seed)
    signatures['serving_default'] = signatures['sample']
    self.serving_signatures = signatures  # 'signatures' is reserved by tf.saved_model


def _named(fn, names):
  """fn(**{name: value}) as a function of the inputs `names` in order, whose parameters carry
  those names (they are the signature's input keys)."""

  def body(*args, **kwargs):
    return fn(**dict(zip(names, args)), **kwargs)

  body.__signature__ = inspect.Signature(
      [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
  )
  return body


class _Functions:
  """The bodies of the signatures: inputs checked (`check_inputs`), then the model called with
  the conditions' inputs by their keywords."""

  def __init__(self, model, iw_samples):
    self.model = model
    self.iw_samples = iw_samples
    self.event_shape = tuple(model.event_shape)
    self.ranges = input_ranges(model)
    self.keywords = {c.input_name: c.keyword for c in model.conditions.values()}
    height = self.event_shape[0]
    self.counts = {
        'num_known_rows': (
            height,
            f'one count of known rows per image, <= the image height {height}',
        )
    }

  def _checked(self, **inputs):
    """(the checked inputs of x, x_tilde, seed, num_known_rows, {keyword: condition}) of the
    given inputs (a sampler's own signature may take only some of the conditions)."""
    trailing = {
        name: (
            (2,)
            if name == 'seed'
            else ()
            if name == 'num_known_rows' or name in self.keywords
            else self.event_shape
        )
        for name in inputs
    }
    checked = check_inputs(inputs, trailing, self.ranges, self.counts)
    conditions = {
        self.keywords[name]: checked.pop(name) for name in self.keywords if name in checked
    }
    return checked, conditions

  def sample(self, seed, **conditions):
    given, conditions = self._checked(seed=seed, **conditions)
    samplers = [name for name in self.model.samplers if name in SAMPLE_KEYS]
    drawn = self.model.draw(given['seed'], samplers, **conditions)
    return {SAMPLE_KEYS[name]: x for name, x in drawn.items()}

  def sample_with(self, sampler, seed, **conditions):
    """{'x': draws of one sampler that `sample` leaves out (e.g. 'annealed'), given the
    conditions it reads (the model fills any other with its default, which the sampler does
    not read)}."""
    given, conditions = self._checked(seed=seed, **conditions)
    return {'x': self.model.draw(given['seed'], [sampler], **conditions)[sampler]}

  def log_prob(self, x, **conditions):
    given, conditions = self._checked(x=x, **conditions)
    return {'log_prob': self.model.likelihood(given['x'], **conditions).log_prob}

  def log_prob_bound(self, x, seed, **conditions):
    given, conditions = self._checked(x=x, seed=seed, **conditions)
    record = self.model.likelihood(given['x'], given['seed'], self.iw_samples, **conditions)
    return {'log_prob': record.log_prob, 'elbo': record.elbo}

  def denoise(self, x_tilde, seed, **conditions):
    given, conditions = self._checked(x_tilde=x_tilde, seed=seed, **conditions)
    denoised = self.model.denoise(given['x_tilde'], given['seed'], ['two_step'], **conditions)
    return {'x': denoised['two_step']}

  def denoise_single_step(self, x_tilde, **conditions):
    given, conditions = self._checked(x_tilde=x_tilde, **conditions)
    denoised = self.model.denoise(given['x_tilde'], None, ['single_step'], **conditions)
    return {'x': denoised['single_step']}

  def inpaint(self, x, num_known_rows, seed, **conditions):
    given, conditions = self._checked(x=x, num_known_rows=num_known_rows, seed=seed, **conditions)
    inpainted = self.model.inpaint(given['x'], given['num_known_rows'], given['seed'], **conditions)
    return {'x': inpainted}


def describe(signatures, model, iw_samples):
  """What each signature takes and returns (for the metadata and `saved_model_cli`'s reader):
  {signature: {'inputs': {input: shape}, 'returns': text[, 'ranges': {input: [low, high]}]}}."""
  returns = {
      'sample': 'x: samples'
      + (
          ' (two-step), x_tilde: their smoothed draws x~ ~ p(x~)'
          if 'smoothed' in model.samplers
          else ''
      ),
      'log_prob': (
          'log_prob: exact log p(x)'
          if model.exact_likelihood
          else f'log_prob: importance-weighted lower bound on log p(x) with K={iw_samples} '
          f'draws x~ ~ q(.|x) per row, elbo: the ELBO from the same draws'
      ),
      'denoise': 'x: one draw from p(x | x~) per row',
      'denoise_single_step': 'x: x~ + sigma^2 grad log p(x~) (Tweedie)',
      'inpaint': 'x: the top num_known_rows rows of x kept, the rest drawn',
  }
  facts = model.facts()
  if 'annealing' in facts:
    plan = facts['annealing']
    returns['sample_annealed'] = (
        f'x: annealed samples: x~ ~ p(x~ | sigma_max), {plan["levels"]} levels x '
        f'{plan["steps"]} Langevin steps with the score of p(x~ | sigma) (relative step '
        f'{plan["step_size"]:g}), then {plan["end"]} at sigma_min (levels fixed at export: '
        'it takes no sigma)'
    )
  ranges = input_ranges(model)
  out = {}
  for name, fn in signatures.items():
    if name == 'serving_default':
      continue
    specs = tf.nest.flatten(fn.structured_input_signature)
    inputs = {spec.name: [None if d is None else int(d) for d in spec.shape] for spec in specs}
    out[name] = {'inputs': inputs, 'returns': returns[name]}
    limits = {k: [low, high] for k, (low, high, _) in ranges.items() if k in inputs}
    if 'num_known_rows' in inputs:
      limits['num_known_rows'] = [0, int(model.event_shape[0])]
    if limits:
      out[name]['ranges'] = limits
  return out


def warmup_inputs(signatures, model):
  """{signature: {input: numpy}}: one row per input of each signature, values the checks accept
  (points at the origin, black images, the top half of an image known, each condition's
  default)."""
  event_shape = tuple(model.event_shape)
  ranges = input_ranges(model)
  fill = ranges['x'][0] if 'x' in ranges else 0.0
  values = {
      'seed': np.array([[0, 1]], np.int32),
      'x': np.full((1,) + event_shape, fill, np.float32),
      'x_tilde': np.full((1,) + event_shape, fill, np.float32),
      'num_known_rows': np.array([event_shape[0] // 2], np.int32),
  }
  for condition in model.conditions.values():
    values[condition.input_name] = np.array([condition.default], condition.dtype.as_numpy_dtype)
  return {
      name: {
          spec.name: values[spec.name] for spec in tf.nest.flatten(fn.structured_input_signature)
      }
      for name, fn in signatures.items()
  }
