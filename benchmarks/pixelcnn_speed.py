"""PixelCNN++ speed on 28x28x1 images against TFP's `tfd.PixelCNN` in the same process.

Timed per model, on the same random 8-bit batch: a training step (log_prob, gradient, an SGD
update; `tf.function`, no XLA), median of --steps after two warm-up steps; and drawing
--num_samples images (one call after a warm-up call that traces it): `model.draw(seeds)` with
one seed row per image, the model's own samples (a pair's `two_step`: x~ ~ p(x~), then
x ~ p(x | x~)), every tfsmooth PixelCNN++ with --sampler (`cached`, the default sampler of
`PixelCNN`, or `naive`, the reference that runs the whole network once per pixel; TFP's
sampler is naive). Models (--models, default all):

  tfp_pixelcnn     tfd.PixelCNN, 32 filters, 1 resnet per block, 3 hierarchies, 5 logistics
                   (the peer; every ratio is against it)
  ours_32          tfsmooth PixelCNN++, discretized head, 32 filters, 1 resnet, 10 logistics
  baseline         the fashion_mnist.py:baseline network (45 filters)
  smoothed_pair    the fashion_mnist.py:smoothed pair (p(x~) and the stacked p(x | x~), 32 filters)

Writes --output (JSON). Machines here are shared: compare the ratios, not the seconds.
--image_size shrinks every network's images (tests run the driver at 8x8).

  python benchmarks/pixelcnn_speed.py --sampler=naive \
      --output=benchmarks/results/pixelcnn_speed.json
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import common  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth import seeds  # noqa: E402
from tfsmooth.configs import fashion_mnist  # noqa: E402
from tfsmooth.models import pixelcnn  # noqa: E402

tfd = tfp.distributions

_BATCH = flags.DEFINE_integer('batch_size', 32, 'Training batch size.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed training steps per model.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 4, 'Images drawn in the sampling timing.')
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/pixelcnn_speed.json', 'JSON path.')
_SAMPLER = flags.DEFINE_enum(
    'sampler', 'cached', ['cached', 'naive'], "The tfsmooth PixelCNN++s' sampler."
)
_MODELS = flags.DEFINE_list(
    'models',
    ['tfp_pixelcnn', 'ours_32', 'baseline', 'smoothed_pair'],
    'Models to time (ratios are against tfp_pixelcnn, which must be among them).',
)
_IMAGE_SIZE = flags.DEFINE_integer(
    'image_size', 28, 'Height and width of the images (a multiple of 4).', lower_bound=4
)


def _shape():
  return (_IMAGE_SIZE.value, _IMAGE_SIZE.value, 1)


def _tfp_pixelcnn():
  """The peer: (loss_fn(x_in_[-1, 1]), sample_fn(n), variables)."""
  dist = tfd.PixelCNN(
      image_shape=_shape(),
      num_resnet=1,
      num_hierarchies=3,
      num_filters=32,
      num_logistic_mix=5,
      dropout_p=0.0,
  )
  loss = lambda x: -tf.reduce_mean(dist.log_prob(tf.round((x + 1.0) * 127.5)))  # noqa: E731
  # tfd.PixelCNN takes only stateful int seeds.
  sample = lambda n: dist.sample(n, seed=7)  # noqa: E731
  return loss, sample, dist.trainable_variables


def _pixelcnns(model):
  """The `PixelCNN`s in `model` (itself, or the two stages of a pair), wherever they sit."""
  if isinstance(model, pixelcnn.PixelCNN):
    return [model]
  return [found for layer in model.layers for found in _pixelcnns(layer)]


def _ours(model):
  """(loss_fn, sample_fn, variables) of a tfsmooth model: its training loss, and n images of
  its own last sampler (a pair's two-step) from n seed rows, drawn with --sampler."""
  model.build_variables()
  networks = _pixelcnns(model)
  if not networks:
    raise ValueError(f'{type(model).__name__} holds no PixelCNN.')
  for network in networks:
    network.sampler = _SAMPLER.value
  loss = lambda x: tf.reduce_mean(model.training_loss(x, tf.constant([0, 1])))  # noqa: E731
  sampler = model.samplers[-1]
  sample = lambda n: model.draw(seeds.rows(0, 'samples', 0, n), [sampler])[sampler]  # noqa: E731
  return loss, sample, model.trainable_variables


def _fashion(variant):
  """The Fashion-MNIST config's model, on --image_size images."""
  config = experiment.settle(fashion_mnist.get_config(variant))
  config.data.event_shape = list(_shape())
  return _ours(experiment.build_model(config))


MODELS = {
    'tfp_pixelcnn': _tfp_pixelcnn,
    'ours_32': lambda: _ours(
        pixelcnn.PixelCNN(_shape(), nr_resnet=1, nr_filters=32, nr_logistic_mix=10, dropout=0.0)
    ),
    'baseline': lambda: _fashion('baseline'),
    'smoothed_pair': lambda: _fashion('smoothed'),
}


def measure(build, x):
  loss_fn, sample_fn, variables = build()

  @tf.function
  def train_step(batch):
    with tf.GradientTape() as tape:
      loss = loss_fn(batch)
    for v, g in zip(variables, tape.gradient(loss, variables)):
      v.assign_sub(1e-4 * g)
    return loss

  step_seconds = common.median_seconds(train_step, x, runs=_STEPS.value, warmup=2)
  sample = tf.function(lambda: sample_fn(_NUM_SAMPLES.value))
  common.timed(sample)  # traces
  sample_seconds = common.timed(sample)
  return dict(
      step_seconds=step_seconds,
      sample_seconds=sample_seconds,
      num_params=common.num_params(variables),
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  unknown = sorted(set(_MODELS.value) - set(MODELS))
  if unknown or 'tfp_pixelcnn' not in _MODELS.value:
    raise app.UsageError(
        f'--models takes tfp_pixelcnn and any of {", ".join(MODELS)}; got {_MODELS.value}.'
    )
  n_samples = _NUM_SAMPLES.value
  rng = np.random.default_rng(0)
  x = tf.constant(rng.integers(0, 256, (_BATCH.value,) + _shape()) / 127.5 - 1.0, tf.float32)
  results = {}
  for name in _MODELS.value:
    results[name] = measure(MODELS[name], x)
    print(name, {k: round(v, 3) for k, v in results[name].items()}, flush=True)
  peer = results['tfp_pixelcnn']
  for r in results.values():
    r['step_ratio_to_tfp'] = r['step_seconds'] / peer['step_seconds']
    r['sample_ratio_to_tfp'] = r['sample_seconds'] / peer['sample_seconds']
  results['settings'] = dict(
      command=common.command(),
      image_shape=list(_shape()),
      sampler=_SAMPLER.value,
      batch_size=_BATCH.value,
      steps=_STEPS.value,
      num_samples=n_samples,
      cpu_count=os.cpu_count(),
      load_average=os.getloadavg(),
  )
  common.write_json(_OUTPUT.value, results)
  for name, r in results.items():
    if name != 'settings':
      print(
          f'{name:14s} step {r["step_seconds"]:.3f} s ({r["step_ratio_to_tfp"]:.2f}x TFP), '
          f'sample {n_samples} in {r["sample_seconds"]:.1f} s '
          f'({r["sample_ratio_to_tfp"]:.2f}x TFP), {r["num_params"]:,} params'
      )


if __name__ == '__main__':
  app.run(main)
