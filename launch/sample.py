"""Sample, denoising and inpainting grids (PNG) from a trained image run.

  python launch/sample.py --workdir=runs/fmnist_smoothed
  python launch/sample.py --workdir=runs/fmnist_smoothed --modes=denoise,inpaint \
      --num_samples=8 --seed=1

Restores the best checkpoint of --workdir and writes sample_<mode>.png into --out_dir
(default: the workdir). Modes (default: all that apply; see tfsmooth/programs/image_grids.py):
smoothed, single_step, two_step, denoise, inpaint for a smoothed run; samples, inpaint for a
baseline. The same --seed gives the same grids.
"""

import os

from absl import flags

from tfsmooth import errors
from tfsmooth.programs import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained image run (launch/train.py --workdir).')
_OUT_DIR = flags.DEFINE_string('out_dir', '', 'Where the PNGs go (default: --workdir).')
_NUM_SAMPLES = flags.DEFINE_integer(
    'num_samples',
    16,
    'Samples per grid (sample modes), or test images (columns) for denoise and inpaint.',
    lower_bound=1,
)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of every draw.')
_MODES = flags.DEFINE_list(
    'modes',
    [],
    "Subset of the model's modes: its samplers (a baseline: samples; a smoothed pair: "
    'smoothed, single_step, two_step), denoise (pairs) and inpaint (image models); default: all.',
)
_KNOWN_ROWS = flags.DEFINE_integer(
    'num_known_rows',
    0,
    'Inpainting: rows kept from the top (default: half the image height).',
    lower_bound=0,
)
flags.mark_flags_as_required(['workdir'])


def main():
  # Imported here, once cli.run_main has quieted TensorFlow's start-up.
  from tfsmooth import experiment  # pylint: disable=g-import-not-at-top
  from tfsmooth import tasks  # pylint: disable=g-import-not-at-top
  from tfsmooth.programs import image_grids  # pylint: disable=g-import-not-at-top

  run = experiment.Run.load(_WORKDIR.value)
  if not isinstance(run.task, tasks.ImageTask):
    raise errors.UserError(
        f'{_WORKDIR.value} holds a {run.config.data.name!r} run; '
        'launch/sample.py draws image grids (its density and sample plots '
        'are in the workdir already).'
    )
  image_grids.modes_of(run.model, _MODES.value)
  out_dir = _OUT_DIR.value or _WORKDIR.value
  grids = image_grids.make_grids(
      run, _MODES.value, _NUM_SAMPLES.value, _SEED.value, out_dir, _KNOWN_ROWS.value
  )
  for mode in grids:
    print(os.path.join(out_dir, f'sample_{mode}.png'), flush=True)


if __name__ == '__main__':
  cli.run_main(main, {'workdir': cli.READ, 'out_dir': cli.WRITE})
