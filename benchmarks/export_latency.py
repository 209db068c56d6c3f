"""Size, load time and call latency of SavedModel exports, before and after an export change.

  git worktree add runs/old_export 8c419e2  # the commit before the export's checks and sharing
  nice -n 0 python benchmarks/export_latency.py \
      --models=saved_models/rings/2,saved_models/olympics/2,saved_models/fashion_mnist_smoothed/3,saved_models/fashion_mnist_baseline/3 \
      --before_checkout=runs/old_export --out=benchmarks/results/export_latency.json
  git worktree remove runs/old_export

The weights of each --models version directory are exported twice in this run, each time in a
subprocess: by the code of --before_checkout (8c419e2, the commit before the change: its
export.py is 7c1b243's, but 7c1b243's PixelCNN could not yet export a plain model) and by this
checkout's code, both rebuilt from the version's tfsmooth.json config with the weights of its
variables checkpoint. Each export is then measured in fresh processes that import
TensorFlow only (as a server would): saved_model.pb and variables sizes, and the medians over
--repeats processes of the load seconds and of the first and second call of `sample` on N seed
rows (N = --points for point models, --images for image models) and, for image models, of
`inpaint` (the top half of those samples known). For exports that carry TF Serving warm-up
requests, one more process loads the export, replays them (as TF Serving does at load) and
times the first `sample` call after them: what a server's first client waits for (its load is
recorded apart, as `warmup_process_load_seconds`: records made before 2026-12-02 let it replace
the median `load_seconds` of exports with warm-up requests). Timings are
wall-clock seconds on a machine shared with other jobs (its load is recorded beside them), so
the record gives after / before ratios of the same run.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

_MODELS = flags.DEFINE_list('models', None, 'Exported version directories.', required=True)
_BEFORE = flags.DEFINE_string(
    'before_checkout', None, 'A checkout of the code before the change (git worktree).'
)
_POINTS = flags.DEFINE_integer('points', 1000, 'Rows per request for point models.')
_IMAGES = flags.DEFINE_integer('images', 4, 'Rows per request for image models.')
_REPEATS = flags.DEFINE_integer(
    'repeats', 3, 'Fresh processes that load and call each export (medians are recorded).'
)
_OUT = flags.DEFINE_string('out', 'benchmarks/results/export_latency.json', 'JSON output.')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs with PYTHONPATH=<a checkout>: rebuilds the model of argv[1] (a version directory), reads
# its weights (the model_variables every tfsmooth export tracks, in model.variables order),
# exports it into argv[2] with that checkout's code and prints the seconds the export took.
EXPORT = r"""
import json, os, sys, time
import ml_collections
import tensorflow as tf
from tfsmooth import experiment, export
version_dir, out = sys.argv[1], sys.argv[2]
with open(os.path.join(version_dir, 'assets.extra', 'tfsmooth.json')) as f:
  meta = json.load(f)
model = experiment.build_model(experiment.settle(ml_collections.ConfigDict(meta['config'])))
model.build_variables()
tf.train.Checkpoint(model_variables=[v.value for v in model.variables]).read(
    os.path.join(version_dir, 'variables', 'variables')).expect_partial()
start = time.perf_counter()
export.export(model, out, meta['iw_samples'] or 1)
print(json.dumps({'export_seconds': time.perf_counter() - start}))
"""

# Runs in a fresh interpreter that imports TensorFlow only: load, then sample (and inpaint)
# twice, or (argv[3] == 'warmup') replays the warm-up records first and calls sample once.
MEASURE = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
version_dir, rows, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
model = tf.saved_model.load(version_dir)
out = {'load_seconds': time.perf_counter() - start}
signatures = model.signatures
seeds = tf.constant(np.stack([np.zeros(rows), np.arange(rows)], 1), tf.int32)

def timed(call):
  start = time.perf_counter()
  result = call()
  return time.perf_counter() - start, result

sample = lambda: signatures['sample'](seed=seeds)
if mode == 'warmup':
  from tensorflow_serving.apis import prediction_log_pb2
  start = time.perf_counter()
  for record in tf.data.TFRecordDataset(version_dir + '/assets.extra/tf_serving_warmup_requests'):
    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    signatures[request.model_spec.signature_name](**inputs)
  out['warmup_seconds'] = time.perf_counter() - start
  out['sample_first_call_after_warmup_seconds'] = timed(sample)[0]
else:
  first, drawn = timed(sample)
  out['sample'] = {'first_call_seconds': first, 'second_call_seconds': timed(sample)[0]}
  if 'inpaint' in signatures:  # the images just drawn, their top half known
    known = tf.fill([rows], int(drawn['x'].shape[1]) // 2)
    inpaint = lambda: signatures['inpaint'](x=drawn['x'], num_known_rows=known, seed=seeds)
    first = timed(inpaint)[0]
    out['inpaint'] = {'first_call_seconds': first, 'second_call_seconds': timed(inpaint)[0]}
print(json.dumps(out))
"""


