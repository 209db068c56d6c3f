"""PixelCNN++ sampling speed: the cached sampler against the naive one and TFP's `tfd.PixelCNN`.

For 28x28x1 and 32x32x3 images, a batch of --batch_size, discretized-logistic head, dropout
off, two network sizes (3 resolutions each; TFP's network gets the same sizes):

  paper   160 filters, 5 gated resnets per resolution, 10 logistics (PixelCNN++ as in the paper)
  cpu     32 filters, 1 resnet, 10 logistics (tfsmooth/configs/fashion_mnist.py)

Seconds per batch, per sampler:
  cached       `PixelCNN.sample` (the default cached sampler) in a `tf.function`; second call
  cached_xla   the same with `jit_compile=True`; second call (the first compiles)
  naive        the reference sampler (`sampler='naive'`), one call after tracing
  tfp          `tfd.PixelCNN.sample`, in its own process with TF_USE_LEGACY_KERAS=1; second call
For the models in --extrapolate (a full naive batch would take hours), naive and tfp are
extrapolated: the median seconds of --pixels steps of their loop body (one network evaluation
on the whole batch and one draw of every pixel) times the steps a batch takes (H W for the
naive sampler, H W + 1 for TFP); the JSON says so in `naive_extrapolated_from_pixels` and
`tfp_extrapolated_from_pixels`. `speedup_vs_naive` and `speedup_vs_tfp` compare `cached` (no
XLA) with them; the `_xla` variants compare `cached_xla`. Results are written after every case.
The machine is shared: compare the ratios, measured in the same run, not the seconds.

  python benchmarks/sampling_speed.py --output=benchmarks/results/sampling_speed.json
"""

import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402

_BATCH = flags.DEFINE_integer('batch_size', 16, 'Images per batch.')
_PIXELS = flags.DEFINE_integer('pixels', 3, 'Timed loop steps when extrapolating.')
_EXTRAPOLATE = flags.DEFINE_list(
    'extrapolate',
    ['paper'],
    'Models whose naive and TFP samplers are timed on --pixels steps and extrapolated.',
)
_MODELS = flags.DEFINE_list('models', ['cpu', 'paper'], 'Network sizes to run.')
_SHAPES = flags.DEFINE_list('shapes', ['28x28x1', '32x32x3'], 'Image shapes HxWxC.')
_XLA = flags.DEFINE_bool('xla', True, 'Also time the cached sampler under XLA.')
_CASE = flags.DEFINE_string('case', '', 'Internal: time TFP on one shape,model and print JSON.')
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/sampling_speed.json', 'JSON path.')

MODELS = {
    'paper': dict(filters=160, resnets=5, mixtures=10),
    'cpu': dict(filters=32, resnets=1, mixtures=10),
}


def _shape(name):
  return tuple(int(d) for d in name.split('x'))


def _per_step(step, *args):
  """Median seconds of --pixels calls of step(*args), after one untimed call."""
  return common.median_seconds(step, *args, runs=_PIXELS.value)


def time_tfp(shape, model):
  """Seconds per batch of tfd.PixelCNN (this process must run with TF_USE_LEGACY_KERAS=1)."""
  import tensorflow_probability as tfp  # pylint: disable=g-import-not-at-top

  size = MODELS[model]
  dist = tfp.distributions.PixelCNN(
      image_shape=shape,
      num_resnet=size['resnets'],
      num_hierarchies=3,
      num_filters=size['filters'],
      num_logistic_mix=size['mixtures'],
      dropout_p=0.0,
  )
  n, pixels = _BATCH.value, shape[0] * shape[1]
  if model in _EXTRAPOLATE.value:
    # TFP's sampling loop body: the network on the whole batch, then every pixel drawn.
    x = tf.random.uniform((n,) + shape, -1.0, 1.0, seed=1)
    dist.network(x[:1], training=False)  # builds the network outside the tf.function
    sample_channels = dist._sample_channels  # pylint: disable=protected-access
    step = tf.function(lambda x: sample_channels(*dist.network(x, training=False)), autograph=False)
    return dict(
        tfp_seconds=_per_step(step, x) * (pixels + 1), tfp_extrapolated_from_pixels=_PIXELS.value
    )
  sample = tf.function(lambda: dist.sample(n, seed=7))  # tfd.PixelCNN takes int seeds only
  common.timed(sample)  # its first call takes much longer than the second
  return dict(tfp_seconds=common.timed(sample), tfp_extrapolated_from_pixels=None)


