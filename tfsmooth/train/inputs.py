"""The global batches of a run, sharded over replicas and workers.

`examples_fn()` is an infinite, seeded tf.data.Dataset of single examples. Cut it into chunks
of B/R examples (global batch B, R replicas in sync); global batch t is chunks tR .. tR+R-1,
and replica r (global id, worker-major) trains on chunk tR + r. Input pipeline i of n (one per
worker, from `strategy.distribute_datasets_from_function`) keeps only the chunks of its L = R/n
local replicas (chunk c belongs to pipeline floor(c / L) mod n), so every worker batches and
feeds only its share, and the shards of all workers are disjoint and cover the global batch: a
2-worker run sees the same examples per replica as a 1-process 2-replica run.

The data position is checkpointed with the iterator on one worker; under several workers (each
worker's iterator has its own position, a checkpoint holds one) or on TPU it is rebuilt as
`skip(t * B)`.
"""

from absl import logging
import tensorflow as tf


def input_fn(examples_fn, global_batch, num_replicas, start_step=0):
  """The `dataset_fn(input_context)` of `distribute_datasets_from_function`: this pipeline's
  per-replica batches of the global batches from `start_step` on."""

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


class Input:
  """The distributed global batches of `examples_fn()` and, where it can be checkpointed, the
  iterator (`trackables()`, to checkpoint before `iterator_at`)."""

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
    """The iterator at `step`: the checkpointed one (restored with the checkpoint), or a new
    one skipping steps 1..step."""
    if self._iterator is None:
      if step:
        logging.info(
            'Skipping the %d examples of steps 1-%d to reach the data position.',
            step * self._global_batch,
            step,
        )
      self._iterator = iter(self._dataset(step))
    return self._iterator
