"""PNG grids of an image run's samplers, denoising and inpainting (paper Fig. 14, 15).

Modes: every sampler of the model (`model.samplers`: a baseline's samples; a pair's smoothed
x~ ~ p(x~), single_step and two_step from the same x~); `denoise` for models with denoisers
(rows: clean test images, x~ = x + e, e ~ q, two draws from p(x | x~), single-step); `inpaint` for models
that complete images (rows: the input with its bottom rows masked, two completions, the
original). Every draw uses the run's named per-row seed streams with base `seed`.
"""

import os

import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import tasks
from tfsmooth.evaluation import plots

PER_ROW = 8


def modes_of(model, modes=()):
  """`modes`, checked against what `model` offers, or all of them when empty."""
  allowed = list(model.samplers)
  allowed += ['denoise'] if model.denoisers else []
  allowed += ['inpaint'] if model.can_inpaint else []
  unknown = [m for m in modes if m not in allowed]
  if unknown:
    raise errors.UserError(
        f'Modes {unknown} do not apply to this {type(model).__name__}; choose from '
        f'{", ".join(allowed)}.'
    )
  return list(modes) or allowed


def make_grids(run, modes, num_samples, seed, out_dir, num_known_rows=0, strategy=None):
  """Writes sample_<mode>.png for each mode into out_dir; returns {mode: list of grid rows}."""
  model = run.model
  modes = modes_of(model, modes)
  row_seeds = lambda name, count: run.row_seeds(name, count, base=seed)
  grids = {}
  samplers = [m for m in modes if m in model.samplers]
  if samplers:
    drawn = tasks.draw_rows(model, row_seeds('samples', num_samples), samplers, strategy=strategy)
    grids.update({name: plots.chunks(x, PER_ROW) for name, x in drawn.items()})
  if {'denoise', 'inpaint'} & set(modes):
    clean = run.task.split('test')[:num_samples]
  if 'denoise' in modes:
    noisy = model.smooth(tf.constant(clean), row_seeds('denoise_noise', num_samples))
    twice = tf.concat([noisy, noisy], 0)
    denoised = tf.function(model.denoise)(twice, row_seeds('denoise', 2 * num_samples))
    grids['denoise'] = [clean, noisy.numpy()]
    if 'two_step' in denoised:
      grids['denoise'] += np.split(denoised['two_step'].numpy(), 2)
    if 'single_step' in denoised:  # deterministic: one row
      grids['denoise'].append(denoised['single_step'].numpy()[:num_samples])
  if 'inpaint' in modes:
    rows = num_known_rows or clean.shape[1] // 2
    twice = tf.constant(np.concatenate([clean, clean]))
    counts = tf.fill([2 * num_samples], rows)
    filled = tf.function(model.inpaint)(twice, counts, row_seeds('inpaint', 2 * num_samples))
    masked = clean.copy()
    masked[:, rows:] = 0.0  # mid-grey
    grids['inpaint'] = [masked, filled.numpy()[:num_samples], filled.numpy()[num_samples:], clean]
  for mode, grid_rows in grids.items():
    plots.save_image_grid(grid_rows, os.path.join(out_dir, f'sample_{mode}.png'))
  return grids
