"""SavedModel exports of a trained model, with serving signatures, under numeric versions.

`export(model, export_dir, iw_samples, metadata)` writes `export_dir/<n>` (n = the next free
version number, the layout TF Serving reads) through a temporary directory renamed into place,
so a failed export leaves no partial version and never touches earlier ones. Signatures
(method name `tensorflow/serving/predict`, free batch dimension N, per-row seeds [N, 2] so
that a row's result depends only on its own inputs and REST "instances" requests work):

  sample (also serving_default): seed -> x            (two-step models also x_tilde)
  log_prob:            x [, seed] -> log_prob          exact for a plain model; for a two-step
                                                        model the importance-weighted bound
                                                        log (1/K) sum_k w_k, and elbo beside it
  denoise:             x_tilde, seed -> x              x ~ p(x | x~)        (two-step models)
  denoise_single_step: x_tilde -> x                    x~ + sigma^2 grad log p(x~) (Gaussian q)
  inpaint:             x, num_known_rows, seed -> x    (image models; row i keeps its top
                                                        num_known_rows[i] rows)

Every signature checks its inputs inside the graph, before the model sees them, and fails with
an InvalidArgumentError that names the input and what was expected (a signature's declared
shape is not enforced when a loaded SavedModel is called, nor by TF Serving): the trailing
shape of x / x_tilde (the event shape) and of seed ([N, 2]) and num_known_rows ([N]), one row
of each input per row of the first, finite values, num_known_rows in [0, H], and the values of
the data range of image models (`input_ranges`): x in [-1, 1] (8-bit values v as v / 127.5 - 1)
and a pair's smoothed x_tilde within the kernel's noise bound around it.

`assets.extra/tfsmooth.json` records what the caller passes as metadata (a run's settled
config, data set, training step, weights and the metrics of those weights:
`experiment.Run.export_metadata`), the model's facts (kernel, sigma), the number of importance
draws K and what each signature takes and returns. `assets.extra/tf_serving_warmup_requests`
holds one small request per signature (TFRecord of `PredictionLog`), which TF Serving replays
at load so that its first client does not pay for the graph's first run. Paths go through
`tf.io.gfile` (local paths or URLs).

Size: each weight is stored once (only the tf.Variables are tracked); a pair's `sample` calls
the same traced `denoise` function as the `denoise` signature (the conditional sampler is
traced once); and numpy arrays that layers hold (MADE's masks) are captured as constants,
stored once in the SavedModel, instead of being embedded at every call site of every traced
function (rings: saved_model.pb 6.1 MB -> 0.92 MB). The captured masks enter the MADE
sampler's per-row loops as loop inputs, which costs that loop about 15% (a 1000-row rings
`sample`, measured A/B in one process); log_prob and denoise run as fast as before.
"""

import contextlib
import logging
import math
import os
import statistics

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

import tfsmooth
from tfsmooth import errors
from tfsmooth import records

METADATA = os.path.join('assets.extra', 'tfsmooth.json')
WARMUP = os.path.join('assets.extra', 'tf_serving_warmup_requests')
VARIABLES = os.path.join('variables', 'variables')
_TEMPORARY_PREFIX = '.tmp-'
# Signature output keys of the samplers of the model interface.
SAMPLE_KEYS = {'samples': 'x', 'two_step': 'x', 'smoothed': 'x_tilde'}
# Smoothed values beyond the data range by more than the kernel's noise bound are refused: the
# bound is exceeded with probability NOISE_TAIL per value.
NOISE_TAIL = 1e-12
# Layers' numpy arrays at least this large are captured as constants during tracing.
_CAPTURE_BYTES = 1024


def noise_bound(kernel):
  """t with P(|e| > t) = NOISE_TAIL for one value e ~ q(. | 0) of the kernel (the whole
  half-width for the uniform kernel)."""
  sigma = float(kernel.sigma)
  if kernel.name == 'gaussian':
    return sigma * statistics.NormalDist().inv_cdf(1.0 - NOISE_TAIL / 2.0)
  if kernel.name == 'laplace':
    return sigma / math.sqrt(2.0) * math.log(1.0 / NOISE_TAIL)
  return sigma * math.sqrt(3.0)


