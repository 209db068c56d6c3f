"""Sample, denoising and inpainting grids (PNG) from a trained image run.

  python launch/sample.py --workdir=/work/runs/fmnist_smoothed
  python launch/sample.py --workdir=/work/runs/fmnist_smoothed --modes=denoise,inpaint \
      --num_samples=8 --seed=1

Restores the best checkpoint of `--workdir` (written by launch/train.py, whose config.json
describes the model) and writes `sample_<mode>.png` into `--out_dir` (default: the workdir).
Modes (default: all that apply to the run):
  smoothed run: smoothed (x~ ~ p(x~)), single_step (x~ + sigma^2 grad log p(x~)),
                two_step (x ~ p(x | x~) from the same x~), denoise (rows: clean test images,
                x~ = x + N(0, sigma^2), two draws from p(x | x~), single-step denoised),
                inpaint (rows: input with the bottom rows masked, two completions, original);
  baseline run: samples, inpaint (completions by the PixelCNN itself).
The same --seed gives the same grids.
"""

import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from tfsmooth.evaluation import plots  # noqa: E402
from tfsmooth.train import images  # noqa: E402
from tfsmooth.train import trainer  # noqa: E402

SMOOTHED_MODES = ('smoothed', 'single_step', 'two_step', 'denoise', 'inpaint')
BASELINE_MODES = ('samples', 'inpaint')

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained image run (launch/train.py --workdir).')
_OUT_DIR = flags.DEFINE_string('out_dir', '', 'Where the PNGs go (default: --workdir).')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 16, 'Samples per grid (sample modes), or '
                                   'test images (columns) for denoise and inpaint.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of every draw.')
_MODES = flags.DEFINE_list('modes', [], f'Subset of {",".join(SMOOTHED_MODES)} (smoothed runs) '
                           f'or {",".join(BASELINE_MODES)} (baseline runs); default: all.')
_KNOWN_ROWS = flags.DEFINE_integer('num_known_rows', 0, 'Inpainting: rows kept from the top '
                                   '(default: half the image height).')
flags.mark_flags_as_required(['workdir'])


def load_run(workdir):
  """(config, model with the best weights restored, sigma or None) of a launch/train.py run."""
  config = trainer.read_config(workdir)
  if not images.is_image_config(config):
    raise ValueError(f'{workdir} holds a {config.data.name!r} run; launch/sample.py draws '
                     f'images ({", ".join(images.DATASETS)}).')
  sigma = None
  if config.smoothing.enabled:
    metrics_path = os.path.join(workdir, 'metrics.json')
    if os.path.exists(metrics_path):
      with open(metrics_path) as f:
        sigma = json.load(f).get('sigma')
    if sigma is None:
      sigma = images.resolve_sigma(config)
  model = images.build_model(config, sigma)
  path = trainer.restore_best(model, workdir)
  logging.info('Restored %s', path)
  return config, model, sigma


def make_grids(config, model, modes, num_samples, seed, out_dir, num_known_rows=0):
  """Writes sample_<mode>.png for each mode; returns {mode: list of grid rows}."""
  smoothed = config.smoothing.enabled
  allowed = SMOOTHED_MODES if smoothed else BASELINE_MODES
  modes = list(modes) or list(allowed)
  unknown = [m for m in modes if m not in allowed]
  if unknown:
    raise ValueError(f'Modes {unknown} do not apply to a {"smoothed" if smoothed else "baseline"} '
                     f'run; choose from {", ".join(allowed)}.')
  seed_of = lambda salt: tf.constant([seed, salt], tf.int32)  # noqa: E731
  per_row = 8
  grids = {}
  if not smoothed and 'samples' in modes:
    x = tf.function(model.sample)(num_samples, seed_of(1)).numpy()
    grids['samples'] = plots.chunks(x, per_row)
  if smoothed and {'smoothed', 'single_step', 'two_step'} & set(modes):
    prior_seed, conditional_seed = tfp.random.split_seed(seed_of(1))
    x_tilde = tf.function(model.sample_smoothed)(num_samples, prior_seed)
    if 'smoothed' in modes:
      grids['smoothed'] = plots.chunks(x_tilde.numpy(), per_row)
    if 'single_step' in modes:
      single = tf.function(model.denoise_single_step)(x_tilde).numpy()
      grids['single_step'] = plots.chunks(single, per_row)
    if 'two_step' in modes:
      two = tf.function(model.denoise)(x_tilde, conditional_seed).numpy()
      grids['two_step'] = plots.chunks(two, per_row)
  if {'denoise', 'inpaint'} & set(modes):
    clean = images.load_split(config, config.data.test_split, num_samples)
  if 'denoise' in modes:
    noisy = model.kernel.smooth(tf.constant(clean), seed_of(2))
    draws = tf.function(model.denoise)(tf.concat([noisy, noisy], 0), seed_of(3)).numpy()
    single = tf.function(model.denoise_single_step)(noisy).numpy()
    grids['denoise'] = [clean, noisy.numpy(), draws[:num_samples], draws[num_samples:], single]
  if 'inpaint' in modes:
    rows = num_known_rows or clean.shape[1] // 2
    twice = tf.constant(np.concatenate([clean, clean]))
    if smoothed:
      filled = tf.function(model.inpaint)(twice, rows, seed_of(4)).numpy()
    else:
      filled = tf.function(model.complete)(twice, rows, seed_of(4)).numpy()
    masked = clean.copy()
    masked[:, rows:] = 0.  # mid-grey
    grids['inpaint'] = [masked, filled[:num_samples], filled[num_samples:], clean]
  os.makedirs(out_dir, exist_ok=True)
  for mode, rows in grids.items():
    plots.save_image_grid(rows, os.path.join(out_dir, f'sample_{mode}.png'))
  return grids


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config, model, _ = load_run(_WORKDIR.value)
  out_dir = _OUT_DIR.value or _WORKDIR.value
  grids = make_grids(config, model, _MODES.value, _NUM_SAMPLES.value, _SEED.value, out_dir,
                     _KNOWN_ROWS.value)
  for mode in grids:
    print(os.path.join(out_dir, f'sample_{mode}.png'), flush=True)


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  app.run(main)
