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

A class-labelled model (`model.conditions['labels']`) draws sample j given a label y_j drawn from
the training labels' class frequencies by a uniform from sample j's own seed row (salted;
`sample_labels`), so the overall FID / KID / IS are those of the model's p(x) over the classes
as the data has them. The labels are stored with the samples (and their class counts are part
of the samples' key), and eval.json adds per sampler the KID of each class's samples against
that class's test images and the class accuracy (the share of the samples drawn for class k
that the feature classifier assigns to k: the standard check that the conditioning works),
beside the classifier's accuracy on the test images of each class, its ceiling. bpd is of
log p(x | y) given the test labels, and bpd_null* of p(x) through the null class.

A noise-conditional pair (`model.conditions['sigma']`) is scored at one noise level, `sigma`
(launch/evaluate.py --sigma; default its reference level smoothing.sigma): every sampler draws
at it, the bounds smooth and score at it, and the level is part of the samples' key. Its
`annealed` sampler walks its own ladder from sigma_max down to sigma_min whatever the level
(eval.json says so). Models without noise levels refuse `sigma` in one paragraph.

The feature classifier must have been trained on the model's data (`load_network`): its
classifier.json names the data identity (`ImageSource.identity`) and event shape it learnt; a
record without them (the shipped Fashion-MNIST classifier's) is matched by data.name alone.

What launch/evaluate.py writes (into its --out_dir):

Takes a run (--workdir; its best, EMA when kept, weights) or an exported version directory
(--saved_model; its signatures only, so TensorFlow alone would do). Writes into --out_dir
(default: the workdir, or <workdir>/eval_raw_weights with --weights=raw; for
--saved_model=.../<model>/<version>, eval/<model>/<version> under the working directory):

  eval.json                test bpd (exact for a baseline; ELBO and importance-weighted bounds
                           with K draws for a two-step model) and per sampler FID, KID (with
                           its standard error) and Inception score of --num_samples samples
                           against --num_reference test images, each naming its feature network
  grid_<sampler>.png       the first 64 samples
  nearest_<sampler>_<network>_{pixel,features}.png
                           --num_neighbours samples, each beside its 8 nearest training images
                           by pixel L2 and by feature L2 (paper App. C.5)
  eval_samples.npz         the samples (uint8), reused by a rerun with the same model, --seed
                           and --batch_size: only missing batches are drawn (an interrupted
                           run resumes), and the figures come out identical

Samplers: a baseline's `samples`; a smoothed pair's `smoothed` (x~ ~ p(x~)), `single_step`
(x~ + sigma^2 grad log p(x~)) and `two_step` (x ~ p(x | x~)), from the same x~; a
noise-conditional pair's also `annealed`.
--single_step_sigmas (baseline runs, paper App. C.6) adds `samples_single_step_<sigma>`: the
baseline's samples denoised by x + sigma^2 grad log p(x) with its own p(x).

A class-labelled run (data.labels=True): sample j is drawn given a class drawn from the
training labels' frequencies (seeded by --seed, stored with the samples), so FID / KID / IS
are overall; eval.json adds per sampler the KID of each class's samples against that class's
test images and the class accuracy (how often the feature classifier assigns a sample to the
class it was drawn for), beside the classifier's accuracy on real test images of each class,
and bpd of log p(x | y) beside bpd_null* of p(x) through the null class.

A noise-conditional run (config :noise_conditional): --sigma scores it at that level (every
sampler and the bpd bounds; the annealed sampler walks its own ladder from sigma_max to
sigma_min whatever --sigma says), into <out_dir>/eval_sigma<sigma> by default; without --sigma
at its reference level. Not to be confused with --single_step_sigmas; a run without noise
levels refuses --sigma.

Feature networks: `classifier` (the shipped Fashion-MNIST classifier, "domain" figures;
--classifier_dir for one of your data from launch/train_classifier.py, which must have been
trained on the run's data: same data identity and image shape) or `inception` (Inception-v3
from --inception_path).
The program: tfsmooth/programs/evaluating.py (flag checks and defaults), sample_eval.py.
"""

import io
import json
import math
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
from tfsmooth.models import context

EVAL_FILE = 'eval.json'
SAMPLES_FILE = 'eval_samples.npz'
GRID_SAMPLES = 64
LABEL_SALT = 104_729  # folded into sample j's seed row for the uniform that draws its label
ANNEALED_NOTE = (
    'walks its own ladder of noise levels from sigma_max down to sigma_min: --sigma does not '
    'apply to it'
)


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


def load_network(
    name, classifier_dir='', inception_path='', dataset=None, identity=None, event_shape=None
):
  """The named feature network: 'classifier' (the project's, or the one in `classifier_dir`)
  or 'inception' (from `inception_path`).

  The classifier must have been trained on the model's data: where its classifier.json records
  the data identity it learnt (`ImageSource.identity`, launch/train_classifier.py), that and
  its event shape must be `identity` and `event_shape`; a record without one (the shipped
  Fashion-MNIST classifier's) is matched by data.name (`dataset`) alone, and its input shape
  against `event_shape`. A mismatch is one paragraph naming both.
  """
  if name == 'inception':
    return feature_networks.load_inception(inception_path)
  if name != 'classifier':
    raise errors.UserError(f'--feature_network={name!r}: choose classifier or inception.')
  network = feature_networks.load_classifier(classifier_dir or feature_networks.CLASSIFIER_DIR)
  check_classifier(network, dataset, identity, event_shape)
  return network


def _shape_text(shape):
  return 'x'.join(str(d) for d in shape)


def check_classifier(network, dataset=None, identity=None, event_shape=None):
  """Refuses (`load_network`) a classifier `network` trained on other data than the model's
  (data.name `dataset`, `ImageSource.identity` `identity`, `event_shape`)."""
  info = network.info
  trained_on = info.get('config', {}).get('data', {}).get('name')
  trained_identity = info.get('identity')
  trained_shape = tuple(info.get('event_shape') or network.input_shape or ()) or None
  event_shape = tuple(event_shape) if event_shape else None
  fix = (
      'pass --classifier_dir the --export_dir of a classifier trained on this data (python '
      'launch/train_classifier.py --config=tfsmooth/configs/image_classifier.py with the '
      "run's data keys, e.g. --config.data.name=images --config.data.path=...), or "
      '--feature_network=inception --inception_path=...'
  )
  if trained_identity and identity:
    if trained_identity != identity or (event_shape and trained_shape != event_shape):
      raise errors.UserError(
          f'The classifier {network.name} was trained on {trained_identity} '
          f'({_shape_text(trained_shape or ())}), the model on {identity} '
          f'({_shape_text(event_shape or ())}): its features and classes are those of other '
          f'images, so FID / KID / IS and class accuracies with it would mean nothing. {fix}.'
      )
    return
  if dataset and trained_on and trained_on != dataset:
    raise errors.UserError(
        f'The classifier {network.name} was trained on {trained_on}, the model '
        f'on {identity or dataset}: {fix}.'
    )
  if event_shape and trained_shape and trained_shape != event_shape:
    raise errors.UserError(
        f'The classifier {network.name} takes {_shape_text(trained_shape)} images of '
        f'{trained_on or "its data"}, the model draws {_shape_text(event_shape)} images '
        f'({identity or dataset}): {fix}.'
    )


def classes_match(network, class_names):
  """(whether the logits of `network` are the classes `class_names`, so that the class
  accuracy of samples can be read from them; if not, why)."""
  num_classes = network.info.get('num_classes')
  if num_classes is None:
    return False, (
        f'the feature network {network.name} is no classifier of these classes (its logits are '
        'its own classes)'
    )
  if num_classes != len(class_names):
    return False, (
        f'the classifier {network.name} has {num_classes} classes, the model {len(class_names)}'
    )
  recorded = network.info.get('class_names')
  if recorded and list(recorded) != list(class_names):
    return False, (
        f'the classifier {network.name} names its classes {list(recorded)}, the model '
        f'{list(class_names)}'
    )
  return True, ''


def noise_level(model, sigma, doing='scores', outputs='figures'):
  """The noise level a noise-conditional `model` is scored (`doing`) at: `sigma` (the
  binaries' --sigma) checked against its trained range, or its reference level without one;
  None for a model without noise levels, which refuses a `sigma` in one paragraph. The one
  check of --sigma: launch/sample.py's grids (`image_grids`, doing='draws', outputs='grids')
  and launch/evaluate.py's figures."""
  condition = dict(model.conditions).get(context.SIGMA)
  if condition is None:
    if sigma is None:
      return None
    trained = model.facts().get('sigma')
    if trained is not None:
      what = f'a pair trained at the one level sigma={trained:g}, which takes no other'
      drop = f'drop --sigma (its {outputs} are at sigma={trained:g})'
    else:
      what, drop = 'a model without smoothing, which takes no noise level', 'drop --sigma'
    raise errors.UserError(
        f'--sigma={sigma:g} {doing} a noise-conditional run at that noise level, but this run '
        f'holds {what}: {drop}, or train one model for every level with '
        "--config=tfsmooth/configs/<data set>.py:noise_conditional. (To denoise a baseline's "
        'samples with its own score, paper App. C.6, use --single_step_sigmas.)'
    )
  if sigma is None:
    return float(condition.default)
  if not (math.isfinite(sigma) and condition.low <= sigma <= condition.high):
    raise errors.UserError(
        f'--sigma={sigma:g} lies outside the noise levels this run was trained on, '
        f'[{condition.low:g}, {condition.high:g}] (smoothing.sigma_min, smoothing.sigma_max): '
        f'choose a level in that range (without --sigma its {outputs} are at its reference '
        f'level {condition.default:g}).'
    )
  return float(sigma)


def _duration(seconds):
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  return f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'


def _load_stored(path, key, names, conditions):
  """The stored uint8 samples {name: [M, ...]} if `path` holds samples of `key` drawn under
  the first M rows of `conditions` ({keyword: [R]}, stored beside them), else {}."""
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path, 'rb') as f, np.load(f) as stored:
    if json.loads(str(stored['key'])) != key or not set(names) | set(conditions) <= set(
        stored.files
    ):
      return {}
    samples = {name: stored[name] for name in names}
    have = len(next(iter(samples.values())))
    for keyword, values in conditions.items():
      if not np.array_equal(stored[keyword], values[:have]):
        return {}
    return samples


def _save(path, key, samples):
  buffer = io.BytesIO()
  np.savez(buffer, key=json.dumps(key, sort_keys=True), **samples)
  temporary = f'{path}.tmp-{os.getpid()}'
  with tf.io.gfile.GFile(temporary, 'wb') as f:
    f.write(buffer.getvalue())
  tf.io.gfile.rename(temporary, path, overwrite=True)


@tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int32)])
def _row_uniforms(rows):
  return tf.map_fn(
      lambda s: tf.random.stateless_uniform(
          [], tf.random.experimental.stateless_fold_in(s, LABEL_SALT)
      ),
      rows,
      fn_output_signature=tf.TensorSpec([], tf.float32),
  )


