"""Likelihood and sample quality of a trained image model: what launch/evaluate.py writes.

The model comes from a run (`RunSource`, `experiment.Run.load`) or an exported SavedModel
version directory (`SavedModelSource`: its signatures only, behind the same model interface,
`export.ExportedModel`). Its samplers (`model.samplers`):

  baseline:  samples      x ~ p(x)
  smoothed:  smoothed     x~ ~ p(x~)
             single_step  x~ + sigma^2 grad log p(x~)   (Gaussian q; paper eq. 2)
             two_step     x ~ p(x | x~)                 (all three from the same x~)

bpd = -log2 p(x) / D on test images: exact for a baseline; for a pair the ELBO (paper eq. 3)
and the importance-weighted bound log (1/K) sum_k w_k (ours), from K draws per image.

Sample j is drawn from row seed j of the named 'samples' stream (`seeds`), from a run or from
its export alike, on every replica of the given strategy; the same j gives the same image
whatever `num_samples`, the batch size or the replica count. Samples are stored clipped to
[-1, 1] and quantised to 8 bits (as images are) in `SAMPLES_FILE` after every batch, keyed by
the model, seed and batch size; a rerun reuses the stored batches and draws only the missing
ones. Every figure is computed from the stored 8-bit images, so reruns give identical figures.

Paper App. C.6: `single_step_sigmas` applies x + sigma^2 grad log p(x) with the baseline's own
p(x) to its samples, one more scored entry (`samples_single_step_<sigma>`) per sigma.
"""

import io
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
from tfsmooth import records
from tfsmooth import seeds
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
GRID_SAMPLES = 64


def _image_task(config, where):
  task = tasks.for_config(config)
  if not isinstance(task, tasks.ImageTask):
    raise errors.UserError(
        f'{where} models {config.data.name!r} points; launch/evaluate.py '
        'scores image models (point runs have their plots in the workdir).'
    )
  return task


class RunSource:
  """A trained run: its restored (EMA or raw) model, which has a gradient."""

  differentiable = True

  def __init__(self, workdir, ema=True, strategy=None):
    self.run = experiment.Run.load(workdir, ema=ema, strategy=strategy)
    self.model = self.run.model
    self.config = self.run.config
    self.task = _image_task(self.config, workdir)
    self.iw_samples = self.config.eval.iw_samples
    self.description = {
        'workdir': workdir,
        'step': self.run.step,
        'checkpoint': os.path.relpath(self.run.checkpoint, workdir),
        'weights': self.run.weights,
    }
    self.recorded = self.run.metrics_of_weights() or {}


class SavedModelSource:
  """An exported version directory: its signatures behind the model interface, no gradient."""

  differentiable = False

  def __init__(self, version_dir):
    if not tf.io.gfile.exists(os.path.join(version_dir, export.METADATA)):
      raise errors.UserError(
          f'{version_dir} is not a version directory of launch/export.py '
          f'(no {export.METADATA}); pass --saved_model=<export_dir>/<n>.'
      )
    metadata = export.read_metadata(version_dir)
    self.config = ml_collections.ConfigDict(metadata['config'])
    self.task = _image_task(self.config, version_dir)
    self.model = export.ExportedModel(version_dir, metadata)
    self.iw_samples = self.model.iw_samples
    self.description = {
        'saved_model': version_dir,
        'step': metadata.get('step'),
        'version': metadata.get('version'),
        'weights': metadata.get('weights'),
    }
    self.recorded = metadata.get('metrics', {})


def open_source(workdir=None, saved_model=None, ema=True, strategy=None):
  """The `RunSource` of `workdir` (EMA or raw weights, the model in `strategy`'s scope) or
  else the `SavedModelSource` of `saved_model`."""
  return RunSource(workdir, ema, strategy) if workdir else SavedModelSource(saved_model)


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
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path, 'rb') as f, np.load(f) as stored:
    if json.loads(str(stored['key'])) != key or not set(names) <= set(stored.files):
      return {}
    return {name: stored[name] for name in names}


def _save(path, key, samples):
  buffer = io.BytesIO()
  np.savez(buffer, key=json.dumps(key, sort_keys=True), **samples)
  temporary = f'{path}.tmp-{os.getpid()}'
  with tf.io.gfile.GFile(temporary, 'wb') as f:
    f.write(buffer.getvalue())
  tf.io.gfile.rename(temporary, path, overwrite=True)


