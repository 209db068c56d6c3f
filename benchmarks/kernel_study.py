"""Section 4.1 kernel study on `modes6_1d`: test ELBO against sigma for three smoothing kernels.

Every run is an `experiment.Run` of `tfsmooth/configs/modes6_1d.py` in its own workdir
under --workdir (a rerun reads a finished run's metrics.json and resumes an unfinished one):

  smoothed pair, 2 logistics each:  <kernel>_s<sigma>  for kernel x sigma in the flags' grid
  mixture-of-logistics baseline:    baseline_k<K>      for K in --baseline_mixtures
  narrow initialisation:            *_init<r>          component means start in U(-r, r)
                                                       instead of U(-5, 5) (0 turns it off)

Figures per smoothed run, in nats per test point: `nll_elbo` = -ELBO and `nll_iw` = -(IW-100
bound), both upper bounds on -log p(x); and `nll_quadrature`, -log p(x) itself, with

  p(x) = int p(x~) p(x | x~) dx~  ~  trapezoid rule over x~ = x + sigma u, u in [-10, 10]

(`tfsmooth.evaluation.quadrature.log_prob`; this truncation drops the x~ that q(x~ | x) never
proposes). Baselines report the exact NLL. Writes --results (JSON), elbo_vs_sigma.png (test
ELBO, a log-likelihood, against sigma, one curve per kernel, the true -entropy as a line) and
density.png (paper figure 4: the true density, the baselines and the best Gaussian-smoothed
model) under --plot_dir.

  python benchmarks/kernel_study.py --workdir=runs/kernel_study
"""

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
import tensorflow as tf  # noqa: E402

import common  # noqa: E402
from tfsmooth import tasks  # noqa: E402
from tfsmooth.configs import modes6_1d  # noqa: E402
from tfsmooth.data import synthetic  # noqa: E402
from tfsmooth.evaluation import plots  # noqa: E402
from tfsmooth.evaluation import quadrature  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'Root for one workdir per run.')
_KERNELS = flags.DEFINE_list('kernels', ['gaussian', 'laplace', 'uniform'], 'Smoothing kernels.')
_SIGMAS = flags.DEFINE_list(
    'sigmas',
    ['0.1', '0.2', '0.35', '0.5', '0.75', '1.0', '1.5', '2.0'],
    'Kernel standard deviations.',
)
_BASELINE_MIXTURES = flags.DEFINE_list(
    'baseline_mixtures', ['2', '3', '8'], 'Components of the mixture-of-logistics baselines.'
)
_STEPS = flags.DEFINE_integer('steps', 20_000, 'Training steps per run.')
_SEEDS = flags.DEFINE_list(
    'seeds',
    ['0', '1'],
    'Training seeds (noise, data order, Keras '
    'initialisation) of the smoothed runs; the first one for all sigmas.',
)
_SEED_SIGMAS = flags.DEFINE_list(
    'seed_sigmas',
    ['0.35', '0.5', '0.75', '1.0'],
    'Sigmas at which every kernel is also trained with the other '
    '--seeds (to see seed noise near the optimum).',
)
_NARROW_INIT = flags.DEFINE_float(
    'narrow_init',
    0.5,
    'Also rerun the baselines and the best '
    'Gaussian sigma with component means initialised in U(-r, r); '
    '0 skips these runs.',
)
_RESULTS = flags.DEFINE_string('results', 'benchmarks/results/kernel_study.json', 'JSON output.')
_PLOT_DIR = flags.DEFINE_string('plot_dir', 'benchmarks/results/kernel_study', 'PNG directory.')
flags.mark_flag_as_required('workdir')

PAPER = (
    'Figures only: ELBO against sigma is an inverted U for the Gaussian, Laplace and '
    'Uniform kernels, Gaussian best; MoL(8) fails to separate the six modes while the '
    'smoothed pair with 2 logistics fits them (figure 4).'
)


