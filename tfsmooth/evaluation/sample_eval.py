"""Likelihood and sample quality of a trained image model: what launch/evaluate.py writes.

The model comes from a run (`RunSource`, `experiment.Run.load`) or an exported SavedModel
version directory (`SavedModelSource`: its signatures only). Its samplers:

  baseline:  samples      x ~ p(x)
  smoothed:  smoothed     x~ ~ p(x~)
             single_step  x~ + sigma^2 grad log p(x~)   (Gaussian q; paper eq. 2)
             two_step     x ~ p(x | x~)                 (all three from the same x~)

bpd = -log2 p(x) / D on test images: exact for a baseline; for a pair the ELBO (paper eq. 3)
and the importance-weighted bound log (1/K) sum_k w_k (ours), from K draws per image.

Sampling goes in full batches of `batch_size`: batch b of a run draws from the named seed
fold_in([seed, salt], b) (`experiment.SEEDS`); a SavedModel row j from fold_in([seed, salt], j).
Batch b is thus the same images whatever `num_samples` is. Samples are stored clipped to
[-1, 1] and quantised to 8 bits (as images are) in `SAMPLES_FILE` after every batch, keyed by
the model, seed and batch size; a rerun reuses the stored batches and draws only the missing
ones. Every figure is computed from the stored 8-bit images, so reruns give identical figures.

Paper App. C.6: `single_step_sigmas` applies x + sigma^2 grad log p(x) with the baseline's own
p(x) to its samples, one more scored entry (`samples_single_step_<sigma>`) per sigma.
"""

import json
import os
import time

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import export
from tfsmooth import smoothing
from tfsmooth import tasks
from tfsmooth.data import images as image_data
from tfsmooth.evaluation import feature_networks
from tfsmooth.evaluation import likelihood
from tfsmooth.evaluation import neighbours
from tfsmooth.evaluation import plots
from tfsmooth.evaluation import sample_quality

EVAL_FILE = 'eval.json'
SAMPLES_FILE = 'eval_samples.npz'
SMOOTHED_SAMPLERS = ('smoothed', 'single_step', 'two_step')
BASELINE_SAMPLERS = ('samples',)
GRID_SAMPLES = 64


def _image_task(config, where):
  task = tasks.for_config(config)
  if not isinstance(task, tasks.ImageTask):
    raise errors.UserError(
        f'{where} models {config.data.name!r} points; launch/evaluate.py '
        'scores image models (point runs have their plots in the workdir).'
    )
  return task


def _fold_in(base, salt, index):
  return tf.random.experimental.stateless_fold_in(tf.constant([base, salt], tf.int32), index)


def _row_seeds(base, salt, start, count):
  """[count, 2]: fold_in([base, salt], j) for rows j = start .. start + count - 1."""
  return tf.stack([_fold_in(base, salt, j) for j in range(start, start + count)])


class RunSource:
  """A trained run: batched samplers of its restored (EMA) model."""

  def __init__(self, workdir, ema=True):
    self.run = experiment.Run.load(workdir, ema=ema)
    self.config = self.run.config
    self.task = _image_task(self.config, workdir)
    self.smoothed = self.run.smoothed
    model = self.run.model
    self.samplers = BASELINE_SAMPLERS
    if self.smoothed:
      self.samplers = tuple(
          s for s in SMOOTHED_SAMPLERS if s != 'single_step' or model.kernel.is_gaussian
      )
    self.iw_samples = self.config.eval.iw_samples
    self.description = {
        'workdir': os.path.abspath(workdir),
        'step': self.run.step,
        'checkpoint': os.path.relpath(self.run.checkpoint, workdir),
        'weights': self.run.weights,
    }
    self.recorded = self.run.read_metrics()
    self.density = None if self.smoothed else model
    if self.smoothed:
      self._prior = tf.function(model.sample_smoothed)
      self._single = tf.function(model.denoise_single_step)
      self._denoise = tf.function(model.denoise)
    else:
      self._sample = tf.function(model.sample)

  def draw(self, index, batch_size, seed):
    """{sampler: float images [batch_size, H, W, C]} of batch `index`."""
    salt = experiment.SEEDS
    if not self.smoothed:
      return {'samples': self._sample(batch_size, _fold_in(seed, salt['samples'], index))}
    x_tilde = self._prior(batch_size, _fold_in(seed, salt['prior_samples'], index))
    out = {
        'smoothed': x_tilde,
        'two_step': self._denoise(x_tilde, _fold_in(seed, salt['samples'], index)),
    }
    if 'single_step' in self.samplers:
      out['single_step'] = self._single(x_tilde)
    return out

  def bpd(self, points, iw_samples):
    """Test bpd as the run computes it (same seeds, so equal to metrics.json on its images)."""
    run, batch = self.run, self.config.eval.get('batch_size') or None
    if not self.smoothed:
      return {'bpd': self.task.to_unit(likelihood.exact_nll(run.model, points, batch or 4096))}
    elbo, iw = likelihood.smoothed_nll(
        run.model, points, iw_samples, run.seed_stream('test'), batch
    )
    return {'bpd_elbo': self.task.to_unit(elbo), 'bpd_iw': self.task.to_unit(iw)}


