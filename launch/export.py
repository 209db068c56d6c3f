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
denoise_single_step (Gaussian smoothing), and for images inpaint (see tfsmooth/export/),
each checking its inputs, with TF Serving warm-up requests. Earlier versions are never
touched; a failed export leaves none behind. The program: tfsmooth/programs/exporting.py.
"""

import json

from absl import flags

from tfsmooth.programs import cli

_WORKDIR = flags.DEFINE_string(
    'workdir',
    None,
    'A trained run (launch/train.py --workdir) to export; launch/export.py exports one model: '
    'this run or --saved_model.',
)
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
flags.mark_flags_as_mutual_exclusive(['workdir', 'saved_model'], required=True)
flags.mark_flags_as_required(['export_dir'])


def main():
  # Imported here, once cli.run_main has quieted TensorFlow's start-up.
  from tfsmooth import export  # pylint: disable=g-import-not-at-top
  from tfsmooth.programs import exporting  # pylint: disable=g-import-not-at-top

  path = exporting.export_model(
      _EXPORT_DIR.value,
      workdir=_WORKDIR.value,
      saved_model=_SAVED_MODEL.value,
      weights=_WEIGHTS.value if _WEIGHTS.present else None,
      iw_samples=_IW_SAMPLES.value,
  )
  print(path)
  print(json.dumps(export.read_metadata(path)['signatures'], indent=2), flush=True)


if __name__ == '__main__':
  cli.run_main(main, ('workdir', 'saved_model', 'export_dir'))
