"""One image experiment end to end: data, PixelCNN++ model(s), training, test bpd, sample grids.

Writes into `workdir`: checkpoints/, best/, summaries/, the PNG grids and metrics.json.

Test bits per dimension on D = H W C dimensions, with 8-bit x in [-1, 1] scored by the
discretized head (a pmf over the 256 values, so these are discrete likelihoods):
  baseline:  bpd = -log P(x) / (D ln 2), exact;
  smoothed:  bpd_elbo = -ELBO / (D ln 2) and bpd_iw = -IW_K / (D ln 2), both upper bounds on
             -log P(x) / (D ln 2), from the same K = `config.eval.iw_samples` draws
             x~_k ~ N(x, sigma^2 I) (`SmoothedModel.bounds`).
"""

import math
import os

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.configs import images as image_configs
from tfsmooth.data import images
from tfsmooth.evaluation import likelihood
from tfsmooth.evaluation import plots
from tfsmooth.models import registry
from tfsmooth.train import strategy as strategy_lib
from tfsmooth.train import trainer

DATASETS = tuple(images.IMAGE_SHAPES)
BASELINE_GRIDS = ('samples.png',)
SMOOTHED_GRIDS = ('samples_smoothed.png', 'samples_single_step.png', 'samples_two_step.png')


def is_image_config(config):
  """True when `config.data.name` names an image data set."""
  return config.data.name in DATASETS


def resolve_sigma(config):
  """sigma from the config, or the paper's heuristic with `smoothing.sigma_heuristic`."""
  sigma = 'heuristic' if config.smoothing.get('sigma_heuristic', False) else config.smoothing.sigma
  return images.resolve_sigma(sigma, config.data.name,
                              data_dir=config.data.get('data_dir') or None,
                              source=config.data.get('source', 'auto'),
                              idx_dir=config.data.get('idx_dir') or images.FASHION_MNIST_IDX_DIR)


def build_model(config, sigma=None):
  """The baseline PixelCNN or the SmoothedModel (p(x~), stacked p(x | x~)) of `config`."""
  shape = images.image_shape(config.data.name)
  prior = registry.build(config.model, shape)
  if not config.smoothing.enabled:
    return prior
  kernel = kernels.SmoothingKernel(config.smoothing.kernel,
                                   config.smoothing.sigma if sigma is None else sigma,
                                   event_ndims=3)
  conditional = registry.build(config.conditional_model, shape, conditional=True)
  return smoothing.SmoothedModel(prior, conditional, kernel)


def load_split(config, split, max_examples=None):
  """The first `max_examples` (None or 0: all) images of `split`, float32 in [-1, 1]."""
  return images.load_images(config.data.name, split, max_examples or None,
                            data_dir=config.data.get('data_dir') or None,
                            source=config.data.get('source', 'auto'),
                            idx_dir=config.data.get('idx_dir') or images.FASHION_MNIST_IDX_DIR)


def bits_per_dim(model, config, x, num_samples, seed):
  """Mean bpd over images x: exact (baseline) or (ELBO, IW) upper bounds (smoothed)."""
  nats_to_bpd = 1. / (math.prod(x.shape[1:]) * math.log(2.))
  batch = config.eval.batch_size
  if not config.smoothing.enabled:
    return likelihood.exact_nll(model, x, batch) * nats_to_bpd
  nll_elbo, nll_iw = likelihood.smoothed_nll(model, x, num_samples, seed, batch)
  return nll_elbo * nats_to_bpd, nll_iw * nats_to_bpd


def validation_fn(config, x):
  """Validation bpd for checkpoint selection: exact, or the IW bound with few samples."""
  if config.smoothing.enabled:
    return lambda model: {'validation': bits_per_dim(
        model, config, x, config.eval.validation_samples, config.eval.seed + 1)[1]}
  return lambda model: {'validation': bits_per_dim(model, config, x, 1, 0)}


def sample_grids(model, config, workdir, num_samples, seed, per_row=8):
  """Sample grids: baseline samples; or p(x~), single-step and two-step from the same x~.

  Returns {grid file name: samples [N, H, W, C]}.
  """
  seed = tf.constant([seed, 12], tf.int32)
  if not config.smoothing.enabled:
    samples = {'samples.png': tf.function(model.sample)(num_samples, seed).numpy()}
  else:
    prior_seed, conditional_seed = tfp.random.split_seed(seed)
    x_tilde = tf.function(model.sample_smoothed)(num_samples, prior_seed)
    samples = {
        'samples_smoothed.png': x_tilde.numpy(),
        'samples_single_step.png': tf.function(model.denoise_single_step)(x_tilde).numpy(),
        'samples_two_step.png': tf.function(model.denoise)(x_tilde, conditional_seed).numpy()}
  for name, x in samples.items():
    plots.save_image_grid(plots.chunks(x, per_row), os.path.join(workdir, name))
  return samples


def run(config, workdir):
  """Trains (or resumes) the image experiment in `config`, evaluates it, writes its outputs."""
  sigma = resolve_sigma(config) if config.smoothing.enabled else None
  keras.utils.set_random_seed(config.train.seed)  # initial weights and data order
  strategy = strategy_lib.from_config(config.train)
  train_data = lambda: images.from_config(  # noqa: E731
      config.data, config.data.train_split, None, shuffle=True, repeat=True,
      seed=config.train.seed)
  validation = load_split(config, config.data.validation_split, config.data.validation_examples)
  result = trainer.train(lambda: build_model(config, sigma), train_data, config.train, workdir,
                         strategy, validation_fn(config, validation))
  model = result.model
  test = load_split(config, config.data.test_split, config.data.test_examples)
  metrics = {'dataset': config.data.name, 'smoothed': bool(config.smoothing.enabled),
             'num_params': model.num_params, 'test_split': config.data.test_split,
             'test_images': len(test), 'train_seconds': result.train_seconds,
             'steps': result.step, 'best_step': result.best_step,
             'validation_bpd': result.best_metric,
             'paper_bpd': image_configs.reference_bpd(config)}
  if config.smoothing.enabled:
    metrics['bpd_elbo'], metrics['bpd_iw'] = bits_per_dim(
        model, config, test, config.eval.iw_samples, config.eval.seed)
    metrics.update(iw_samples=config.eval.iw_samples, sigma=sigma,
                   kernel=config.smoothing.kernel,
                   num_params_prior=model.prior.num_params,
                   num_params_conditional=model.conditional.num_params)
  else:
    metrics['bpd'] = bits_per_dim(model, config, test, 1, 0)
  trainer.write_metrics(workdir, metrics)
  sample_grids(model, config, workdir, config.eval.num_samples, config.eval.seed)
  return metrics


def summary_line(metrics):
  """A one-line report: test bpd (exact or bounds), parameters, steps, training time."""
  if metrics['smoothed']:
    bpd = (f'test bpd <= {metrics["bpd_iw"]:.3f} (IW-{metrics["iw_samples"]}), '
           f'<= {metrics["bpd_elbo"]:.3f} (ELBO), sigma {metrics["sigma"]:.3f}')
  else:
    bpd = f'test bpd {metrics["bpd"]:.3f} (exact)'
  parts = [f'{metrics["dataset"]}: {bpd} on {metrics["test_images"]} images']
  if metrics.get('paper_bpd') is not None:
    parts.append(f'paper {metrics["paper_bpd"]:.2f}')
  parts.append(f'{metrics["num_params"]} params, {metrics["steps"]} steps, '
               f'{metrics["train_seconds"]:.0f} s training')
  return ' | '.join(parts)
