"""SavedModel exports of a run, with serving signatures, under numeric version directories.

`export(run, export_dir)` writes `export_dir/<n>` (n = the next free version number, the layout
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
graph records the settled config, sigma, kernel, data set, training step, the run's metrics,
the number of importance draws K and what each signature returns.
"""

import json
import os
import shutil

import tensorflow as tf

import tfsmooth
from tfsmooth import errors
from tfsmooth import tasks

METADATA = os.path.join('assets.extra', 'tfsmooth.json')
_TEMPORARY_PREFIX = '.tmp-'


def _finite(x, name):
  return tf.debugging.assert_all_finite(x, f'input {name} contains NaN or Inf')


class Servable(tf.Module):
  """The serving functions of a trained model (a `DensityModel` or a `SmoothedModel`)."""

  def __init__(self, model, smoothed, images, iw_samples):
    super().__init__()
    self.model = model
    # The tf.Variables under the Keras ones, tracked directly: without them, sessions that load
    # the SavedModel the TF1 way (TF Serving, saved_model_cli run) find the variables missing.
    self.model_variables = [v.value for v in model.variables]
    self.smoothed = smoothed
    self.images = images
    self.iw_samples = int(iw_samples)
    event_shape = tuple(model.event_shape)
    seed = tf.TensorSpec([None, 2], tf.int32, name='seed')
    points = lambda name: tf.TensorSpec((None,) + event_shape, tf.float32, name=name)  # noqa
    signatures = {}

    def add(name, fn, *specs):
      signatures[name] = tf.function(fn, input_signature=specs).get_concrete_function()

    add('sample', self.sample, seed)
    signatures['serving_default'] = signatures['sample']
    if smoothed:
      add('log_prob', self.log_prob_bound, points('x'), seed)
      add('denoise', self.denoise, points('x_tilde'), seed)
      if model.kernel.is_gaussian:
        add('denoise_single_step', self.denoise_single_step, points('x_tilde'))
    else:
      add('log_prob', self.log_prob, points('x'))
    if images:
      add(
          'inpaint',
          self.inpaint,
          points('x'),
          tf.TensorSpec([None], tf.int32, name='num_known_rows'),
          seed,
      )
    self.serving_signatures = signatures  # 'signatures' is reserved by tf.saved_model

  def sample(self, seed):
    if self.smoothed:
      x, x_tilde = self.model.sample_rows(seed)
      return {'x': x, 'x_tilde': x_tilde}
    return {'x': self.model.sample_rows(seed)}

  def log_prob(self, x):
    with tf.control_dependencies([_finite(x, 'x')]):
      return {'log_prob': self.model.log_prob(x)}

  def log_prob_bound(self, x, seed):
    with tf.control_dependencies([_finite(x, 'x')]):
      elbo, iw = self.model.bounds(x, self.iw_samples, seed)
    return {'log_prob': iw, 'elbo': elbo}

  def denoise(self, x_tilde, seed):
    with tf.control_dependencies([_finite(x_tilde, 'x_tilde')]):
      return {'x': self.model.denoise_rows(x_tilde, seed)}

  def denoise_single_step(self, x_tilde):
    with tf.control_dependencies([_finite(x_tilde, 'x_tilde')]):
      return {'x': self.model.denoise_single_step(x_tilde)}

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
      if self.smoothed:
        return {'x': self.model.inpaint_rows(x, rows, seed)}
      return {'x': self.model.complete_rows(x, rows, seed)}


def describe(signatures, smoothed, iw_samples):
  """What each signature takes and returns (for the metadata and `saved_model_cli`'s reader)."""
  returns = {
      'sample': 'x: samples'
      + (' (two-step), x_tilde: their smoothed draws x~ ~ p(x~)' if smoothed else ''),
      'log_prob': (
          f'log_prob: importance-weighted lower bound on log p(x) with K={iw_samples} '
          f'draws x~ ~ q(.|x) per row, elbo: the ELBO from the same draws'
          if smoothed
          else 'log_prob: exact log p(x)'
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
  versions = (
      [int(n) for n in os.listdir(export_dir) if n.isdigit()] if os.path.isdir(export_dir) else []
  )
  return max(versions, default=0) + 1


def _remove_stale_temporaries(export_dir):
  """Removes temporaries of exports whose process is gone (killed midway)."""
  for name in os.listdir(export_dir):
    if not name.startswith(_TEMPORARY_PREFIX):
      continue
    pid = name.rsplit('-', 1)[-1]
    alive = pid.isdigit() and os.path.exists(f'/proc/{pid}')
    if not alive or int(pid) == os.getpid():
      shutil.rmtree(os.path.join(export_dir, name), ignore_errors=True)


def export(run, export_dir, iw_samples=None):
  """Exports the restored model of `run` (an `experiment.Run`) as export_dir/<next version>.

  Returns the path of the new version directory.
  """
  if run.model is None:
    raise errors.UserError('The run has no restored model: load it with experiment.Run.load.')
  iw_samples = int(iw_samples or run.config.eval.iw_samples)
  if iw_samples < 1:
    raise errors.UserError(f'iw_samples must be >= 1, got {iw_samples}.')
  images = isinstance(run.task, tasks.ImageTask)
  servable = Servable(run.model, run.smoothed, images, iw_samples)
  os.makedirs(export_dir, exist_ok=True)
  _remove_stale_temporaries(export_dir)
  version = next_version(export_dir)
  final = os.path.join(export_dir, str(version))
  temporary = os.path.join(export_dir, f'{_TEMPORARY_PREFIX}{version}-{os.getpid()}')
  metadata = {
      'tfsmooth_version': tfsmooth.__version__,
      'tensorflow_version': tf.__version__,
      'version': version,
      'step': run.step,
      'weights': run.weights,
      'dataset': run.config.data.name,
      'event_shape': list(run.model.event_shape),
      'smoothed': run.smoothed,
      'kernel': run.config.smoothing.kernel if run.smoothed else None,
      'sigma': run.config.smoothing.sigma if run.smoothed else None,
      'iw_samples': iw_samples if run.smoothed else None,
      'signatures': describe(servable.serving_signatures, run.smoothed, iw_samples),
      'metrics': run.read_metrics(),
      'config': json.loads(run.config.to_json_best_effort()),
  }
  try:
    tf.saved_model.save(servable, temporary, signatures=servable.serving_signatures)
    os.makedirs(os.path.join(temporary, os.path.dirname(METADATA)), exist_ok=True)
    with open(os.path.join(temporary, METADATA), 'w') as f:
      json.dump(metadata, f, indent=2)
    if os.path.exists(final):
      raise errors.UserError(
          f'{final} appeared during the export (another export into '
          f'{export_dir}?); rerun to write the next version.'
      )
    os.rename(temporary, final)
  finally:
    shutil.rmtree(temporary, ignore_errors=True)
  return final


def read_metadata(version_dir):
  """The `tfsmooth.json` of an exported version directory."""
  with open(os.path.join(version_dir, METADATA)) as f:
    return json.load(f)
