"""One model for every noise level (issue 25), on points where the truth is known.

Every run is an `experiment.Run` of a config from `tfsmooth/configs/` in its own workdir under
--workdir (a rerun reads a finished run's metrics.json and resumes an unfinished one):

  <data set>_noise_conditional   `<data set>.py:noise_conditional`: one pair for every sigma
                                 in its range, validated at its reference sigma
  <data set>_fixed_s<sigma>      `<data set>.py:smoothed` at that sigma: the paper's pair, one
                                 model per sigma, the same networks, steps and batch

For rings and olympics (2-D):
  * the same budget: the noise-conditional pair against the fixed pair at the reference sigma
    (0.3; steps x batch equal, parameter counts recorded), IW-100 and ELBO on the test split
    beside the true NLL of the same points (metrics' test_true_nll);
  * one training, the whole sigma study: the noise-conditional pair's bounds across sigma (its
    metrics' nll_*@sigma= figures, and --sweep_points levels more computed here on the same
    test points and seed rows) beside fixed pairs trained at --fixed_sigmas (on
    --sweep_datasets), with each route's training seconds (train_seconds of every run);
  * samplers judged by the truth: the energy distance between --num_samples draws and as many
    fresh true draws, beside its noise floor (two independent true sample sets of that size),
    and for rings a KS test of the radii |x| against their exact law (a mixture of Rice
    distributions); no one-sided score such as the mean true log-density, which rewards
    samples collapsing onto the rings. Samplers: the fixed pair's smoothed / single_step /
    two_step at the reference sigma, the noise-conditional pair's at the same sigma, and its
    annealed sampler with the setting chosen on the validation split (next point);
  * the annealed sampler's setting chosen by measurement on the validation split (never the
    test split): a grid of step sizes (--grid_step_sizes), ladders (--grid_ladders, levels x
    steps per level) and endings (--grid_ends), each scored by the energy distance of
    --grid_samples draws to the validation points; the best is used for the test figures.

For modes6_1d: the noise-conditional pair's ELBO / IW curve against sigma beside the kernel
study's separately trained Gaussian pairs (--kernel_study, RESULTS.md "Kernel study"), with
both routes' training seconds, and its samplers judged by the truth as above (a KS test of x
against the exact mixture CDF), the annealed setting chosen on the validation split.

Energy distance: 2 E|X - Y| - E|X - X'| - E|Y - Y'| over every pair of points of the two sets
(the distance of their empirical laws: >= 0, zero only for equal sets, of order 1/n between two
samples of one law, hence the floor beside every figure). Writes --results (JSON) and, under
--plot_dir, <data set>_bounds_vs_sigma.png and <data set>_samples.png.

  python benchmarks/noise_conditional.py --workdir=runs/noise_conditional
"""

