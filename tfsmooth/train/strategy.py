"""Picks a `tf.distribute` strategy by name: one device, several, several workers, or TPU."""

import tensorflow as tf

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')


def get_strategy(name='default', tpu_address=''):
  """The strategy for `--config.train.strategy`.

  'mirrored' uses all local GPUs, or all logical CPUs when there are no GPUs (cross-device
  reduction through one device, which works on CPU); 'multi_worker' reads TF_CONFIG;
  'tpu' connects to `tpu_address` ('' = the local TPU or the one named by the environment).
  """
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    if tf.config.list_logical_devices('GPU'):
      return tf.distribute.MirroredStrategy()
    return tf.distribute.MirroredStrategy(
        devices=[d.name for d in tf.config.list_logical_devices('CPU')],
        cross_device_ops=tf.distribute.ReductionToOneDevice())
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'tpu':
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f'Unknown strategy {name!r}; choose one of {", ".join(STRATEGIES)} '
                   '(--config.train.strategy=...).')


def from_config(config):
  """The strategy of `config.train` (strategy, tpu_address), checked against its batch size."""
  strategy = get_strategy(config.strategy, config.get('tpu_address', ''))
  if config.batch_size % strategy.num_replicas_in_sync:
    raise ValueError(f'batch_size {config.batch_size} is not divisible by the '
                     f'{strategy.num_replicas_in_sync} replicas of the {config.strategy} '
                     'strategy; change --config.train.batch_size.')
  return strategy
