"""App. B.1 on `two_gaussians_1d`: single-step (Tweedie) denoising against sampling p(x | x~).

Data p(x) = sum_k w_k N(x; mu_k, s^2) (w = 1/2, mu = -0.3, 0.3, s = 0.1) smoothed by
q(x~ | x) = N(x~; x, sigma^2) has everything in closed form, with t^2 = s^2 + sigma^2:

  p(x~)            = sum_k w_k N(x~; mu_k, t^2)
  grad log p(x~)   = sum_k r_k(x~) (mu_k - x~) / t^2,   r_k(x~) = w_k N(x~; mu_k, t^2) / p(x~)
  p(x | x~)        = sum_k r_k(x~) N(x; m_k(x~), v),     m_k = (sigma^2 mu_k + s^2 x~) / t^2,
                                                         v = s^2 sigma^2 / t^2
  x~ + sigma^2 grad log p(x~) = E[x | x~] = sum_k r_k m_k   (Tweedie).

For each sigma in --sigmas the driver trains (or resumes, or reads the metrics.json of) the
smoothed pair of `tfsmooth/configs/two_gaussians_1d.py` with p(x | x~) of 1 and of 2 logistics
(workdirs s<sigma>_k<K> under --workdir), smooths --num_points fresh data draws and denoises
them five ways: not at all, single-step with the exact score, single-step with the learned
p(x~), a draw from the learned p(x | x~) (1 and 2 logistics), and a draw from the exact
posterior. Per method: the fraction of points in the gap |x| < 0.1 and the 1-D Wasserstein
distance to fresh data draws; per conditional model: E KL(p(x | x~) || p_theta(x | x~)) over
the smoothed data, and the KL at x~0 = 0. Writes --results and, under --plot_dir,
sigma<sigma>_denoised.png (paper figures 8-11 b) and posterior_x0.png (figures 10c, 11a, 11c).

  python benchmarks/denoising_1d.py --workdir=runs/denoising_1d
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
from scipy import stats  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402
from tfsmooth import seeds  # noqa: E402
from tfsmooth import tasks  # noqa: E402
from tfsmooth.configs import two_gaussians_1d  # noqa: E402
from tfsmooth.data import synthetic  # noqa: E402
from tfsmooth.evaluation import plots  # noqa: E402
from tfsmooth.evaluation import quadrature  # noqa: E402
from tfsmooth.evaluation.gaussian_mixture_1d import GAP  # noqa: E402
from tfsmooth.evaluation.gaussian_mixture_1d import GaussianMixturePosterior  # noqa: E402
from tfsmooth.evaluation.gaussian_mixture_1d import gap_fraction  # noqa: E402
from tfsmooth.evaluation.gaussian_mixture_1d import gap_probability  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'Root for one workdir per run.')
_SIGMAS = flags.DEFINE_list('sigmas', ['0.3', '0.1'], 'Gaussian kernel standard deviations.')
_MIXTURES = flags.DEFINE_list(
    'conditional_mixtures', ['1', '2'], 'Logistic components of p(x | x~).'
)
_STEPS = flags.DEFINE_integer('steps', 20_000, 'Training steps per run.')
_NUM_POINTS = flags.DEFINE_integer('num_points', 20_000, 'Data points smoothed and denoised.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the evaluation draws.')
_RESULTS = flags.DEFINE_string('results', 'benchmarks/results/denoising_1d.json', 'JSON output.')
_PLOT_DIR = flags.DEFINE_string('plot_dir', 'benchmarks/results/denoising_1d', 'PNG directory.')
flags.mark_flag_as_required('workdir')

DATASET = 'two_gaussians_1d'
X_TILDE_0 = 0.0
PAPER = (
    'Figures only: single-step denoising leaves mass in the gap between the modes at '
    'sigma 0.3 (figure 8) and works well at sigma 0.1 (figure 9); p(x | x~) with 1 logistic '
    'centres its one mode at x~0 and leaves the gap filled (figure 10), 2 logistics capture '
    'the bimodal p(x | x~0) and map gap points onto the modes (figure 11).'
)


def make_config(sigma, conditional_mixtures, steps):
  config = two_gaussians_1d.get_config()
  config.smoothing.sigma = float(sigma)
  config.conditional_model.num_mixtures = int(conditional_mixtures)
  config.train.steps = int(steps)
  return config


def _conditional_log_prob(fn, x, x_tilde):
  """log p_theta(x | x~) by `fn`, a tf.function of the conditional's log_prob, [N] float64."""
  return (
      fn(
          tf.constant(np.reshape(x, (-1, 1)), tf.float32),
          tf.constant(np.reshape(x_tilde, (-1, 1)), tf.float32),
      )
      .numpy()
      .astype(np.float64)
  )