def _spawn_tfp(shape_name, model):
  """`time_tfp` in a fresh process with TF_USE_LEGACY_KERAS=1 (tfd.PixelCNN is tf_keras)."""
  flag_values = common.forwarded_flags(('batch_size', 'pixels', 'extrapolate'))
  return common.spawn(
      __file__, [*flag_values, f'--case={shape_name},{model}'], env={'TF_USE_LEGACY_KERAS': '1'}
  )


def _ours(shape, model, sampler='cached'):
  from tfsmooth.models import pixelcnn  # pylint: disable=g-import-not-at-top

  size = MODELS[model]
  net = pixelcnn.PixelCNN(
      shape,
      nr_resnet=size['resnets'],
      nr_filters=size['filters'],
      nr_logistic_mix=size['mixtures'],
      dropout=0.0,
      sampler=sampler,
  )
  net.build_variables()
  return net


def time_ours(shape, model):
  """Seconds per batch of tfsmooth's cached and naive samplers on one set of weights."""
  net = _ours(shape, model)
  n, pixels = _BATCH.value, shape[0] * shape[1]
  sample = tf.function(lambda seed: net.sample(n, seed=seed))
  out = dict(
      num_params=net.num_params,
      cached_first_call_seconds=common.timed(sample, tf.constant([0, 0])),
      cached_seconds=common.timed(sample, tf.constant([0, 1])),
  )
  naive_net = _ours(shape, model, sampler='naive')
  naive_net.set_weights(net.get_weights())
  naive = naive_net.distribution()
  if model in _EXTRAPOLATE.value:
    # The naive sampler's loop body: the network on the whole batch, every pixel's draw.
    step = tf.function(
        lambda x, u: naive.pixel_distributions(x, training=False).sample_from_uniform(u),
        autograph=False,
    )  # autograph mistakes the method
    x = tf.random.stateless_uniform((n,) + shape, [1, 2], -1.0, 1.0)
    u = tf.random.stateless_uniform((n,) + shape[:2] + (naive.noise_depth,), [1, 3])
    out.update(
        naive_seconds=_per_step(step, x, u) * pixels, naive_extrapolated_from_pixels=_PIXELS.value
    )
  else:
    naive_sample = tf.function(lambda seed: naive.sample(n, seed=seed))
    naive_sample.get_concrete_function(tf.TensorSpec([2], tf.int32))
    out.update(
        naive_seconds=common.timed(naive_sample, tf.constant([0, 1])),
        naive_extrapolated_from_pixels=None,
    )
  return out


def time_ours_xla(shape, model):
  """Seconds per batch of the cached sampler compiled with XLA."""
  net, n = _ours(shape, model), _BATCH.value
  xla = tf.function(lambda seed: net.sample(n, seed=seed), jit_compile=True)
  return dict(
      cached_xla_first_call_seconds=common.timed(xla, tf.constant([0, 0])),
      cached_xla_seconds=common.timed(xla, tf.constant([0, 1])),
  )


def _ratios(r):
  for peer in ('naive', 'tfp'):
    if f'{peer}_seconds' in r:
      r[f'speedup_vs_{peer}'] = r[f'{peer}_seconds'] / r['cached_seconds']
      if 'cached_xla_seconds' in r:
        r[f'speedup_vs_{peer}_xla'] = r[f'{peer}_seconds'] / r['cached_xla_seconds']
  return r


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if _CASE.value:
    shape_name, model = _CASE.value.split(',')
    print(json.dumps(time_tfp(_shape(shape_name), model)))
    return
  results = dict(
      command=common.command(),
      settings=dict(
          batch_size=_BATCH.value,
          pixels=_PIXELS.value,
          extrapolate=_EXTRAPOLATE.value,
          head='discretized_logistic',
          hierarchies=3,
          dropout=0.0,
          models=MODELS,
          cpu_count=os.cpu_count(),
          load_average_start=os.getloadavg(),
      ),
  )
  cases = [(shape, model) for shape in _SHAPES.value for model in _MODELS.value]
  timings = [(case, lambda s, m: {**_spawn_tfp(s, m), **time_ours(_shape(s), m)}) for case in cases]
  if _XLA.value:  # after the rest: compiling the paper-sized sampler takes long
    timings += [(case, lambda s, m: time_ours_xla(_shape(s), m)) for case in cases]
  for (shape_name, model), timing in timings:
    r = results.setdefault(shape_name, {}).setdefault(model, {})
    r.update(timing(shape_name, model))
    _ratios(r)
    results['settings']['load_average_end'] = os.getloadavg()
    common.write_json(_OUTPUT.value, results)
    print(
        shape_name,
        model,
        {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()},
        flush=True,
    )


if __name__ == '__main__':
  app.run(main)
