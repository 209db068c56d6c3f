"""Exports a trained run, or re-exports an export, as a SavedModel for TF Serving:
--export_dir/<next version number>.

  python launch/export.py --workdir=runs/rings --export_dir=exports/rings
  python launch/export.py --saved_model=exports/rings/1 --export_dir=exports/rings
  saved_model_cli show --dir exports/rings/1 --all

--workdir: the best checkpoint of a run (its EMA averages when the run kept them, or with
--weights=raw its raw weights), with the run's metrics of those weights (metrics.json when it
describes them, else the test split evaluated now).

--saved_model: an earlier export's version directory, when its training workdir is gone: the
model is rebuilt from the config in its tfsmooth.json, its weights are read from its variables
checkpoint, and the new version must answer the warm-up requests as the old one does (else it
is removed). Its metrics are the old record's when they name the weights it holds, else the
test split evaluated now with those weights ('metrics_source' says which). --weights names
the weights the export holds when its tfsmooth.json does not say.

Signatures: sample (= serving_default), log_prob, and for two-step models denoise,
denoise_single_step (Gaussian smoothing), and for images inpaint (see tfsmooth/export.py),
each checking its inputs, with TF Serving warm-up requests. Earlier versions are never
touched; a failed export leaves none behind.
"""

import json
import os

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfsmooth import errors  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth import export  # noqa: E402
from tfsmooth import records  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run (launch/train.py --workdir).')
_SAVED_MODEL = flags.DEFINE_string(
    'saved_model',
    None,
    'Instead of --workdir: the version directory of an earlier export (e.g. '
    'saved_models/rings/2) to re-export with this code.',
)
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'Model base path: versions go in <export_dir>/1, 2, ...'
)
_IW_SAMPLES = flags.DEFINE_integer(
    'iw_samples',
    0,
    'Importance draws K of the two-step '
    "log_prob signature (default: the run's eval.iw_samples, or the re-exported model's K).",
    lower_bound=0,
)
_WEIGHTS = flags.DEFINE_enum(
    'weights',
    'ema',
    ['ema', 'raw'],
    "--workdir: the best checkpoint's EMA averages (when the run kept them) or its raw "
    'weights. --saved_model: which weights the export holds, when its tfsmooth.json does not '
    'say.',
)
flags.mark_flags_as_required(['export_dir'])

# Run facts carried from an earlier record: they describe the training, not the weights.
_RUN_FACTS = ('train_seconds', 'steps', 'best_step')
# Outputs of a re-export must equal the old export's within this (the golden tests' tolerance).
_RTOL = _ATOL = 1e-5


def _relative(path):
  """`path` as recorded in metadata: relative to the working directory if absolute."""
  return os.path.relpath(path) if os.path.isabs(path) else path


def _one_source():
  if bool(_WORKDIR.value) == bool(_SAVED_MODEL.value):
    given = 'both' if _WORKDIR.value else 'neither'
    raise errors.UserError(
        f'launch/export.py exports one model and was given {given} of --workdir and '
        '--saved_model: pass --workdir=<a launch/train.py run> to export its best checkpoint, '
        'or --saved_model=<version directory of an earlier export, e.g. saved_models/rings/2> '
        'to re-export that export with this code.'
    )


def from_workdir():
  """(model, K, metadata) of the best checkpoint of --workdir."""
  run = experiment.Run.load(_WORKDIR.value, ema=_WEIGHTS.value == 'ema')
  metadata = run.export_metadata()
  metadata['metrics_source'] = (
      f'{experiment.METRICS_FILE} of the run (measured on these weights)'
      if run.metrics_of_weights() is not None
      else f'the test split evaluated at export with the {run.weights} weights'
  )
  return run.model, _IW_SAMPLES.value or run.config.eval.iw_samples, metadata


def _read_old(version_dir):
  if not tf.io.gfile.exists(os.path.join(version_dir, export.METADATA)):
    versions = (
        sorted(n.rstrip('/') for n in tf.io.gfile.listdir(version_dir) if n.rstrip('/').isdigit())
        if tf.io.gfile.isdir(version_dir)
        else []
    )
    hint = (
        f' It holds the versions {", ".join(versions)}: pass one of them, e.g. '
        f'--saved_model={os.path.join(version_dir, versions[-1])}.'
        if versions
        else ''
    )
    raise errors.UserError(
        f'--saved_model={version_dir} is not the version directory of a tfsmooth export (it '
        f'has no {export.METADATA}).{hint} Pass a numeric version directory such as '
        'saved_models/rings/2.'
    )
  return export.read_metadata(version_dir)