def evaluate_sigma(sigma, runs, dataset, num_points, seed):
  """Denoised samples, metrics and the p(x | x~0) curves at one sigma.

  `runs` maps K to (config, workdir, metrics) of the trained pairs.
  """
  truth = GaussianMixturePosterior(dataset.means, dataset.scale, sigma)
  rng = np.random.default_rng([seed, int(round(sigma * 1000))])
  x = dataset.sample(num_points, seed=rng.integers(2**31))[:, 0].astype(np.float64)
  reference = dataset.sample(num_points, seed=rng.integers(2**31))[:, 0].astype(np.float64)
  x_tilde = (x + sigma * rng.standard_normal(num_points)).astype(np.float32)
  denoised = {
      'noisy input x~': x_tilde.astype(np.float64),
      'single-step, exact score': truth.single_step(x_tilde),
  }
  conditional_kl, posterior_curves = {}, {}
  grid = np.linspace(-0.8, 0.8, 1601)
  true_posterior = np.exp(truth.posterior_log_prob(grid, np.full(len(grid), X_TILDE_0)))
  posterior_curves['ground truth'] = true_posterior
  exact_log_posterior = truth.posterior_log_prob(x, x_tilde)
  denoise_rows = seeds.rows(seed, 'denoise', 0, num_points)  # row j: x~_j's draw, every model
  for k in sorted(runs):
    config, workdir, _ = runs[k]
    model = common.load_model(workdir)
    conditional_log_prob = tf.function(model.conditional_model.log_prob, reduce_retracing=True)
    names = ['two_step'] + ['single_step'] * (k == max(runs))  # one p(x~) serves: same seeds
    out = tf.function(model.denoise)(tf.constant(x_tilde[:, None]), denoise_rows, names)
    out = {name: v.numpy()[:, 0].astype(np.float64) for name, v in out.items()}
    if 'single_step' in out:
      denoised['single-step, learned p(x~)'] = out['single_step']
    denoised[f'p(x|x~), {k} logistic{"s" * (k > 1)}'] = out['two_step']
    conditional_kl[str(k)] = float(
        np.mean(exact_log_posterior - _conditional_log_prob(conditional_log_prob, x, x_tilde))
    )
    posterior_curves[k] = np.exp(
        _conditional_log_prob(conditional_log_prob, grid, np.full(len(grid), X_TILDE_0))
    )
  denoised['exact posterior draw'] = truth.posterior_sample(x_tilde, rng)
  order = ('noisy', 'single-step, exact', 'single-step, learned', 'p(x|x~)', 'exact posterior')
  denoised = dict(
      sorted(denoised.items(), key=lambda item: [item[0].startswith(p) for p in order].index(True))
  )

  kl_at_x0 = {
      str(k): quadrature.kl_divergence(true_posterior, posterior_curves[k], grid) for k in runs
  }
  methods = {
      name: {
          'gap_fraction': gap_fraction(v),
          'wasserstein': float(stats.wasserstein_distance(v, reference)),
      }
      for name, v in denoised.items()
  }
  summary = {
      'sigma': sigma,
      'runs': {
          str(k): {
              key: runs[k][2][key]
              for key in (
                  'nll_elbo',
                  'nll_iw',
                  'iw_samples',
                  'num_params',
                  'best_step',
                  'steps',
                  'train_seconds',
              )
              if key in runs[k][2]
          }
          | {'workdir': common.relative(runs[k][1])}
          for k in sorted(runs)
      },
      'methods': methods,
      'data_gap_fraction_sample': gap_fraction(x),
      'wasserstein_data_vs_data': float(stats.wasserstein_distance(x, reference)),
      'conditional_kl': conditional_kl,
      'posterior_at_x0': {
          'x_tilde_0': X_TILDE_0,
          'true_component_means': truth.posterior_means([X_TILDE_0])[0].tolist(),
          'true_std': float(np.sqrt(truth.variance)),
          'kl_true_to_model': kl_at_x0,
      },
  }
  return summary, denoised, (grid, posterior_curves), truth


def denoising_plot(sigma, denoised, methods, truth, dataset, path):
  """Paper figures 8-11 (a, b): data and smoothed densities, then one histogram per method."""
  grid = np.linspace(-1.2, 1.2, 1201)
  data_density = np.exp(dataset.log_prob(grid[:, None]))
  fig, axes = plt.subplots(1, len(denoised), figsize=(2.9 * len(denoised), 3.2), sharex=True)
  axes[0].plot(grid, data_density, color='black', lw=1, label='data p(x)')
  axes[0].plot(
      grid,
      np.exp(truth.smoothed_log_prob(grid)),
      color='tab:red',
      lw=1,
      label=f'smoothed q(x~), sigma={sigma:g}',
  )
  axes[0].axvline(X_TILDE_0, color='tab:red', ls=':', lw=1)
  axes[0].set_title('data and smoothed data', fontsize=9)
  axes[0].legend(fontsize=6, loc='upper left')
  names = [n for n in denoised if n != 'noisy input x~']
  for ax, name in zip(axes[1:], names):
    ax.hist(denoised[name], bins=120, range=(-1.2, 1.2), density=True, color='tab:blue', alpha=0.8)
    ax.plot(grid, data_density, color='black', lw=1)
    ax.axvspan(-GAP, GAP, color='tab:red', alpha=0.08)
    ax.set_title(
        f'{name}\nin gap {methods[name]["gap_fraction"]:.3f}, '
        f'W1 {methods[name]["wasserstein"]:.3f}',
        fontsize=8,
    )
  for ax in axes:
    ax.set_xlim(-1.2, 1.2)
    ax.set_yticks([])
  fig.suptitle(
      f'two_gaussians_1d, sigma = {sigma:g} (data in gap |x|<{GAP:g}: '
      f'{methods["exact posterior draw"]["gap_fraction"]:.3f} of exact posterior draws)',
      fontsize=9,
  )
  plots.save_figure(fig, path)


