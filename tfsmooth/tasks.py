"""What differs between point data and images, as two small plug-ins of `experiment.Run`.

A task knows its data (splits, training examples), its likelihood unit and its pictures:

  * `PointsTask` (synthetic sets and a user's .npy/.npz/.csv points): NLL in nats per point
    (`nll`, or `nll_elbo` / `nll_iw`), the data's entropy when it has a density, the paper's
    figure for the built-in sets only; scatter plots of samples (the first two coordinates)
    and, for D <= 2, density plots.
  * `ImageTask` (TFDS / offline Fashion-MNIST): bits per dimension, bpd = nats / (D ln 2)
    (`bpd`, or `bpd_elbo` / `bpd_iw`); PNG grids of samples.
"""

import math
import os

import tensorflow as tf

from tfsmooth import kernels
from tfsmooth.configs import images as image_configs
from tfsmooth.configs import synthetic as synthetic_configs
from tfsmooth.data import images as image_data
from tfsmooth.data import synthetic
from tfsmooth.evaluation import likelihood
from tfsmooth.evaluation import plots


def for_config(config):
  """The task of `config.data.name`: images for the TFDS names, points otherwise."""
  if config.data.name in image_data.IMAGE_SHAPES:
    return ImageTask(config)
  return PointsTask(config)


class PointsTask:
  """Low-dimensional points [N, D]; NLL in nats per point."""

  unit = 'nll'
  count_key = 'test_points'
  plots = ('samples.png', 'density.png')

  def __init__(self, config):
    self.config = config
    self.dataset = synthetic.get_dataset(
        config.data.name, config.data.get('path') or None, config.data.get('key') or None
    )
    self._splits = None

  @property
  def event_shape(self):
    return (self.dataset.dim,)

  def split(self, name):
    """float32 [N, D] points of 'train', 'validation' or 'test'."""
    if self._splits is None:
      self._splits = synthetic.load_splits(self.dataset)
    return self._splits[name]

  def train_examples(self, seed):
    """An infinite, seeded shuffle of the training points, one point per element."""
    train = self.split('train')
    return lambda: tf.data.Dataset.from_tensor_slices(train).shuffle(len(train), seed).repeat()

  def to_unit(self, nats):
    return nats

  def sigma_heuristic(self):
    """Median pairwise distance / (2 sqrt(D)) on the training points (paper App. C.1)."""
    return kernels.median_heuristic_sigma(self.split('train'))

  def reference(self):
    """The data's entropy (nats per point) and the paper's figure, where they exist."""
    out = {}
    if self.dataset.has_density:
      out['entropy'], out['entropy_stderr'] = self.dataset.entropy()
    if self.config.data.name in synthetic.DATASETS:
      out['paper_nll'] = synthetic_configs.reference_nll(self.config)
    return out

  def write_plots(self, run, model):
    """samples.png (data, and model samples: p(x~), single- and two-step for a smoothed pair)
    and, for D <= 2, density.png."""
    data = self.split('test')
    n = min(run.config.eval.num_plot_samples, len(data))
    shown = data[:, :2]
    limits = plots.plot_limits(shown)
    panels = {'data': data[:n]}
    densities = {}
    if run.smoothed:
      panels['smoothed data x~'] = model.kernel.smooth(data[:n], run.seed('smooth_data')).numpy()
      panels['p(x~) samples'] = model.sample_smoothed(n, run.seed('prior_samples')).numpy()
      if model.kernel.is_gaussian:
        panels['single-step denoised'] = tf.function(model.sample_single_step)(
            n, run.seed('prior_samples')
        ).numpy()
      panels['two-step samples'] = model.sample(n, run.seed('samples')).numpy()
      densities['p(x~)'] = lambda g: tf.function(model.prior.log_prob)(g).numpy()
      k = run.config.eval.density_iw_samples
      densities[f'p(x), IW-{k} bound'] = lambda g: likelihood.smoothed_bounds(
          model, g, k, run.config.eval.seed
      )[1]
    else:
      panels['model samples'] = model.sample(n, run.seed('samples')).numpy()
      densities['model p(x)'] = lambda g: tf.function(model.log_prob)(g).numpy()
    if self.dataset.has_density:
      densities['true p(x)'] = self.dataset.log_prob
    dim = data.shape[1]
    if dim > 2:
      panels = {f'{title} (x1, x2)': points[:, :2] for title, points in panels.items()}
    plots.sample_panels(panels, os.path.join(run.workdir, self.plots[0]), limits)
    if dim <= 2:
      plots.density_panels(
          densities,
          os.path.join(run.workdir, self.plots[1]),
          limits,
          dim=dim,
          resolution=400 if dim == 1 else 150,
      )

  @staticmethod
  def summary_line(metrics):
    """Test NLL next to the data's entropy and the paper's figure."""
    if metrics['smoothed']:
      nll = (
          f'test NLL <= {metrics["nll_iw"]:.3f} (IW-{metrics["iw_samples"]}), '
          f'<= {metrics["nll_elbo"]:.3f} (ELBO)'
      )
    else:
      nll = f'test NLL {metrics["nll"]:.3f} (exact)'
    parts = [f'{metrics["dataset"]}: {nll} nats/point']
    if 'entropy' in metrics:
      parts.append(f'true entropy {metrics["entropy"]:.3f}')
    if metrics.get('paper_nll') is not None:
      parts.append(f'paper {metrics["paper_nll"]:.2f}')
    parts.append(f'{metrics["num_params"]} params, {metrics["train_seconds"]:.0f} s training')
    return ' | '.join(parts)


