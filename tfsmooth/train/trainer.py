"""A custom training loop over any `tf.distribute` strategy: per-worker input, EMA, resumable and
preemption-safe checkpoints, TensorBoard summaries.

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
Resuming, unreadable checkpoints and orphan saves are `checkpoints.RunCheckpoints`' business.

Summaries (`workdir/summaries`, chief only): the config as text at the start, `train/loss` and
`train/steps_per_sec` at each log, and what `eval_fn` returns at each evaluation (`eval/<key>`:
scalars, and image batches under keys starting with `images/`). Every path may be a URL.
"""

import contextlib
import dataclasses
import os
import signal
import threading
import time

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.train import checkpoints

PRECISIONS = ('float32', 'mixed_bfloat16')
IMAGES = 'images/'  # an eval_fn key with this prefix holds an image batch [k, H, W, C]


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
    model_fn: builds the model; called inside `strategy.scope()`.
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
    TrainResult with the final model (the best checkpoint restored if `eval_fn` is given),
    holding the EMA weights if the run keeps them.

  Raises:
    errors.Preempted: after saving a checkpoint on SIGTERM or Ctrl-C.
  """
  strategy = strategy or tf.distribute.get_strategy()
  ema_decay = _ema_decay(config)
  schedule = _Schedule.of(config)
  state = _TrainState.build(model_fn, config, strategy, ema_decay)
  data = _Input(strategy, examples_fn, int(config.batch_size))
  chief = strategy.extended.should_checkpoint
  saved = checkpoints.RunCheckpoints(
      workdir,
      state.model,
      {**state.trackables(), **data.trackables()},
      chief=chief,
      task_id=None if chief else strategy.cluster_resolver.task_id,
  )
  resumed = saved.resume(keep=config.get('keep_checkpoints', 2))
  step = state.step
  if resumed:
    logging.info('Resumed from %s at step %d.', resumed, step)
  iterator = data.iterator_at(step)
  train_steps = _train_steps_fn(state, strategy, config, ema_decay)
  summaries = _Summaries(workdir, chief)
  if config_text:
    summaries.config(step, config_text)
  preemption = _preemption_handler(strategy, saved, state, schedule.total)
  progress = _Progress(state.train_seconds, step)
  with _StopSignals((signal.SIGINT,) if preemption else (signal.SIGTERM, signal.SIGINT)) as stop:
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
        progress.log(step, schedule.total, loss, summaries)
      if stop.received:
        saved.save(step)
        summaries.flush()
        saved.remove_scratch()
        raise errors.Preempted(
            _preempted_message(stop.received, step, schedule.total, saved.directory)
        )
      if preemption:
        preemption.save_checkpoint_if_preempted()
      if eval_fn and schedule.evaluates(step):
        _evaluate(eval_fn, state, step, summaries, saved)
        progress.restart()  # evaluation time is not training time
      if schedule.checkpoints(step):
        saved.save(step)
  summaries.flush()
  saved.remove_scratch()
  best_step = None
  if eval_fn:
    # The weights only: the optimizer and the data position stay those of the last step.
    best_step = saved.restore_best_weights()
    if best_step is not None:
      logging.info(
          'Restored the best checkpoint (step %d, validation %.4f).',
          best_step,
          state.best_metric.numpy(),
      )
  state.keep_ema()
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


def _ema_decay(config):
  ema_decay = float(config.get('ema_decay') or 0.0)
  if not 0 <= ema_decay < 1:
    raise errors.UserError(f'train.ema_decay must be in [0, 1) (0 = no EMA), got {ema_decay}.')
  return ema_decay


@dataclasses.dataclass(frozen=True)
class _Schedule:
  """Steps of the run and the cadences of logs, evaluations and checkpoints (0: never
  evaluate; the last step always logs, evaluates and checkpoints)."""

  total: int
  steps_per_loop: int
  log_every: int
  eval_every: int
  checkpoint_every: int

  @classmethod
  def of(cls, config):
    steps_per_loop = config.get('steps_per_loop', 1)
    if not isinstance(steps_per_loop, int) or steps_per_loop < 1:
      raise errors.UserError(
          f'train.steps_per_loop must be a positive integer, got '
          f'{steps_per_loop!r}; 1 returns to Python after every step.'
      )
    return cls(
        total=int(config.steps),
        steps_per_loop=steps_per_loop,
        log_every=config.get('log_every', 500),
        eval_every=config.get('eval_every', 0),
        checkpoint_every=config.get('checkpoint_every', 5000),
    )

  def steps_to_next_stop(self, step):
    """Steps the next call may run: up to steps_per_loop, ending on any log, evaluation,
    checkpoint or the last step, so that these happen at the same steps whatever the loop."""
    cadences = (self.log_every, self.eval_every, self.checkpoint_every)
    return min(
        [self.steps_per_loop, self.total - step]
        + [every - step % every for every in cadences if every]
    )

  def logs(self, step):
    return step % self.log_every == 0 or step == self.total

  def evaluates(self, step):
    return bool(self.eval_every and step % self.eval_every == 0 or step == self.total)

  def checkpoints(self, step):
    return step % self.checkpoint_every == 0 or step == self.total


def _set_precision(precision):
  if precision not in PRECISIONS:
    raise errors.UserError(
        f'Unknown train.precision {precision!r}; choose one of {", ".join(PRECISIONS)}.'
    )
  previous = keras.config.dtype_policy().name
  keras.config.set_dtype_policy(precision)
  return previous


@dataclasses.dataclass
class _TrainState:
  """What training changes: the model, its optimizer, the EMA averages (one per trainable
  weight; none without EMA), the training time and the best validation figure."""

  model: object
  optimizer: keras.optimizers.Optimizer
  ema: list
  train_seconds: tf.Variable
  best_metric: tf.Variable

  @classmethod
  def build(cls, model_fn, config, strategy, ema_decay):
    """Builds everything in `strategy.scope()` under the config's precision policy (the
    process keeps its own)."""
    previous_policy = _set_precision(config.get('precision', 'float32'))
    try:
      with strategy.scope():
        model = model_fn()
        model.build_variables()
        optimizer = make_optimizer(config)
        optimizer.build(model.trainable_variables)
        train_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='train_seconds')
        best_metric = tf.Variable(float('inf'), dtype=tf.float64, trainable=False, name='best')
        ema = [
            tf.Variable(
                tf.identity(v),
                trainable=False,
                name='ema',
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
            for v in (model.trainable_variables if ema_decay else [])
        ]
    finally:
      keras.config.set_dtype_policy(previous_policy)
    return cls(model, optimizer, ema, train_seconds, best_metric)

  @property
  def step(self):
    """Steps done (the optimizer's update count)."""
    return int(self.optimizer.iterations.numpy())

  def trackables(self):
    """What a training checkpoint holds besides the weights; the averages as 'ema' {key of
    the weight: average}."""
    state = dict(
        optimizer=self.optimizer, train_seconds=self.train_seconds, best_metric=self.best_metric
    )
    if self.ema:
      key_of = {id(v): k for k, v in checkpoints.keyed_variables(self.model).items()}
      keys = [key_of[id(v)] for v in self.model.trainable_variables]
      state['ema'] = dict(zip(keys, self.ema))
    return state

  @contextlib.contextmanager
  def ema_swapped(self):
    """Swaps the EMA averages into the model (exactly: assignments only) for the block."""

    def swap():
      for average, v in zip(self.ema, self.model.trainable_variables):
        raw = tf.identity(v)
        v.assign(average)
        average.assign(raw)

    swap()
    try:
      yield
    finally:
      swap()

  def keep_ema(self):
    """Leaves the EMA averages in the model for good."""
    for average, v in zip(self.ema, self.model.trainable_variables):
      v.assign(average)


class _Input:
  """The distributed global batches. On one worker (not TPU) the iterator is checkpointed,
  position included; under several workers, where each worker's iterator has its own
  position and a checkpoint holds one, or on TPU, it is rebuilt as `skip(step * B)`."""

  def __init__(self, strategy, examples_fn, global_batch):
    self._strategy = strategy
    self._examples_fn = examples_fn
    self._global_batch = global_batch
    self._iterator = None
    if not (
        strategy.extended._in_multi_worker_mode()  # pylint: disable=protected-access
        or isinstance(strategy, tf.distribute.TPUStrategy)
    ):
      iterator = iter(self._dataset(0))
      if isinstance(iterator, tf.__internal__.tracking.Trackable):
        self._iterator = iterator

  def _dataset(self, start_step):
    return self._strategy.distribute_datasets_from_function(
        input_fn(
            self._examples_fn, self._global_batch, self._strategy.num_replicas_in_sync, start_step
        )
    )

  def trackables(self):
    return {} if self._iterator is None else {'data': self._iterator}

  def iterator_at(self, step):
    """The iterator at `step`: the checkpointed one (restored with the checkpoint), or a
    new one skipping steps 1..step."""
    if self._iterator is None:
      if step:
        logging.info(
            'Skipping the %d examples of steps 1-%d to reach the data position.',
            step * self._global_batch,
            step,
        )
      self._iterator = iter(self._dataset(step))
    return self._iterator


def _train_steps_fn(state, strategy, config, ema_decay):
  """The compiled loop `train_steps(iterator, num_steps) -> loss`: `num_steps` steps in one
  call, without a round trip to Python between them; returns the last step's loss.

  A step at t (= optimizer.iterations) on replica r: loss = sum of the per-example losses of
  its batch / B, with noise seed fold_in(fold_in(seed, t), r); one Adam update of the summed
  gradients; then ema <- d_t ema + (1 - d_t) w.
  """
  model, optimizer, ema = state.model, state.optimizer, state.ema
  global_batch = int(config.batch_size)
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

  replica_step_fn = tf.function(
      replica_step, jit_compile=_jit_compile(config, strategy.num_replicas_in_sync)
  )

  @tf.function
  def train_steps(iterator, num_steps):
    loss = tf.constant(0.0)
    for _ in tf.range(num_steps):
      step = tf.cast(optimizer.iterations, tf.int32)
      losses = strategy.run(replica_step_fn, args=(next(iterator), step))
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


class _Summaries:
  """TensorBoard summaries in `workdir/summaries`, written by the chief only (other workers
  write to a no-op writer)."""

  def __init__(self, workdir, chief):
    self._writer = (
        tf.summary.create_file_writer(os.path.join(workdir, 'summaries'))
        if chief
        else tf.summary.create_noop_writer()
    )

  def config(self, step, text):
    with self._writer.as_default(step=step):
      tf.summary.text('config', f'```json\n{text}\n```')  # Markdown: keep the layout

  def training(self, step, loss, steps_per_sec):
    with self._writer.as_default(step=step):
      tf.summary.scalar('train/loss', loss)
      tf.summary.scalar('train/steps_per_sec', steps_per_sec)

  def evaluation(self, step, metrics):
    with self._writer.as_default(step=step):
      for key, value in metrics.items():
        if key.startswith(IMAGES):
          tf.summary.image(f'eval/{key}', value, max_outputs=len(value))
        else:
          tf.summary.scalar(f'eval/{key}', value)

  def flush(self):
    self._writer.flush()


class _Progress:
  """Training time and speed: the seconds between logs, less evaluations, add to the
  checkpointed `train_seconds`."""

  def __init__(self, train_seconds, step):
    self._train_seconds = train_seconds
    self._start, self._step = time.perf_counter(), step

  def restart(self):
    self._start = time.perf_counter()

  def log(self, step, total, loss, summaries):
    elapsed = time.perf_counter() - self._start
    self._train_seconds.assign_add(elapsed)
    steps_per_sec = (step - self._step) / max(elapsed, 1e-9)
    logging.info(
        'step %d/%d loss %.4f | %.1f steps/s | ETA %s',
        step,
        total,
        loss,
        steps_per_sec,
        _format_seconds((total - step) / max(steps_per_sec, 1e-9)),
    )
    summaries.training(step, loss, steps_per_sec)
    self._start, self._step = time.perf_counter(), step


def _format_seconds(seconds):
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def _evaluate(eval_fn, state, step, summaries, saved):
  """Runs `eval_fn` on the EMA weights (if kept), writes its summaries and saves a best
  checkpoint when its 'validation' figure is the lowest yet."""
  logging.info('Evaluating at step %d.', step)
  with state.ema_swapped():
    metrics = eval_fn(state.model)
  summaries.evaluation(step, metrics)
  scalars = {k: v for k, v in metrics.items() if not k.startswith(IMAGES)}
  logging.info(
      'step %d eval%s %s',
      step,
      ' (EMA weights)' if state.ema else '',
      ' '.join(f'{k} {v:.4f}' for k, v in scalars.items()),
  )
  if scalars['validation'] < state.best_metric.numpy():
    state.best_metric.assign(scalars['validation'])
    saved.save_best(step)


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


def _preemption_handler(strategy, saved, state, total):
  """Under several workers, a `PreemptionCheckpointHandler`: SIGTERM to any worker saves a
  checkpoint on all of them at a step they agree on, then raises `errors.Preempted`.
  None otherwise (`_StopSignals` handles SIGTERM)."""
  if not strategy.extended._in_multi_worker_mode():  # pylint: disable=protected-access
    return None

  def preempted():
    saved.remove_scratch()
    raise errors.Preempted(_preempted_message('SIGTERM', state.step, total, saved.directory))

  return tf.distribute.experimental.PreemptionCheckpointHandler(
      strategy.cluster_resolver,
      tf.train.CheckpointManager(saved.checkpoint, saved.directory, 1),
      termination_config=tf.distribute.experimental.TerminationConfig(
          exit_fn=preempted, save_fn=lambda: saved.save(state.step)
      ),
  )


def _preempted_message(signal_name, step, total, checkpoint_dir):
  return (
      f'{signal_name} received: stopped at step {step}/{total} and saved '
      f'{os.path.join(checkpoint_dir, f"ckpt-{step}")}. Rerun the same command to resume '
      'from there.'
  )