def make_config(
    kernel=None, sigma=None, baseline_mixtures=None, steps=20_000, init_range=None, seed=0
):
  """The modes6_1d config of one run: smoothed (kernel, sigma) or baseline with K logistics."""
  config = modes6_1d.get_config('baseline' if baseline_mixtures else 'smoothed')
  if baseline_mixtures:
    config.model.num_mixtures = int(baseline_mixtures)
  else:
    config.smoothing.kernel = kernel
    config.smoothing.sigma = float(sigma)
  if init_range is not None:
    for model in (config.model, config.conditional_model):
      model.loc_init_range = float(init_range)
  config.train.steps = int(steps)
  config.train.seed = int(seed)
  return config


def run_name(kernel=None, sigma=None, baseline_mixtures=None, init_range=None, seed=0):
  name = f'baseline_k{baseline_mixtures}' if baseline_mixtures else f'{kernel}_s{float(sigma):g}'
  if init_range is not None:
    name += f'_init{init_range:g}'
  return name + (f'_seed{seed}' if seed else '')


def run_or_load(config, workdir, smoothed):
  """`common.run_or_load` (a run trained here records its wall_seconds); adds the quadrature
  NLL (smoothed runs) to metrics.json once."""
  run, metrics = common.run_or_load(config, workdir, wall_seconds=True)
  if smoothed and 'nll_quadrature' not in metrics:
    test = run.task.split('test')
    model = common.load_model(workdir)
    metrics['nll_quadrature'] = float(-np.mean(quadrature.log_prob(model, test)))
  run.write_metrics(metrics)
  return metrics


def _row(metrics, workdir, **keys):
  fields = (
      'nll',
      'nll_elbo',
      'nll_iw',
      'nll_quadrature',
      'iw_samples',
      'num_params',
      'best_step',
      'steps',
      'train_seconds',
      'wall_seconds',
  )
  return dict(keys, **{k: metrics[k] for k in fields if k in metrics}, workdir=workdir)


def aggregate(rows):
  """Per (kernel, sigma): the mean over seeds of each NLL, and the per-seed values."""
  out = []
  for key in sorted({(r['kernel'], r['sigma']) for r in rows}):
    group = sorted((r for r in rows if (r['kernel'], r['sigma']) == key), key=lambda r: r['seed'])
    entry = {
        'kernel': key[0],
        'sigma': key[1],
        'seeds': [r['seed'] for r in group],
        'iw_samples': group[0]['iw_samples'],
    }
    for field in ('nll_elbo', 'nll_iw', 'nll_quadrature'):
      entry[field] = float(np.mean([r[field] for r in group]))
      entry[f'{field}_per_seed'] = [r[field] for r in group]
    out.append(entry)
  return out


def elbo_plot(curves, baselines, entropy, path):
  """Test ELBO (solid; dots: single seeds) and IW bound (dashed) in nats against sigma."""
  fig, ax = plt.subplots(figsize=(8.6, 4.2))
  kernels = sorted({r['kernel'] for r in curves})
  for colour, kernel in zip(('tab:blue', 'tab:orange', 'tab:green'), kernels):
    rows = [r for r in curves if r['kernel'] == kernel]
    sigmas = [r['sigma'] for r in rows]
    ax.plot(
        sigmas,
        [-r['nll_elbo'] for r in rows],
        '-',
        color=colour,
        label=f'{kernel}: ELBO (seed mean)',
    )
    for r in rows:
      ax.plot(
          [r['sigma']] * len(r['seeds']),
          [-v for v in r['nll_elbo_per_seed']],
          'o',
          color=colour,
          ms=3.5,
          alpha=0.8,
      )
    ax.plot(
        sigmas,
        [-r['nll_iw'] for r in rows],
        '--',
        color=colour,
        lw=0.9,
        alpha=0.7,
        label=f'{kernel}: IW-{rows[0]["iw_samples"]}',
    )
  ax.axhline(-entropy, color='black', lw=1.2, label=f'true -entropy ({-entropy:.3f})')
  for style, row in zip((':', '-.', (0, (1, 4))), baselines):
    ax.axhline(
        -row['nll'],
        color='grey',
        ls=style,
        lw=1,
        label=f'MoL({row["num_mixtures"]}) exact ({-row["nll"]:.2f})',
    )
  ax.set_ylim(top=-entropy + 0.08)
  ax.set_xscale('log')
  ax.set_xticks(sorted({r['sigma'] for r in curves}))
  ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter('%g'))
  ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
  ax.set_xlabel('kernel std sigma')
  ax.set_ylabel('test log-likelihood bound (nats / point)')
  ax.set_title('modes6_1d: smoothed pair (2 logistics each)', fontsize=10)
  ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
  plots.save_figure(fig, path)


