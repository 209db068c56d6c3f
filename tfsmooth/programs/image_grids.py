"""PNG grids of an image run's samplers, denoising and inpainting (paper Fig. 14, 15).

Modes: every sampler of the model (`model.samplers`: a baseline's samples; a pair's smoothed
x~ ~ p(x~), single_step and two_step from the same x~; a noise-conditional pair's annealed); `denoise` for models with denoisers
(rows: clean test images, x~ = x + e, e ~ q, two draws from p(x | x~), single-step); `inpaint` for models
that complete images (rows: the input with its bottom rows masked, two completions, the
original). Every draw uses the run's named per-row seed streams with base `seed`. A model with
class labels denoises and inpaints each test image given its own label, draws the sampler
grids without one (the null class: p(x)) and, for chosen classes, `class_grids` draws one row
per class, the columns from the same seed rows, so a column shows what the label changes.

A noise-conditional pair (one model for every noise level in its trained range) draws at its
reference level, or at `sigma` (launch/sample.py --sigma) where given: every sampler, and the
denoising grid's x~ and both denoisers, and inpainting, at that level, into
sample_<mode>_sigma<sigma>.png (its `annealed` sampler walks its own ladder of levels
whatever `sigma` is). A model without noise levels refuses `sigma` in one paragraph.
"""

import os

import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import tasks
from tfsmooth.evaluation import plots
from tfsmooth.evaluation import replicated
from tfsmooth.programs import sample_eval

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


def noise_level(model, sigma):
  """`sigma` (launch/sample.py --sigma) checked against the noise levels `model` was trained
  on (`sample_eval.noise_level`), as a float; None (no --sigma: the reference level, under the
  plain file names) stays None."""
  if sigma is None:
    return None
  return sample_eval.noise_level(model, sigma, doing='draws', outputs='grids')


def grid_path(out_dir, name, sigma=None):
  """out_dir/sample_<name>.png, or sample_<name>_sigma<sigma>.png for grids at a given level."""
  suffix = '' if sigma is None else f'_sigma{sigma:g}'
  return os.path.join(out_dir, f'sample_{name}{suffix}.png')


def _levels(sigma, count):
  """{'sigma': float32 [count]} at the level `sigma`, or {} (the model's reference level)."""
  return {} if sigma is None else {'sigma': np.full(count, sigma, np.float32)}


def make_grids(run, modes, num_samples, seed, out_dir, num_known_rows=0, strategy=None, sigma=None):
  """Writes sample_<mode>.png for each mode into out_dir (a noise-conditional run's at the
  level `sigma`, if given: `noise_level`, `grid_path`); returns {mode: list of grid rows}."""
  model = run.model
  modes = modes_of(model, modes)
  sigma = noise_level(model, sigma)
  row_seeds = lambda name, count: run.row_seeds(name, count, base=seed)
  grids = {}
  samplers = [m for m in modes if m in model.samplers]
  if samplers:
    drawn = tasks.draw_rows(
        model,
        row_seeds('samples', num_samples),
        samplers,
        strategy=strategy,
        conditions=_levels(sigma, num_samples),
    )
    grids.update({name: plots.chunks(x, PER_ROW) for name, x in drawn.items()})
  if {'denoise', 'inpaint'} & set(modes):
    clean = run.task.split('test')[:num_samples]
    given = {k: v[:num_samples] for k, v in run.task.conditions('test').items()}
    given.update(_levels(sigma, len(clean)))
    given_twice = {k: tf.constant(np.concatenate([v, v])) for k, v in given.items()}
  if 'denoise' in modes:
    noisy = model.smooth(
        tf.constant(clean),
        row_seeds('denoise_noise', num_samples),
        **{k: tf.constant(v) for k, v in _levels(sigma, len(clean)).items()},
    )
    twice = tf.concat([noisy, noisy], 0)
    denoise = replicated.cached_on(
        model, ('grids', 'denoise'), lambda: tf.function(lambda x, s, c: model.denoise(x, s, **c))
    )
    denoised = denoise(twice, row_seeds('denoise', 2 * num_samples), given_twice)
    grids['denoise'] = [clean, noisy.numpy()]
    if 'two_step' in denoised:
      grids['denoise'] += np.split(denoised['two_step'].numpy(), 2)
    if 'single_step' in denoised:  # deterministic: one row
      grids['denoise'].append(denoised['single_step'].numpy()[:num_samples])
  if 'inpaint' in modes:
    rows = num_known_rows or clean.shape[1] // 2
    twice = tf.constant(np.concatenate([clean, clean]))
    counts = tf.fill([2 * num_samples], rows)
    inpaint = replicated.cached_on(
        model,
        ('grids', 'inpaint'),
        lambda: tf.function(lambda x, n, s, c: model.inpaint(x, n, s, **c)),
    )
    filled = inpaint(twice, counts, row_seeds('inpaint', 2 * num_samples), given_twice)
    masked = clean.copy()
    masked[:, rows:] = 0.0  # mid-grey
    grids['inpaint'] = [masked, filled.numpy()[:num_samples], filled.numpy()[num_samples:], clean]
  for mode, grid_rows in grids.items():
    plots.save_image_grid(grid_rows, grid_path(out_dir, mode, sigma))
  return grids


