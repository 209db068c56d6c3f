"""A custom training loop over any `tf.distribute` strategy, with resumable checkpoints.

The model is anything with `build_variables()`, `trainable_variables` and a per-example
`training_loss(x, seed)` (a `DensityModel`: -log p(x); a `SmoothedModel`: -[log p(x~) + log p(x|x~)]).
Each step minimises the mean loss over the global batch with Adam; the noise seed of step t
on replica r is fold_in(fold_in(seed, t), r), so a resumed run draws the same noise as an
uninterrupted one. The data come as `examples_fn()`, an infinite, deterministically ordered
tf.data.Dataset of single examples; the trainer batches it to the global batch size. The host
reads one global batch from a plain (checkpointable) iterator and gives replica r its r-th
slice, so the data position is checkpointed too (under several workers every worker reads the
same global batch and keeps its replicas' slices). Checkpoints hold the model, the optimizer
(and so the step), the data iterator and the accumulated training time; a rerun with the same
workdir resumes.
"""

import dataclasses
import json
import os
import time

from absl import logging
import keras
import ml_collections
import tensorflow as tf


@dataclasses.dataclass
class TrainResult:
  model: object
  step: int
  train_seconds: float
  best_step: int | None
  best_metric: float | None


def model_checkpoint(model, **extra):
  """A tf.train.Checkpoint of the model's weights (plus `extra`).

  Keras 3 models are not tracked by tf.train.Checkpoint through attributes, so the weights
  are listed explicitly (all of `model.variables`, so dropout seed states too), keyed
  '<position>/<Keras path>' (paths alone repeat across sub-models); evaluation and export
  restore with the same structure.
  """
  weights = {f'{i:03d}/{v.path}': v for i, v in enumerate(model.variables)}
  return tf.train.Checkpoint(weights=weights, **extra)


def restore_model(model, directory):
  """Builds `model`'s weights and loads them from the newest checkpoint in `directory`."""
  path = tf.train.latest_checkpoint(directory)
  if path is None:
    raise FileNotFoundError(f'No checkpoint in {directory}: train first (launch/train.py '
                            'with this --workdir) or point to the right workdir.')
  model.build_variables()
  model_checkpoint(model).restore(path).expect_partial().assert_existing_objects_matched()
  return path


def restore_best(model, workdir):
  """Loads a run's best checkpoint (workdir/best), or its newest one if it kept no best."""
  best = os.path.join(workdir, 'best')
  return restore_model(
      model, best if tf.train.latest_checkpoint(best) else os.path.join(workdir, 'checkpoints'))


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
      raise ValueError(f'Set one of train.lr_decay ({decay_rate}) and train.final_lr_fraction '
                       f'({final_fraction}), not both.')
    if not 0 < final_fraction <= 1:
      raise ValueError(f'train.final_lr_fraction must be in (0, 1], got {final_fraction}.')
    decay_rate = final_fraction**(1 / config.steps)
  if decay_rate != 1.0:
    learning_rate = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=1, decay_rate=decay_rate)
  return keras.optimizers.Adam(learning_rate, global_clipnorm=config.get('grad_clip_norm'))


