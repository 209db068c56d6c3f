"""A custom training loop over any `tf.distribute` strategy: per-worker input, EMA, resumable and
preemption-safe checkpoints, TensorBoard summaries.

The model is anything with `build_variables()`, `trainable_variables` and a per-example loss
`model(x, seed=..., training=True)` (a `DensityModel`: -log p(x); a `SmoothedModel`:
-[log p(x~) + log p(x|x~)]). Each step (`train_step`) minimises the mean loss over the global
batch of B examples with Adam, then moves the EMA averages. The noise seed of replica r at step
t is fold_in(fold_in(seed, t), r), so a 2-worker run sees the same noise per replica as a
1-process 2-replica run. One call of the compiled loop runs up to `steps_per_loop` steps (a
`tf.range` loop around `strategy.run`, as TPUs want it), so small models do not wait on Python
between steps; logs, evaluations, checkpoints and a requested stop fall between calls, at the
same steps whatever the loop size (`progress.Schedule`).

The parts, each in its own module under `train/`: `inputs` (the global batches, sharded over
workers, and the data position), `ema` (averages with warm-up: evaluated, selected and returned
in their place), `checkpoints` (resuming, unreadable checkpoints, the best on validation),
`preemption` (SIGTERM and Ctrl-C save a checkpoint, then `errors.Preempted`), `summaries`
(TensorBoard, chief only) and `progress` (schedule, speed, ETA). Every path may be a URL.

A write the storage refuses (a full disk, a lost permission, a quota) ends the run with
`writes.WriteFailed`: one paragraph naming what could not be written, why, the newest intact
checkpoint a rerun resumes from, and the fix. Where a validation and a periodic checkpoint fall
on one step, the periodic checkpoint is saved first, so a failing best save never costs
training (the resumed run saves the best it missed). Under several workers every worker stops
at the same point (`stop_writes`).
"""

import dataclasses
import signal

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.train import checkpoints
from tfsmooth.train import ema as ema_lib
from tfsmooth.train import inputs
from tfsmooth.train import preemption
from tfsmooth.train import progress
from tfsmooth.train import scope
from tfsmooth.train import stop_writes
from tfsmooth.train import summaries


@dataclasses.dataclass
class TrainResult:
  model: object
  step: int
  train_seconds: float
  best_step: int | None
  best_metric: float | None
  ema: bool = False  # `model` holds the EMA weights


