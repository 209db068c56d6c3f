"""The named stateless seeds of evaluation draws, one seed row per drawn or scored row.

Row j of a named stream is fold_in([base, salt], j), base the run's eval.seed (or a binary's
--seed): a row's draw depends on its own index alone, so results do not depend on batch
sizes, on how rows are split across replicas, or on whether a run or its export draws them.
The salts are fixed so that recorded figures reproduce.
"""

import tensorflow as tf

SALTS = {
    'test': 0,
    'validation': 1,
    'denoise_noise': 2,
    'denoise': 3,
    'inpaint': 4,
    'smooth_data': 10,
    'samples': 12,
}


@tf.function
def _fold_in_rows(key, rows):
  return tf.map_fn(
      lambda j: tf.random.experimental.stateless_fold_in(key, j),
      rows,
      fn_output_signature=tf.TensorSpec([2], tf.int32),
  )


def rows(base, name, start, count):
  """int32 [count, 2]: the seeds of rows start .. start + count - 1 of stream `name`."""
  key = tf.constant([base, SALTS[name]], tf.int32)
  if count == 0:
    return tf.zeros([0, 2], tf.int32)
  return _fold_in_rows(key, tf.range(start, start + count, dtype=tf.int32))
