"""Latency of exported SavedModels' signatures, loaded with TensorFlow alone (as a server would).

  python benchmarks/export_latency.py \
      --models=saved_models/rings/1,saved_models/fashion_mnist_smoothed/2 \
      --out=benchmarks/results/export_latency.json

For each version directory: `sample` on N seed rows (N = --points for point models, --images
for image models) and `log_prob` on as many test-like inputs (the model's own samples), timed
--repeats times after one warm-up call; the first call (tracing and loading work) is reported
apart. Timings are wall-clock seconds on this machine, with its load recorded beside them.
"""

import json
import os
import statistics
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_MODELS = flags.DEFINE_list('models', None, 'Exported version directories.', required=True)
_POINTS = flags.DEFINE_integer('points', 1000, 'Rows per request for point models.')
_IMAGES = flags.DEFINE_integer('images', 16, 'Rows per request for image models.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed calls per signature.')
_OUT = flags.DEFINE_string('out', 'benchmarks/results/export_latency.json', 'JSON output.')


def _relative(path):
  """`path` as recorded in a result file: relative to the working directory if absolute."""
  return os.path.relpath(path) if os.path.isabs(path) else path


def timed(fn, repeats):
  """(first call seconds, median of `repeats` further calls, last outputs)."""
  start = time.perf_counter()
  out = fn()
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - start)
  return first, statistics.median(times), out


def measure(version_dir, repeats):
  with open(os.path.join(version_dir, 'assets.extra', 'tfsmooth.json')) as f:
    meta = json.load(f)
  start = time.perf_counter()
  model = tf.saved_model.load(version_dir)
  load_seconds = time.perf_counter() - start
  rows = _IMAGES.value if len(meta['event_shape']) == 3 else _POINTS.value
  seeds = tf.constant(np.stack([np.zeros(rows), np.arange(rows)], 1), tf.int32)
  first, median, out = timed(lambda: model.signatures['sample'](seed=seeds), repeats)
  result = {
      'dataset': meta['dataset'],
      'smoothed': meta['smoothed'],
      'rows': rows,
      'load_seconds': load_seconds,
      'sample': {'first_call_seconds': first, 'median_seconds': median},
  }
  args = {'x': out['x']}
  if meta['smoothed']:
    args['seed'] = seeds
    result['iw_samples'] = meta['iw_samples']
  first, median, _ = timed(lambda: model.signatures['log_prob'](**args), repeats)
  result['log_prob'] = {'first_call_seconds': first, 'median_seconds': median}
  return result


def main(argv):
  del argv
  results = {
      'command': 'python benchmarks/export_latency.py --models='
      + ','.join(map(_relative, _MODELS.value)),
      'load_average_at_start': os.getloadavg(),
      'cpus': os.cpu_count(),
      'tensorflow_version': tf.__version__,
      'models': {},
  }
  for version_dir in _MODELS.value:
    result = results['models'][_relative(version_dir)] = measure(version_dir, _REPEATS.value)
    print(version_dir, json.dumps(result), flush=True)
  results['load_average_at_end'] = os.getloadavg()
  os.makedirs(os.path.dirname(_OUT.value) or '.', exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
