"""A custom training loop over any `tf.distribute` strategy: per-worker input, EMA, resumable and
preemption-safe checkpoints.

The model is anything with `build_variables()`, `trainable_variables` and a per-example
`training_loss(x, seed)` (a `DensityModel`: -log p(x); a `SmoothedModel`: -[log p(x~) + log p(x|x~)]).
Each step minimises the mean loss over the global batch of B examples with Adam. One call of
the compiled loop runs up to `steps_per_loop` steps (a `tf.range` loop around `strategy.run`,
as TPUs want it), so small models do not wait on Python between steps; logs, evaluations,
checkpoints and a requested stop fall between calls, at the same steps whatever the loop size.

Input. `examples_fn()` is an infinite, seeded tf.data.Dataset of single examples. Cut it into
chunks of B/R examples (R replicas in sync); global batch t is chunks tR .. tR+R-1, and replica
r (global id, worker-major) trains on chunk tR + r. Input pipeline i of n (one per worker, from
`strategy.distribute_datasets_from_function`) keeps only the chunks of its L = R/n local
replicas (chunk c belongs to pipeline floor(c / L) mod n), so every worker batches and feeds only
its share, and the shards of all workers are disjoint and cover the global batch. The noise seed
of replica r at step t is fold_in(fold_in(seed, t), r): a 2-worker run sees the same examples and
noise per replica as a 1-process 2-replica run. The data position is checkpointed with the
iterator on one worker; under several workers or on TPU it is rebuilt as `skip(t * B)`.

EMA. With `ema_decay` d > 0 the trainer keeps Polyak averages beside the raw weights,
ema_0 = w_0 and ema_t = d_t ema_{t-1} + (1 - d_t) w_t after each step t, with the warm-up
d_t = min(d, (1 + t) / (10 + t)) of `tf.train.ExponentialMovingAverage` (without it the random
initial weights keep the share d^t, still 5% after 3000 steps at d = 0.999); it checkpoints both,
and validates, selects the best checkpoint and returns the model with the EMA weights.

Faults. SIGTERM or Ctrl-C saves a checkpoint at the step reached and raises `errors.Preempted`
(`PreemptionCheckpointHandler` under multi-worker training, so all workers agree on the step).
An unreadable checkpoint is reported by name and set aside in `<dir>/unreadable/`, and training
resumes from the previous good one; orphan `*_temp` directories of a save cut short are removed.
"""

import contextlib
import dataclasses
import glob
import os
import shutil
import signal
import threading
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tfsmooth import errors

PRECISIONS = ('float32', 'mixed_bfloat16')


@dataclasses.dataclass
class TrainResult:
  model: object
  step: int
  train_seconds: float
  best_step: int | None
  best_metric: float | None
  ema: bool = False  # `model` holds the EMA weights


def _keyed_variables(model):
  """'<position>/<Keras path>' -> variable for all of `model.variables` (paths alone repeat
  across sub-models)."""
  return {f'{i:03d}/{v.path}': v for i, v in enumerate(model.variables)}


def model_checkpoint(model, **extra):
  """A tf.train.Checkpoint of the model's weights (plus `extra`).

  Keras 3 models are not tracked by tf.train.Checkpoint through attributes, so the weights
  are listed explicitly (all of `model.variables`, so dropout seed states too); evaluation
  and export restore with the same structure.
  """
  return tf.train.Checkpoint(weights=_keyed_variables(model), **extra)


def _ema_checkpoint(model):
  """Restores a training checkpoint's EMA averages into the model's trainable weights (the
  other weights from the raw ones)."""
  keyed = _keyed_variables(model)
  return tf.train.Checkpoint(
      weights={k: v for k, v in keyed.items() if not v.trainable},
      ema={k: v for k, v in keyed.items() if v.trainable},
  )


def has_ema(path):
  """Whether the checkpoint at `path` holds EMA averages."""
  return any(name.startswith('ema/') for name, _ in tf.train.list_variables(path))


def _candidates(directory):
  """Checkpoint prefixes listed in `directory`'s state file, newest first.

  `get_checkpoint_state` already joins relative entries with `directory`.
  """
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  return paths[::-1]


def _files(prefix):
  return sorted(glob.glob(glob.escape(prefix) + '.*'))