import dataclasses
import importlib
import json
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth import tasks  # noqa: E402
from tfsmooth.data import synthetic  # noqa: E402
from tfsmooth.evaluation import plots  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'Root for one workdir per run.')
_DATASETS = flags.DEFINE_list(
    'datasets', ['rings', 'olympics', 'modes6_1d'], 'Data sets (rings, olympics, modes6_1d).'
)
_FIXED_SIGMAS = flags.DEFINE_list(
    'fixed_sigmas',
    ['0.1', '0.3', '0.6', '1.0'],
    'Sigmas of the fixed pairs trained on --sweep_datasets (every 2-D data set also gets the '
    'fixed pair at its reference sigma, the same-budget comparison).',
)
_SWEEP_DATASETS = flags.DEFINE_list(
    'sweep_datasets', ['rings'], '2-D data sets whose fixed pairs span --fixed_sigmas.'
)
_STEPS = flags.DEFINE_integer(
    'steps', 0, "Training steps of every run (0: each config's own).", lower_bound=0
)
_OVERRIDES = flags.DEFINE_string(
    'overrides',
    '{}',
    'JSON dict of flattened config overrides applied to every run, e.g. {"eval.iw_samples": 10}.',
)
_NUM_SAMPLES = flags.DEFINE_integer(
    'num_samples', 5000, 'Draws per sampler, and fresh true draws, on the test side.', lower_bound=2
)
_SWEEP_POINTS = flags.DEFINE_integer(
    'sweep_points',
    8,
    "Levels evenly spaced in log over the noise-conditional pair's range at which its test "
    'bounds are computed besides those its metrics.json holds (0: none).',
    lower_bound=0,
)
_GRID_STEP_SIZES = flags.DEFINE_list(
    'grid_step_sizes',
    ['0.1', '0.3', '0.5', '1.0'],
    "Annealed sampler's step sizes (relative to the level's variance) tried on validation.",
)
_GRID_LADDERS = flags.DEFINE_list(
    'grid_ladders',
    ['10x5', '5x10', '25x2'],
    "Annealed sampler's ladders tried on validation: <levels>x<Langevin steps per level>.",
)
_GRID_ENDS = flags.DEFINE_list(
    'grid_ends', ['two_step', 'single_step'], "Annealed sampler's endings tried on validation."
)
_GRID_SAMPLES = flags.DEFINE_integer(
    'grid_samples',
    2000,
    'Draws per annealed setting scored on the validation split.',
    lower_bound=2,
)
_KERNEL_STUDY = flags.DEFINE_string(
    'kernel_study',
    'benchmarks/results/kernel_study.json',
    "The kernel study's record: its Gaussian pairs on modes6_1d, one run per sigma.",
)
_RESULTS = flags.DEFINE_string(
    'results', 'benchmarks/results/noise_conditional.json', 'JSON output.'
)
_PLOT_DIR = flags.DEFINE_string(
    'plot_dir', 'benchmarks/results/noise_conditional', 'PNG directory.'
)
flags.mark_flag_as_required('workdir')

# Seeds of the fresh true draws (the splits use 0, 1, 2; entropies 2021): the set every
# sampler is compared with, the second set of the test-side noise floor, and the set of the
# validation-side floor.
TRUTH_SEED, FLOOR_SEED, VALIDATION_FLOOR_SEED = 100, 101, 102
SHIFT = 0.1  # a scale for the energy distances: the truth against the truth moved by SHIFT in x1
SWEEP_KEY = 'driver_sigma_sweep'  # what this driver adds to a noise-conditional run's metrics
FIELDS = (  # of a run's metrics.json, kept in the record
    'num_params',
    'steps',
    'best_step',
    'train_seconds',
    'wall_seconds',
    'nll_iw',
    'nll_elbo',
    'iw_samples',
    'sigma',
    'sigma_range',
    'annealing',
)

UNITS = (
    'nats per test point (the 5000 test points); nll_iw = -(IW bound with iw_samples draws), '
    'nll_elbo = -ELBO, both upper bounds on -log p(x); test_true_nll = -log p_true of the same '
    "points (the limit). energy_distance = 2 E|X-Y| - E|X-X'| - E|Y-Y'| over every pair of "
    'points of the two sets (>= 0; of order 1/n between two samples of one law: see '
    'energy_floor). KS: Kolmogorov-Smirnov statistic and p-value of the one-sample test of '
    'ks_of against its exact law. train_seconds: the training loop of a run as its metrics.json '
    'recorded it (wall_seconds: the whole run_or_load call, where this invocation trained it).'
)


# ---------------------------------------------------------------------------------------------
# Judging samples by the truth


