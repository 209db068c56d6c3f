"""What differs between point data and images, as two small plug-ins of `experiment.Run`.

A task knows its data (splits, training examples), its likelihood unit and its pictures:

  * `PointsTask` (synthetic sets and a user's .npy/.npz/.csv points): NLL in nats per point
    (`nll`, or `nll_elbo` / `nll_iw`); where the data has a density, the true NLL of the very
    test points scored (`test_true_nll`, the limit of a test NLL) and the entropy; the paper's
    figure for the built-in sets only; scatter plots of samples (the first two coordinates)
    and, for D <= 2, density plots.
  * `ImageTask` (TFDS / offline Fashion-MNIST): bits per dimension, bpd = nats / (D ln 2)
    (`bpd`, or `bpd_elbo` / `bpd_iw`); PNG grids of samples.
"""

import math
import os

import numpy as np
import tensorflow as tf

from tfsmooth import kernels
from tfsmooth.data import image_sources
from tfsmooth.data import synthetic
from tfsmooth.evaluation import likelihood
from tfsmooth.evaluation import plots
from tfsmooth.evaluation import replicated

# Titles of the samplers of the model interface in plots.
SAMPLER_TITLES = {
    'samples': 'model samples',
    'smoothed': 'p(x~) samples',
    'single_step': 'single-step denoised',
    'two_step': 'two-step samples',
    'annealed': 'annealed samples',
}


def metrics_of(record, unit):
  """The metrics of an `likelihood.NLL` record in `unit` (numbers; pictures are 'plots'):
  {unit} when exact, else {unit}_iw, {unit}_elbo and iw_samples."""
  if record.exact:
    return {unit: record.nll}
  return {
      f'{unit}_elbo': record.nll_elbo,
      f'{unit}_iw': record.nll,
      'iw_samples': record.num_samples,
  }


def paper_figure(config, table):
  """The paper's figure of `config` from its `reference.<table>` (e.g. paper_nll keyed
  'smoothed_3' / 'baseline_6', paper_bpd keyed 'smoothed' / 'baseline'), or None."""
  variant = 'smoothed' if config.smoothing.enabled else 'baseline'
  if table == 'paper_nll':
    variant += f'_{config.model.get("num_mixtures", config.model.name)}'
  return config.reference.get(table, {}).get(variant)


def draw_rows(model, seeds, samplers=None, batch_size=None, strategy=None, conditions=None):
  """{sampler: numpy [N, ...]} of `model.draw` for seed rows [N, 2], on every replica;
  `conditions` {keyword: [N]} the model's per-row conditions, if any."""
  samplers = tuple(samplers or model.samplers)
  conditions = conditions or {}
  return replicated.map_batches(
      _draws_of(model, samplers, tuple(conditions)),
      (np.asarray(seeds, np.int32), *(np.asarray(v) for v in conditions.values())),
      batch_size or len(seeds),
      strategy,
  )


def _draws_of(model, samplers, keywords):
  """`model.draw` of row batches: one function per (model, samplers, condition keywords), kept
  on the model, traced once."""
  return replicated.cached_on(
      model,
      ('draw', samplers, keywords),
      lambda: lambda s, *values: model.draw(s, samplers, **dict(zip(keywords, values))),
  )


