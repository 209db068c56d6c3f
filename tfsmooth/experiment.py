"""A run: one workdir's settled config, data, model, weights and named seeds.

  run = Run.create(config, workdir)  # settle the config, check it against the workdir's record
  metrics = run.train()              # train or resume, evaluate, write metrics.json, then plots
  run = Run.load(workdir)            # rebuild data and model from config.json, best weights

Settling fixes everything the run depends on, once: the data's event shape
(`data.event_shape`), a numeric `smoothing.sigma` (the paper's heuristic resolved when
`smoothing.sigma_heuristic` is set) and the checks on steps, batch size and sigma. The settled
config is `config.json`; it alone rebuilds the run. A workdir with checkpoints refuses a config
that differs in anything but `MUTABLE` keys, and keeps its record; the record is only ever
replaced whole (write to a temporary file, then rename).

Evaluation draws come from the named per-row seed streams of `seeds` with base eval.seed, and
run on every replica of the run's strategy. Every path may be a URL (`tf.io.gfile`).
"""

import contextlib
import dataclasses
import json
import os
import tempfile

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth import records
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth import standardized
from tfsmooth import tasks
from tfsmooth.evaluation import likelihood
from tfsmooth.models import context
from tfsmooth.models import registry
from tfsmooth.train import checkpoints
from tfsmooth.train import lock
from tfsmooth.train import scope
from tfsmooth.train import strategy as strategy_lib
from tfsmooth.train import trainer

CONFIG_FILE = 'config.json'
METRICS_FILE = 'metrics.json'
FORMAT = 1  # version of the settled config record

# Keys a resumed run may change: they shape neither the model, the data nor the smoothing.
# (EMA may be switched on when resuming: the averages start from the restored weights.)
MUTABLE = (
    'train.steps',
    'train.log_every',
    'train.eval_every',
    'train.checkpoint_every',
    'train.keep_checkpoints',
    'train.strategy',
    'train.tpu_address',
    'train.jit_compile',
    'train.precision',
    'train.ema_decay',
    'train.steps_per_loop',
    'smoothing.annealed_',  # the annealed sampler's ladder: sampling, not training
    'eval.',
    'reference.',
)


def _positive_int(config, key):
  value = config.get(key.split('.')[0]).get(key.split('.')[1])
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise errors.UserError(
        f'{key} must be a positive integer, got {value!r}; set e.g. --config.{key}=1000.'
    )


def settle(config, sigma=None):
  """A checked copy of `config` with its data shape and a numeric sigma filled in.

  `sigma` overrides the configured one (used for records made before settling existed).
  """
  config = ml_collections.ConfigDict(config.to_dict())
  for key in ('train.steps', 'train.batch_size', 'eval.iw_samples'):
    _positive_int(config, key)
  if not config.train.learning_rate > 0:
    raise errors.UserError(f'train.learning_rate must be > 0, got {config.train.learning_rate}.')
  task = tasks.for_config(config)
  config.data.event_shape = list(task.event_shape)
  facts = task.facts()
  if facts:  # images: the source, its splits and classes (checked on resume and load)
    config.data.facts = facts
  if config.data.get('labels'):
    config.data.num_classes = int(task.num_classes)
    config.data.class_names = list(task.class_names)
  if 'standardize' in config.data:  # point data: only a user's file is standardised
    config.data.standardize = bool(config.data.standardize and config.data.name == 'file')
    if config.data.standardize and config.data.get('shift') is None:
      config.data.shift, config.data.scale = task.standardization()
  if config.smoothing.enabled:
    if sigma is not None:
      config.smoothing.sigma = float(sigma)
    elif config.smoothing.get('sigma_heuristic', False):
      config.smoothing.sigma = float(task.sigma_heuristic())
    kernels.SmoothingKernel(config.smoothing.kernel, config.smoothing.sigma)  # checks sigma
  config.format = FORMAT
  return config


def _flat(config):
  """{'a.b': value} of a ConfigDict, values normalised through JSON."""
  out = {}

  def walk(prefix, node):
    for key, value in node.items():
      if isinstance(value, dict):
        walk(f'{prefix}{key}.', value)
      else:
        out[prefix + key] = value

  walk('', json.loads(config.to_json_best_effort()))
  return out


