"""Evaluation throughput on 1 and 2 logical devices: the rings default pair (untrained, its
real size) scores test bounds (IW-K, K = --iw_samples) and draws every sampler on the default
strategy (one device) and on MirroredStrategy over 2 logical CPUs, in this one process,
alternating --repeats times; the same rows come out of both (checked).

This exercises the scaling code end to end: on a 2-core CPU the two logical devices share the
cores, so no speed-up is expected and none is claimed; on GPUs or a TPU the replicas are real.

  python benchmarks/eval_throughput.py --output=benchmarks/results/eval_throughput.json
"""

import statistics
import time

import common  # noqa: E402  (benchmarks/ is on sys.path)

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_POINTS = flags.DEFINE_integer('points', 2000, 'Test points scored per measurement.')
_SAMPLES = flags.DEFINE_integer('samples', 1000, 'Seed rows drawn per measurement.')
_IW = flags.DEFINE_integer('iw_samples', 100, 'Importance draws K of the bounds.')
_BATCH = flags.DEFINE_integer('batch_size', 500, 'Rows per evaluation batch.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Alternating measurements per strategy.')
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/eval_throughput.json', 'JSON path.')


def main(argv):
  del argv
  cpus = tf.config.list_physical_devices('CPU')
  tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
  from tfsmooth import experiment  # pylint: disable=g-import-not-at-top
  from tfsmooth import seeds  # pylint: disable=g-import-not-at-top
  from tfsmooth import tasks  # pylint: disable=g-import-not-at-top
  from tfsmooth.configs import rings  # pylint: disable=g-import-not-at-top
  from tfsmooth.evaluation import likelihood  # pylint: disable=g-import-not-at-top
  from tfsmooth.train import strategy as strategy_lib  # pylint: disable=g-import-not-at-top

  config = experiment.settle(rings.get_config())
  points = experiment.Run(config, '').task.split('test')[: _POINTS.value]
  test_rows = seeds.rows(0, 'test', 0, len(points))
  sample_rows = seeds.rows(0, 'samples', 0, _SAMPLES.value)
  strategies = {'1 device': tf.distribute.get_strategy(), '2 logical CPUs': None}
  strategies['2 logical CPUs'] = strategy_lib.get_strategy('mirrored')
  models, weights = {}, None
  for name, strategy in strategies.items():
    with strategy.scope():
      models[name] = experiment.build_model(config)
      models[name].build_variables()
    if weights is None:
      weights = models[name].get_weights()
    models[name].set_weights(weights)

  def bounds(name):
    return likelihood.rows(
        models[name], points, test_rows, _IW.value, _BATCH.value, strategies[name]
    ).log_prob

  def draws(name):
    return tasks.draw_rows(models[name], sample_rows, None, _BATCH.value, strategies[name])

  results = {name: {'bounds_points_per_s': [], 'samples_per_s': []} for name in strategies}
  outputs = {}
  for name in strategies:  # trace once, untimed, and keep the rows for the check
    outputs[name] = (bounds(name), draws(name))
  for _ in range(_REPEATS.value):
    for name in strategies:
      start = time.perf_counter()
      bounds(name)
      results[name]['bounds_points_per_s'].append(len(points) / (time.perf_counter() - start))
      start = time.perf_counter()
      draws(name)
      results[name]['samples_per_s'].append(_SAMPLES.value / (time.perf_counter() - start))
  (one_bounds, one_draws), (two_bounds, two_draws) = outputs.values()
  np.testing.assert_allclose(one_bounds, two_bounds, rtol=1e-4, atol=1e-4)
  for sampler in one_draws:
    np.testing.assert_allclose(one_draws[sampler], two_draws[sampler], rtol=1e-4, atol=1e-4)
  summary = {
      name: {key: statistics.median(values) for key, values in figures.items()}
      for name, figures in results.items()
  }
  one, two = summary.values()
  record = {
      'command': common.command(),
      'settings': dict(
          points=len(points),
          samples=_SAMPLES.value,
          iw_samples=_IW.value,
          batch_size=_BATCH.value,
          repeats=_REPEATS.value,
          model='rings default pair, untrained',
          num_params=models['1 device'].num_params,
      ),
      'note': 'Two logical devices share the 2 CPU cores: no speed-up expected or claimed; the '
      'same rows came out of both strategies.',
      'median': summary,
      'ratio_2_over_1': {key: two[key] / one[key] for key in one},
      'runs': results,
  }
  common.write_json(_OUTPUT.value, record)
  print(record['median'], record['ratio_2_over_1'], flush=True)


if __name__ == '__main__':
  app.run(main)