class SavedModelSource:
  """An exported version directory: its `sample`, `denoise_single_step` and `log_prob`
  signatures, one seed per row."""

  def __init__(self, version_dir):
    if not os.path.isfile(os.path.join(version_dir, export.METADATA)):
      raise errors.UserError(
          f'{version_dir} is not a version directory of launch/export.py '
          f'(no {export.METADATA}); pass --saved_model=<export_dir>/<n>.'
      )
    self.metadata = export.read_metadata(version_dir)
    self.config = ml_collections.ConfigDict(self.metadata['config'])
    self.task = _image_task(self.config, version_dir)
    self.smoothed = bool(self.metadata['smoothed'])
    self.signatures = tf.saved_model.load(version_dir).signatures
    self.samplers = BASELINE_SAMPLERS
    if self.smoothed:
      self.samplers = tuple(
          s
          for s in SMOOTHED_SAMPLERS
          if s != 'single_step' or 'denoise_single_step' in self.signatures
      )
    self.description = {
        'saved_model': os.path.abspath(version_dir),
        'step': self.metadata.get('step'),
        'version': self.metadata.get('version'),
    }
    self.recorded = self.metadata.get('metrics', {})
    self.iw_samples = self.metadata.get('iw_samples')
    self.density = None  # no gradient of log p(x) in the export

  def draw(self, index, batch_size, seed):
    rows = _row_seeds(seed, experiment.SEEDS['samples'], index * batch_size, batch_size)
    out = self.signatures['sample'](seed=rows)
    if not self.smoothed:
      return {'samples': out['x']}
    drawn = {'smoothed': out['x_tilde'], 'two_step': out['x']}
    if 'single_step' in self.samplers:
      drawn['single_step'] = self.signatures['denoise_single_step'](x_tilde=out['x_tilde'])['x']
    return drawn

  def bpd(self, points, iw_samples):
    """From the `log_prob` signature (K fixed at export), one seed per test image."""
    if self.smoothed and iw_samples != self.iw_samples:
      raise errors.UserError(
          f'The export computes its bound with K={self.iw_samples} draws, '
          f'fixed at export; --iw_samples={iw_samples} cannot change it '
          '(drop the flag, or evaluate the --workdir instead).'
      )
    batch = self.config.eval.get('batch_size') or 64
    log_prob, elbo = [], []
    for start in range(0, len(points), batch):
      x = tf.constant(points[start : start + batch])
      if self.smoothed:
        out = self.signatures['log_prob'](
            x=x, seed=_row_seeds(self.config.eval.seed, experiment.SEEDS['test'], start, len(x))
        )
        elbo.append(out['elbo'].numpy())
      else:
        out = self.signatures['log_prob'](x=x)
      log_prob.append(out['log_prob'].numpy())
    to_bpd = lambda values: self.task.to_unit(-float(np.mean(np.concatenate(values))))  # noqa
    if self.smoothed:
      return {'bpd_elbo': to_bpd(elbo), 'bpd_iw': to_bpd(log_prob)}
    return {'bpd': to_bpd(log_prob)}


def out_dir_of(workdir, saved_model, out_dir, ema=True):
  """Checks that exactly one of `workdir` and `saved_model` is given; returns where results
  go: `out_dir`, by default the workdir, or `workdir/eval_raw_weights` for the raw weights
  (a SavedModel needs an `out_dir`)."""
  if bool(workdir) == bool(saved_model):
    raise errors.UserError(
        'Pass exactly one of --workdir (a launch/train.py run) and '
        '--saved_model (a launch/export.py version directory, '
        f'e.g. exports/fmnist/1); got {"both" if workdir else "neither"}.'
    )
  if saved_model and not out_dir:
    raise errors.UserError('--saved_model needs --out_dir: results do not go into an export.')
  return out_dir or (workdir if ema else os.path.join(workdir, 'eval_raw_weights'))


def open_source(workdir=None, saved_model=None, ema=True):
  """The `RunSource` of `workdir` (EMA or raw weights) or else the `SavedModelSource` of
  `saved_model`."""
  return RunSource(workdir, ema) if workdir else SavedModelSource(saved_model)