def input_ranges(model):
  """{input: (low, high, what)} of the values the signatures accept, for image models: tfsmooth's
  images are 8-bit values v as v / 127.5 - 1 (`data.images`), so x lies in [-1, 1] (the bins of
  the discretized logistic head), and a pair's smoothed x_tilde within the kernel's noise bound
  of that range. Point data has no range."""
  if len(model.event_shape) != 3:
    return {}
  ranges = {'x': (-1.0, 1.0, 'pixel values: 8-bit value v as v / 127.5 - 1')}
  if model.smoothed:
    t = noise_bound(model.kernel)
    what = (
        f'smoothed pixel values: data in [-1, 1] plus {model.kernel.name} noise of sigma '
        f'{model.kernel.sigma:g}, beyond {t:.3g} with probability {NOISE_TAIL:g} per value'
    )
    ranges['x_tilde'] = (-1.0 - t, 1.0 + t, what)
  return ranges


def _shape_text(trailing):
  return '[' + ', '.join(['N', *map(str, trailing)]) + ']'


def _rows(t):
  """The leading dimension of t, or -1 for a scalar (so that the check itself cannot fail)."""
  return tf.concat([tf.shape(t), [-1]], 0)[0]


def _has_shape(t, trailing):
  """Whether t is [N, *trailing] (any N), as a boolean tensor that works for any rank."""
  shape = tf.shape(t)
  rank = 1 + len(trailing)
  padded = tf.concat([shape, tf.fill([rank], -1)], 0)[1:rank]
  return tf.logical_and(
      tf.equal(tf.size(shape), rank),
      tf.reduce_all(tf.equal(padded, tf.constant(trailing, tf.int32, [len(trailing)]))),
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
  shared = tf.function(lambda x_tilde, seeds: method(x_tilde, seeds, ['two_step']))

  def denoise(x_tilde, seeds, denoisers=None):
    chosen = tuple(layer.denoisers if denoisers is None else denoisers)
    if chosen != ('two_step',):
      return method(x_tilde, seeds, chosen)
    return shared(x_tilde, seeds)

  return denoise


class Servable(tf.Module):
  """The serving functions of a trained model (any model of the `models.base` interface), as
  `serving_signatures` {name: concrete function}.

  Only the tf.Variables under the model's Keras variables are tracked (`model_variables`, in
  `model.variables` order; `restore_weights` reads them back): TF1-style loaders (TF Serving,
  saved_model_cli run) need them, and a tracked Keras model would store every weight a second
  time under its own paths.
  """

  def __init__(self, model, iw_samples):
    super().__init__()
    self.model_variables = [v.value for v in model.variables]
    functions = _Functions(model, int(iw_samples))  # a plain object: not tracked
    seed = tf.TensorSpec([None, 2], tf.int32, name='seed')
    points = lambda name: tf.TensorSpec((None,) + functions.event_shape, tf.float32, name=name)
    signatures = {}

    def add(name, fn, *specs):
      signatures[name] = tf.function(fn, input_signature=specs).get_concrete_function()

    with _constants_captured(model), _shared_denoise(model):
      add('sample', functions.sample, seed)
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


class _Functions:
  """The bodies of the signatures: inputs checked (`check_inputs`), then the model called."""

  def __init__(self, model, iw_samples):
    self.model = model
    self.iw_samples = iw_samples
    self.event_shape = tuple(model.event_shape)
    self.ranges = input_ranges(model)
    height = self.event_shape[0]
    self.counts = {
        'num_known_rows': (
            height,
            f'one count of known rows per image, <= the image height {height}',
        )
    }

  def _checked(self, **inputs):
    trailing = {
        name: (2,) if name == 'seed' else () if name == 'num_known_rows' else self.event_shape
        for name in inputs
    }
    return check_inputs(inputs, trailing, self.ranges, self.counts)

  def sample(self, seed):
    seed = self._checked(seed=seed)['seed']
    drawn = self.model.draw(seed, [name for name in self.model.samplers if name in SAMPLE_KEYS])
    return {SAMPLE_KEYS[name]: x for name, x in drawn.items()}

  def log_prob(self, x):
    x = self._checked(x=x)['x']
    return {'log_prob': self.model.likelihood(x).log_prob}

  def log_prob_bound(self, x, seed):
    given = self._checked(x=x, seed=seed)
    record = self.model.likelihood(given['x'], given['seed'], self.iw_samples)
    return {'log_prob': record.log_prob, 'elbo': record.elbo}

  def denoise(self, x_tilde, seed):
    given = self._checked(x_tilde=x_tilde, seed=seed)
    return {'x': self.model.denoise(given['x_tilde'], given['seed'], ['two_step'])['two_step']}

  def denoise_single_step(self, x_tilde):
    x_tilde = self._checked(x_tilde=x_tilde)['x_tilde']
    return {'x': self.model.denoise(x_tilde, None, ['single_step'])['single_step']}

  def inpaint(self, x, num_known_rows, seed):
    given = self._checked(x=x, num_known_rows=num_known_rows, seed=seed)
    return {'x': self.model.inpaint(given['x'], given['num_known_rows'], given['seed'])}


def describe(signatures, model, iw_samples):
  """What each signature takes and returns (for the metadata and `saved_model_cli`'s reader)."""
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
  (points at the origin, black images, the top half of an image known)."""
  event_shape = tuple(model.event_shape)
  fill = -1.0 if 'x' in input_ranges(model) else 0.0
  values = {
      'seed': np.array([[0, 1]], np.int32),
      'x': np.full((1,) + event_shape, fill, np.float32),
      'x_tilde': np.full((1,) + event_shape, fill, np.float32),
      'num_known_rows': np.array([event_shape[0] // 2], np.int32),
  }
  return {
      name: {
          spec.name: values[spec.name] for spec in tf.nest.flatten(fn.structured_input_signature)
      }
      for name, fn in signatures.items()
  }


def write_warmup(path, requests, model_name):
  """Writes `requests` {signature: {input: numpy}} as TF Serving warm-up records at `path`
  (TFRecord of PredictionLog, each a PredictRequest for one signature of `model_name`)."""
  with tf.io.TFRecordWriter(path) as writer:
    for signature, inputs in requests.items():
      request = predict_pb2.PredictRequest(
          model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
      )
      for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request)
      )
      writer.write(log.SerializeToString())


def read_warmup(version_dir):
  """[(signature, {input: numpy})] of an export's warm-up requests, in file order."""
  out = []
  for record in tf.data.TFRecordDataset(os.path.join(version_dir, WARMUP)):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    request = log.predict_log.request
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    out.append((request.model_spec.signature_name, inputs))
  return out


def next_version(export_dir):
  """1 + the largest numeric version directory in export_dir (1 if none)."""
  names = tf.io.gfile.listdir(export_dir) if tf.io.gfile.isdir(export_dir) else []
  versions = [int(n.rstrip('/')) for n in names if n.rstrip('/').isdigit()]
  return max(versions, default=0) + 1


def _remove_stale_temporaries(export_dir):
  """Removes temporaries of exports whose process is gone (killed midway)."""
  for name in tf.io.gfile.listdir(export_dir):
    name = name.rstrip('/')
    if not name.startswith(_TEMPORARY_PREFIX):
      continue
    pid = name.rsplit('-', 1)[-1]
    alive = pid.isdigit() and os.path.exists(f'/proc/{pid}')
    if not alive or int(pid) == os.getpid():
      tf.io.gfile.rmtree(os.path.join(export_dir, name))


class _DropRenamingNotice(logging.Filter):
  """Drops tf.saved_model's "input name(s) ... with unsupported characters which will be
  renamed" notices. TF compares every input of a traced function with the name it gives it,
  the captured variable handles included (named input_N inside tf.map_fn / while loops): the
  renamed names are those captures, never a signature's inputs (x, seed, ... keep theirs)."""

  def filter(self, record):
    return 'with unsupported characters which will be renamed' not in record.getMessage()


@contextlib.contextmanager
def _no_renaming_notice():
  logger = logging.getLogger('absl')
  notice = _DropRenamingNotice()
  logger.addFilter(notice)
  try:
    yield
  finally:
    logger.removeFilter(notice)


def _check_metrics(metadata):
  """Refuses metadata whose metrics name other weights than the export holds."""
  metrics = (metadata or {}).get('metrics') or {}
  weights, measured = (metadata or {}).get('weights'), metrics.get('weights')
  if weights and measured and weights != measured:
    raise errors.UserError(
        f'The metrics given to the export were measured on the {measured} weights but the '
        f'model holds the {weights} weights: an export records the metrics of the weights it '
        'holds. Evaluate these weights (experiment.Run.evaluate) or export the weights the '
        'metrics describe.'
    )


def export(model, export_dir, iw_samples=1, metadata=None):
  """Exports a trained `model` as export_dir/<next version>, with `metadata` (the run's
  config, step, weights, metrics...) in its tfsmooth.json beside what the export states
  itself, and TF Serving warm-up requests. Returns the path of the new version directory.

  A model built in Python exports as it is: no workdir is needed. Metadata whose metrics name
  other weights (metrics['weights']) than metadata['weights'] is refused.
  """
  if model is None or not model.built:
    raise errors.UserError(
        'There is no trained model to export: restore a run with experiment.Run.load (or '
        'build the model and train it) first.'
    )
  iw_samples = int(iw_samples)
  if iw_samples < 1:
    raise errors.UserError(f'iw_samples must be >= 1, got {iw_samples}.')
  _check_metrics(metadata)
  servable = Servable(model, iw_samples)
  tf.io.gfile.makedirs(export_dir)
  _remove_stale_temporaries(export_dir)
  version = next_version(export_dir)
  final = os.path.join(export_dir, str(version))
  temporary = os.path.join(export_dir, f'{_TEMPORARY_PREFIX}{version}-{os.getpid()}')
  record = {
      'tfsmooth_version': tfsmooth.__version__,
      'tensorflow_version': tf.__version__,
      'version': version,
      **(metadata or {}),
      'event_shape': list(model.event_shape),
      'smoothed': model.smoothed,
      **model.facts(),
      'iw_samples': None if model.exact_likelihood else iw_samples,
      'signatures': describe(servable.serving_signatures, model, iw_samples),
      'warmup_requests': WARMUP,
  }
  model_name = os.path.basename(os.path.normpath(export_dir))
  try:
    with _no_renaming_notice():
      tf.saved_model.save(servable, temporary, signatures=servable.serving_signatures)
    tf.io.gfile.makedirs(os.path.join(temporary, os.path.dirname(METADATA)))
    write_warmup(
        os.path.join(temporary, WARMUP),
        warmup_inputs(servable.serving_signatures, model),
        model_name,
    )
    records.write_json(os.path.join(temporary, METADATA), record)
    if tf.io.gfile.exists(final):
      raise errors.UserError(
          f'{final} appeared during the export (another export into '
          f'{export_dir}?); rerun to write the next version.'
      )
    _publish(temporary, final)
  finally:
    _remove(temporary)
  return final


def _publish(temporary, final):
  """Puts the finished export in place so that TF Serving never loads half of it. On a local
  disk, a rename (atomic). On URL file systems a directory rename is a copy of object after
  object (gs://, s3://) or moves no files (ram://): the files are copied one by one, the graph
  saved_model.pb last, so a server that lists the version before the copy ends finds no graph,
  fails that load and retries, and never loads a version without its variables."""
  if '://' not in temporary:
    tf.io.gfile.rename(temporary, final)
    return
  files = [
      os.path.join(folder, name)
      for folder, _, names in tf.io.gfile.walk(temporary)
      for name in names
  ]  # ram:// also lists names that only share a prefix (assets/.extra of assets.extra)
  files = [path for path in files if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)]
  files.sort(key=lambda path: os.path.basename(path) == 'saved_model.pb')
  for path in files:
    target = os.path.join(final, os.path.relpath(path, temporary))
    tf.io.gfile.makedirs(os.path.dirname(target))
    tf.io.gfile.copy(path, target)