class ImageTask:
  """Images [N, H, W, C] in [-1, 1]; bits per dimension."""

  unit = 'bpd'
  count_key = 'test_images'
  smoothed_grids = ('samples_smoothed.png', 'samples_single_step.png', 'samples_two_step.png')
  baseline_grids = ('samples.png',)

  def __init__(self, config):
    self.config = config
    self.source = dict(
        data_dir=config.data.get('data_dir') or None,
        source=config.data.get('source', 'auto'),
        idx_dir=config.data.get('idx_dir') or image_data.FASHION_MNIST_IDX_DIR,
    )
    self._splits = {}  # loaded once: validation runs every eval_every steps

  @property
  def event_shape(self):
    return image_data.image_shape(self.config.data.name)

  def split(self, name):
    """float32 images of 'train', 'validation' or 'test' (config.data.<name>_split, capped by
    config.data.<name>_examples where set), read once."""
    if name not in self._splits:
      data = self.config.data
      self._splits[name] = image_data.load_images(
          data.name, data[f'{name}_split'], data.get(f'{name}_examples') or None, **self.source
      )
    return self._splits[name]

  def train_examples(self, seed):
    data = self.config.data
    return lambda: image_data.make_dataset(
        data.name, data.train_split, None, shuffle=True, repeat=True, seed=seed, **self.source
    )

  def to_unit(self, nats):
    return nats / (math.prod(self.event_shape) * math.log(2.0))

  def reference(self):
    return {'paper_bpd': image_configs.reference_bpd(self.config)}

  def sigma_heuristic(self):
    """The paper's sigma (App. C.1) on this data set's training images."""
    return image_data.resolve_sigma('heuristic', self.config.data.name, **self.source)

  def write_plots(self, run, model):
    """Sample grids: baseline samples; or p(x~), single-step and two-step from the same x~."""
    n = run.config.eval.num_samples
    if not run.smoothed:
      samples = {'samples.png': tf.function(model.sample)(n, run.seed('samples')).numpy()}
    else:
      x_tilde = tf.function(model.sample_smoothed)(n, run.seed('prior_samples'))
      samples = {
          'samples_smoothed.png': x_tilde.numpy(),
          'samples_single_step.png': tf.function(model.denoise_single_step)(x_tilde).numpy(),
          'samples_two_step.png': tf.function(model.denoise)(x_tilde, run.seed('samples')).numpy(),
      }
    for name, x in samples.items():
      plots.save_image_grid(plots.chunks(x, 8), os.path.join(run.workdir, name))

  @staticmethod
  def summary_line(metrics):
    """Test bpd (exact or bounds), parameters, steps, training time."""
    if metrics['smoothed']:
      bpd = (
          f'test bpd <= {metrics["bpd_iw"]:.3f} (IW-{metrics["iw_samples"]}), '
          f'<= {metrics["bpd_elbo"]:.3f} (ELBO), sigma {metrics["sigma"]:.3f}'
      )
    else:
      bpd = f'test bpd {metrics["bpd"]:.3f} (exact)'
    parts = [f'{metrics["dataset"]}: {bpd} on {metrics["test_images"]} images']
    if metrics.get('paper_bpd') is not None:
      parts.append(f'paper {metrics["paper_bpd"]:.2f}')
    parts.append(
        f'{metrics["num_params"]} params, {metrics["steps"]} steps, '
        f'{metrics["train_seconds"]:.0f} s training'
    )
    return ' | '.join(parts)