FACTS = 'data.facts.'  # what settling records of the images (checked by the task, not here)

# Keys added after records were first written, with the value an older record means.
ADDED_KEYS = {
    'data.dequantize': False,
    'data.standardize': False,
    'data.labels': False,
    'data.label_drop_rate': 0.1,
    'data.image_size': 0,
    'data.channels': 0,
    'data.skip_unreadable': False,
    'data.split_seed': 0,
    'data.validation_fraction': 0.1,
    'data.test_fraction': 0.1,
    'data.path': '',
    'smoothing.noise_conditional': False,
    'smoothing.sigma_min': None,
    'smoothing.sigma_max': None,
    'smoothing.sigma_law': 'log_uniform',
    'smoothing.sigma_ladder': [],
}


def frozen_differences(recorded, config):
  """Keys outside `MUTABLE` whose values differ between two settled configs, as text lines."""
  old, new = {**ADDED_KEYS, **_flat(recorded)}, {**ADDED_KEYS, **_flat(config)}
  lines = []
  for key in sorted(set(old) | set(new)):
    if key.startswith(MUTABLE) or key == 'format' or key.startswith(FACTS):
      continue  # the data's facts: `tasks.ImageTask.check` words their differences
    if old.get(key, '(absent)') != new.get(key, '(absent)'):
      lines.append(
          f'{key}: recorded {old.get(key, "(absent)")!r}, now {new.get(key, "(absent)")!r}'
      )
  return lines


def read_record(workdir):
  """The settled config of `workdir` (records made before settling are settled on read)."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(
        f'No {CONFIG_FILE} in {workdir}: pass the --workdir of a launch/train.py run.'
    )
  try:
    config = ml_collections.ConfigDict(records.read_json(path))
  except json.JSONDecodeError as e:
    raise errors.UserError(
        f"{path} is not valid JSON ({e}); it records the run's config: "
        'restore it from a backup or retrain in a new --workdir.'
    ) from e
  if config.get('format') == FORMAT:
    return config
  sigma = None
  if config.smoothing.enabled:  # older image records kept a heuristic sigma in metrics.json
    sigma = _read_metrics(workdir).get('sigma')
  return settle(config, sigma)


def _read_metrics(workdir):
  path = os.path.join(workdir, METRICS_FILE)
  return records.read_json(path) if tf.io.gfile.exists(path) else {}


def _has_checkpoint(workdir):
  return tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints')) is not None


def _names_a_file(path):
  """Whether `path` or one of its parents is an existing file."""
  while path and path != os.path.dirname(path):
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
      return True
    path = os.path.dirname(path)
  return False


@contextlib.contextmanager
def _scratch_unless(chief):
  """None (write into the workdir) on the chief; elsewhere a local scratch directory removed
  afterwards, so that other workers compute their share without writing the run's files."""
  if chief:
    yield None
    return
  scratch = tempfile.mkdtemp(prefix='tfsmooth_worker_')
  try:
    yield scratch
  finally:
    tf.io.gfile.rmtree(scratch)


def model_conditions(config):
  """{keyword: `interface.Condition`} the models of a settled config take: class labels with
  data.labels (data.num_classes, data.class_names, data.label_drop_rate), noise levels with
  smoothing.noise_conditional (sigma_min, sigma_max, sigma_law, sigma_ladder; the reference
  level smoothing.sigma)."""
  data, smoothing_config = config.data, config.smoothing
  conditions = {}
  if data.get('labels'):
    conditions[context.LABELS] = context.labels(
        data.num_classes, data.get('class_names', ()), data.get('label_drop_rate', 0.1)
    )
  if smoothing_config.enabled and smoothing_config.get('noise_conditional'):
    conditions[context.SIGMA] = context.noise_levels(
        smoothing_config.sigma,
        smoothing_config.sigma_min,
        smoothing_config.sigma_max,
        smoothing_config.get('sigma_law', 'log_uniform'),
        tuple(smoothing_config.get('sigma_ladder', ()) or ()),
    )
  return conditions


