"""SavedModel exports of a trained model, with serving signatures, under numeric versions.

`export(model, export_dir, iw_samples, metadata)` writes `export_dir/<n>` (n = the next free version number, the layout
TF Serving reads) through a temporary directory renamed into place, so a failed export leaves
no partial version and never touches earlier ones. Signatures (method name
`tensorflow/serving/predict`, free batch dimension N, per-row seeds [N, 2] so that a row's
result depends only on its own inputs and REST "instances" requests work):

  sample (also serving_default): seed -> x            (two-step models also x_tilde)
  log_prob:            x [, seed] -> log_prob          exact for a plain model; for a two-step
                                                        model the importance-weighted bound
                                                        log (1/K) sum_k w_k, and elbo beside it
  denoise:             x_tilde, seed -> x              x ~ p(x | x~)        (two-step models)
  denoise_single_step: x_tilde -> x                    x~ + sigma^2 grad log p(x~) (Gaussian q)
  inpaint:             x, num_known_rows, seed -> x    (image models; row i keeps its top
                                                        num_known_rows[i] rows)

Non-finite inputs fail with an error naming the input. `assets.extra/tfsmooth.json` beside the
graph records what the caller passes as metadata (a run's settled config, data set, training
step, weights and the metrics of those weights: `experiment.Run.export_metadata`), the
model's facts (kernel, sigma), the number of importance draws K and what each signature
returns. Paths go through `tf.io.gfile` (local paths or URLs).
"""

import os

import tensorflow as tf

import tfsmooth
from tfsmooth import errors
from tfsmooth import records

METADATA = os.path.join('assets.extra', 'tfsmooth.json')
_TEMPORARY_PREFIX = '.tmp-'
# Signature output keys of the samplers of the model interface.
SAMPLE_KEYS = {'samples': 'x', 'two_step': 'x', 'smoothed': 'x_tilde'}


def _finite(x, name):
  return tf.debugging.assert_all_finite(x, f'input {name} contains NaN or Inf')


class Servable(tf.Module):
  """The serving functions of a trained model (any model of the `models.base` interface)."""

  def __init__(self, model, iw_samples):
    super().__init__()
    self.model = model
    # The tf.Variables under the Keras ones, tracked directly: without them, sessions that load
    # the SavedModel the TF1 way (TF Serving, saved_model_cli run) find the variables missing.
    self.model_variables = [v.value for v in model.variables]
    self.iw_samples = int(iw_samples)
    event_shape = tuple(model.event_shape)
    seed = tf.TensorSpec([None, 2], tf.int32, name='seed')
    points = lambda name: tf.TensorSpec((None,) + event_shape, tf.float32, name=name)
    signatures = {}

    def add(name, fn, *specs):
      signatures[name] = tf.function(fn, input_signature=specs).get_concrete_function()

    add('sample', self.sample, seed)
    signatures['serving_default'] = signatures['sample']
    if model.exact_likelihood:
      add('log_prob', self.log_prob, points('x'))
    else:
      add('log_prob', self.log_prob_bound, points('x'), seed)
    if 'two_step' in model.denoisers:
      add('denoise', self.denoise, points('x_tilde'), seed)
    if 'single_step' in model.denoisers:
      add('denoise_single_step', self.denoise_single_step, points('x_tilde'))
    if model.can_inpaint:
      rows = tf.TensorSpec([None], tf.int32, name='num_known_rows')
      add('inpaint', self.inpaint, points('x'), rows, seed)
    self.serving_signatures = signatures  # 'signatures' is reserved by tf.saved_model

  def sample(self, seed):
    drawn = self.model.draw(seed, [name for name in self.model.samplers if name in SAMPLE_KEYS])
    return {SAMPLE_KEYS[name]: x for name, x in drawn.items()}

  def log_prob(self, x):
    with tf.control_dependencies([_finite(x, 'x')]):
      return {'log_prob': self.model.likelihood(x).log_prob}

  def log_prob_bound(self, x, seed):
    with tf.control_dependencies([_finite(x, 'x')]):
      record = self.model.likelihood(x, seed, self.iw_samples)
    return {'log_prob': record.log_prob, 'elbo': record.elbo}

  def denoise(self, x_tilde, seed):
    with tf.control_dependencies([_finite(x_tilde, 'x_tilde')]):
      return {'x': self.model.denoise(x_tilde, seed, ['two_step'])['two_step']}

  def denoise_single_step(self, x_tilde):
    with tf.control_dependencies([_finite(x_tilde, 'x_tilde')]):
      return {'x': self.model.denoise(x_tilde, None, ['single_step'])['single_step']}

  def inpaint(self, x, num_known_rows, seed):
    height, rows = self.model.event_shape[0], num_known_rows
    checks = [
        _finite(x, 'x'),
        tf.debugging.assert_greater_equal(rows, 0, message='input num_known_rows must be >= 0'),
        tf.debugging.assert_less_equal(
            rows, height, message=(f'input num_known_rows must be <= the image height {height}')
        ),
    ]
    with tf.control_dependencies(checks):
      return {'x': self.model.inpaint(x, rows, seed)}


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
  out = {}
  for name, fn in signatures.items():
    if name == 'serving_default':
      continue
    inputs = {
        spec.name: [None if d is None else int(d) for d in spec.shape]
        for spec in tf.nest.flatten(fn.structured_input_signature)
    }
    out[name] = {'inputs': inputs, 'returns': returns[name]}
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


def export(model, export_dir, iw_samples=1, metadata=None):
  """Exports a trained `model` as export_dir/<next version>, with `metadata` (the run's
  config, step, weights, metrics...) in its tfsmooth.json beside what the export states
  itself. Returns the path of the new version directory.

  A model built in Python exports as it is: no workdir is needed.
  """
  if model is None or not model.built:
    raise errors.UserError(
        'There is no trained model to export: restore a run with experiment.Run.load (or '
        'build the model and train it) first.'
    )
  iw_samples = int(iw_samples)
  if iw_samples < 1:
    raise errors.UserError(f'iw_samples must be >= 1, got {iw_samples}.')
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
  }
  try:
    tf.saved_model.save(servable, temporary, signatures=servable.serving_signatures)
    tf.io.gfile.makedirs(os.path.join(temporary, os.path.dirname(METADATA)))
    records.write_json(os.path.join(temporary, METADATA), record)
    if tf.io.gfile.exists(final):
      raise errors.UserError(
          f'{final} appeared during the export (another export into '
          f'{export_dir}?); rerun to write the next version.'
      )
    tf.io.gfile.rename(temporary, final)
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.rmtree(temporary)
  return final


def read_metadata(version_dir):
  """The `tfsmooth.json` of an exported version directory."""
  return records.read_json(os.path.join(version_dir, METADATA))