def density_plot(dataset, baselines, best, path):
  """Paper figure 4: true density | MoL baselines | smoothed pair (p(x) by quadrature, p(x~))."""
  grid = np.linspace(-6.5, 6.5, 1300, dtype=np.float32)[:, None]
  true = np.exp(dataset.log_prob(grid))
  fig, axes = plt.subplots(1, 3, figsize=(13, 4.0), sharey=True)
  axes[0].plot(grid, true, color='black', lw=1)
  axes[0].set_title('data: true p(x)', fontsize=10)
  for ax in axes[1:]:
    ax.fill_between(grid[:, 0], true, color='lightgrey', label='true p(x)')
  for style, row in zip((':', '--', '-'), baselines):
    model = common.load_model(row['workdir'])
    density = np.exp(tf.function(model.log_prob)(tf.constant(grid)).numpy())
    axes[1].plot(
        grid, density, ls=style, lw=1, label=f'MoL({row["num_mixtures"]}), NLL {row["nll"]:.3f}'
    )
  axes[1].set_title('mixture-of-logistics baselines (exact)', fontsize=10)
  model = common.load_model(best['workdir'])
  axes[2].plot(
      grid,
      np.exp(quadrature.log_prob(model, grid)),
      color='tab:red',
      lw=1,
      label=f'p(x), NLL {best["nll_quadrature"]:.3f} (ELBO {best["nll_elbo"]:.3f})',
  )
  axes[2].plot(
      grid,
      np.exp(tf.function(model.prior.log_prob)(tf.constant(grid)).numpy()),
      color='tab:blue',
      lw=1,
      label='p(x~)',
  )
  axes[2].set_title(f'smoothed, 2 logistics, {best["kernel"]} sigma={best["sigma"]:g}', fontsize=10)
  for ax in axes:
    ax.set_xlim(grid[0, 0], grid[-1, 0])
    ax.set_xlabel('x')
  for ax in axes[1:]:
    ax.legend(fontsize=7, loc='upper center', bbox_to_anchor=(0.5, -0.2), ncol=2)
  plots.save_figure(fig, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  root, steps = _WORKDIR.value, _STEPS.value
  start = time.perf_counter()

  def run(init_range=None, seed=0, **keys):
    name = run_name(init_range=init_range, seed=seed, **keys)
    config = make_config(steps=steps, init_range=init_range, seed=seed, **keys)
    workdir = os.path.join(root, name)
    smoothed = not keys.get('baseline_mixtures')
    metrics = run_or_load(config, workdir, smoothed)
    logging.info('%s: %s', name, tasks.PointsTask.summary_line(metrics))
    return metrics, dict(_row(metrics, workdir, **keys), seed=seed, config=config)

  baselines = []
  for k in map(int, _BASELINE_MIXTURES.value):
    metrics, row = run(baseline_mixtures=k)
    baselines.append(dict(row, num_mixtures=row.pop('baseline_mixtures')))
  seeds = [int(s) for s in _SEEDS.value]
  seed_sigmas = {float(s) for s in _SEED_SIGMAS.value}
  smoothed = []
  for seed in seeds:
    for kernel in _KERNELS.value:
      for sigma in map(float, _SIGMAS.value):
        if seed == seeds[0] or sigma in seed_sigmas:
          metrics, row = run(kernel=kernel, sigma=sigma, seed=seed)
          smoothed.append(row)
  entropy, entropy_stderr = metrics['entropy'], metrics['entropy_stderr']
  curves = aggregate(smoothed)
  best = {
      kernel: min((r for r in curves if r['kernel'] == kernel), key=lambda r: r['nll_elbo'])
      for kernel in _KERNELS.value
  }
  narrow = []
  if _NARROW_INIT.value > 0:
    r = _NARROW_INIT.value
    for k in map(int, _BASELINE_MIXTURES.value):
      _, row = run(baseline_mixtures=k, init_range=r)
      narrow.append(dict(row, num_mixtures=row.pop('baseline_mixtures'), init_range=r))
    if 'gaussian' in best:
      _, row = run(kernel='gaussian', sigma=best['gaussian']['sigma'], init_range=r, seed=seeds[0])
      narrow.append(dict(row, init_range=r))

  elbo_plot(curves, baselines, entropy, os.path.join(_PLOT_DIR.value, 'elbo_vs_sigma.png'))
  if 'gaussian' in best:
    first_seed = next(
        r
        for r in smoothed
        if (r['kernel'], r['sigma'], r['seed']) == ('gaussian', best['gaussian']['sigma'], seeds[0])
    )
    density_plot(
        synthetic.get_dataset('modes6_1d'),
        baselines,
        first_seed,
        os.path.join(_PLOT_DIR.value, 'density.png'),
    )

  def public(rows):
    return [
        {k: common.relative(v) if k == 'workdir' else v for k, v in row.items() if k != 'config'}
        for row in rows
    ]

  results = {
      'dataset': 'modes6_1d',
      'entropy': entropy,
      'entropy_stderr': entropy_stderr,
      'steps': steps,
      'units': 'nats per test point (5000 points); nll_elbo = -ELBO, '
      'nll_iw = -IW bound (upper bounds on NLL), nll_quadrature = NLL of the smoothed model by '
      f'quadrature ({quadrature.NUM_POINTS} points over x~ in x +- {quadrature.HALF_WIDTH:g} '
      'sigma), '
      'nll = exact NLL of a baseline',
      'command': (
          f'python benchmarks/kernel_study.py --workdir={common.relative(root)} --steps={steps}'
      ),
      'seeds': seeds,
      'seed_sigmas': sorted(seed_sigmas),
      'baselines': public(baselines),
      'smoothed_runs': public(smoothed),
      'smoothed_seed_means': curves,
      'best_sigma_by_mean_elbo': {
          k: {f: v[f] for f in ('sigma', 'seeds', 'nll_elbo', 'nll_iw', 'nll_quadrature')}
          for k, v in best.items()
      },
      'narrow_init': public(narrow),
      'paper': PAPER,
      'total_train_seconds': sum(r['train_seconds'] for r in baselines + smoothed + narrow),
      'driver_seconds_this_invocation': time.perf_counter() - start,
  }
  common.write_json(_RESULTS.value, results)
  print(f'modes6_1d: true entropy {entropy:.3f}')
  for row in baselines + narrow:
    if 'nll' in row:
      print(f'  MoL({row["num_mixtures"]}) init {row.get("init_range", 5):g}: NLL {row["nll"]:.3f}')
  for row in smoothed + [r for r in narrow if 'nll_elbo' in r]:
    print(
        f'  {row["kernel"]:8s} sigma {row["sigma"]:<5g} seed {row["seed"]} '
        f'init {row.get("init_range", 5):g}: -ELBO {row["nll_elbo"]:.3f}  '
        f'-IW {row["nll_iw"]:.3f}  quadrature {row["nll_quadrature"]:.3f}'
    )


if __name__ == '__main__':
  app.run(cli.reported(main))