def train(model_fn, examples_fn, config, workdir, strategy=None, eval_fn=None, config_text=None):
  """Trains `model_fn()` on the examples of `examples_fn()` in global batches.

  Args:
    model_fn: returns the model; called inside `scope.model_scope(config, strategy)`. It may return
      a model already built inside that scope (`build_variables` then makes nothing new).
    examples_fn: `examples_fn() -> tf.data.Dataset` of single examples, infinite and in a
      fixed (seeded) order.
    config: `config.train` ConfigDict: steps, batch_size (global), learning_rate, lr_decay or
      final_lr_fraction, grad_clip_norm, seed, log_every, eval_every, checkpoint_every,
      keep_checkpoints, jit_compile, ema_decay (0 or None: no EMA), precision ('float32' or
      'mixed_bfloat16'), steps_per_loop (steps per call of the compiled loop, default 1;
      logs, evaluations and checkpoints still fall on their own steps).
    workdir: checkpoints in `workdir/checkpoints`, the best (lowest `eval_fn` 'validation')
      in `workdir/best`, TensorBoard summaries in `workdir/summaries`; a path or a URL.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    eval_fn: optional `eval_fn(model) -> dict`, run every `eval_every` steps and at the end
      on the EMA weights (if kept). Entries are floats, except those under keys starting with
      'images/': image batches [k, H, W, C], uint8 or float in [0, 1]. Each goes to
      TensorBoard as `eval/<key>`; the 'validation' float (lower is better) selects the best
      checkpoint.
    config_text: optional text of the run's whole settled config (JSON), written to
      TensorBoard as `config` when training starts or resumes.

  Returns:
    TrainResult with the final model (the best checkpoint restored if `eval_fn` is given, on
    every worker), holding the EMA weights if the run keeps them.

  Raises:
    errors.Preempted: after saving a checkpoint on SIGTERM or Ctrl-C.
    writes.WriteFailed: when the storage refuses a checkpoint or a summary (on every worker).
  """
  strategy = strategy or tf.distribute.get_strategy()
  schedule = progress.Schedule.of(config)
  state = _TrainState.build(model_fn, config, strategy)
  data = inputs.Input(strategy, examples_fn, int(config.batch_size))
  saved = checkpoints.RunCheckpoints(
      workdir, state.model, {**state.trackables(), **data.trackables()}, strategy
  )
  resumed = saved.resume(keep=config.get('keep_checkpoints', 2))
  step = state.step
  if resumed:
    logging.info('Resumed from %s at step %d.', resumed, step)
  failures = stop_writes.StopWrites(strategy, saved, workdir)
  failures.attempt(saved.save_pending_best, step)
  writer = failures.attempt(summaries.Summaries, workdir, saved.chief)
  if config_text and writer is not None:
    failures.attempt(writer.config, step, config_text)
  failures.settle(step)
  iterator = data.iterator_at(step)
  train_steps = _train_loop(state, strategy, config)
  preempted = preemption.handler(strategy, saved, lambda: state.step, schedule.total)
  timer = progress.Progress(state.train_seconds, step)
  signums = (signal.SIGINT,) if preempted else (signal.SIGTERM, signal.SIGINT)
  with preemption.StopSignals(signums) as stop:
    while step < schedule.total:
      num_steps = schedule.steps_to_next_stop(step)
      loss = float(train_steps(iterator, tf.constant(num_steps)))
      step += num_steps
      if not np.isfinite(loss):
        raise FloatingPointError(
            f'Training loss became {loss} by step {step}. Lower '
            '--config.train.learning_rate or set grad_clip_norm; the last '
            f'good checkpoint is in {saved.directory}.'
        )
      if schedule.logs(step) or stop.received:
        failures.attempt(timer.log, step, schedule.total, loss, writer)
      if stop.received:
        failures.attempt(saved.save, step)
        failures.attempt(writer.flush)
        failures.settle(step)
        saved.remove_scratch()
        raise errors.Preempted(
            preemption.message(stop.received, step, schedule.total, saved.directory)
        )
      if preempted:
        preempted.save_checkpoint_if_preempted()
      best = False
      if eval_fn and schedule.evaluates(step):
        metrics, best = _evaluate(eval_fn, state, step)
        failures.attempt(writer.evaluation, step, metrics)
        timer.restart()  # evaluation time is not training time
      if schedule.checkpoints(step):
        failures.attempt(saved.save, step)  # first: a failing best save costs no training
      if best:
        failures.attempt(saved.save_best, step)
      failures.settle(step)
  failures.attempt(writer.flush)
  failures.settle(step)
  saved.remove_scratch()
  # The best weights (not the optimizer nor the data position), on every worker once all have
  # got here: after the chief's last save.
  best_step = saved.restore_best_weights() if eval_fn else None
  if best_step is not None:
    logging.info(
        'Restored the best checkpoint (step %d, validation %.4f).',
        best_step,
        state.best_metric.numpy(),
    )
  state.ema.keep()
  return TrainResult(
      state.model,
      step,
      float(state.train_seconds.numpy()),
      best_step,
      float(state.best_metric.numpy()) if eval_fn else None,
      bool(state.ema),
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


def train_step(model, optimizer, ema, batch, seed):
  """One training step on this replica (or alone, outside any strategy); returns its loss.

  With B the global batch (this batch's size times the replicas in sync), the loss is the sum
  of the per-example losses of `batch` under noise `seed` (int32 [2]) divided by B, so that the
  replicas' losses and gradients add up to those of the global batch's mean (the optimizer sums
  the replicas' gradients). One update of `optimizer` on the model's trainable weights, then
  `ema` (an `ema.EMA` of them) moves towards the new weights at update number t =
  `optimizer.iterations`.
  """
  replicas = tf.distribute.get_replica_context().num_replicas_in_sync
  with tf.GradientTape() as tape:
    per_example = tf.cast(model(batch, seed=seed, training=True), tf.float32)
    global_batch = tf.cast(tf.shape(per_example)[0] * replicas, tf.float32)
    loss = tf.reduce_sum(per_example) / global_batch
  grads = tape.gradient(loss, model.trainable_variables)
  optimizer.apply_gradients(zip(grads, model.trainable_variables))
  ema.update(optimizer.iterations)
  return loss


@dataclasses.dataclass
class _TrainState:
  """What training changes: the model, its optimizer, the EMA averages (an `ema.EMA`), the
  training time and the best validation figure."""

  model: object
  optimizer: keras.optimizers.Optimizer
  ema: ema_lib.EMA
  train_seconds: tf.Variable
  best_metric: tf.Variable
  best_step: tf.Variable  # the step of best_metric (-1: none yet)

  @classmethod
  def build(cls, model_fn, config, strategy):
    decay = ema_lib.decay_of(config)
    with scope.model_scope(config, strategy):
      model = model_fn()
      model.build_variables()
      scope.check_built_in_scope(model, config, strategy)
      optimizer = make_optimizer(config)
      optimizer.build(model.trainable_variables)
      train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='train_seconds')
      best_metric = tf.Variable(float('inf'), dtype=tf.float64, trainable=False, name='best')
      best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name='best_step')
      ema = ema_lib.EMA(model.trainable_variables, decay)
    return cls(model, optimizer, ema, train_seconds, best_metric, best_step)

  @property
  def step(self):
    """Steps done (the optimizer's update count)."""
    return int(self.optimizer.iterations.numpy())

  def trackables(self):
    """What a training checkpoint holds besides the weights; the averages as 'ema' {key of
    the weight: average}."""
    state = dict(
        optimizer=self.optimizer,
        train_seconds=self.train_seconds,
        best_metric=self.best_metric,
        best_step=self.best_step,
    )
    if self.ema:
      key_of = {id(v): k for k, v in checkpoints.keyed_variables(self.model).items()}
      keys = [key_of[id(v)] for v in self.model.trainable_variables]
      state['ema'] = dict(zip(keys, self.ema.averages))
    return state