def posterior_plot(curves_by_sigma, kl_by_sigma, path):
  """Paper figures 10c, 11a, 11c: p(x | x~ = 0), ground truth against the learned conditionals."""
  fig, axes = plt.subplots(1, len(curves_by_sigma), figsize=(5 * len(curves_by_sigma), 3.4))
  for ax, (sigma, (grid, curves)) in zip(np.atleast_1d(axes), curves_by_sigma.items()):
    for (k, curve), style in zip(curves.items(), ('-', '--', '-.', ':')):
      if k == 'ground truth':
        ax.plot(grid, curve, color='black', lw=1.4, label='ground truth p(x|x~0)')
      else:
        ax.plot(
            grid,
            curve,
            ls=style,
            lw=1.1,
            label=f'p_theta(x|x~0), {k} logistic{"s" * (k > 1)}: '
            f'KL {kl_by_sigma[sigma][str(k)]:.3f}',
        )
    ax.set_title(f'p(x | x~ = {X_TILDE_0:g}), sigma = {sigma:g}', fontsize=10)
    ax.set_xlabel('x')
    ax.set_ylim(0, 1.45 * max(np.max(c) for c in curves.values()))
    ax.legend(fontsize=7, loc='upper center', ncol=1)
  plots.save_figure(fig, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  start = time.perf_counter()
  dataset = synthetic.get_dataset(DATASET)
  entropy, _ = dataset.entropy()
  data_gap = gap_probability(dataset.means, dataset.scale)  # P(|x| < GAP) under the data
  results = {
      'dataset': DATASET,
      'entropy': float(entropy),
      'gap': GAP,
      'data_gap_fraction': data_gap,
      'steps': _STEPS.value,
      'num_points': _NUM_POINTS.value,
      'paper': PAPER,
      'command': (
          f'python benchmarks/denoising_1d.py --workdir={common.relative(_WORKDIR.value)} '
          f'--steps={_STEPS.value}'
      ),
      'units': 'wasserstein: W1 to fresh data draws; conditional_kl: '
      'E_{x, x~} [log p(x|x~) - log p_theta(x|x~)] in nats; '
      'nll_*: test -ELBO / -IW bound of the pair in nats per point',
      'sigmas': {},
  }
  curves_by_sigma, kl_by_sigma = {}, {}
  for sigma in map(float, _SIGMAS.value):
    runs = {}
    for k in map(int, _MIXTURES.value):
      config = make_config(sigma, k, _STEPS.value)
      workdir = os.path.join(_WORKDIR.value, f's{sigma:g}_k{k}')
      runs[k] = (config, workdir, common.run_or_load(config, workdir)[1])
      logging.info('sigma %g K %d: %s', sigma, k, tasks.PointsTask.summary_line(runs[k][2]))
    summary, denoised, curves, truth = evaluate_sigma(
        sigma, runs, dataset, _NUM_POINTS.value, _SEED.value
    )
    results['sigmas'][f'{sigma:g}'] = summary
    curves_by_sigma[sigma] = curves
    kl_by_sigma[sigma] = summary['posterior_at_x0']['kl_true_to_model']
    denoising_plot(
        sigma,
        denoised,
        summary['methods'],
        truth,
        dataset,
        os.path.join(_PLOT_DIR.value, f'sigma{sigma:g}_denoised.png'),
    )
  posterior_plot(curves_by_sigma, kl_by_sigma, os.path.join(_PLOT_DIR.value, 'posterior_x0.png'))
  results['total_train_seconds'] = sum(
      run['train_seconds']
      for summary in results['sigmas'].values()
      for run in summary['runs'].values()
  )
  results['driver_seconds_this_invocation'] = time.perf_counter() - start
  common.write_json(_RESULTS.value, results)
  print(f'{DATASET}: entropy {entropy:.3f}, data in gap |x|<{GAP:g}: {data_gap:.4f}')
  for sigma, summary in results['sigmas'].items():
    print(f'sigma {sigma}: W1(data, data) {summary["wasserstein_data_vs_data"]:.4f}')
    for name, m in summary['methods'].items():
      print(f'  {name:28s} gap {m["gap_fraction"]:.4f}  W1 {m["wasserstein"]:.4f}')
    for k, kl in summary['conditional_kl'].items():
      print(
          f'  p(x|x~) K={k}: E KL {kl:.4f}, KL at x~0 '
          f'{summary["posterior_at_x0"]["kl_true_to_model"][k]:.4f}'
      )


if __name__ == '__main__':
  app.run(cli.reported(main))
