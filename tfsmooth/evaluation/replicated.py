"""A function of row batches run on every replica of a `tf.distribute` strategy.

`map_batches(fn, inputs, batch_size, strategy)` splits the rows of `inputs` into batches of
`batch_size` (the last one padded by repeating its final row), gives replica r of R the rows
[r * b / R, (r + 1) * b / R) of each batch, runs `fn` there through `strategy.run`, gathers the
replicas' rows back in order and drops the padding. With per-row seeds among the inputs, the
result does not depend on R; under several workers every worker computes its replicas' share
and every worker gets the whole result (only the chief should write it). The compiled step is
kept per (fn, strategy, jit_compile) on `fn` itself, so a caller that passes the same `fn` again
(as `likelihood.rows` and `tasks.draw_rows` do for one model, whose functions `cached_on` keeps
on the model) does not trace it again. No global cache holds models or functions: what is kept
lives as long as the object it is kept on.
"""

import numpy as np
import tensorflow as tf

_CACHE = '_tfsmooth_cache'


def cached_on(owner, key, make):
  """`make()` once per `key`, kept in a dict on `owner` itself (set past Keras's attribute
  tracking): a function that refers back to its owner makes a reference cycle, which Python's
  collector frees with the owner, where a global cache would keep both alive."""
  cache = owner.__dict__.get(_CACHE)
  if cache is None:
    cache = {}
    object.__setattr__(owner, _CACHE, cache)
  if key not in cache:
    cache[key] = make()
  return cache[key]


def _padded(array, size):
  return np.concatenate([array, np.repeat(array[-1:], size - len(array), 0)])


def _step(fn, strategy, jit_compile):
  """The tf.function that runs `fn` on every replica and gathers its outputs in order (kept on
  `fn`)."""

  def make():
    def gathered(values):
      out = strategy.run(lambda v: fn(*v), args=(values,))
      # One gather per tensor: strategy.gather of a nest returns one replica's part only.
      return tf.nest.map_structure(lambda t: strategy.gather(t, axis=0), out)

    return tf.function(gathered, jit_compile=jit_compile, reduce_retracing=True)

  return cached_on(fn, ('step', id(strategy), jit_compile), make)


def map_batches(fn, inputs, batch_size, strategy=None, jit_compile=False, log=None):
  """Numpy outputs of `fn(*row_batch)` for every row of `inputs` (a tuple of arrays sharing
  dimension 0), a nest of [n, ...] tensors per batch, concatenated over the batches."""
  strategy = strategy or tf.distribute.get_strategy()
  replicas = strategy.num_replicas_in_sync
  per_replica = -(-min(batch_size, len(inputs[0])) // replicas)
  size = per_replica * replicas
  step = _step(fn, strategy, jit_compile)
  outputs = []
  total = len(inputs[0])
  for start in range(0, total, size):
    count = min(size, total - start)
    batch = [_padded(np.asarray(a[start : start + count]), size) for a in inputs]

    def shard(context, batch=batch):
      r = context.replica_id_in_sync_group
      return tuple(tf.constant(a[r * per_replica : (r + 1) * per_replica]) for a in batch)

    values = strategy.experimental_distribute_values_from_function(shard)
    out = step(values)
    outputs.append(tf.nest.map_structure(lambda t, count=count: t.numpy()[:count], out))
    if log:
      log(start + count, total)
  return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *outputs)