def _train_loop(state, strategy, config):
  """The compiled loop `train_steps(iterator, num_steps) -> loss`: `num_steps` steps of every
  replica in one call, without a round trip to Python between them; returns the last step's
  loss (of the global batch)."""
  model, optimizer, ema = state.model, state.optimizer, state.ema
  base_seed = tf.constant([config.get('seed', 0), 0], tf.int32)

  def replica_step(batch, step):
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    seed = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(base_seed, step), replica
    )
    return train_step(model, optimizer, ema, batch, seed)

  replica_step = tf.function(
      replica_step, jit_compile=_jit_compile(config, strategy.num_replicas_in_sync)
  )

  @tf.function
  def train_steps(iterator, num_steps):
    loss = tf.constant(0.0)
    for _ in tf.range(num_steps):
      step = tf.cast(optimizer.iterations, tf.int32)
      losses = strategy.run(replica_step, args=(next(iterator), step))
      loss = strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)
    return loss

  return train_steps


def _jit_compile(config, num_replicas):
  jit_compile = config.get('jit_compile', False)
  if jit_compile and num_replicas > 1 and not tf.config.list_logical_devices('GPU'):
    logging.warning(
        "XLA cannot place one replica's variables on another CPU device: "
        'training %d CPU replicas without jit_compile.',
        num_replicas,
    )
    return False
  return jit_compile


def _evaluate(eval_fn, state, step):
  """Runs `eval_fn` on the EMA weights (if kept); returns its metrics and whether their
  'validation' figure is the lowest yet (then the state's best, `best_metric` at `best_step`,
  to be saved as the best checkpoint)."""
  logging.info('Evaluating at step %d.', step)
  with state.ema.swapped():
    metrics = eval_fn(state.model)
  scalars = {k: v for k, v in metrics.items() if not k.startswith(summaries.IMAGES)}
  best = scalars['validation'] < state.best_metric.numpy()
  if best:
    state.best_metric.assign(scalars['validation'])
    state.best_step.assign(step)
  logging.info(
      'step %d eval%s %s',
      step,
      ' (EMA weights)' if state.ema else '',
      ' '.join(f'{k} {v:.4f}' for k, v in scalars.items()),
  )
  return metrics, best
