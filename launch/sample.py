"""Sample, denoising and inpainting grids (PNG) from a trained image run.

  python launch/sample.py --workdir=runs/fmnist_smoothed
  python launch/sample.py --workdir=runs/fmnist_smoothed --modes=denoise,inpaint \
      --num_samples=8 --seed=1
  python launch/sample.py --workdir=runs/fmnist_labels --modes=two_step --labels=0,3,7
  python launch/sample.py --workdir=runs/fmnist_nc --sigma=0.2

Restores the best checkpoint of --workdir and writes sample_<mode>.png into --out_dir
(default: the workdir). Modes (default: all that apply; see tfsmooth/programs/image_grids.py):
smoothed, single_step, two_step, denoise, inpaint for a smoothed run (and annealed for a
noise-conditional one); samples, inpaint for a baseline. The same --seed gives the same grids. A
class-labelled run denoises and inpaints each test image given its label; --labels adds one grid
per sampler with a row per class. A noise-conditional run (config :noise_conditional) draws at
its reference level, or with --sigma at that level (every sampler, denoising and inpainting;
annealed walks its own ladder) into sample_<mode>_sigma<sigma>.png.
"""

from absl import flags

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
    'smoothed, single_step, two_step; a noise-conditional pair also annealed), denoise (pairs) '
    'and inpaint (image models); default: all.',
)
_KNOWN_ROWS = flags.DEFINE_integer(
    'num_known_rows',
    0,
    'Inpainting: rows kept from the top (default: half the image height).',
    lower_bound=0,
)
_LABELS = flags.DEFINE_list(
    'labels',
    [],
    'A class-labelled run (data.labels=True): classes to draw, one grid row each, e.g. 0,3,7, or '
    'all; writes sample_<sampler>_by_class.png (columns share their seeds across classes).',
)
_SIGMA = flags.DEFINE_float(
    'sigma',
    None,
    'A noise-conditional run (config :noise_conditional): the noise level of every grid, within '
    'its trained range (default: its reference level, smoothing.sigma); files '
    'sample_<mode>_sigma<sigma>.png. Not evaluate.py --single_step_sigmas.',
)
flags.mark_flags_as_required(['workdir'])


def main():
  # Imported here, once cli.run_main has quieted TensorFlow's start-up.
  from tfsmooth.programs import image_grids  # pylint: disable=g-import-not-at-top

  for path in image_grids.write(
      _WORKDIR.value,
      _MODES.value,
      _NUM_SAMPLES.value,
      _SEED.value,
      _OUT_DIR.value,
      _KNOWN_ROWS.value,
      _LABELS.value,
      _SIGMA.value,
  ):
    print(path, flush=True)


if __name__ == '__main__':
  cli.run_main(main, {'workdir': cli.READ, 'out_dir': cli.WRITE})