def mean_distance(x, y, chunk=500):
  """E|X - Y| over every pair (x_i, y_j) of the rows of x [n, D] and y [m, D] (float64)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  total = 0.0
  for start in range(0, len(x), chunk):
    diff = x[start : start + chunk, None, :] - y[None, :, :]
    total += np.sqrt(np.sum(np.square(diff), axis=-1)).sum()
  return total / (len(x) * len(y))


def energy_distance(x, y):
  """2 E|X - Y| - E|X - X'| - E|Y - Y'| of the empirical laws of x [n, D] and y [m, D]."""
  return float(2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y))


def ks_law(dataset):
  """(what, statistic_fn, cdf) of the one-sample KS test of a data set, or None: rings the
  radius |x| (a point of a circle of radius r around 0 with N(0, s^2 I) noise has a Rice(r/s,
  scale s) radius), a 1-D Gaussian mixture x itself."""
  if isinstance(dataset, synthetic.NoisyCircles) and np.allclose(dataset.centres, 0):
    s = dataset.noise

    def radius_cdf(r):
      return np.mean([stats.rice.cdf(r, b=c / s, scale=s) for c in dataset.radii], axis=0)

    return 'radius |x|', lambda x: np.linalg.norm(x, axis=1), radius_cdf
  if isinstance(dataset, synthetic.GaussianMixture1D):

    def cdf(v):
      return np.mean([stats.norm.cdf(v, m, dataset.scale) for m in dataset.means], axis=0)

    return 'x', lambda x: x[:, 0], cdf
  return None


def judge(x, truth, dataset):
  """{energy_distance, and ks / ks_pvalue where the data set has a KS law} of draws x."""
  out = {'energy_distance': energy_distance(x, truth)}
  law = ks_law(dataset)
  if law is not None:
    _, statistic, cdf = law
    test = stats.kstest(statistic(np.asarray(x, np.float64)), cdf)
    out.update(ks=float(test.statistic), ks_pvalue=float(test.pvalue))
  return out


def truth_sets(dataset, n):
  """The fresh true draws every sampler is compared with, and the floors beside them."""
  truth, other = dataset.sample(n, TRUTH_SEED), dataset.sample(n, FLOOR_SEED)
  shifted = other + np.array([SHIFT] + [0.0] * (dataset.dim - 1), np.float32)
  floor = {
      'num_samples': n,
      'truth_seed': TRUTH_SEED,
      'floor_seed': FLOOR_SEED,
      'energy_floor': energy_distance(other, truth),
      f'energy_shifted_by_{SHIFT:g}': energy_distance(shifted, truth),
  }
  law = ks_law(dataset)
  if law is not None:
    floor['ks_of'] = law[0]
    truth_ks = judge(other, truth, dataset)
    floor.update(ks_floor=truth_ks['ks'], ks_floor_pvalue=truth_ks['ks_pvalue'])
  return truth, floor


# ---------------------------------------------------------------------------------------------
# Runs


def make_config(dataset, variant, sigma=None, steps=0, overrides=None):
  """The config of one run: `<dataset>.py:<variant>`, at `sigma` if given."""
  config = importlib.import_module(f'tfsmooth.configs.{dataset}').get_config(variant)
  if sigma is not None:
    config.smoothing.sigma = float(sigma)
  config.update_from_flattened_dict(overrides or {})
  if steps:
    config.train.steps = int(steps)
  return config


def run_or_load(config, workdir):
  """The metrics of the run of `config` in `workdir`, trained here if unfinished (all runs are
  trained before any is loaded: `load`)."""
  run, metrics = common.run_or_load(config, workdir, wall_seconds=True)
  if run.lock is not None:  # a finished run's: nothing trains here
    run.lock.release()
  if 'wall_seconds' in metrics:
    run.write_metrics(metrics)
  logging.info('%s: %s', os.path.basename(workdir), tasks.PointsTask.summary_line(metrics))
  return metrics


def load(workdir):
  """The finished run of `workdir` with its best weights, and its metrics.json."""
  run = experiment.Run.load(workdir)
  return run, run.read_metrics()


def summary(metrics, config, workdir):
  """The fields of a run's metrics this record keeps, with its training budget."""
  out = {k: metrics[k] for k in FIELDS if k in metrics}
  out.update(
      workdir=common.relative(workdir),
      batch_size=config.train.batch_size,
      steps_x_batch=metrics.get('steps', config.train.steps) * config.train.batch_size,
  )
  return out