def load_network(name, classifier_dir='', inception_path='', dataset=None):
  """The named feature network: 'classifier' (the project's, or the one in `classifier_dir`)
  or 'inception' (from `inception_path`); the classifier must match `dataset`."""
  if name == 'inception':
    return feature_networks.load_inception(inception_path)
  if name != 'classifier':
    raise errors.UserError(f'--feature_network={name!r}: choose classifier or inception.')
  network = feature_networks.load_classifier(classifier_dir or feature_networks.CLASSIFIER_DIR)
  trained_on = network.info.get('config', {}).get('data', {}).get('name')
  if dataset and trained_on and trained_on != dataset:
    raise errors.UserError(
        f'The classifier {network.name} was trained on {trained_on}, the model '
        f'on {dataset}: pass --feature_network=inception --inception_path=... '
        'or a --classifier_dir trained on this data set.'
    )
  return network


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  return f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'


def _load_stored(path, key, names):
  """The stored uint8 samples {name: [M, ...]} if `path` holds samples of `key`, else {}."""
  if not os.path.exists(path):
    return {}
  with np.load(path) as stored:
    if json.loads(str(stored['key'])) != key or not set(names) <= set(stored.files):
      return {}
    return {name: stored[name] for name in names}


def _save(path, key, samples):
  temporary = f'{path}.tmp-{os.getpid()}'
  with open(temporary, 'wb') as f:
    np.savez(f, key=json.dumps(key, sort_keys=True), **samples)
  os.replace(temporary, path)