def _describe(error):
  if 'Failed to restore dataset iterator' in str(error):
    return (
        'its input-pipeline position was written by a different data pipeline (the data '
        "set definition or tfsmooth's input code changed since)"
    )
  return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _restore_newest_readable(directory, restore, set_aside=False):
  """Calls `restore(prefix)` on the newest checkpoint of `directory` that reads, newest first.

  An unreadable checkpoint is logged with its files; with `set_aside`, its files move to
  `directory/unreadable/` and the state file lists only the ones left, so that a new save
  under its number cannot silently replace the evidence. Returns the prefix restored, or None
  if `directory` has none; raises `errors.UserError` if none reads.
  """
  candidates = _candidates(directory)
  bad = {}  # unreadable prefix: why, newest first
  for prefix in candidates:
    try:
      restore(prefix)
    except (tf.errors.OpError, IndexError) as e:  # IndexError: a truncated data file
      bad[prefix] = _describe(e)
      logging.error(
          'Checkpoint %s is unreadable (%s); files: %s.',
          prefix,
          bad[prefix],
          ', '.join(_files(prefix)) or 'none',
      )
      continue
    if bad and set_aside:
      aside = os.path.join(directory, 'unreadable')
      os.makedirs(aside, exist_ok=True)
      for path in (f for p in bad for f in _files(p)):
        shutil.move(path, os.path.join(aside, os.path.basename(path)))
      good = [p for p in reversed(candidates) if p not in bad]
      tf.compat.v1.train.update_checkpoint_state(directory, good[-1], good)
      logging.warning(
          'Set aside unreadable checkpoint(s) %s in %s; resuming from %s.',
          ', '.join(map(os.path.basename, bad)),
          aside,
          prefix,
      )
    elif bad:
      logging.warning('Using %s, the newest readable checkpoint in %s.', prefix, directory)
    return prefix
  if bad:

    def why(prefix, reason):
      files = _files(prefix)
      if not files:
        return f'{prefix}: listed in the "checkpoint" file but its files are missing'
      return f'{prefix} ({", ".join(files)}): {reason}'

    details = '; '.join(why(p, r) for p, r in bad.items())
    raise errors.UserError(
        f'No checkpoint in {directory} can be read ({details}). Restore them '
        'from a backup, or move them away to start the run over.'
    )
  return None


def restore_model(model, directory, ema=True):
  """Builds `model`'s weights and loads them from the newest readable checkpoint in `directory`.

  With `ema` (default) the checkpoint's EMA averages are loaded when the run kept them,
  otherwise the raw weights. Returns the checkpoint prefix.
  """
  model.build_variables()

  def restore(prefix):
    use_ema = ema and has_ema(prefix)
    checkpoint = _ema_checkpoint(model) if use_ema else model_checkpoint(model)
    checkpoint.restore(prefix).expect_partial().assert_existing_objects_matched()

  path = _restore_newest_readable(directory, restore)
  if path is None:
    raise FileNotFoundError(
        f'No checkpoint in {directory}: train first (launch/train.py '
        'with this --workdir) or point to the right workdir.'
    )
  return path


def restore_best(model, workdir, ema=True):
  """Loads a run's best checkpoint (workdir/best), or its newest one if it kept no best; the
  EMA weights if the run kept them and `ema`, else the raw ones."""
  best = os.path.join(workdir, 'best')
  return restore_model(
      model, best if _candidates(best) else os.path.join(workdir, 'checkpoints'), ema
  )


def make_optimizer(config):
  """Adam with optional per-step exponential decay and global-norm clipping.

  The learning rate at step t is learning_rate * r^t, with r = `lr_decay`, or, when
  `final_lr_fraction` f is set, r = f^(1 / steps): the rate ends at f * learning_rate however
  many steps the run is given.
  """
  learning_rate = config.learning_rate
  decay_rate = config.get('lr_decay', 1.0)
  final_fraction = config.get('final_lr_fraction')
  if final_fraction is not None:
    if decay_rate != 1.0:
      raise ValueError(
          f'Set one of train.lr_decay ({decay_rate}) and train.final_lr_fraction '
          f'({final_fraction}), not both.'
      )
    if not 0 < final_fraction <= 1:
      raise ValueError(f'train.final_lr_fraction must be in (0, 1], got {final_fraction}.')
    decay_rate = final_fraction ** (1 / config.steps)
  if decay_rate != 1.0:
    learning_rate = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=1, decay_rate=decay_rate
    )
  return keras.optimizers.Adam(learning_rate, global_clipnorm=config.get('grad_clip_norm'))


