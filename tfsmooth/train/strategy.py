"""Picks a `tf.distribute` strategy by name: one device, several, several workers, or TPU."""

import json
import os

import tensorflow as tf

from tfsmooth import errors

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')


def get_strategy(name='default', tpu_address=''):
  """The strategy for `--config.train.strategy`.

  'mirrored' uses all local GPUs, or all logical CPUs when there are no GPUs (cross-device
  reduction through one device, which works on CPU); 'multi_worker' reads the cluster and this
  worker's task from TF_CONFIG; 'tpu' connects to `tpu_address` ('' = a TPU attached to this
  host or named by TPU_NAME).
  """
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    if tf.config.list_logical_devices('GPU'):
      return tf.distribute.MirroredStrategy()
    return tf.distribute.MirroredStrategy(
        devices=[d.name for d in tf.config.list_logical_devices('CPU')],
        cross_device_ops=tf.distribute.ReductionToOneDevice(),
    )
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'tpu':
    return _tpu_strategy(tpu_address)
  raise errors.UserError(
      f'Unknown strategy {name!r}; choose one of {", ".join(STRATEGIES)} '
      '(--config.train.strategy=...).'
  )


def is_chief_task():
  """Whether this process is the cluster's chief by TF_CONFIG, before any strategy exists: the
  'chief' task, else worker 0 (MultiWorkerMirroredStrategy's rule); True without TF_CONFIG."""
  config = json.loads(os.environ.get('TF_CONFIG') or '{}')
  task = config.get('task') or {}
  if not task:
    return True
  if 'chief' in config.get('cluster', {}):
    return task.get('type') == 'chief'
  return task.get('type') == 'worker' and int(task.get('index', 0)) == 0


def barrier(strategy):
  """Returns once every worker of `strategy` has called it (at once on one worker): what any
  worker did before its call, such as the chief's checkpoint saves, is done before any worker
  goes on. An all-reduce of one per replica, in which every worker takes part."""
  if not strategy.extended._in_multi_worker_mode():  # pylint: disable=protected-access
    return
  arrived = strategy.reduce(
      tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None
  )
  if int(arrived) != strategy.num_replicas_in_sync:
    raise RuntimeError(
        f'A barrier counted {int(arrived)} of the {strategy.num_replicas_in_sync} replicas.'
    )


def _tpu_strategy(address):
  if not (address or os.environ.get('TPU_NAME') or tf.config.list_physical_devices('TPU')):
    raise errors.UserError(
        'strategy=tpu but this host has no TPU and none is named: pass '
        '--config.train.tpu_address=<TPU name or grpc://host:port> (or set TPU_NAME), or choose '
        'another --config.train.strategy (default, mirrored, multi_worker).'
    )
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise errors.UserError(
        f'Cannot reach the TPU {address or "named by TPU_NAME"!r}: '
        f'{str(e).strip().splitlines()[0] if str(e).strip() else e!r}. Check '
        '--config.train.tpu_address and that the TPU is up.'
    ) from e
  return tf.distribute.TPUStrategy(resolver)


def from_config(config):
  """The strategy of `config.train` (strategy, tpu_address), checked against its batch size."""
  strategy = get_strategy(config.strategy, config.get('tpu_address', ''))
  if config.batch_size % strategy.num_replicas_in_sync:
    raise errors.UserError(
        f'batch_size {config.batch_size} is not divisible by the '
        f'{strategy.num_replicas_in_sync} replicas of the {config.strategy} '
        'strategy; change --config.train.batch_size.'
    )
  return strategy