def read_config(workdir):
  """The ConfigDict that launch/train.py saved as workdir/config.json."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'No config.json in {workdir}: pass the --workdir of a '
                            'launch/train.py run.')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def write_metrics(workdir, metrics):
  """Writes `metrics` to workdir/metrics.json (the run's figures) and logs them."""
  with open(os.path.join(workdir, 'metrics.json'), 'w') as f:
    json.dump(metrics, f, indent=2)
  logging.info('metrics: %s', metrics)


def _format_seconds(seconds):
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def train(model_fn, examples_fn, config, workdir, strategy=None, eval_fn=None):
  """Trains `model_fn()` on the examples of `examples_fn()` in global batches.

  Args:
    model_fn: builds the model; called inside `strategy.scope()`.
    examples_fn: `examples_fn() -> tf.data.Dataset` of single examples, infinite and in a
      fixed (seeded) order.
    config: `config.train` ConfigDict: steps, batch_size (global), learning_rate, lr_decay or final_lr_fraction,
      grad_clip_norm, seed, log_every, eval_every, checkpoint_every, keep_checkpoints, jit_compile.
    workdir: checkpoints in `workdir/checkpoints`, the best (lowest `eval_fn` 'validation')
      in `workdir/best`, TensorBoard summaries in `workdir/summaries`.
    strategy: a `tf.distribute.Strategy` (default: the current one).
    eval_fn: optional `eval_fn(model) -> dict` of floats, run every `eval_every` steps and at
      the end; its 'validation' entry (lower is better) selects the best checkpoint.

  Returns:
    TrainResult with the final model (the best checkpoint restored if `eval_fn` is given).
  """
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    model = model_fn()
    model.build_variables()
    optimizer = make_optimizer(config)
    optimizer.build(model.trainable_variables)
    train_seconds = tf.Variable(0., dtype=tf.float64, trainable=False, name='train_seconds')
    best_metric = tf.Variable(float('inf'), dtype=tf.float64, trainable=False, name='best')
  iterator = iter(examples_fn().batch(config.batch_size, drop_remainder=True).prefetch(2))
  checkpoint = model_checkpoint(model, optimizer=optimizer, data=iterator,
                                train_seconds=train_seconds, best_metric=best_metric)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, 'checkpoints'),
                                       max_to_keep=config.get('keep_checkpoints', 2))
  best_manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, 'best'),
                                            max_to_keep=1)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    logging.info('Resumed from %s at step %d.', manager.latest_checkpoint,
                 int(optimizer.iterations.numpy()))
  base_seed = tf.constant([config.get('seed', 0), 0], tf.int32)

  def replica_step(batch, step):
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    seed = tf.random.experimental.stateless_fold_in(
        tf.random.experimental.stateless_fold_in(base_seed, step), replica)
    with tf.GradientTape() as tape:
      per_example = model(batch, seed=seed, training=True)
      loss = tf.reduce_sum(per_example) / tf.cast(
          tf.shape(per_example)[0] * strategy.num_replicas_in_sync, per_example.dtype)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  jit_compile = config.get('jit_compile', False)
  if jit_compile and strategy.num_replicas_in_sync > 1 and not tf.config.list_logical_devices('GPU'):
    logging.warning('XLA cannot place one replica\'s variables on another CPU device: '
                    'training %d CPU replicas without jit_compile.', strategy.num_replicas_in_sync)
    jit_compile = False
  replica_step_fn = tf.function(replica_step, jit_compile=jit_compile)

  @tf.function
  def train_step(iterator):
    step = tf.cast(optimizer.iterations, tf.int32)
    batch = next(iterator)
    shard = tf.shape(batch)[0] // strategy.num_replicas_in_sync
    shards = strategy.experimental_distribute_values_from_function(
        lambda ctx: batch[ctx.replica_id_in_sync_group * shard:
                          (ctx.replica_id_in_sync_group + 1) * shard])
    losses = strategy.run(replica_step_fn, args=(shards, step))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

  writer = tf.summary.create_file_writer(os.path.join(workdir, 'summaries'))
  total = int(config.steps)
  log_every = config.get('log_every', 500)
  eval_every = config.get('eval_every', 0)
  checkpoint_every = config.get('checkpoint_every', 5000)

  def evaluate(step):
    metrics = eval_fn(model)
    with writer.as_default(step=step):
      for key, value in metrics.items():
        tf.summary.scalar(f'eval/{key}', value)
    logging.info('step %d eval %s', step, ' '.join(f'{k} {v:.4f}' for k, v in metrics.items()))
    if metrics['validation'] < best_metric.numpy():
      best_metric.assign(metrics['validation'])
      best_manager.save(checkpoint_number=step)

  step = int(optimizer.iterations.numpy())
  window_start, window_step = time.perf_counter(), step
  while step < total:
    loss = float(train_step(iterator))
    step += 1
    if not tf.math.is_finite(loss):
      raise FloatingPointError(f'Training loss became {loss} at step {step}. Lower '
                               '--config.train.learning_rate or set grad_clip_norm; the last '
                               f'good checkpoint is in {manager.directory}.')
    if step % log_every == 0 or step == total:
      elapsed = time.perf_counter() - window_start
      train_seconds.assign_add(elapsed)
      steps_per_sec = (step - window_step) / max(elapsed, 1e-9)
      logging.info('step %d/%d loss %.4f | %.1f steps/s | ETA %s', step, total, loss,
                   steps_per_sec, _format_seconds((total - step) / max(steps_per_sec, 1e-9)))
      with writer.as_default(step=step):
        tf.summary.scalar('train/loss', loss)
        tf.summary.scalar('train/steps_per_sec', steps_per_sec)
      window_start, window_step = time.perf_counter(), step
    if eval_fn and (eval_every and step % eval_every == 0 or step == total):
      evaluate(step)
      window_start = time.perf_counter()
    if step % checkpoint_every == 0 or step == total:
      manager.save(checkpoint_number=step)
  writer.flush()
  best_step = None
  if eval_fn and best_manager.latest_checkpoint:
    checkpoint.restore(best_manager.latest_checkpoint)
    best_step = int(optimizer.iterations.numpy())
    logging.info('Restored the best checkpoint (step %d, validation %.4f).', best_step,
                 best_metric.numpy())
  best = best_metric.numpy() if eval_fn else None
  return TrainResult(model, step, float(train_seconds.numpy()), best_step,
                     None if best is None else float(best))