def draw_samples(
    source, out_dir, num_samples, batch_size, seed, strategy=None, write=True, log=logging.info
):
  """{sampler: uint8 [num_samples, H, W, C]} of every sampler of `source.model`, drawing
  only the batches `SAMPLES_FILE` lacks; returns (samples, {'reused', 'drawn', 'seconds'}).
  `write`: store the samples after every batch (False on workers other than the chief)."""
  model = source.model
  path = os.path.join(out_dir, SAMPLES_FILE)
  key = dict(source.description, seed=seed, batch_size=batch_size)
  samples = _load_stored(path, key, model.samplers)
  have = len(next(iter(samples.values()))) if samples else 0
  num_batches = -(-num_samples // batch_size)
  names = ', '.join(model.samplers)
  if have:
    log(
        f'Reusing {min(have, num_samples)} stored samples of {names} from {path} (same model, '
        f'seed and batch size); drawing {max(0, num_batches * batch_size - have)} more.'
    )
  else:
    if tf.io.gfile.exists(path):
      log(f'{path} holds samples of another model, seed or batch size; drawing anew.')
    samples = {name: np.zeros((0,) + source.task.event_shape, np.uint8) for name in model.samplers}
  start = time.time()
  todo = range(have // batch_size, num_batches)
  for index in todo:
    rows = seeds.rows(seed, 'samples', index * batch_size, batch_size)
    batch = tasks.draw_rows(model, rows, batch_size=batch_size, strategy=strategy)
    samples = {
        name: np.concatenate([samples[name], image_data.to_uint8(batch[name])])
        for name in model.samplers
    }
    if write:
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
  return image_data.to_unit_range(images).numpy()


def single_step_ablation(model, samples, sigmas, batch_size, log=logging.info):
  """Paper App. C.6: {f'samples_single_step_{sigma:g}': uint8 x + sigma^2 grad log p(x)} of
  the baseline's own p(x) (`model`) on its samples (uint8)."""
  step = tf.function(lambda x, variance: x + variance * smoothing.score(model, x))
  out = {}
  for sigma in sigmas:
    log(f'App. C.6: single-step denoising of the baseline samples with sigma={sigma:g}')
    out[f'samples_single_step_{sigma:g}'] = np.concatenate(
        [
            image_data.to_uint8(
                step(
                    tf.constant(to_float(samples[i : i + batch_size])),
                    tf.constant(sigma**2, tf.float32),
                )
            )
            for i in range(0, len(samples), batch_size)
        ]
    )
  return out


def check_ablation(source, single_step_sigmas):
  """Refuses the App. C.6 ablation where it cannot apply: it denoises a baseline's samples
  with the gradient of its own log p(x)."""
  if single_step_sigmas and not (source.model.exact_likelihood and source.differentiable):
    raise errors.UserError(
        'Single-step denoising of samples (paper App. C.6, --single_step_sigmas) uses a '
        "baseline's own grad log p(x): pass the --workdir of a baseline run (not a smoothed "
        'run, not a SavedModel, whose signatures have no gradient).'
    )


def bpd(source, points, iw_samples, strategy=None, conditions=None):
  """Test bpd of `source.model` on `points` from the rows of the 'test' seed stream (base
  eval.seed), as a run scores its test split: {'bpd'} exact, or {'bpd_elbo', 'bpd_iw'};
  `conditions` the points' per-row conditions (their class labels), if any."""
  record = likelihood.mean_nll(
      source.model,
      points,
      seeds.rows(source.config.eval.seed, 'test', 0, len(points)),
      iw_samples,
      source.config.eval.get('batch_size') or None,
      strategy,
      conditions,
  )
  return tasks.metrics_of(record.in_unit(source.task.to_unit), 'bpd')


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
    strategy=None,
    write=True,
    log=logging.info,
):
  """Writes eval.json, grid_<sampler>.png and nearest-neighbour grids into `out_dir`.

  num_reference: test images for FID / KID / IS (0: the whole test split);
  bpd_examples: test images for bpd (0: the run's test set, config.data.test_examples);
  iw_samples: K of the bounds (None: the run's eval.iw_samples, or the export's K);
  strategy: draws and bounds run on its replicas; write: False on non-chief workers.
  Returns the content of eval.json.
  """
  check_ablation(source, single_step_sigmas)
  if write:
    tf.io.gfile.makedirs(out_dir)
  config, task, model = source.config, source.task, source.model
  result = {
      'source': source.description,
      'dataset': config.data.name,
      'smoothed': model.smoothed,
      'feature_network': dict(
          name=network.name,
          **{k: v for k, v in network.info.items() if k in ('test_accuracy', 'path')},
      ),
      'recorded_metrics': source.recorded,
  }

  points = task.split('test')[: bpd_examples or None]
  iw = iw_samples or source.iw_samples
  log(
      f'bpd on {len(points)} test images'
      + ('' if model.exact_likelihood else f', K={iw} draws each')
  )
  given = {k: v[: len(points)] for k, v in task.conditions('test').items()}
  result['bpd'] = dict(bpd(source, points, iw, strategy, given), num_examples=len(points))
  if given:
    result['bpd']['labels'] = 'of log p(x | y) given the test labels'
    null = bpd(source, points, iw, strategy, {})
    result['bpd'].update({k.replace('bpd', 'bpd_null', 1): v for k, v in null.items()})
  result['bpd']['kind'] = (
      'exact'
      if model.exact_likelihood
      else 'upper bounds: bpd_elbo from the ELBO (paper eq. 3), bpd_iw from the '
      'importance-weighted bound (ours)'
  )
  log(f'bpd: {result["bpd"]}')

  samples, result['sampling'] = draw_samples(
      source, out_dir, num_samples, batch_size, seed, strategy, write, log
  )
  result['sampling'].update(seed=seed, batch_size=batch_size, file=SAMPLES_FILE)
  if single_step_sigmas:
    samples.update(
        single_step_ablation(model, samples['samples'], single_step_sigmas, batch_size, log)
    )

  reference = task.source.split('test', num_reference or None)[0]
  log(f'{network.name} activations of {len(reference)} test images')
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
    prefix = f'nearest_{name}_{network.name}'
    if write:
      plots.save_image_grid(plots.chunks(x[:GRID_SAMPLES], 8), os.path.join(out_dir, grid))
      neighbours.neighbour_grids(
          x[:num_neighbours],
          train,
          network,
          out_dir,
          train_features=train_features,
          batch_size=batch_size,
          prefix=prefix,
      )
    entry['plots'] = [grid, f'{prefix}_pixel.png', f'{prefix}_features.png']
    result['samplers'][name] = entry
    log(
        f'{name}: {network.name} FID {entry["fid"]:.2f}, KID {entry["kid"]:.4f}, '
        f'IS {entry["inception_score"]:.2f} ({entry["num_samples"]} samples vs '
        f'{entry["num_reference"]} test images)'
    )

  result = records.json_ready(result)
  if write:
    records.write_json(os.path.join(out_dir, EVAL_FILE), result)
  return result