def _format_seconds(seconds):
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def input_fn(examples_fn, global_batch, num_replicas, start_step=0):
  """The `dataset_fn(input_context)` of `distribute_datasets_from_function`: this pipeline's
  per-replica batches of the global batches from `start_step` on (see the module docstring)."""

  def dataset_fn(context):
    per_replica = context.get_per_replica_batch_size(global_batch)
    pipelines, pipeline = context.num_input_pipelines, context.input_pipeline_id
    local = num_replicas // pipelines
    data = examples_fn()
    if start_step:
      data = data.skip(start_step * global_batch)
    data = data.batch(per_replica, drop_remainder=True)
    if pipelines > 1:
      data = (
          data.enumerate()
          .filter(lambda c, _: c // local % pipelines == pipeline)
          .map(lambda _, chunk: chunk)
      )
    # No autotuning (AUTOTUNE maps keep their default, one call per core): deleting the
    # iterator waits for the autotuning thread, which held up the end of a run by 20-60 s.
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(2).with_options(options)

  return dataset_fn


class _StopSignals:
  """SIGTERM and SIGINT ask the loop to checkpoint and stop after the current step; a second
  Ctrl-C interrupts at once. Signal handlers exist only in the main thread."""

  def __init__(self, signums):
    self.received = None
    self._signums = signums if threading.current_thread() is threading.main_thread() else ()
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.received and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signal.Signals(signum).name
    logging.warning('%s received: saving a checkpoint after this step.', self.received)

  def __enter__(self):
    self._previous = {s: signal.signal(s, self._handle) for s in self._signums}
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


def _set_precision(precision):
  if precision not in PRECISIONS:
    raise errors.UserError(
        f'Unknown train.precision {precision!r}; choose one of {", ".join(PRECISIONS)}.'
    )
  previous = keras.config.dtype_policy().name
  keras.config.set_dtype_policy(precision)
  return previous


def _remove_orphans(directory):
  """Deletes `ckpt-N_temp` directories that a save killed midway left behind (never listed in
  the state file, so never restored)."""
  for path in glob.glob(os.path.join(glob.escape(directory), '*_temp')):
    logging.info('Removing %s, left by a save that did not finish.', path)
    shutil.rmtree(path, ignore_errors=True)


def train(model_fn, examples_fn, config, workdir, strategy=None, eval_fn=None):
  """Trains `model_fn()` on the examples of `examples_fn()` in global batches.

  Args:
    model_fn: builds the model; called inside `strategy.scope()`.
    examples_fn: `examples_fn() -> tf.data.Dataset` of single examples, infinite and in a
      fixed (seeded) order.
    config: `config.train` ConfigDict: steps, batch_size (global), learning_rate, lr_decay or
      final_lr_fraction, grad_clip_norm, seed, log_every, eval_every, checkpoint_every,
      keep_checkpoints, jit_compile, ema_decay (0 or None: no EMA), precision ('float32' or
      'mixed_bfloat16'), steps_per_loop (steps per call of the compiled loop, default 1;
      logs, evaluations and checkpoints still fall on their own steps).
    workdir: checkpoints in `workdir/checkpoints`, the best (lowest `eval_fn` 'validation')
      in `workdir/best`, TensorBoard summaries in `workdir/summaries`.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    eval_fn: optional `eval_fn(model) -> dict` of floats, run every `eval_every` steps and at
      the end on the EMA weights (if kept); its 'validation' entry (lower is better) selects
      the best checkpoint.

  Returns:
    TrainResult with the final model (the best checkpoint restored if `eval_fn` is given),
    holding the EMA weights if the run keeps them.

  Raises:
    errors.Preempted: after saving a checkpoint on SIGTERM or Ctrl-C.
  """
  strategy = strategy or tf.distribute.get_strategy()
  global_batch = int(config.batch_size)
  num_replicas = strategy.num_replicas_in_sync
  ema_decay = float(config.get('ema_decay') or 0.0)
  if not 0 <= ema_decay < 1:
    raise errors.UserError(f'train.ema_decay must be in [0, 1) (0 = no EMA), got {ema_decay}.')
  steps_per_loop = config.get('steps_per_loop', 1)
  if not isinstance(steps_per_loop, int) or steps_per_loop < 1:
    raise errors.UserError(
        f'train.steps_per_loop must be a positive integer, got '
        f'{steps_per_loop!r}; 1 returns to Python after every step.'
    )
  chief = strategy.extended.should_checkpoint
  checkpoint_dir = os.path.join(workdir, 'checkpoints')
  best_dir = os.path.join(workdir, 'best')
  # Non-chief workers take part in every save (it is collective) but write to a scratch
  # directory; all workers restore from the chief's.
  scratch = (
      None if chief else os.path.join(workdir, f'scratch_worker{strategy.cluster_resolver.task_id}')
  )
  previous_policy = _set_precision(config.get('precision', 'float32'))
  try:
    with strategy.scope():
      model = model_fn()
      model.build_variables()
      optimizer = make_optimizer(config)
      optimizer.build(model.trainable_variables)
      train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='train_seconds')
      best_metric = tf.Variable(float('inf'), dtype=tf.float64, trainable=False, name='best')
      ema = (
          [
              tf.Variable(
                  tf.identity(v),
                  trainable=False,
                  name='ema',
                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
              )
              for v in model.trainable_variables
          ]
          if ema_decay
          else []
      )
  finally:
    keras.config.set_dtype_policy(previous_policy)
  key_of = {id(v): k for k, v in _keyed_variables(model).items()}
  keys = [key_of[id(v)] for v in model.trainable_variables]
  state = dict(optimizer=optimizer, train_seconds=train_seconds, best_metric=best_metric)
  if ema:
    state['ema'] = dict(zip(keys, ema))
  dataset = lambda start: strategy.distribute_datasets_from_function(  # noqa: E731
      input_fn(examples_fn, global_batch, num_replicas, start)
  )
  # Each worker's iterator has its own position, and a checkpoint holds one: only a single
  # worker's (trackable) iterator is checkpointed.
  if not (
      strategy.extended._in_multi_worker_mode()  # pylint: disable=protected-access
      or isinstance(strategy, tf.distribute.TPUStrategy)
  ):
    iterator = iter(dataset(0))
    if isinstance(iterator, tf.__internal__.tracking.Trackable):
      state['data'] = iterator
  checkpoint = model_checkpoint(model, **state)

  def restore(prefix):
    if ema and not has_ema(prefix):
      logging.warning(
          '%s holds no EMA weights (saved without EMA): the averages start from its weights.',
          prefix,
      )
      without = {k: v for k, v in state.items() if k != 'ema'}
      model_checkpoint(model, **without).restore(prefix).assert_existing_objects_matched()
      for average, v in zip(ema, model.trainable_variables):
        average.assign(v)
    else:
      checkpoint.restore(prefix).assert_existing_objects_matched()

  if chief:
    for directory in (checkpoint_dir, best_dir):
      _remove_orphans(directory)
  resumed = _restore_newest_readable(checkpoint_dir, restore, set_aside=chief)
  step = int(optimizer.iterations.numpy())
  if resumed:
    logging.info('Resumed from %s at step %d.', resumed, step)
  if 'data' not in state:
    if step:
      logging.info(
          'Skipping the %d examples of steps 1-%d to reach the data position.',
          step * global_batch,
          step,
      )
    iterator = iter(dataset(step))
  manager = tf.train.CheckpointManager(
      checkpoint, scratch or checkpoint_dir, max_to_keep=config.get('keep_checkpoints', 2)
  )
  best_manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(scratch, 'best') if scratch else best_dir, max_to_keep=1
  )
  base_seed = tf.constant([config.get('seed', 0), 0], tf.int32)

  def replica_step(batch, step):
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    seed = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(base_seed, step), replica
    )
    with tf.GradientTape() as tape:
      per_example = tf.cast(model(batch, seed=seed, training=True), tf.float32)
      loss = tf.reduce_sum(per_example) / global_batch
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    t = tf.cast(step + 1, tf.float32)  # this update's number
    decay = tf.minimum(ema_decay, (1.0 + t) / (10.0 + t))
    for average, v in zip(ema, model.trainable_variables):
      average.assign(decay * average + (1.0 - decay) * v)
    return loss

  jit_compile = config.get('jit_compile', False)
  if jit_compile and num_replicas > 1 and not tf.config.list_logical_devices('GPU'):
    logging.warning(
        "XLA cannot place one replica's variables on another CPU device: "
        'training %d CPU replicas without jit_compile.',
        num_replicas,
    )
    jit_compile = False
  replica_step_fn = tf.function(replica_step, jit_compile=jit_compile)

  @tf.function
  def train_steps(iterator, num_steps):
    """`num_steps` steps in one call, without a round trip to Python between them; returns
    the last step's loss."""
    loss = tf.constant(0.0)
    for _ in tf.range(num_steps):
      step = tf.cast(optimizer.iterations, tf.int32)
      losses = strategy.run(replica_step_fn, args=(next(iterator), step))
      loss = strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)
    return loss

  @contextlib.contextmanager
  def ema_weights():
    """Swaps the EMA averages into the model (exactly: assignments only) for the block."""

    def swap():
      for average, v in zip(ema, model.trainable_variables):
        raw = tf.identity(v)
        v.assign(average)
        average.assign(raw)

    swap()
    try:
      yield
    finally:
      swap()

  writer = (
      tf.summary.create_file_writer(os.path.join(workdir, 'summaries'))
      if chief
      else tf.summary.create_noop_writer()
  )
  total = int(config.steps)
  log_every = config.get('log_every', 500)
  eval_every = config.get('eval_every', 0)
  checkpoint_every = config.get('checkpoint_every', 5000)

  def steps_to_next_stop(step):
    """Steps the next call may run: up to steps_per_loop, ending on any log, evaluation,
    checkpoint or the last step, so that these happen at the same steps whatever the loop."""
    return min(
        [steps_per_loop, total - step]
        + [every - step % every for every in (log_every, eval_every, checkpoint_every) if every]
    )

  def save(step):
    manager.save(checkpoint_number=step)

  def evaluate(step):
    with ema_weights():
      metrics = eval_fn(model)
    with writer.as_default(step=step):
      for key, value in metrics.items():
        tf.summary.scalar(f'eval/{key}', value)
    logging.info(
        'step %d eval%s %s',
        step,
        ' (EMA weights)' if ema else '',
        ' '.join(f'{k} {v:.4f}' for k, v in metrics.items()),
    )
    if metrics['validation'] < best_metric.numpy():
      best_metric.assign(metrics['validation'])
      best_manager.save(checkpoint_number=step)

  preemption = None
  if strategy.extended._in_multi_worker_mode():  # pylint: disable=protected-access

    def preempted():
      if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
      raise errors.Preempted(_preempted_message('SIGTERM', step, total, checkpoint_dir))

    preemption = tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver,
        tf.train.CheckpointManager(checkpoint, checkpoint_dir, 1),
        termination_config=tf.distribute.experimental.TerminationConfig(
            exit_fn=preempted, save_fn=lambda: save(step)
        ),
    )
  window_start, window_step = time.perf_counter(), step
  with _StopSignals((signal.SIGINT,) if preemption else (signal.SIGTERM, signal.SIGINT)) as stop:
    while step < total:
      num_steps = steps_to_next_stop(step)
      loss = float(train_steps(iterator, tf.constant(num_steps)))
      step += num_steps
      if not np.isfinite(loss):
        raise FloatingPointError(
            f'Training loss became {loss} by step {step}. Lower '
            '--config.train.learning_rate or set grad_clip_norm; the last '
            f'good checkpoint is in {checkpoint_dir}.'
        )
      if step % log_every == 0 or step == total or stop.received:
        elapsed = time.perf_counter() - window_start
        train_seconds.assign_add(elapsed)
        steps_per_sec = (step - window_step) / max(elapsed, 1e-9)
        logging.info(
            'step %d/%d loss %.4f | %.1f steps/s | ETA %s',
            step,
            total,
            loss,
            steps_per_sec,
            _format_seconds((total - step) / max(steps_per_sec, 1e-9)),
        )
        with writer.as_default(step=step):
          tf.summary.scalar('train/loss', loss)
          tf.summary.scalar('train/steps_per_sec', steps_per_sec)
        window_start, window_step = time.perf_counter(), step
      if stop.received:
        save(step)
        writer.flush()
        if scratch:
          shutil.rmtree(scratch, ignore_errors=True)
        raise errors.Preempted(_preempted_message(stop.received, step, total, checkpoint_dir))
      if preemption:
        preemption.save_checkpoint_if_preempted()
      if eval_fn and (eval_every and step % eval_every == 0 or step == total):
        logging.info('Evaluating at step %d.', step)
        evaluate(step)
        window_start = time.perf_counter()
      if step % checkpoint_every == 0 or step == total:
        save(step)
  writer.flush()
  if scratch:
    shutil.rmtree(scratch, ignore_errors=True)
  best_step = None
  if eval_fn and _candidates(best_dir):
    # The weights only: the optimizer and the data position stay those of the last step.
    best = model_checkpoint(model, ema=state['ema']) if ema else model_checkpoint(model)
    best.restore(_candidates(best_dir)[0]).expect_partial()
    best_step = int(os.path.basename(_candidates(best_dir)[0]).split('-')[-1])
    logging.info(
        'Restored the best checkpoint (step %d, validation %.4f).', best_step, best_metric.numpy()
    )
  if ema:
    for average, v in zip(ema, model.trainable_variables):
      v.assign(average)
  best = best_metric.numpy() if eval_fn else None
  return TrainResult(
      model,
      step,
      float(train_seconds.numpy()),
      best_step,
      None if best is None else float(best),
      bool(ema),
  )


def _preempted_message(signal_name, step, total, checkpoint_dir):
  return (
      f'{signal_name} received: stopped at step {step}/{total} and saved '
      f'{os.path.join(checkpoint_dir, f"ckpt-{step}")}. Rerun the same command to resume '
      'from there.'
  )
