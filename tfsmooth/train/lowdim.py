"""One low-dimensional experiment end to end: data, model, training, test NLL, plots, metrics.json.

Writes into `workdir`: checkpoints/, best/, summaries/, the PNGs listed in `PLOTS`, and
metrics.json with NLLs in nats per point on the test split: `nll` (baseline, exact) or
`nll_elbo` and `nll_iw` with `iw_samples` (smoothed, upper bounds), the true `entropy` when
the data set has a density, `num_params`, `train_seconds` and the paper's figure.
"""

import os

import keras
import tensorflow as tf

from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.configs import synthetic as synthetic_configs
from tfsmooth.data import synthetic
from tfsmooth.evaluation import likelihood
from tfsmooth.evaluation import plots
from tfsmooth.models import registry
from tfsmooth.train import strategy as strategy_lib
from tfsmooth.train import trainer

PLOTS = ('samples.png', 'density.png')


def build_model(config, dim):
  """The baseline DensityModel or the SmoothedModel that `config` describes."""
  prior = registry.build(config.model, (dim,))
  if not config.smoothing.enabled:
    return prior
  kernel = kernels.SmoothingKernel(config.smoothing.kernel, config.smoothing.sigma)
  conditional = registry.build(config.conditional_model, (dim,), conditional=True)
  return smoothing.SmoothedModel(prior, conditional, kernel)


def load_run(workdir):
  """(config, dataset, splits, model with its best weights) of a launch/train.py run."""
  config = trainer.read_config(workdir)
  dataset = synthetic.get_dataset(config.data.name, config.data.path or None,
                                  config.data.key or None)
  splits = synthetic.load_splits(dataset)
  model = build_model(config, splits['train'].shape[1])
  trainer.restore_best(model, workdir)
  return config, dataset, splits, model


def validation_fn(config, points):
  """Validation NLL for checkpoint selection: exact, or the IW bound with few samples."""
  if config.smoothing.enabled:
    return lambda model: {'validation': likelihood.smoothed_nll(
        model, points, config.eval.validation_samples, seed=config.eval.seed + 1)[1]}
  return lambda model: {'validation': likelihood.exact_nll(model, points)}


def _seed(config, salt):
  return tf.constant([config.eval.seed, salt], tf.int32)


def evaluate(model, config, dataset, splits):
  """Test NLL (exact or ELBO / IW bounds) and the data's entropy, in nats per point."""
  test = splits['test']
  metrics = {'dataset': dataset.name, 'num_params': model.num_params,
             'test_points': len(test), 'smoothed': bool(config.smoothing.enabled)}
  if config.smoothing.enabled:
    nll_elbo, nll_iw = likelihood.smoothed_nll(model, test, config.eval.iw_samples,
                                               seed=config.eval.seed)
    metrics.update(nll_elbo=nll_elbo, nll_iw=nll_iw, iw_samples=config.eval.iw_samples,
                   kernel=config.smoothing.kernel, sigma=config.smoothing.sigma)
  else:
    metrics['nll'] = likelihood.exact_nll(model, test)
  if dataset.has_density:
    metrics['entropy'], metrics['entropy_stderr'] = dataset.entropy()
  metrics['paper_nll'] = synthetic_configs.reference_nll(config)
  return metrics


def make_plots(model, config, dataset, splits, workdir):
  """Samples (data, model, and for smoothed models p(x~), single- and two-step) and densities."""
  data = splits['test']
  n = min(config.eval.num_plot_samples, len(data))
  limits = plots.plot_limits(data)
  dim = data.shape[1]
  panels = {'data': data[:n]}
  densities = {}
  if config.smoothing.enabled:
    panels['smoothed data x~'] = model.kernel.smooth(data[:n], _seed(config, 10)).numpy()
    panels['p(x~) samples'] = model.sample_smoothed(n, _seed(config, 11)).numpy()
    if model.kernel.is_gaussian:
      panels['single-step denoised'] = tf.function(model.sample_single_step)(
          n, _seed(config, 11)).numpy()
    panels['two-step samples'] = model.sample(n, _seed(config, 12)).numpy()
    densities['p(x~)'] = lambda g: tf.function(model.prior.log_prob)(g).numpy()
    k = config.eval.density_iw_samples
    densities[f'p(x), IW-{k} bound'] = lambda g: likelihood.smoothed_bounds(
        model, g, k, config.eval.seed)[1]
  else:
    panels['model samples'] = model.sample(n, _seed(config, 12)).numpy()
    densities['model p(x)'] = lambda g: tf.function(model.log_prob)(g).numpy()
  if dataset.has_density:
    densities['true p(x)'] = dataset.log_prob
  plots.sample_panels(panels, os.path.join(workdir, PLOTS[0]), limits)
  plots.density_panels(densities, os.path.join(workdir, PLOTS[1]), limits, dim=dim,
                       resolution=400 if dim == 1 else 150)


def run(config, workdir):
  """Trains (or resumes) the experiment in `config`, evaluates it and writes its outputs."""
  dataset = synthetic.get_dataset(config.data.name, config.data.path or None,
                                  config.data.key or None)
  splits = synthetic.load_splits(dataset)
  dim = splits['train'].shape[1]
  keras.utils.set_random_seed(config.train.seed)  # initial weights and data order
  strategy = strategy_lib.from_config(config.train)
  train_data = lambda: (tf.data.Dataset.from_tensor_slices(splits['train'])  # noqa: E731
                        .shuffle(len(splits['train']), seed=config.train.seed).repeat())
  result = trainer.train(lambda: build_model(config, dim), train_data, config.train, workdir,
                         strategy, validation_fn(config, splits['validation']))
  metrics = evaluate(result.model, config, dataset, splits)
  metrics.update(train_seconds=result.train_seconds, steps=result.step,
                 best_step=result.best_step, validation_nll=result.best_metric)
  make_plots(result.model, config, dataset, splits, workdir)
  trainer.write_metrics(workdir, metrics)
  return metrics


def summary_line(metrics):
  """A one-line report: test NLL next to the data entropy and the paper's figure."""
  if metrics['smoothed']:
    nll = (f'test NLL <= {metrics["nll_iw"]:.3f} (IW-{metrics["iw_samples"]}), '
           f'<= {metrics["nll_elbo"]:.3f} (ELBO)')
  else:
    nll = f'test NLL {metrics["nll"]:.3f} (exact)'
  parts = [f'{metrics["dataset"]}: {nll} nats/point']
  if 'entropy' in metrics:
    parts.append(f'true entropy {metrics["entropy"]:.3f}')
  if metrics.get('paper_nll') is not None:
    parts.append(f'paper {metrics["paper_nll"]:.2f}')
  parts.append(f'{metrics["num_params"]} params, {metrics["train_seconds"]:.0f} s training')
  return ' | '.join(parts)