def annealing(config):
  """The `smoothing.Annealing` of a settled config's smoothing.annealed_* keys."""
  keys = {f.name: f'annealed_{f.name}' for f in dataclasses.fields(smoothing.Annealing)}
  values = {name: config.smoothing.get(key) for name, key in keys.items()}
  return smoothing.Annealing(**{k: v for k, v in values.items() if v is not None})


def build_model(config):
  """The baseline `DensityModel` or the `SmoothedModel` of a settled config (in the data's
  units: `Standardized` around it where config.data.standardize is set)."""
  event_shape = tuple(config.data.event_shape)
  conditions = model_conditions(config)
  model = registry.build(config.model, event_shape, conditions=conditions)
  if config.smoothing.enabled:
    levels = conditions.get(context.SIGMA)
    kernel = kernels.SmoothingKernel(
        config.smoothing.kernel,
        config.smoothing.sigma,
        event_ndims=len(event_shape),
        sigma_range=None if levels is None else (levels.low, levels.high),
    )
    conditional = registry.build(
        config.conditional_model, event_shape, conditional=True, conditions=conditions
    )
    model = smoothing.SmoothedModel(model, conditional, kernel, annealing(config))
  if config.data.get('standardize'):
    model = standardized.wrap(model, config.data.shift, config.data.scale)
  return model