def sweep_levels(metrics):
  """{sigma: {nll_iw, nll_elbo}} of the nll_*@sigma= figures a run's metrics.json holds."""
  out = {}
  for key, value in metrics.items():
    name, sep, level = key.partition('@sigma=')
    if sep and name in ('nll_iw', 'nll_elbo'):
      out.setdefault(float(level), {})[name] = value
  return out


def bounds_across_sigma(run, metrics, levels):
  """The noise-conditional pair's test bounds at its metrics' levels and at `levels`, each
  [{sigma, nll_iw, nll_elbo, source}] sorted by sigma; the levels computed here (the same test
  points, seed rows and IW draws as metrics.json's) are kept in its metrics under SWEEP_KEY.
  Also a check that they are of a kind: the reference level's IW bound recomputed here beside
  the one metrics.json holds."""
  curve = {s: dict(v, source='metrics.json') for s, v in sweep_levels(metrics).items()}
  curve.setdefault(
      float(metrics['sigma']),
      {'nll_iw': metrics['nll_iw'], 'nll_elbo': metrics['nll_elbo'], 'source': 'metrics.json'},
  )
  cached = metrics.setdefault(SWEEP_KEY, {})
  count = len(run.task.split('test'))
  for sigma in levels:
    sigma = float(f'{sigma:.4g}')
    if any(np.isclose(sigma, s, rtol=1e-3) for s in curve):
      continue
    key = f'{sigma:.4g}'
    if key not in cached:
      record = run.likelihood(
          run.model,
          'test',
          run.config.eval.iw_samples,
          conditions={'sigma': np.full(count, sigma, np.float32)},
      )
      cached[key] = {'nll_iw': record.nll, 'nll_elbo': record.nll_elbo}
    curve[sigma] = dict(cached[key], source='computed by this driver')
  if 'reference' not in cached:  # the figures computed here are metrics.json's kind
    record = run.likelihood(run.model, 'test', run.config.eval.iw_samples)
    cached['reference'] = {'sigma': float(metrics['sigma']), 'nll_iw': record.nll}
  run.write_metrics(metrics)
  return [dict(sigma=s, **curve[s]) for s in sorted(curve)], {
      'sigma': cached['reference']['sigma'],
      'nll_iw_in_metrics': metrics['nll_iw'],
      'nll_iw_recomputed_from_the_best_checkpoint': cached['reference']['nll_iw'],
  }


# ---------------------------------------------------------------------------------------------
# Samplers


def draw(model, seeds, samplers, sigma=None):
  """{sampler: numpy [N, D]} of `model.draw` for seed rows [N, 2], at the level `sigma` for a
  noise-conditional pair; traced afresh, so the model's annealing as it is now applies."""
  seeds = np.asarray(seeds, np.int32)
  given = {} if sigma is None else {'sigma': tf.fill([len(seeds)], float(sigma))}
  fn = tf.function(lambda s, c: model.draw(s, list(samplers), **c))
  return {k: v.numpy() for k, v in fn(tf.constant(seeds), given).items()}


def choose_annealing(run, dataset):
  """The annealed setting of the grid flags with the least energy distance to the validation
  points (the model's annealing is left at the chosen one), and the grid's record."""
  model = run.model
  validation = run.task.split('validation')
  rows = run.row_seeds('samples', _GRID_SAMPLES.value, base=run.config.eval.seed + 1)
  configured = model.annealing
  grid = []
  for plan in common.annealing_grid(
      configured, _GRID_STEP_SIZES.value, _GRID_LADDERS.value, _GRID_ENDS.value
  ):
    model.annealing = plan
    x = draw(model, rows, ['annealed'])['annealed']
    grid.append(
        dict(
            dataclasses.asdict(plan),
            score_evaluations=plan.score_evaluations,
            energy_distance=energy_distance(x, validation),
        )
    )
    logging.info('annealed %s: validation energy distance %.5f', plan, grid[-1]['energy_distance'])
  best = min(grid, key=lambda row: row['energy_distance'])
  chosen = dataclasses.replace(
      configured, **{k: best[k] for k in ('levels', 'steps', 'step_size', 'end')}
  )
  model.annealing = chosen
  floor = energy_distance(dataset.sample(len(validation), VALIDATION_FLOOR_SEED), validation)
  return chosen, {
      'split': 'validation',
      'validation_points': len(validation),
      'draws_per_setting': _GRID_SAMPLES.value,
      'seed_rows': f"'samples' stream, base eval.seed + 1 = {run.config.eval.seed + 1}",
      'energy_floor': floor,
      'floor_seed': VALIDATION_FLOOR_SEED,
      'configured': dataclasses.asdict(configured),
      'chosen': dataclasses.asdict(chosen),
      'grid': grid,
  }