def _relative(path):
  """`path` as recorded in a result file: relative to the working directory if absolute."""
  return os.path.relpath(path) if os.path.isabs(path) else path


def _python(code, args, pythonpath=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  if pythonpath:
    env['PYTHONPATH'] = pythonpath
  done = subprocess.run(
      [sys.executable, '-c', code, *map(str, args)],
      env=env,
      capture_output=True,
      text=True,
      check=False,
      cwd=pythonpath or REPO,
  )
  if done.returncode:
    raise RuntimeError(f'{code[:60]!r}... failed:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def _size(path):
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def measure(version_dir, rows, repeats):
  """Sizes and timings of one export (see the module docstring): the medians of `repeats`
  fresh processes, each value beside them; the warm-up replay once."""
  result = {
      'saved_model_pb_bytes': os.path.getsize(os.path.join(version_dir, 'saved_model.pb')),
      'variables_bytes': _size(os.path.join(version_dir, 'variables')),
  }
  runs = [_python(MEASURE, [version_dir, rows, 'calls']) for _ in range(repeats)]
  result['load_seconds'] = statistics.median([r['load_seconds'] for r in runs])
  for name in ('sample', 'inpaint'):
    if name in runs[0]:
      result[name] = {
          which: statistics.median([r[name][which] for r in runs]) for which in runs[0][name]
      }
  result['each_process'] = runs
  warmup = os.path.join(version_dir, 'assets.extra', 'tf_serving_warmup_requests')
  if os.path.exists(warmup):
    # One process more; its single load stays apart from the median above.
    replay = _python(MEASURE, [version_dir, rows, 'warmup'])
    result['warmup_process_load_seconds'] = replay.pop('load_seconds')
    result.update(replay)
  return result


def _ratios(before, after):
  out = {}
  for key in ('saved_model_pb_bytes', 'variables_bytes', 'load_seconds', 'export_seconds'):
    out[key] = after[key] / before[key]
  for name in ('sample', 'inpaint'):
    if name in before:
      for which in before[name]:
        out[f'{name}_{which}'] = after[name][which] / before[name][which]
  return out


def _commit(checkout):
  return subprocess.run(
      ['git', '-C', checkout, 'rev-parse', 'HEAD'], capture_output=True, text=True, check=True
  ).stdout.strip()


def main(argv):
  del argv
  if not _BEFORE.value:
    raise app.UsageError(
        'Pass --before_checkout=<a checkout of the code before the change> (see the docstring).'
    )
  results = {
      'command': 'nice -n 0 python benchmarks/export_latency.py --models='
      + ','.join(map(_relative, _MODELS.value))
      + ' --before_checkout=<git worktree of the before commit>'
      + f' --points={_POINTS.value} --images={_IMAGES.value} --repeats={_REPEATS.value}',
      'before_commit': _commit(_BEFORE.value),
      'after_commit': _commit(REPO),
      'machine': (
          f'{os.cpu_count()} CPU cores shared with other jobs while measured (load averages at '
          'start and end below): compare the after / before ratios of this run, not the '
          'seconds across runs'
      ),
      'load_average_at_start': os.getloadavg(),
      'models': {},
  }
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  results['tensorflow_version'] = tf.__version__
  for version_dir in _MODELS.value:
    with open(os.path.join(version_dir, 'assets.extra', 'tfsmooth.json')) as f:
      meta = json.load(f)
    rows = _IMAGES.value if len(meta['event_shape']) == 3 else _POINTS.value
    entry = {'dataset': meta['dataset'], 'smoothed': meta['smoothed'], 'rows': rows}
    with tempfile.TemporaryDirectory() as scratch:
      for label, checkout in (('before', _BEFORE.value), ('after', REPO)):
        out = os.path.join(scratch, label)
        start = time.perf_counter()
        exported = _python(EXPORT, [os.path.abspath(version_dir), out], pythonpath=checkout)
        exported['export_process_seconds'] = time.perf_counter() - start
        entry[label] = {**exported, **measure(os.path.join(out, '1'), rows, _REPEATS.value)}
        print(version_dir, label, json.dumps(entry[label]), flush=True)
    entry['after_over_before'] = _ratios(entry['before'], entry['after'])
    results['models'][_relative(version_dir)] = entry
  results['load_average_at_end'] = os.getloadavg()
  os.makedirs(os.path.dirname(_OUT.value) or '.', exist_ok=True)
  with open(_OUT.value, 'w') as f:
    json.dump(results, f, indent=2)
    f.write('\n')


if __name__ == '__main__':
  app.run(main)