def for_config(config):
  """The task of `config.data`: images (a TFDS name, or 'images': a folder or array of yours),
  else points (the built-in sets, 'file': your points)."""
  if image_sources.is_image_config(config.data):
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
        config.data.name,
        config.data.get('path') or None,
        config.data.get('key') or None,
        dequantize=config.data.get('dequantize', False),
        labels=config.data.get('labels', False),
    )
    self.labelled = bool(config.data.get('labels', False))
    if self.labelled and self.dataset.num_classes is None:
      self.dataset.labelled_splits()  # refuses in one paragraph, naming the labelled sets
    self._splits = None

  @property
  def event_shape(self):
    return (self.dataset.dim,)

  def split(self, name):
    """float32 [N, D] points of 'train', 'validation' or 'test'."""
    return self._load()[name][0]

  def conditions(self, name):
    """{'labels': int32 [N]} of a split when the run uses class labels, else {}."""
    labels = self._load()[name][1]
    return {} if labels is None else {'labels': labels}

  def _load(self):
    if self._splits is None:
      if self.labelled:
        self._splits = self.dataset.labelled_splits()
      else:
        self._splits = {k: (v, None) for k, v in synthetic.load_splits(self.dataset).items()}
    return self._splits

  @property
  def num_classes(self):
    return self.dataset.num_classes if self.labelled else None

  @property
  def class_names(self):
    return tuple(str(k) for k in range(self.num_classes)) if self.labelled else ()

  def train_examples(self, seed):
    """An infinite, seeded shuffle of the training points, one point per element (a dict
    {'x', 'labels'} with class labels)."""
    train = {'x': self.split('train'), **self.conditions('train')}
    if not self.labelled:
      train = train['x']
    count = len(self.split('train'))
    return lambda: tf.data.Dataset.from_tensor_slices(train).shuffle(count, seed).repeat()

  def to_unit(self, nats):
    return nats

  def sigma_heuristic(self):
    """Median pairwise distance / (2 sqrt(D)) on the training points (paper App. C.1), in
    the units the model sees (standardised ones where config.data.shift is settled)."""
    train = self.split('train')
    data = self.config.data
    if data.get('shift') is not None:
      train = (train - np.asarray(data.shift)) / np.asarray(data.scale)
    return kernels.median_heuristic_sigma(train.astype(np.float32))

  def facts(self):
    """What config.json records of the data beyond the config: nothing for points (a points
    file is read whole each time; its splits follow from its rows)."""
    return {}

  def check(self, recorded):
    """Points have no recorded facts to check."""
    del recorded

  def standardization(self):
    """(shift, scale) per coordinate: the training points' mean and standard deviation
    (1 where a coordinate is constant)."""
    train = self.split('train').astype(np.float64)
    scale = train.std(axis=0)
    return train.mean(axis=0).tolist(), np.where(scale > 0, scale, 1.0).tolist()

  def reference(self):
    """The true NLL of the test points and the data's entropy (nats per point), and the
    paper's figure, where they exist."""
    out = {}
    if self.dataset.has_density:
      out['test_true_nll'] = -float(np.mean(self.dataset.log_prob(self.split('test'))))
      out['entropy'], out['entropy_stderr'] = self.dataset.entropy()
    if self.config.data.name in synthetic.DATASETS:
      out['paper_nll'] = paper_figure(self.config, 'paper_nll')
    return out

  def write_plots(self, run, model, strategy=None, out_dir=None):
    """samples.png (data, and every sampler of the model; a pair's smoothed data x~ too) and,
    for D <= 2, density.png (the model's log-density or its IW bound, p(x~) of a pair, the
    truth where known), into `out_dir` (default: the workdir)."""
    out_dir = out_dir or run.workdir
    data = self.split('test')
    n = min(run.config.eval.num_plot_samples, len(data))
    limits = plots.plot_limits(data[:, :2])
    panels = {'data': data[:n]}
    densities = {}
    if model.denoisers:
      panels['smoothed data x~'] = model.smooth(data[:n], run.row_seeds('smooth_data', n)).numpy()
      densities['p(x~)'] = tf.function(model.smoothed_log_prob)
    drawn = draw_rows(model, run.row_seeds('samples', n), strategy=strategy)
    panels.update({SAMPLER_TITLES[name]: x for name, x in drawn.items()})
    k = run.config.eval.density_iw_samples
    title = 'model p(x)' if model.exact_likelihood else f'p(x), IW-{k} bound'
    densities[title] = lambda grid: likelihood.rows(
        model, grid, run.row_seeds('test', len(grid)), k, strategy=strategy
    ).log_prob
    if self.dataset.has_density:
      true_nll = -np.mean(self.dataset.log_prob(data))
      densities[f'true p(x) (test NLL {true_nll:.3f})'] = self.dataset.log_prob
    dim = data.shape[1]
    if dim > 2:
      panels = {f'{title} (x1, x2)': points[:, :2] for title, points in panels.items()}
    plots.sample_panels(panels, os.path.join(out_dir, self.plots[0]), limits)
    if dim <= 2:
      plots.density_panels(
          densities,
          os.path.join(out_dir, self.plots[1]),
          limits,
          dim=dim,
          resolution=400 if dim == 1 else 150,
      )

  def summary_images(self, run, model, strategy=None):
    """{'images/<sampler>': uint8 [1, H, W, 3]} for TensorBoard: a scatter of 200 draws of
    every sampler (the first two coordinates; a histogram in 1-D) on the test data's axes, from
    the first seed rows of samples.png, so that successive evaluations compare."""
    limits = plots.plot_limits(self.split('test')[:, :2])
    drawn = draw_rows(model, run.row_seeds('samples', 200), strategy=strategy)
    return {
        f'images/{name}': plots.points_picture(x, limits, SAMPLER_TITLES[name])[None]
        for name, x in drawn.items()
    }

  @staticmethod
  def summary_line(metrics):
    """Test NLL next to the true NLL of the same points, the entropy and the paper's figure."""
    if 'nll_iw' in metrics:
      nll = (
          f'test NLL <= {metrics["nll_iw"]:.3f} (IW-{metrics["iw_samples"]}), '
          f'<= {metrics["nll_elbo"]:.3f} (ELBO)'
      )
    else:
      nll = f'test NLL {metrics["nll"]:.3f} (exact)'
    parts = [f'{metrics["dataset"]}: {nll} nats/point']
    if 'test_true_nll' in metrics:
      parts.append(f'true NLL of these points {metrics["test_true_nll"]:.4f}')
    if 'entropy' in metrics:
      parts.append(f'entropy {metrics["entropy"]:.3f}')
    if metrics.get('paper_nll') is not None:
      parts.append(f'paper {metrics["paper_nll"]:.2f}')
    parts.append(f'{metrics["num_params"]} params, {metrics["train_seconds"]:.0f} s training')
    return ' | '.join(parts)


