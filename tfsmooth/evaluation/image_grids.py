"""PNG grids of an image run's samplers, denoising and inpainting (paper Fig. 14, 15).

Modes of a smoothed run: smoothed (x~ ~ p(x~)), single_step (x~ + sigma^2 grad log p(x~)),
two_step (x ~ p(x | x~) from the same x~), denoise (rows: clean test images,
x~ = x + N(0, sigma^2), two draws from p(x | x~), single-step denoised), inpaint (rows: the
input with its bottom rows masked, two completions, the original). Baseline run: samples,
inpaint (completions by the PixelCNN itself). Every draw uses a named seed of the run.
"""

import os

import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.evaluation import plots

SMOOTHED_MODES = ('smoothed', 'single_step', 'two_step', 'denoise', 'inpaint')
BASELINE_MODES = ('samples', 'inpaint')
PER_ROW = 8


def modes_of(run, modes=()):
  """`modes`, checked against the run's kind, or all of them when empty."""
  allowed = SMOOTHED_MODES if run.smoothed else BASELINE_MODES
  unknown = [m for m in modes if m not in allowed]
  if unknown:
    raise errors.UserError(
        f'Modes {unknown} do not apply to a '
        f'{"smoothed" if run.smoothed else "baseline"} run; choose from '
        f'{", ".join(allowed)}.'
    )
  return list(modes) or list(allowed)


def make_grids(run, modes, num_samples, seed, out_dir, num_known_rows=0):
  """Writes sample_<mode>.png for each mode into out_dir; returns {mode: list of grid rows}."""
  modes = modes_of(run, modes)
  model = run.model
  seed_of = lambda name: run.seed(name, base=seed)  # noqa: E731
  grids = {}
  if 'samples' in modes:
    x = tf.function(model.sample)(num_samples, seed_of('samples')).numpy()
    grids['samples'] = plots.chunks(x, PER_ROW)
  if {'smoothed', 'single_step', 'two_step'} & set(modes):
    x_tilde = tf.function(model.sample_smoothed)(num_samples, seed_of('prior_samples'))
    if 'smoothed' in modes:
      grids['smoothed'] = plots.chunks(x_tilde.numpy(), PER_ROW)
    if 'single_step' in modes:
      single = tf.function(model.denoise_single_step)(x_tilde).numpy()
      grids['single_step'] = plots.chunks(single, PER_ROW)
    if 'two_step' in modes:
      two = tf.function(model.denoise)(x_tilde, seed_of('samples')).numpy()
      grids['two_step'] = plots.chunks(two, PER_ROW)
  if {'denoise', 'inpaint'} & set(modes):
    clean = run.task.split('test')[:num_samples]
  if 'denoise' in modes:
    noisy = model.kernel.smooth(tf.constant(clean), seed_of('denoise_noise'))
    draws = tf.function(model.denoise)(tf.concat([noisy, noisy], 0), seed_of('denoise')).numpy()
    single = tf.function(model.denoise_single_step)(noisy).numpy()
    grids['denoise'] = [clean, noisy.numpy(), draws[:num_samples], draws[num_samples:], single]
  if 'inpaint' in modes:
    rows = num_known_rows or clean.shape[1] // 2
    twice = tf.constant(np.concatenate([clean, clean]))
    complete = model.inpaint if run.smoothed else model.complete
    filled = tf.function(complete)(twice, rows, seed_of('inpaint')).numpy()
    masked = clean.copy()
    masked[:, rows:] = 0.0  # mid-grey
    grids['inpaint'] = [masked, filled[:num_samples], filled[num_samples:], clean]
  os.makedirs(out_dir, exist_ok=True)
  for mode, grid_rows in grids.items():
    plots.save_image_grid(grid_rows, os.path.join(out_dir, f'sample_{mode}.png'))
  return grids