def draw_samples(source, out_dir, num_samples, batch_size, seed, log=logging.info):
  """{sampler: uint8 [num_samples, H, W, C]} of every sampler of `source`, drawing only the
  batches `SAMPLES_FILE` lacks; returns (samples, {'reused': n, 'drawn': n, 'seconds': s})."""
  path = os.path.join(out_dir, SAMPLES_FILE)
  key = dict(source.description, seed=seed, batch_size=batch_size)
  samples = _load_stored(path, key, source.samplers)
  have = len(next(iter(samples.values()))) if samples else 0
  num_batches = -(-num_samples // batch_size)
  names = ', '.join(source.samplers)
  if have:
    log(
        f'Reusing {min(have, num_samples)} stored samples of {names} from {path} (same model, '
        f'seed and batch size); drawing {max(0, num_batches * batch_size - have)} more.'
    )
  else:
    if os.path.exists(path):
      log(f'{path} holds samples of another model, seed or batch size; drawing anew.')
    samples = {name: np.zeros((0,) + source.task.event_shape, np.uint8) for name in source.samplers}
  start = time.time()
  todo = range(have // batch_size, num_batches)
  for index in todo:
    batch = source.draw(index, batch_size, seed)
    samples = {
        name: np.concatenate([samples[name], plots.to_uint8(batch[name])])
        for name in source.samplers
    }
    _save(path, key, samples)
    if index == todo[0]:  # the rate leaves out the first batch, which traces the samplers
      timed = time.time()
      line = f'{timed - start:.1f} s (tracing included)'
    else:
      rate = (index - todo[0]) * batch_size / (time.time() - timed)
      line = (
          f'{rate:.2f} samples/s, '
          f'ETA {_duration((num_batches - index - 1) * batch_size / rate)}'
      )
    log(f'Sampling {names}: batch {index + 1}/{num_batches}, {line}')
  counts = {
      'reused': min(have, num_samples),
      'drawn': len(todo) * batch_size,
      'seconds': round(time.time() - start, 1),
  }
  return {name: x[:num_samples] for name, x in samples.items()}, counts


def to_float(images):
  """uint8 images -> float32 in [-1, 1] (the 8-bit bin centres k / 127.5 - 1)."""
  return images.astype(np.float32) * (1.0 / 127.5) - 1.0


def single_step_ablation(density, samples, sigmas, batch_size, log=logging.info):
  """Paper App. C.6: {f'samples_single_step_{sigma:g}': uint8 x + sigma^2 grad log p(x)} of
  the baseline's own p(x) (`density`) on its samples (uint8)."""
  step = tf.function(lambda x, variance: x + variance * smoothing.score(density, x))
  out = {}
  for sigma in sigmas:
    log(f'App. C.6: single-step denoising of the baseline samples with sigma={sigma:g}')
    out[f'samples_single_step_{sigma:g}'] = np.concatenate(
        [
            plots.to_uint8(
                step(
                    tf.constant(to_float(samples[i : i + batch_size])),
                    tf.constant(sigma**2, tf.float32),
                )
            )
            for i in range(0, len(samples), batch_size)
        ]
    )
  return out


def _json_ready(value):
  if isinstance(value, dict):
    return {k: _json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_ready(v) for v in value]
  if isinstance(value, (float, np.floating)):
    return float(value) if np.isfinite(value) else None
  if isinstance(value, np.integer):
    return int(value)
  return value


def check(source, num_samples, num_reference, splits, single_step_sigmas):
  """UserErrors for options that cannot apply to `source`."""
  if num_samples < splits or 0 < num_reference < splits:
    raise errors.UserError(
        f'--num_samples={num_samples} and --num_reference={num_reference} '
        f'must be at least --splits={splits}: the Inception score needs a '
        'sample per split.'
    )
  if single_step_sigmas and (source.smoothed or source.density is None):
    raise errors.UserError(
        "--single_step_sigmas (paper App. C.6) denoises a baseline's samples with its own "
        'grad log p(x): pass the --workdir of a baseline run (not a smoothed run, not a '
        'SavedModel, whose signatures have no gradient).'
    )
  if any(not sigma > 0 for sigma in single_step_sigmas):
    raise errors.UserError(f'--single_step_sigmas must be positive, got {single_step_sigmas}.')


def evaluate(
    source,
    network,
    out_dir,
    num_samples=5000,
    batch_size=100,
    seed=0,
    num_reference=0,
    bpd_examples=0,
    iw_samples=None,
    single_step_sigmas=(),
    num_neighbours=8,
    splits=sample_quality.SPLITS,
    log=logging.info,
):
  """Writes eval.json, grid_<sampler>.png and nearest-neighbour grids into `out_dir`.

  num_reference: test images for FID / KID / IS (0: the whole test split);
  bpd_examples: test images for bpd (0: the run's test set, config.data.test_examples);
  iw_samples: K of the bounds (None: the run's eval.iw_samples, or the export's K).
  Returns the content of eval.json.
  """
  check(source, num_samples, num_reference, splits, single_step_sigmas)
  os.makedirs(out_dir, exist_ok=True)
  config, task = source.config, source.task
  result = {
      'source': source.description,
      'dataset': config.data.name,
      'smoothed': source.smoothed,
      'feature_network': dict(
          name=network.name,
          **{k: v for k, v in network.info.items() if k in ('test_accuracy', 'path')},
      ),
      'recorded_metrics': source.recorded,
  }

  points = task.split('test')[: bpd_examples or None]
  iw = iw_samples or source.iw_samples
  log(f'bpd on {len(points)} test images' + (f', K={iw} draws each' if source.smoothed else ''))
  result['bpd'] = dict(source.bpd(points, iw), num_examples=len(points))
  if source.smoothed:
    result['bpd'].update(
        iw_samples=iw,
        kind='upper bounds: bpd_elbo from the ELBO (paper eq. 3),'
        ' bpd_iw from the importance-weighted bound (ours)',
    )
  else:
    result['bpd']['kind'] = 'exact'
  log(f'bpd: {result["bpd"]}')

  samples, result['sampling'] = draw_samples(source, out_dir, num_samples, batch_size, seed, log)
  result['sampling'].update(seed=seed, batch_size=batch_size, file=SAMPLES_FILE)
  if single_step_sigmas:
    samples.update(
        single_step_ablation(
            source.density, samples['samples'], single_step_sigmas, batch_size, log
        )
    )

  data = config.data
  reference = image_data.load_images(
      data.name, data.test_split, num_reference or None, **task.source
  )
  log(f'{network.name} activations of {len(reference)} test images ({data.test_split})')
  reference = sample_quality.activations(network, reference, batch_size)
  train = task.split('train')
  log(f'{network.name} features of {len(train)} training images (nearest neighbours)')
  train_features = sample_quality.activations(network, train, batch_size)['features']

  result['samplers'] = {}
  for name, images in samples.items():
    x = to_float(images)
    entry = sample_quality.scores(
        sample_quality.activations(network, x, batch_size), reference, network.name, splits
    )
    if name.startswith('samples_single_step_'):
      entry.update(sigma=float(name.rsplit('_', 1)[1]), applied_to='samples')
    grid = f'grid_{name}.png'
    plots.save_image_grid(plots.chunks(x[:GRID_SAMPLES], 8), os.path.join(out_dir, grid))
    prefix = f'nearest_{name}_{network.name}'
    neighbours.neighbour_grids(
        x[:num_neighbours],
        train,
        network,
        out_dir,
        train_features=train_features,
        batch_size=batch_size,
        prefix=prefix,
    )
    entry['figures'] = [grid, f'{prefix}_pixel.png', f'{prefix}_features.png']
    result['samplers'][name] = entry
    log(
        f'{name}: {network.name} FID {entry["fid"]:.2f}, KID {entry["kid"]:.4f}, '
        f'IS {entry["inception_score"]:.2f} ({entry["num_samples"]} samples vs '
        f'{entry["num_reference"]} test images)'
    )

  result = _json_ready(result)
  temporary = os.path.join(out_dir, f'{EVAL_FILE}.tmp-{os.getpid()}')
  with open(temporary, 'w') as f:
    json.dump(result, f, indent=2, allow_nan=False)
  os.replace(temporary, os.path.join(out_dir, EVAL_FILE))
  return result