def judge_samplers(run, truth, dataset, sigma, samplers):
  """{sampler: judge(...)} and the draws, from the run's 'samples' seed rows at `sigma` (None
  for a fixed pair, which has one level)."""
  rows = run.row_seeds('samples', len(truth))
  drawn = draw(run.model, rows, samplers, sigma)
  return {name: judge(x, truth, dataset) for name, x in drawn.items()}, drawn


# ---------------------------------------------------------------------------------------------
# Plots


def bounds_plot(dataset, curve, others, limit, cost, path, others_label):
  """Test NLL bounds against sigma: the noise-conditional pair's curves, the fixed pairs'
  points, the true NLL of the test points as a line."""
  fig, ax = plt.subplots(figsize=(7.6, 4.2))
  sigmas = [p['sigma'] for p in curve]
  ax.plot(
      sigmas,
      [p['nll_elbo'] for p in curve],
      'o-',
      color='tab:blue',
      ms=3.5,
      label='one noise-conditional pair: -ELBO',
  )
  ax.plot(
      sigmas,
      [p['nll_iw'] for p in curve],
      's--',
      color='tab:blue',
      ms=3,
      lw=1,
      label='one noise-conditional pair: -IW',
  )
  if others:
    ax.plot(
        [p['sigma'] for p in others],
        [p['nll_elbo'] for p in others],
        'o',
        color='tab:red',
        ms=6,
        mfc='none',
        label=f'{others_label}: -ELBO',
    )
    ax.plot(
        [p['sigma'] for p in others],
        [p['nll_iw'] for p in others],
        's',
        color='tab:red',
        ms=5,
        label=f'{others_label}: -IW',
    )
  ax.axhline(limit, color='black', lw=1, label=f'true NLL of the test points ({limit:.3f})')
  ax.set_xscale('log')
  ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter('%g'))
  ax.set_xlabel('noise level sigma')
  ax.set_ylabel('test NLL bound (nats / point), lower is better')
  ax.set_title(f'{dataset}: training {cost}', fontsize=9)
  ax.legend(fontsize=7)
  plots.save_figure(fig, path)


def samples_plot(dataset, truth, panels, path):
  """The truth and every judged sampler's draws, titled with their energy distances."""
  limits = plots.plot_limits(truth[:, :2]) if truth.shape[1] > 1 else plots.plot_limits(truth)
  rows = [list(row) for row in panels]
  columns = max(len(row) for row in rows)
  fig, axes = plt.subplots(
      len(rows), columns, figsize=(3.0 * columns, 3.1 * len(rows)), squeeze=False
  )
  for r, row in enumerate(rows):
    for c in range(columns):
      ax = axes[r][c]
      if c >= len(row):
        ax.axis('off')
        continue
      title, points = row[c]
      plots.points_panel(ax, np.asarray(points), limits, title, fontsize=8)
  fig.suptitle(f'{dataset}: {len(truth)} draws each', fontsize=10)
  plots.save_figure(fig, path)


def panel_title(name, figures):
  title = f'{name}\nED {figures["energy_distance"]:.4f}'
  if 'ks' in figures:
    title += f', KS {figures["ks"]:.3f}'
  return title


# ---------------------------------------------------------------------------------------------
# Per data set


