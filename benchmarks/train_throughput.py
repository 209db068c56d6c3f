"""Training throughput: tfsmooth's PixelCNN++ against TFP's `tfd.PixelCNN`, with and without XLA.

Both networks get the same size, 28x28x1 images, --filters filters, --resnets gated resnet
blocks per resolution, 3 resolutions, --mixtures logistics, no dropout. One training step is
the mean discretized-logistic -log p(x) over a batch of --batch_size random 8-bit images, its
gradient and an Adam update, inside one `tf.function` (`jit_compile` for XLA). Each of the four
(model, XLA) cases runs in its own process, TFP's with TF_USE_LEGACY_KERAS=1 (it is a tf_keras
model), so that the process's peak resident memory belongs to that case. Reported per case:
examples/s (batch size / median step time over --steps after --warmup steps), the first call
(tracing and compilation) in seconds, trainable parameters, peak RSS; `ratio` = ours / TFP in
examples/s, with and without XLA. With --repeats R > 1 the processes alternate (TFP, ours) R
times per mode, each case reports the median of its R figures in examples/s (the single runs
under `runs`), and `ratio` is the ratio of the medians: on a shared machine one pair of runs
can be 20% off either way.

With --profile, each model instead runs 3 steps (no XLA) under the TensorFlow profiler, and the
output lists where the time goes: seconds per step by op type, summed over the host's op
threads, with the share of the total.

  python benchmarks/train_throughput.py --steps=30 \
      --output=benchmarks/results/train_throughput.json
  python benchmarks/train_throughput.py --steps=30 --modes=no_xla --repeats=5 \
      --output=benchmarks/results/train_throughput_no_xla_repeats.json
  python benchmarks/train_throughput.py --profile \
      --output=benchmarks/results/train_throughput_profile.json
"""

import collections
import glob
import json
import os
import resource
import statistics
import subprocess
import tempfile

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import common  # noqa: E402

_BATCH = flags.DEFINE_integer('batch_size', 32, 'Training batch size.')
_FILTERS = flags.DEFINE_integer('filters', 32, 'Filters of every hidden layer.')
_RESNETS = flags.DEFINE_integer('resnets', 1, 'Gated resnet blocks per resolution.')
_MIXTURES = flags.DEFINE_integer('mixtures', 5, 'Logistic mixture components per pixel.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed training steps per case.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps first (the first one traces).')
_PROFILE = flags.DEFINE_bool('profile', False, 'Profile op types instead of timing.')
_MODES = flags.DEFINE_list('modes', ['no_xla', 'xla'], 'Which of no_xla, xla to time.')
_REPEATS = flags.DEFINE_integer('repeats', 1, 'Alternating runs of each case (median kept).')
_CASE = flags.DEFINE_string(
    'case', '', 'Internal: run one case, ours|tfp,xla|plain|profile, and print its JSON.'
)
_TIMEOUT = flags.DEFINE_integer(
    'case_timeout',
    1800,
    'Seconds a case may take (XLA compiles '
    'included) before it is stopped and recorded as unfinished.',
)
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/train_throughput.json', 'JSON path.')

SHAPE = (28, 28, 1)


def _ours():
  """(-mean log p(x) in nats for x in [-1, 1], variables) of tfsmooth's PixelCNN++."""
  from tfsmooth.models import pixelcnn  # pylint: disable=g-import-not-at-top

  model = pixelcnn.PixelCNN(
      SHAPE,
      nr_resnet=_RESNETS.value,
      nr_filters=_FILTERS.value,
      nr_logistic_mix=_MIXTURES.value,
      dropout=0.0,
  )
  model.build_variables()
  return lambda x: -tf.reduce_mean(model.log_prob(x)), model.trainable_variables


def _tfp():
  """The same for tfd.PixelCNN (which reads 8-bit integer values)."""
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top

  dist = tfp.distributions.PixelCNN(
      image_shape=SHAPE,
      num_resnet=_RESNETS.value,
      num_hierarchies=3,
      num_filters=_FILTERS.value,
      num_logistic_mix=_MIXTURES.value,
      dropout_p=0.0,
  )
  loss = lambda x: -tf.reduce_mean(dist.log_prob(tf.round((x + 1.0) * 127.5)))  # noqa: E731
  loss(tf.zeros((1,) + SHAPE))  # builds the network
  return loss, dist.trainable_variables


def _profile(step, steps=3):
  """{op type: [seconds per step, share]} of `steps` calls of `step` under the profiler."""
  step()
  logdir = tempfile.mkdtemp()
  tf.profiler.experimental.start(logdir)
  for _ in range(steps):
    step()
  tf.profiler.experimental.stop()
  space = xplane_pb2.XSpace()
  with open(sorted(glob.glob(f'{logdir}/**/*.xplane.pb', recursive=True))[-1], 'rb') as f:
    space.ParseFromString(f.read())
  seconds = collections.Counter()
  for plane in space.planes:
    if plane.name != '/host:CPU':
      continue
    names = {key: meta.name for key, meta in plane.event_metadata.items()}
    for line in plane.lines:
      if line.name.startswith(('tf_Compute', 'tf_numa')):
        for event in line.events:
          op = names.get(event.metadata_id, '?').split(':')[-1]
          if op != 'Process':  # the executor's wrapper around the ops below it
            seconds[op] += event.duration_ps * 1e-12 / steps
  total = sum(seconds.values())
  return {
      'op_seconds_per_step': total,
      'by_op': {op: [s, s / total] for op, s in seconds.most_common(15)},
  }


