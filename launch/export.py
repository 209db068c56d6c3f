"""Exports a trained run as a SavedModel for TF Serving: --export_dir/<next version number>.

  python launch/export.py --workdir=runs/rings --export_dir=exports/rings
  saved_model_cli show --dir exports/rings/1 --all

The best checkpoint of --workdir (its EMA averages when the run kept them, or with
--weights=raw its raw weights) is exported with the signatures sample (= serving_default),
log_prob, and for two-step models denoise, denoise_single_step (Gaussian smoothing), and for
images inpaint (see tfsmooth/export.py). Earlier versions are never touched; a failed export
leaves none behind.
"""

import json

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from tfsmooth import errors  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth import export  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained run (launch/train.py --workdir).')
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'Model base path: versions go in <export_dir>/1, 2, ...'
)
_IW_SAMPLES = flags.DEFINE_integer(
    'iw_samples',
    0,
    'Importance draws K of the two-step '
    "log_prob signature (default: the run's eval.iw_samples).",
    lower_bound=0,
)
_WEIGHTS = flags.DEFINE_enum(
    'weights',
    'ema',
    ['ema', 'raw'],
    "The best checkpoint's EMA averages (when the run kept them) or its raw weights.",
)
flags.mark_flags_as_required(['workdir', 'export_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  run = experiment.Run.load(_WORKDIR.value, ema=_WEIGHTS.value == 'ema')
  path = export.export(
      run.model,
      _EXPORT_DIR.value,
      _IW_SAMPLES.value or run.config.eval.iw_samples,
      run.export_metadata(),
  )
  print(path)
  print(json.dumps(export.read_metadata(path)['signatures'], indent=2), flush=True)


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  errors.run_main(main, ('workdir', 'export_dir'))