def class_labels(model, labels):
  """The class labels of `labels` (ints; ['all']: every class) checked against the model's."""
  condition = dict(model.conditions).get('labels')
  if condition is None:
    raise errors.UserError(
        'This model was trained without class labels (data.labels=False), so --labels does not '
        'apply: drop it, or train with --config.data.labels=True.'
    )
  if list(labels) == ['all']:
    return list(range(condition.num_classes))
  try:
    values = [int(v) for v in labels]
  except ValueError:
    values = None
  if values is None or any(not 0 <= v < condition.num_classes for v in values):
    raise errors.UserError(
        f'--labels takes class numbers 0..{condition.num_classes - 1} (or all), got '
        f'{",".join(map(str, labels))}; the classes are '
        + ', '.join(f'{i} {name}' for i, name in enumerate(condition.names[:-1]))
        + '.'
    )
  return values


def class_grids(run, labels, per_class, seed, out_dir, samplers=None, strategy=None, sigma=None):
  """Writes sample_<sampler>_by_class.png: one row per class of `labels`, `per_class` draws
  each, column j of every row from seed row j (the same noise, another label), at the noise
  level `sigma` if given (`make_grids`). Returns {sampler: list of grid rows}."""
  model = run.model
  labels = class_labels(model, labels)
  sigma = noise_level(model, sigma)
  samplers = list(samplers or model.samplers)
  rows = run.row_seeds('samples', per_class, base=seed)
  seeds_all = np.tile(np.asarray(rows), (len(labels), 1))
  given = {'labels': np.repeat(np.asarray(labels, np.int32), per_class)}
  given.update(_levels(sigma, len(seeds_all)))
  drawn = tasks.draw_rows(model, seeds_all, samplers, strategy=strategy, conditions=given)
  grids = {name: np.split(x, len(labels)) for name, x in drawn.items()}
  for name, grid_rows in grids.items():
    plots.save_image_grid(grid_rows, grid_path(out_dir, f'{name}_by_class', sigma))
  return grids


def write(
    workdir, modes=(), num_samples=16, seed=0, out_dir='', num_known_rows=0, labels=(), sigma=None
):
  """launch/sample.py: the grids of `modes` of the run in `workdir` (an image run; its best
  weights) and, with `labels`, its class grids, into `out_dir` (default the workdir), at the
  noise level `sigma` for a noise-conditional run (default: its reference level). Returns the
  paths written."""
  run = experiment.Run.load(workdir)
  if not isinstance(run.task, tasks.ImageTask):
    raise errors.UserError(
        f'{workdir} holds a {run.config.data.name!r} run; launch/sample.py draws image grids '
        '(its density and sample plots are in the workdir already).'
    )
  modes_of(run.model, modes)  # checked before anything is drawn
  sigma = noise_level(run.model, sigma)
  if labels:
    class_labels(run.model, labels)
  out_dir = out_dir or workdir
  tf.io.gfile.makedirs(out_dir)
  written = [
      grid_path(out_dir, mode, sigma)
      for mode in make_grids(run, modes, num_samples, seed, out_dir, num_known_rows, sigma=sigma)
  ]
  if labels:
    samplers = [m for m in modes if m in run.model.samplers] or None
    for name in class_grids(run, labels, num_samples, seed, out_dir, samplers, sigma=sigma):
      written.append(grid_path(out_dir, f'{name}_by_class', sigma))
  return written