def nc_samplers(run, truth, dataset, reference):
  """The noise-conditional pair's samplers at the reference level and its annealed sampler at
  the setting chosen on the validation split: (figures, draws, the grid's record)."""
  chosen, grid = choose_annealing(run, dataset)
  fixed_level = [s for s in run.model.samplers if s != 'annealed']
  figures, drawn = judge_samplers(run, truth, dataset, reference, fixed_level)
  annealed, annealed_draws = judge_samplers(run, truth, dataset, None, ['annealed'])
  figures['annealed'] = dict(annealed['annealed'], annealing=dataclasses.asdict(chosen))
  drawn.update(annealed_draws)
  return figures, drawn, grid


def points_2d(dataset_name, root, overrides, steps, num_samples):
  """The record of a 2-D data set (module docstring) and its plots."""
  dataset = synthetic.get_dataset(dataset_name)
  nc_config = make_config(dataset_name, 'noise_conditional', steps=steps, overrides=overrides)
  reference = float(nc_config.smoothing.sigma)
  low, high = nc_config.smoothing.sigma_min, nc_config.smoothing.sigma_max
  fixed_sigmas = {reference}
  if dataset_name in _SWEEP_DATASETS.value:
    fixed_sigmas |= {float(s) for s in _FIXED_SIGMAS.value}
  nc_dir = os.path.join(root, f'{dataset_name}_noise_conditional')
  run_or_load(nc_config, nc_dir)
  fixed_configs = {}
  for sigma in sorted(fixed_sigmas):
    workdir = os.path.join(root, f'{dataset_name}_fixed_s{sigma:g}')
    fixed_configs[sigma] = (make_config(dataset_name, 'smoothed', sigma, steps, overrides), workdir)
    run_or_load(*fixed_configs[sigma])
  nc_run, nc_metrics = load(nc_dir)
  fixed = {}
  for sigma, (config, workdir) in fixed_configs.items():
    run, metrics = load(workdir)
    fixed[sigma] = (summary(metrics, config, workdir), run)
  nc = summary(nc_metrics, nc_config, nc_dir)
  same = fixed[reference][0]
  levels = list(fixed_sigmas) + (
      list(np.geomspace(low, high, _SWEEP_POINTS.value)) if _SWEEP_POINTS.value else []
  )
  curve, check = bounds_across_sigma(nc_run, nc_metrics, [s for s in levels if low <= s <= high])
  limit = nc_metrics['test_true_nll']
  fixed_seconds = {f'{s:g}': row['train_seconds'] for s, (row, _) in fixed.items()}
  cost = {
      'noise_conditional_train_seconds': nc['train_seconds'],
      'fixed_pairs': len(fixed),
      'fixed_train_seconds': fixed_seconds,
      'fixed_train_seconds_total': sum(fixed_seconds.values()),
  }
  cost['ratio_fixed_total_to_noise_conditional'] = (
      cost['fixed_train_seconds_total'] / cost['noise_conditional_train_seconds']
  )

  truth, floor = truth_sets(dataset, num_samples)
  fixed_figures, fixed_draws = judge_samplers(
      fixed[reference][1], truth, dataset, None, fixed[reference][1].model.samplers
  )
  nc_figures, nc_draws, grid = nc_samplers(nc_run, truth, dataset, reference)

  record = {
      'reference_sigma': reference,
      'sigma_range': [low, high],
      'test_true_nll': limit,
      'entropy': nc_metrics.get('entropy'),
      'same_budget': {
          'sigma': reference,
          'noise_conditional': nc,
          'fixed': same,
          'param_ratio_noise_conditional_to_fixed': nc['num_params'] / same['num_params'],
          'equal_steps_x_batch': nc['steps_x_batch'] == same['steps_x_batch'],
          'iw_gap_to_limit': {
              'noise_conditional': nc['nll_iw'] - limit,
              'fixed': same['nll_iw'] - limit,
          },
      },
      'bounds_vs_sigma': {
          'noise_conditional': curve,
          'check': check,
          'fixed': [
              {k: row[k] for k in ('sigma', 'nll_iw', 'nll_elbo', 'num_params', 'workdir')}
              for row, _ in fixed.values()
          ],
      },
      'training_cost': cost,
      'annealing_grid': grid,
      'samples': {
          **floor,
          'seed_rows': "the runs' 'samples' stream, base eval.seed",
          f'fixed_pair_sigma{reference:g}': fixed_figures,
          f'noise_conditional_sigma{reference:g}': nc_figures,
          'annealed_setting': 'chosen on the validation split (annealing_grid.chosen); the '
          'test split was not used to choose it',
      },
  }
  nc_cost = f'{cost["noise_conditional_train_seconds"]:.0f} s'
  bounds_plot(
      dataset_name,
      curve,
      record['bounds_vs_sigma']['fixed'],
      limit,
      f'one noise-conditional run {nc_cost}; {len(fixed)} fixed pair{"s" * (len(fixed) > 1)} '
      f'{cost["fixed_train_seconds_total"]:.0f} s',
      os.path.join(_PLOT_DIR.value, f'{dataset_name}_bounds_vs_sigma.png'),
      'fixed pairs, one per sigma',
  )
  samples_plot(
      dataset_name,
      truth,
      [
          [('truth (fresh draws)', truth)]
          + [
              (panel_title(f'fixed sigma {reference:g}: {name}', fixed_figures[name]), x)
              for name, x in fixed_draws.items()
          ],
          [
              (panel_title(f'noise-cond. {_level(name, reference)}: {name}', nc_figures[name]), x)
              for name, x in nc_draws.items()
          ],
      ],
      os.path.join(_PLOT_DIR.value, f'{dataset_name}_samples.png'),
  )
  return record