def _remove(directory):
  """Removes a temporary export directory, file by file where rmtree cannot (ram://)."""
  if not tf.io.gfile.exists(directory):
    return
  try:
    tf.io.gfile.rmtree(directory)
  except tf.errors.NotFoundError:  # ram:// lists names it cannot remove; its files are gone
    pass


def read_metadata(version_dir):
  """The `tfsmooth.json` of an exported version directory."""
  return records.read_json(os.path.join(version_dir, METADATA))


def restore_weights(model, version_dir):
  """Restores into a built `model` (rebuilt from the export's config) the weights an export
  of this module holds: its variables checkpoint, read by the `model_variables` it tracks (in
  `model.variables` order, each shape checked)."""
  prefix = os.path.join(version_dir, VARIABLES)
  reader = tf.train.load_checkpoint(prefix)
  shapes = reader.get_variable_to_shape_map()
  variables = model.variables
  recorded = [
      shapes.get(f'model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE') for i in range(len(variables))
  ]
  extra = f'model_variables/{len(variables)}/.ATTRIBUTES/VARIABLE_VALUE' in shapes
  mismatched = [
      f'{v.path}: {list(v.shape)} vs {shape}'
      for v, shape in zip(variables, recorded)
      if shape is None or list(v.shape) != list(shape)
  ]
  if mismatched or extra:
    raise errors.UserError(
        f'The weights in {prefix} do not fit the model rebuilt from its tfsmooth.json config '
        f'({"; ".join(mismatched[:3]) or "the export holds more weights"}): the export was '
        'made from another model or by another version of tfsmooth. Re-export it from its '
        'training workdir (launch/export.py --workdir=...).'
    )
  status = tf.train.Checkpoint(model_variables=[v.value for v in variables]).read(prefix)
  status.expect_partial().assert_existing_objects_matched()
  return model