class Run:
  """One workdir: its settled `config`, `task` (data, unit, plots), `model` and `strategy`."""

  def __init__(self, config, workdir, strategy=None):
    self.config = config
    self.workdir = os.fspath(workdir)
    self.task = tasks.for_config(config)
    self.strategy = strategy
    self.model = None
    self.checkpoint = None  # the checkpoint `model` was restored from (a loaded run)
    self.weights = None  # 'ema' or 'raw': what `model` holds after training or loading
    self.metrics = None  # the test figures `train` computed (every worker has them)
    self.lock = None  # the workdir's `train.lock.WorkdirLock` while this run may train
    self._trained_step = None

  @classmethod
  def create(cls, config, workdir, strategy=None):
    """Settles `config` for `workdir` and records it (the chief alone, under several workers), or
    checks it against the workdir's record; takes the workdir's lock (a live run on it refuses
    this one, train.lock), and builds the model, untrained, in the strategy's scope (default:
    `config.train.strategy`) under the configured precision.

    Raises `errors.UserError` (and writes nothing) when the workdir holds checkpoints of a run
    whose recorded config differs in a key outside `MUTABLE`, or another run holds its lock.
    """
    if not tf.io.gfile.isdir(workdir) and _names_a_file(workdir):
      raise errors.UserError(
          f'The workdir {workdir} names a file (or lies under one); a workdir is a directory: '
          'choose another path.'
      )
    # The strategy first: a multi-worker strategy must exist before other TensorFlow ops.
    strategy = strategy or strategy_lib.from_config(config.train)
    config = settle(config)
    handle = lock.acquire(workdir)
    try:
      run = cls._create(config, workdir, strategy)
    except BaseException:
      handle.release()
      raise
    run.lock = handle
    return run

  @classmethod
  def _create(cls, config, workdir, strategy):
    if _has_checkpoint(workdir):
      if not tf.io.gfile.exists(os.path.join(workdir, CONFIG_FILE)):
        raise errors.UserError(
            f'{workdir} holds checkpoints but no {CONFIG_FILE}, so what they '
            'were trained with is unknown; use a new --workdir.'
        )
      recorded = read_record(workdir)
      tasks.for_config(config).check(recorded.data.get('facts'))
      differences = frozen_differences(recorded, config)
      if differences:
        raise errors.UserError(
            f'{workdir} holds a run trained with another config, so it cannot be resumed with '
            f'this one. Differences: {"; ".join(differences)}. Rerun with the recorded values '
            f'(see {os.path.join(workdir, CONFIG_FILE)}) or use a new --workdir; only '
            f'{", ".join(k + "*" if k.endswith(".") else k for k in MUTABLE)} may change on '
            'resume.'
        )
    if strategy_lib.is_chief_task():  # under several workers, only the chief writes
      tf.io.gfile.makedirs(workdir)
      records.write_text(os.path.join(workdir, CONFIG_FILE), config.to_json_best_effort(indent=2))
    run = cls(config, workdir, strategy)
    keras.utils.set_random_seed(config.train.seed)  # initial weights
    with scope.model_scope(config.train, strategy):
      run.model = build_model(config)
      run.model.build_variables()
    return run

  @classmethod
  def load(cls, workdir, ema=True, strategy=None):
    """The run of `workdir`, its model built from config.json (inside `strategy`'s scope, to
    evaluate on its replicas) with the best checkpoint's weights restored: the EMA averages if
    the run kept them and `ema`, else the raw weights (`run.weights` says which)."""
    strategy = strategy or tf.distribute.get_strategy()
    run = cls(read_record(workdir), workdir, strategy)
    run.task.check(run.config.data.get('facts'))
    with strategy.scope():
      run.model = build_model(run.config)
    run.checkpoint = checkpoints.restore_best(run.model, run.workdir, ema=ema)
    run.weights = 'ema' if ema and checkpoints.has_ema(run.checkpoint) else 'raw'
    logging.info('Restored %s (%s weights)', run.checkpoint, run.weights)
    return run

  @property
  def step(self):
    """The training step of the weights `model` holds: after `train`, the best checkpoint's
    (or the last step's without validation); after `load`, the restored checkpoint's (from
    its 'ckpt-<step>' name); None for an untrained model."""
    if self._trained_step is not None:
      return self._trained_step
    return None if self.checkpoint is None else checkpoints.step_of(self.checkpoint)

  def row_seeds(self, name, count, base=None, start=0):
    """Seeds [count, 2] of rows start.. of the named stream (`seeds`), base eval.seed."""
    return seeds.rows(self.config.eval.seed if base is None else base, name, start, count)

  def build_model(self):
    return build_model(self.config)

  def likelihood(self, model, split, num_samples, strategy=None, conditions=None):
    """The model's `likelihood.NLL` on a split in the task's unit (-log p: exact, or the IW
    bound and the ELBO with K draws), row j drawn from row seed j of the split's stream; given
    the split's class labels when the run has them (`conditions` overrides: {} scores through
    the null class, p(x))."""
    points = self.task.split(split)
    record = likelihood.mean_nll(
        model,
        points,
        self.row_seeds(split, len(points)),
        num_samples,
        self.config.eval.get('batch_size') or None,
        strategy,
        self.task.conditions(split) if conditions is None else conditions,
    )
    return record.in_unit(self.task.to_unit)

  def _validation_fn(self, strategy):
    """The trainer's eval_fn: the validation figure, and for TensorBoard the task's pictures
    of every sampler from fixed seed rows (grids for images, scatters for points)."""
    samples = self.config.eval.validation_samples

    def evaluate(model):
      return {
          'validation': self.likelihood(model, 'validation', samples, strategy).nll,
          **self.task.summary_images(self, model, strategy),
      }

    return evaluate

  def train(self):
    """Trains (or resumes) the model `create` built, then writes metrics.json, then the plots;
    returns the metrics. Releases the workdir's lock at the end, however training ends."""
    if self.model is None or self.lock is None:
      raise errors.UserError(
          'Run.train trains a run made by Run.create(config, workdir) (which builds the model '
          "and takes the workdir's lock); Run.load gives a trained run to evaluate or export."
      )
    try:
      return self._train()
    finally:
      self.lock.release()
      self.lock = None

  def _train(self):
    config, strategy = self.config, self.strategy
    result = trainer.train(
        lambda: self.model,
        self.task.train_examples(config.train.seed),
        config.train,
        self.workdir,
        strategy,
        self._validation_fn(strategy),
        config_text=config.to_json_best_effort(indent=2),
    )
    self.model = result.model
    self.weights = 'ema' if result.ema else 'raw'
    self._trained_step = result.best_step if result.best_step is not None else result.step
    logging.info(
        'Evaluating on the test split (%s).',
        'exact'
        if self.model.exact_likelihood
        else f'IW and ELBO bounds with {config.eval.iw_samples} draws',
    )
    metrics = self.evaluate(strategy)
    metrics.update(
        {
            'train_seconds': result.train_seconds,
            'steps': result.step,
            'best_step': result.best_step,
            f'validation_{self.task.unit}': result.best_metric,
        }
    )
    self.metrics = records.json_ready(metrics)
    # Every worker draws its replicas' share of the plots; only the chief writes files.
    chief = strategy.extended.should_checkpoint
    if chief:
      self.write_metrics(metrics)
    logging.info('Writing plots into %s.', self.workdir)
    with _scratch_unless(chief) as scratch:
      self.task.write_plots(self, self.model, strategy, out_dir=scratch)
    return self.metrics

  def evaluate(self, strategy=None):
    """Test figures of `self.model` (the `weights` it holds) in the task's unit, beside the
    truth and the paper's."""
    record = self.likelihood(self.model, 'test', self.config.eval.iw_samples, strategy)
    metrics = {
        'dataset': self.config.data.name,
        'smoothed': self.model.smoothed,
        'weights': self.weights,
        'num_params': self.model.num_params,
        self.task.count_key: len(self.task.split('test')),
        **tasks.metrics_of(record, self.task.unit),
        **self.model.facts(),
    }
    count = len(self.task.split('test'))
    for keyword, condition in self.model.conditions.items():  # e.g. bounds across sigma
      for value in condition.sweep:
        values = np.full(count, value, condition.dtype.as_numpy_dtype)
        given = {**self.task.conditions('test'), keyword: values}
        swept = self.likelihood(self.model, 'test', self.config.eval.iw_samples, strategy, given)
        metrics.update(
            {
                f'{k}@{keyword}={value:.4g}': v
                for k, v in tasks.metrics_of(swept, self.task.unit).items()
                if k.startswith(self.task.unit)
            }
        )
    if self.task.conditions('test'):  # labelled: the figures above are of log p(x | y)
      null = self.likelihood(self.model, 'test', self.config.eval.iw_samples, strategy, {})
      metrics['labels'] = (
          f'{self.task.unit} figures are of log p(x | y) given the test labels; '
          f'{self.task.unit}_null* of p(x) through the null class (no label)'
      )
      metrics.update(
          {
              k.replace(self.task.unit, f'{self.task.unit}_null', 1): v
              for k, v in tasks.metrics_of(null, self.task.unit).items()
              if k.startswith(self.task.unit)
          }
      )
    metrics.update(self.task.reference())
    return metrics

  def write_metrics(self, metrics):
    """metrics.json (non-finite figures as null), replaced whole."""
    records.write_json(os.path.join(self.workdir, METRICS_FILE), metrics)
    logging.info('metrics: %s', records.json_ready(metrics))

  def metrics_of_weights(self):
    """The test metrics of the weights `model` holds, else None: what `train` computed in this
    process (on every worker alike), or for a loaded run metrics.json when it describes them.
    (Records made before metrics named their weights describe the weights training ended
    with: the EMA averages when the run kept them.)"""
    if self.metrics is not None:
      return self.metrics
    if self.checkpoint is None:
      return None  # an untrained model
    metrics = self.read_metrics()
    recorded = metrics.get('weights') or ('ema' if checkpoints.has_ema(self.checkpoint) else 'raw')
    return metrics if metrics and recorded == self.weights else None

  def export_metadata(self, strategy=None):
    """What an export of `model` records of the run: data set, step, weights, the settled
    config, and metrics of the weights it holds (metrics.json when it describes them, else
    the test figures evaluated now)."""
    metrics = self.metrics_of_weights()
    if metrics is None:
      logging.info(
          'metrics.json describes other weights than the %s ones: evaluating.', self.weights
      )
      metrics = records.json_ready(self.evaluate(strategy))
    return {
        'step': self.step,
        'weights': self.weights,
        'dataset': self.config.data.name,
        'metrics': metrics,
        'config': json.loads(self.config.to_json_best_effort()),
    }

  def read_metrics(self):
    return _read_metrics(self.workdir)

  def summary_line(self, metrics):
    return self.task.summary_line(metrics)