def sample_labels(class_counts, seed, count):
  """int32 [count]: the class labels of samples 0 .. count - 1. Label j is drawn from the
  class frequencies class_counts / sum(class_counts) by the inverse CDF of a uniform from
  sample j's seed row (row j of the 'samples' stream, folded with `LABEL_SALT`), so it depends
  on j, `seed` and the counts alone (not on how many samples are drawn, or in what batches)."""
  counts = np.asarray(class_counts, np.float64)
  if count == 0:
    return np.zeros([0], np.int32)
  uniforms = _row_uniforms(seeds.rows(seed, 'samples', 0, count)).numpy()
  cdf = np.cumsum(counts) / counts.sum()
  return np.minimum(np.searchsorted(cdf, uniforms, side='right'), len(counts) - 1).astype(np.int32)


def class_condition(model):
  """(the label `Condition` of a class-labelled `model`, its K class names), or (None, [])."""
  condition = dict(model.conditions).get(context.LABELS)
  if condition is None:
    return None, []
  return condition, list(condition.names[: int(condition.high)])


def sample_conditions(source, seed, count, sigma=None):
  """The per-row conditions of samples 0 .. count - 1 of `source.model`, {keyword: [count]}
  (a class-labelled model's `sample_labels` from the training labels' class counts; a
  noise-conditional model's level `sigma`, from `noise_level`), and what the stored samples'
  key records of them: {'labels': {class_counts, salt}, 'sigma': level}; both {} for a model
  without conditions."""
  conditions, key = {}, {}
  sigma = noise_level(source.model, sigma)
  condition, names = class_condition(source.model)
  if condition is not None:
    train = source.task.conditions('train').get(context.LABELS)
    if train is None:
      raise errors.UserError(
          f'The model is class-labelled but its data ({source.config.data.name}) gives no '
          'labels: set --config.data.labels=True as the run was trained.'
      )
    counts = np.bincount(train, minlength=len(names))
    conditions[context.LABELS] = sample_labels(counts, seed, count)
    key[context.LABELS] = {'class_counts': counts.tolist(), 'salt': LABEL_SALT}
  if sigma is not None:
    conditions[context.SIGMA] = np.full(count, sigma, np.float32)
    key[context.SIGMA] = sigma
  return conditions, key