def _level(sampler, reference):
  return 'ladder' if sampler == 'annealed' else f'sigma {reference:g}'


def modes6(root, overrides, steps, num_samples):
  """The modes6_1d record (module docstring) and its plots."""
  dataset = synthetic.get_dataset('modes6_1d')
  config = make_config('modes6_1d', 'noise_conditional', steps=steps, overrides=overrides)
  low, high = config.smoothing.sigma_min, config.smoothing.sigma_max
  reference = float(config.smoothing.sigma)
  workdir = os.path.join(root, 'modes6_1d_noise_conditional')
  run_or_load(config, workdir)
  run, metrics = load(workdir)
  nc = summary(metrics, config, workdir)
  with open(_KERNEL_STUDY.value) as f:
    study = json.load(f)
  gaussian = [
      {k: r[k] for k in ('sigma', 'seeds', 'nll_elbo', 'nll_iw', 'nll_quadrature', 'iw_samples')}
      for r in study['smoothed_seed_means']
      if r['kernel'] == 'gaussian'
  ]
  runs = [r for r in study['smoothed_runs'] if r['kernel'] == 'gaussian']
  first_seed = [r for r in runs if r['seed'] == study['seeds'][0]]
  levels = [r['sigma'] for r in gaussian] + (
      list(np.geomspace(low, high, _SWEEP_POINTS.value)) if _SWEEP_POINTS.value else []
  )
  curve, check = bounds_across_sigma(run, metrics, [s for s in levels if low <= s <= high])
  cost = {
      'noise_conditional_train_seconds': nc['train_seconds'],
      'kernel_study_pairs_one_seed': len(first_seed),
      'kernel_study_train_seconds_one_seed': sum(r['train_seconds'] for r in first_seed),
      'kernel_study_gaussian_runs_all_seeds': len(runs),
      'kernel_study_train_seconds_all_seeds': sum(r['train_seconds'] for r in runs),
      'note': "the kernel study's seconds are those its record holds (its own invocation)",
  }
  cost['ratio_one_seed_to_noise_conditional'] = (
      cost['kernel_study_train_seconds_one_seed'] / cost['noise_conditional_train_seconds']
  )
  truth, floor = truth_sets(dataset, num_samples)
  figures, drawn, grid = nc_samplers(run, truth, dataset, reference)
  record = {
      'reference_sigma': reference,
      'sigma_range': [low, high],
      'test_true_nll': metrics['test_true_nll'],
      'entropy': metrics.get('entropy'),
      'noise_conditional': nc,
      'kernel_study': {
          'record': common.relative(_KERNEL_STUDY.value),
          'command': study.get('command'),
          'steps': study['steps'],
          'num_params': first_seed[0]['num_params'] if first_seed else None,
          'gaussian_seed_means': gaussian,
      },
      'param_ratio_noise_conditional_to_kernel_study_pair': (
          nc['num_params'] / first_seed[0]['num_params'] if first_seed else None
      ),
      'bounds_vs_sigma': {'noise_conditional': curve, 'check': check},
      'training_cost': cost,
      'annealing_grid': grid,
      'samples': {
          **floor,
          'seed_rows': "the run's 'samples' stream, base eval.seed",
          f'noise_conditional_sigma{reference:g}': figures,
          'annealed_setting': 'chosen on the validation split (annealing_grid.chosen); the '
          'test split was not used to choose it',
      },
  }
  bounds_plot(
      'modes6_1d',
      curve,
      gaussian,
      metrics['test_true_nll'],
      f'one noise-conditional run {nc["train_seconds"]:.0f} s; kernel study '
      f'{len(first_seed)} Gaussian pairs {cost["kernel_study_train_seconds_one_seed"]:.0f} s '
      f'({study["steps"]} steps each)',
      os.path.join(_PLOT_DIR.value, 'modes6_1d_bounds_vs_sigma.png'),
      "kernel study's Gaussian pairs (seed mean)",
  )
  samples_plot(
      'modes6_1d',
      truth,
      [
          [('truth (fresh draws)', truth)]
          + [
              (panel_title(f'noise-cond. {_level(name, reference)}: {name}', figures[name]), x)
              for name, x in drawn.items()
          ]
      ],
      os.path.join(_PLOT_DIR.value, 'modes6_1d_samples.png'),
  )
  return record


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  start = time.perf_counter()
  root, steps = _WORKDIR.value, _STEPS.value
  overrides = json.loads(_OVERRIDES.value)
  unknown = set(_DATASETS.value) - {'rings', 'olympics', 'modes6_1d'}
  if unknown:
    raise app.UsageError(f'--datasets takes rings, olympics, modes6_1d; got {sorted(unknown)}.')
  results = {
      'command': common.command(),
      'units': UNITS,
      'steps': steps or "each config's own (see each run's steps)",
      'overrides': overrides,
      'datasets': {},
  }
  for name in _DATASETS.value:
    if name == 'modes6_1d':
      results['datasets'][name] = modes6(root, overrides, steps, _NUM_SAMPLES.value)
    else:
      results['datasets'][name] = points_2d(name, root, overrides, steps, _NUM_SAMPLES.value)
  results['driver_seconds_this_invocation'] = time.perf_counter() - start
  common.write_json(_RESULTS.value, results)
  for name, record in results['datasets'].items():
    print(f'{name}: limit {record["test_true_nll"]:.4f}')
    for row in record['bounds_vs_sigma']['noise_conditional']:
      print(
          f'  noise-conditional sigma {row["sigma"]:<7g} -ELBO {row["nll_elbo"]:.3f} '
          f'-IW {row["nll_iw"]:.3f}'
      )
    for row in record['bounds_vs_sigma'].get('fixed', []):
      print(
          f'  fixed pair sigma {row["sigma"]:<7g} -ELBO {row["nll_elbo"]:.3f} -IW {row["nll_iw"]:.3f}'
      )
    samples = record['samples']
    print(f'  energy floor {samples["energy_floor"]:.5f}')
    for key, figures in samples.items():
      if isinstance(figures, dict) and key.startswith(('fixed', 'noise')):
        for sampler, f in figures.items():
          ks = f' KS {f["ks"]:.3f} (p {f["ks_pvalue"]:.2g})' if 'ks' in f else ''
          print(f'  {key} {sampler}: ED {f["energy_distance"]:.5f}{ks}')


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  app.run(cli.reported(main))
