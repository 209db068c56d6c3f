"""Exports a trained run, or re-exports an earlier export, as a SavedModel: what launch/export.py
does.

`export_model` takes exactly one source:

  * a run's workdir (`from_workdir`): its best checkpoint (the EMA averages when the run kept
    them, or the raw weights), with the run's metrics of those weights (metrics.json when it
    describes them, else the test split evaluated now);
  * an earlier export's version directory (`from_saved_model`), when its training workdir is
    gone: the model is rebuilt from the config in its tfsmooth.json and its weights read from its
    variables checkpoint. Its metrics are the old record's when they name the weights it holds,
    else the test split evaluated now with those weights ('metrics_source' says which). The new
    version must answer the warm-up requests as the old one does (`compare_with`), else it is
    removed.

The export itself (signatures, warm-up requests, the version directory) is `tfsmooth.export`.
"""

import json
import os

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import export
from tfsmooth import records

WEIGHTS = ('ema', 'raw')
# Run facts carried from an earlier record: they describe the training, not the weights.
_RUN_FACTS = ('train_seconds', 'steps', 'best_step')
# Outputs of a re-export must equal the old export's within this (the golden tests' tolerance).
_RTOL = _ATOL = 1e-5


def _relative(path):
  """`path` as recorded in metadata: relative to the working directory if absolute."""
  return os.path.relpath(path) if os.path.isabs(path) else path


def export_model(export_dir, workdir=None, saved_model=None, weights=None, iw_samples=0):
  """Exports `workdir`'s best checkpoint or re-exports the export `saved_model` (exactly one)
  into the next version directory under `export_dir`; returns that directory.

  `weights` ('ema' or 'raw'): of a workdir, which weights to export (default 'ema'); of an
  export, which weights it holds, needed only when its tfsmooth.json does not say. `iw_samples`:
  K of a two-step model's log_prob signature (0: the run's eval.iw_samples, or the re-exported
  model's K).
  """
  if bool(workdir) == bool(saved_model):
    raise errors.UserError(
        'Export one model: pass either the workdir of a launch/train.py run or the version '
        f'directory of an earlier export; got {"both" if workdir else "neither"}.'
    )
  if saved_model:
    model, k, metadata = from_saved_model(saved_model, weights, iw_samples)
  else:
    model, k, metadata = from_workdir(workdir, weights or 'ema', iw_samples)
  path = export.export(model, export_dir, k, metadata)
  if saved_model:
    compare_with(saved_model, path)
  return path


def from_workdir(workdir, weights='ema', iw_samples=0):
  """(model, K, metadata) of the best checkpoint of `workdir` (its EMA or raw `weights`)."""
  run = experiment.Run.load(workdir, ema=weights == 'ema')
  metadata = run.export_metadata()
  metadata['metrics_source'] = (
      f'{experiment.METRICS_FILE} of the run (measured on these weights)'
      if run.metrics_of_weights() is not None
      else f'the test split evaluated at export with the {run.weights} weights'
  )
  return run.model, iw_samples or run.config.eval.iw_samples, metadata


def read_old(version_dir):
  """The tfsmooth.json of the export `version_dir`; a `UserError` naming the version
  directories when `version_dir` is the base directory above them (or no export at all)."""
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


def weights_of(old, version_dir, given=None):
  """Which weights ('ema' or 'raw') the export `version_dir` with metadata `old` holds: its
  record's, or `given` (the user's --weights, None when not given) when it records none."""
  recorded = old.get('weights')
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


def from_saved_model(version_dir, weights=None, iw_samples=0):
  """(model, K, metadata) rebuilt from the export `version_dir` (`weights`: see `weights_of`)."""
  old = read_old(version_dir)
  weights = weights_of(old, version_dir, weights)
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
  iw_samples = iw_samples or old.get('iw_samples') or config.eval.iw_samples
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