def _weights_of(old, version_dir):
  recorded, given = old.get('weights'), flags.FLAGS['weights'].present and _WEIGHTS.value
  if recorded and given and recorded != given:
    raise errors.UserError(
        f'{version_dir} holds the {recorded} weights (its tfsmooth.json says so), but '
        f'--weights={given} was given: a re-export holds the weights of the export it reads. '
        'Drop --weights.'
    )
  if not (recorded or given):
    ema = old.get('config', {}).get('train', {}).get('ema_decay')
    raise errors.UserError(
        f'The tfsmooth.json of {version_dir} does not say which weights it holds, and the '
        "re-export's metadata must: pass --weights=ema or --weights=raw (its run had "
        f'train.ema_decay={ema}; an export of a run that kept EMA averages held them unless it '
        'was made with --weights=raw).'
    )
  return recorded or given


def from_saved_model():
  """(model, K, metadata) rebuilt from the export --saved_model."""
  version_dir = _SAVED_MODEL.value
  old = _read_old(version_dir)
  weights = _weights_of(old, version_dir)
  config = experiment.settle(ml_collections.ConfigDict(old['config']))
  model = experiment.build_model(config)
  model.build_variables()
  export.restore_weights(model, version_dir)
  old_metrics = old.get('metrics') or {}
  if old_metrics.get('weights') == weights:
    metrics = old_metrics
    source = f'the metrics of {_relative(version_dir)} (measured on these weights)'
  else:
    logging.info('Evaluating the %s weights on the test split.', weights)
    run = experiment.Run(config, version_dir)
    run.model, run.weights = model, weights
    metrics = records.json_ready(run.evaluate())
    metrics.update({k: old_metrics[k] for k in _RUN_FACTS if k in old_metrics})
    source = (
        f'the test split evaluated at re-export with the {weights} weights (launch/export.py '
        f'--saved_model={_relative(version_dir)}); {", ".join(_RUN_FACTS)} from the run'
    )
  iw_samples = _IW_SAMPLES.value or old.get('iw_samples') or config.eval.iw_samples
  metadata = {
      'step': old.get('step'),
      'weights': weights,
      'dataset': config.data.name,
      'metrics': metrics,
      'metrics_source': source,
      'config': json.loads(config.to_json_best_effort()),
      're_exported_from': {
          'path': _relative(version_dir),
          'version': old.get('version'),
          'tfsmooth_version': old.get('tfsmooth_version'),
          'tensorflow_version': old.get('tensorflow_version'),
      },
  }
  return model, iw_samples, metadata


def compare_with(old_dir, new_dir):
  """Replays the new export's warm-up requests through both exports; refuses (and removes the
  new version) when an output differs beyond the golden tests' tolerance."""
  old, new = tf.saved_model.load(old_dir), tf.saved_model.load(new_dir)
  differences = []
  for signature, inputs in export.read_warmup(new_dir):
    if signature == 'serving_default' or signature not in old.signatures:
      continue
    args = {k: tf.constant(v) for k, v in inputs.items()}
    before, after = old.signatures[signature](**args), new.signatures[signature](**args)
    found = len(differences)
    for key in sorted(set(before) | set(after)):
      if key not in before or key not in after:
        differences.append(f'{signature}.{key} is in one export only')
        continue
      a, b = before[key].numpy(), after[key].numpy()
      if a.shape != b.shape or not np.allclose(a, b, rtol=_RTOL, atol=_ATOL):
        gap = float(np.max(np.abs(a - b))) if a.shape == b.shape else 'shape'
        differences.append(f'{signature}.{key} (largest difference {gap})')
    if len(differences) == found:
      logging.info('%s: the re-export answers as %s does.', signature, old_dir)
  if differences:
    tf.io.gfile.rmtree(new_dir)
    raise errors.UserError(
        f'The re-export of {old_dir} answers differently from it: {"; ".join(differences)}. '
        'The model code changed what these weights compute since that export, so the new '
        'version was removed. Re-export from the training workdir (--workdir), or find the '
        'change.'
    )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  _one_source()
  model, iw_samples, metadata = from_saved_model() if _SAVED_MODEL.value else from_workdir()
  path = export.export(model, _EXPORT_DIR.value, iw_samples, metadata)
  if _SAVED_MODEL.value:
    compare_with(_SAVED_MODEL.value, path)
  print(path)
  print(json.dumps(export.read_metadata(path)['signatures'], indent=2), flush=True)


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  errors.run_main(main, ('workdir', 'saved_model', 'export_dir'))