def run_case(model, xla, profile=False):
  """Times (or profiles) one case in this process; returns its figures."""
  loss_fn, variables = (_ours if model == 'ours' else _tfp)()
  learning_rate, beta1, beta2, eps = 1e-4, 0.9, 0.999, 1e-8
  moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
  step = tf.Variable(0.0)

  @tf.function(jit_compile=xla)
  def train_step(x):  # Adam written out, so that both models get the very same update
    with tf.GradientTape() as tape:
      loss = loss_fn(x)
    step.assign_add(1.0)
    for v, g, (m, s) in zip(variables, tape.gradient(loss, variables), moments):
      m.assign(beta1 * m + (1 - beta1) * g)
      s.assign(beta2 * s + (1 - beta2) * tf.square(g))
      v.assign_sub(learning_rate * (m / (1 - beta1**step)) / (tf.sqrt(s / (1 - beta2**step)) + eps))
    return loss

  x = tf.constant(
      np.random.default_rng(0).integers(0, 256, (_BATCH.value,) + SHAPE) / 127.5 - 1.0, tf.float32
  )

  if profile:
    return _profile(lambda: train_step(x).numpy())
  first = common.timed(train_step, x)
  seconds = common.median_seconds(train_step, x, runs=_STEPS.value, warmup=_WARMUP.value - 1)
  return dict(
      examples_per_sec=_BATCH.value / seconds,
      step_seconds=seconds,
      first_call_seconds=first,
      num_params=common.num_params(variables),
      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  )


def _spawn(model, mode):
  """`run_case` in a fresh process (TFP's with TF_USE_LEGACY_KERAS=1: it is a tf_keras model)."""
  flag_values = common.forwarded_flags(
      ('batch_size', 'filters', 'resnets', 'mixtures', 'steps', 'warmup')
  )
  try:
    return common.spawn(
        __file__,
        [*flag_values, f'--case={model},{mode}'],
        env={'TF_USE_LEGACY_KERAS': '1'} if model == 'tfp' else None,
        timeout=_TIMEOUT.value,
    )
  except subprocess.TimeoutExpired:
    return {'unfinished': f'stopped after --case_timeout={_TIMEOUT.value} s'}


def _median_case(figures):
  """One case over its runs: the median timings, the largest peak RSS, and the runs."""
  finished = [f for f in figures if 'unfinished' not in f]
  if len(figures) == 1 or not finished:
    return figures[0]
  out = {
      key: statistics.median(f[key] for f in finished)
      for key in ('examples_per_sec', 'step_seconds', 'first_call_seconds')
  }
  out.update(
      num_params=finished[0]['num_params'],
      peak_rss_mb=max(f['peak_rss_mb'] for f in finished),
      runs=figures,
  )
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if _CASE.value:
    model, mode = _CASE.value.split(',')
    print(json.dumps(run_case(model, mode == 'xla', mode == 'profile')))
    return
  results = {}
  if _PROFILE.value:
    for model in ('tfp', 'ours'):
      results[model] = _spawn(model, 'profile')
    results['op_seconds_ratio'] = (
        results['tfp']['op_seconds_per_step'] / results['ours']['op_seconds_per_step']
    )
    results['load_average_after'] = os.getloadavg()
    common.write_json(_OUTPUT.value, results)
    print(json.dumps(results, indent=1))
    return
  for mode in _MODES.value:
    runs = {'tfp': [], 'ours': []}
    for _ in range(_REPEATS.value):
      for model in runs:
        runs[model].append(_spawn(model, 'xla' if mode == 'xla' else 'plain'))
        print(f'{model}_{mode}', runs[model][-1], flush=True)
    for model, figures in runs.items():
      results[f'{model}_{mode}'] = _median_case(figures)
  speed = lambda name: results[name].get('examples_per_sec')  # noqa: E731  (None: unfinished)
  results['ratio'] = {
      mode: speed(f'ours_{mode}') / speed(f'tfp_{mode}')
      if speed(f'ours_{mode}') and speed(f'tfp_{mode}')
      else None
      for mode in _MODES.value
  }
  results['settings'] = dict(
      batch_size=_BATCH.value,
      filters=_FILTERS.value,
      resnets=_RESNETS.value,
      mixtures=_MIXTURES.value,
      hierarchies=3,
      dropout=0.0,
      image_shape=SHAPE,
      steps=_STEPS.value,
      warmup=_WARMUP.value,
      repeats=_REPEATS.value,
      cpu_count=os.cpu_count(),
      load_average_after=os.getloadavg(),
  )
  common.write_json(_OUTPUT.value, results)
  print('ratio (ours / TFP, examples/s):', results['ratio'])


if __name__ == '__main__':
  app.run(main)