def draw_samples(
    source,
    out_dir,
    num_samples,
    batch_size,
    seed,
    strategy=None,
    write=True,
    log=logging.info,
    sigma=None,
):
  """{sampler: uint8 [num_samples, H, W, C]} of every sampler of `source.model`, drawing
  only the batches `SAMPLES_FILE` lacks, under `sample_conditions` (a noise-conditional
  model's at the level `sigma`, `noise_level`'s); returns (samples, their conditions
  {keyword: [num_samples]}, {'reused', 'drawn', 'seconds'}). `write`: store the samples after
  every batch (False on workers other than the chief)."""
  model = source.model
  path = os.path.join(out_dir, SAMPLES_FILE)
  num_batches = -(-num_samples // batch_size)
  conditions, conditioned_on = sample_conditions(source, seed, num_batches * batch_size, sigma)
  key = dict(source.description, seed=seed, batch_size=batch_size, **conditioned_on)
  samples = _load_stored(path, key, model.samplers, conditions)
  have = len(next(iter(samples.values()))) if samples else 0
  names = ', '.join(model.samplers)
  if have:
    log(
        f'Reusing {min(have, num_samples)} stored samples of {names} from {path} (same model, '
        f'seed, batch size{", labels" if context.LABELS in conditions else ""}'
        f'{", noise level" if context.SIGMA in conditions else ""}); drawing '
        f'{max(0, num_batches * batch_size - have)} more.'
    )
  else:
    if tf.io.gfile.exists(path):
      log(f'{path} holds samples of another model, seed, batch size or conditions; drawing anew.')
    samples = {name: np.zeros((0,) + source.task.event_shape, np.uint8) for name in model.samplers}
  start = time.time()
  todo = range(have // batch_size, num_batches)
  # The annealed sampler is drawn apart from the others (which share one x~ per row), and each
  # draw timed, so that its cost per image can be set against the two-step's. The batches after
  # the first (which traces the samplers) are timed.
  draws = [tuple(name for name in model.samplers if name != 'annealed')]
  draws = [d for d in draws if d] + ([('annealed',)] if 'annealed' in model.samplers else [])
  seconds_by_draw = {','.join(d): 0.0 for d in draws}
  for index in todo:
    rows = seeds.rows(seed, 'samples', index * batch_size, batch_size)
    given = {k: v[index * batch_size : (index + 1) * batch_size] for k, v in conditions.items()}
    batch = {}
    for draw in draws:
      began = time.time()
      batch.update(
          tasks.draw_rows(
              model, rows, draw, batch_size=batch_size, strategy=strategy, conditions=given
          )
      )
      if index != todo[0]:
        seconds_by_draw[','.join(draw)] += time.time() - began
    samples = {
        name: np.concatenate([samples[name], image_data.to_uint8(batch[name])])
        for name in model.samplers
    }
    if write:
      drawn = len(samples[model.samplers[0]])
      _save(path, key, dict(samples, **{k: v[:drawn] for k, v in conditions.items()}))
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
  if len(todo) > 1:
    counts['seconds_by_draw'] = {k: round(v, 1) for k, v in seconds_by_draw.items()}
    counts['timed_images'] = (len(todo) - 1) * batch_size
  return (
      {name: x[:num_samples] for name, x in samples.items()},
      {k: v[:num_samples] for k, v in conditions.items()},
      counts,
  )


def to_float(images):
  """uint8 images -> float32 in [-1, 1] (the 8-bit bin centres k / 127.5 - 1)."""
  return image_data.to_unit_range(images).numpy()


def single_step_ablation(model, samples, sigmas, batch_size, log=logging.info, conditions=None):
  """Paper App. C.6: {f'samples_single_step_{sigma:g}': uint8 x + sigma^2 grad log p(x)} of
  the baseline's own p(x) (`model`) on its samples (uint8), each given its own `conditions`
  ({keyword: [N]}: a labelled baseline's gradient is of log p(x | y) at the sample's label)."""
  conditions = conditions or {}
  step = tf.function(lambda x, variance, given: x + variance * smoothing.score(model, x, **given))
  out = {}
  for sigma in sigmas:
    log(f'App. C.6: single-step denoising of the baseline samples with sigma={sigma:g}')
    out[f'samples_single_step_{sigma:g}'] = np.concatenate(
        [
            image_data.to_uint8(
                step(
                    tf.constant(to_float(samples[i : i + batch_size])),
                    tf.constant(sigma**2, tf.float32),
                    {k: tf.constant(v[i : i + batch_size]) for k, v in conditions.items()},
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
    sigma=None,
):
  """Writes eval.json, grid_<sampler>.png and nearest-neighbour grids into `out_dir`.

  num_reference: test images for FID / KID / IS (0: the whole test split);
  bpd_examples: test images for bpd (0: the run's test set, config.data.test_examples);
  iw_samples: K of the bounds (None: the run's eval.iw_samples, or the export's K);
  strategy: draws and bounds run on its replicas; write: False on non-chief workers;
  sigma: the noise level of a noise-conditional model (None: its reference level).
  Returns the content of eval.json.
  """
  check_ablation(source, single_step_sigmas)
  config, task, model = source.config, source.task, source.model
  level = noise_level(model, sigma)
  if write:
    tf.io.gfile.makedirs(out_dir)
  labelled, class_names = class_condition(model)
  result = {
      'source': source.description,
      'dataset': config.data.name,
      'smoothed': model.smoothed,
      'feature_network': dict(
          name=network.name,
          **{
              k: v
              for k, v in network.info.items()
              if k in ('test_accuracy', 'path', 'identity', 'event_shape')
          },
      ),
      'recorded_metrics': source.recorded,
  }
  if level is not None:
    condition = model.conditions[context.SIGMA]
    result['noise_level'] = {
        'sigma': level,
        'given': '--sigma' if sigma is not None else 'none: the reference level smoothing.sigma',
        'trained_range': [condition.low, condition.high],
        'applies_to': 'every sampler but annealed, and the bpd bounds',
    }
    if 'annealed' in model.samplers:
      result['noise_level']['annealed'] = ANNEALED_NOTE
      log(f'Scoring at sigma={level:g}; the annealed sampler {ANNEALED_NOTE}.')

  points = task.split('test')[: bpd_examples or None]
  iw = iw_samples or source.iw_samples
  log(
      f'bpd on {len(points)} test images'
      + ('' if model.exact_likelihood else f', K={iw} draws each')
      + ('' if level is None else f', at sigma={level:g}')
  )
  levels = {} if level is None else {context.SIGMA: np.full(len(points), level, np.float32)}
  given = {k: v[: len(points)] for k, v in task.conditions('test').items()}
  result['bpd'] = dict(
      bpd(source, points, iw, strategy, {**given, **levels}), num_examples=len(points)
  )
  if given:
    result['bpd']['labels'] = 'of log p(x | y) given the test labels'
    null = bpd(source, points, iw, strategy, levels)
    result['bpd'].update({k.replace('bpd', 'bpd_null', 1): v for k, v in null.items()})
  result['bpd']['kind'] = (
      'exact'
      if model.exact_likelihood
      else 'upper bounds: bpd_elbo from the ELBO (paper eq. 3), bpd_iw from the '
      'importance-weighted bound (ours)'
  )
  if level is not None:
    result['bpd']['sigma'] = level
  log(f'bpd: {result["bpd"]}')

  samples, conditions, result['sampling'] = draw_samples(
      source, out_dir, num_samples, batch_size, seed, strategy, write, log, level
  )
  result['sampling'].update(seed=seed, batch_size=batch_size, file=SAMPLES_FILE)
  if single_step_sigmas:
    samples.update(
        single_step_ablation(
            model, samples['samples'], single_step_sigmas, batch_size, log, conditions
        )
    )

  reference, reference_labels = task.source.split('test', num_reference or None)
  log(f'{network.name} activations of {len(reference)} test images')
  reference = sample_quality.activations(network, reference, batch_size)
  train = task.split('train')
  log(f'{network.name} features of {len(train)} training images (nearest neighbours)')
  train_features = sample_quality.activations(network, train, batch_size)['features']

  if labelled is not None:
    with_accuracy, why = classes_match(network, class_names)
    sampled = conditions[context.LABELS]
    result['labels'] = {
        'drawn': (
            "sample j given a label drawn from the training labels' class frequencies "
            "(train_counts) by a uniform from sample j's seed row; the labels are stored in "
            f'{SAMPLES_FILE}'
        ),
        'class_names': class_names,
        'train_counts': np.bincount(
            task.conditions('train')[context.LABELS], minlength=len(class_names)
        ).tolist(),
        'sample_counts': np.bincount(sampled, minlength=len(class_names)).tolist(),
        'reference_counts': np.bincount(reference_labels, minlength=len(class_names)).tolist(),
        'by_class': (
            'per sampler: KID of the samples drawn for each class against the test images of '
            'that class, and the class accuracy: the share of them the classifier assigns to '
            'their class'
        ),
    }
    if with_accuracy:
      overall, per_class = sample_quality.accuracy(
          reference['logits'], reference_labels, len(class_names)
      )
      result['labels']['test_image_accuracy'] = dict(
          overall=overall, by_class=dict(zip(class_names, per_class))
      )
      log(
          f'{network.name} accuracy on the {len(reference_labels)} test images (the ceiling of '
          f'the class accuracy of samples): {overall:.3f}'
      )
    else:
      result['labels']['accuracy'] = f'not measured: {why}'
      log(f'Class accuracy not measured: {why}.')

  result['samplers'] = {}
  for name, images in samples.items():
    x = to_float(images)
    activations = sample_quality.activations(network, x, batch_size)
    entry = sample_quality.scores(activations, reference, network.name, splits)
    if name.startswith('samples_single_step_'):
      entry.update(sigma=float(name.rsplit('_', 1)[1]), applied_to='samples')
    if level is not None:
      entry['noise_level'] = None if name == 'annealed' else level
    if labelled is not None:
      entry['by_class'] = sample_quality.class_scores(
          activations, sampled, reference, reference_labels, class_names, with_accuracy
      )
      entry['class_accuracy'] = (
          sample_quality.accuracy(activations['logits'], sampled, len(class_names))[0]
          if with_accuracy
          else None
      )
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
    accuracy = entry.get('class_accuracy')
    log(
        f'{name}: {network.name} FID {entry["fid"]:.2f}, KID {entry["kid"]:.4f}, '
        f'IS {entry["inception_score"]:.2f} ({entry["num_samples"]} samples vs '
        f'{entry["num_reference"]} test images)'
        + ('' if accuracy is None else f', class accuracy {accuracy:.3f}')
    )

  result = records.json_ready(result)
  if write:
    records.write_json(os.path.join(out_dir, EVAL_FILE), result)
  return result