class ImageTask:
  """Images [N, H, W, C] in [-1, 1] from any source (`data.image_sources`: TFDS, a folder, an
  array); bits per dimension."""

  unit = 'bpd'
  count_key = 'test_images'

  def __init__(self, config):
    self.config = config
    self.source = image_sources.from_config(config.data)
    self._splits = {}  # loaded once: validation runs every eval_every steps

  @property
  def event_shape(self):
    return self.source.event_shape

  @property
  def num_classes(self):
    return self.source.num_classes

  @property
  def class_names(self):
    return tuple(self.source.class_names or ())

  def _load(self, name):
    """(images, labels or None) of 'train', 'validation' or 'test' (capped by
    config.data.<name>_examples where set), read once."""
    if name not in self._splits:
      self._splits[name] = self.source.split(name, self.config.data.get(f'{name}_examples') or None)
    return self._splits[name]

  def split(self, name):
    """float32 images of 'train', 'validation' or 'test'."""
    return self._load(name)[0]

  def conditions(self, name):
    """{'labels': int32 [N]} of a split when the run uses class labels, else {}."""
    labels = self._load(name)[1]
    return {} if labels is None else {'labels': labels}

  def train_examples(self, seed):
    return lambda: self.source.train_examples(seed)

  def facts(self):
    """What config.json records of the images (`ImageSource.facts`)."""
    return self.source.facts()

  def check(self, recorded):
    """Refuses images that changed since a run recorded them (`ImageSource.check`)."""
    self.source.check(recorded)

  def to_unit(self, nats):
    return nats / (math.prod(self.event_shape) * math.log(2.0))

  def reference(self):
    return {'paper_bpd': paper_figure(self.config, 'paper_bpd')}

  def sigma_heuristic(self):
    """The paper's sigma (App. C.1) on this data set's training images."""
    return self.source.sigma_heuristic()

  def write_plots(self, run, model, strategy=None, out_dir=None):
    """samples_<sampler>.png: a grid of every sampler of the model, all from the same seed
    rows (a pair's samplers from the same x~), into `out_dir` (default: the workdir)."""
    out_dir = out_dir or run.workdir
    drawn = draw_rows(
        model,
        run.row_seeds('samples', run.config.eval.num_samples),
        batch_size=run.config.eval.get('batch_size') or None,
        strategy=strategy,
    )
    for name, x in drawn.items():
      plots.save_image_grid(plots.chunks(x, 8), os.path.join(out_dir, self.grid_file(name)))
    if self.num_classes:  # samples_by_class.png: a row per class (the first 10), same seeds
      classes = min(self.num_classes, 10)
      rows = np.tile(np.asarray(run.row_seeds('samples', 8)), (classes, 1))
      given = {'labels': np.repeat(np.arange(classes, dtype=np.int32), 8)}
      last = model.samplers[-1]
      x = draw_rows(model, rows, [last], strategy=strategy, conditions=given)[last]
      plots.save_image_grid(np.split(x, classes), os.path.join(out_dir, 'samples_by_class.png'))

  def summary_images(self, run, model, strategy=None):
    """{'images/<sampler>': uint8 [1, H, W, C]} for TensorBoard: a one-row grid of 8 draws of
    every sampler, from the first seed rows of the samples_*.png grids (a pair's samplers from
    the same x~), so that successive evaluations compare."""
    drawn = draw_rows(model, run.row_seeds('samples', 8), strategy=strategy)
    return {f'images/{name}': plots.image_grid([x])[None] for name, x in drawn.items()}

  @staticmethod
  def grid_file(sampler):
    return 'samples.png' if sampler == 'samples' else f'samples_{sampler}.png'

  @staticmethod
  def summary_line(metrics):
    """Test bpd (exact or bounds), parameters, steps, training time."""
    if 'bpd_iw' in metrics:
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
