"""Image pipeline throughput against a training step's consumption (issue 24: the input
pipeline of a user's images must never be the bottleneck).

Data: --num_images generated PNGs (smooth random colour pictures of --source_size pixels,
RGB, so that every image is converted, centre-cropped and resized to --image_size x
--image_size x --channels), in a temporary folder removed afterwards (or --folder, a folder of
your own), and the same number of images as a uint8 .npy array already of the target shape.
Three pipelines of `image_sources` (the training examples, batched by --batch_size with
drop_remainder and prefetch(2), autotuning off, as tfsmooth/train/inputs.py feeds a run):
  folder_cached:   the folder's fitted images kept in memory after the up-front check (the
                   default for anything under image_files.CACHE_BYTES);
  folder_streamed: the folder decoded in the pipeline (cache_bytes=0: a folder too big to keep);
  array:           the .npy array.
For each: the seconds of `from_config` (a folder's check decodes every file once) and the
pipeline's images/s alone (--batches timed batches after --warmup).

Consumption: one training step of the smoothed pair of tfsmooth/configs/my_images.py (its
batch, sizes and jit setting unless --batch_size / --filters / --resnets say otherwise) on a
fixed batch: images/s = batch / median step seconds over --steps. `ratio` = pipeline / step
images/s: above 1 the pipeline alone outpaces the step. Both share the machine's cores in a
real run, so the figure that settles it is `fed_overhead`: the median step fed from each
pipeline against the step on the fixed batch (fed / fixed - 1; about 0 when the pipeline keeps
up).

  python benchmarks/image_pipeline.py --num_images=5000 --steps=30 \
      --output=benchmarks/results/image_pipeline.json
"""

import os
import shutil
import statistics
import tempfile
import time

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402

_NUM_IMAGES = flags.DEFINE_integer('num_images', 5000, 'Images generated (folder and array).')
_SOURCE_SIZE = flags.DEFINE_integer('source_size', 36, 'Side of the generated PNGs.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 28, 'data.image_size the images are fit to.')
_CHANNELS = flags.DEFINE_integer('channels', 1, 'data.channels the images are fit to.')
_BATCH = flags.DEFINE_integer('batch_size', 0, "Batch size (0: the config's, 32).")
_FILTERS = flags.DEFINE_integer('filters', 0, "Filters of both networks (0: the config's).")
_RESNETS = flags.DEFINE_integer('resnets', 0, "Gated resnets per resolution (0: the config's).")
_STEPS = flags.DEFINE_integer('steps', 30, 'Timed training steps per case.')
_BATCHES = flags.DEFINE_integer('batches', 100, 'Timed pipeline batches per case.')
_WARMUP = flags.DEFINE_integer('warmup', 3, 'Untimed steps / batches first.')
_FOLDER = flags.DEFINE_string('folder', '', 'A folder of your images instead of generated ones.')
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/image_pipeline.json', 'JSON path.')


def _pictures(count, size, seed=0):
  """uint8 [count, size, size, 3]: sums of a few random colour waves (PNG-compressible, like
  photographs rather than noise)."""
  rng = np.random.default_rng(seed)
  grid = np.linspace(0.0, 1.0, size)
  yy, xx = np.meshgrid(grid, grid, indexing='ij')
  out = np.empty((count, size, size, 3), np.uint8)
  for i in range(count):
    freq = rng.uniform(1, 6, (3, 2))
    phase = rng.uniform(0, 2 * np.pi, 3)
    waves = np.sin(
        2 * np.pi * (freq[:, :1, None] * yy + freq[:, 1:, None] * xx) + phase[:, None, None]
    )
    out[i] = np.round((waves.transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
  return out


def _write_folder(directory, pictures):
  for i, picture in enumerate(pictures):
    tf.io.write_file(os.path.join(directory, f'{i:06d}.png'), tf.io.encode_png(picture))


def _batched(dataset, batch):
  """The examples as the trainer takes them (tfsmooth/train/inputs.py, one pipeline)."""
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.batch(batch, drop_remainder=True).prefetch(2).with_options(options)


def _pipeline_rate(source, batch, cases_seed=0):
  iterator = iter(_batched(source.train_examples(cases_seed), batch))
  for _ in range(_WARMUP.value):
    next(iterator)
  start = time.perf_counter()
  for _ in range(_BATCHES.value):
    tf.nest.map_structure(lambda t: t.numpy(), next(iterator))
  return _BATCHES.value * batch / (time.perf_counter() - start)


def _model_and_step(config):
  import keras  # pylint: disable=g-import-not-at-top

  from tfsmooth import experiment  # pylint: disable=g-import-not-at-top

  model = experiment.build_model(config)
  model.build_variables()
  optimizer = keras.optimizers.Adam(config.train.learning_rate)

  @tf.function(jit_compile=config.train.jit_compile)
  def step(x, seed):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(model(x, seed=seed, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  return model, step


def _step_seconds(step, batches):
  """Median seconds of `step` over --steps batches drawn from `batches()` after --warmup."""
  seeds = iter(np.arange(2 * (_STEPS.value + _WARMUP.value), dtype=np.int32).reshape(-1, 2))
  for _ in range(_WARMUP.value):
    step(batches(), next(seeds)).numpy()
  times = []
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    step(batches(), next(seeds)).numpy()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  from tfsmooth.configs import my_images  # pylint: disable=g-import-not-at-top
  from tfsmooth.data import image_sources  # pylint: disable=g-import-not-at-top

  config = my_images.get_config('smoothed')
  size, channels = _IMAGE_SIZE.value, _CHANNELS.value
  config.data.update(image_size=size, channels=channels)
  config.data.event_shape = [size, size, channels]
  config.smoothing.sigma = 0.5  # the step's cost does not depend on sigma
  for model in (config.model, config.conditional_model):
    model.nr_filters = _FILTERS.value or model.nr_filters
    model.nr_resnet = _RESNETS.value or model.nr_resnet
  batch = _BATCH.value or config.train.batch_size

  scratch = tempfile.mkdtemp(prefix='image_pipeline_')
  try:
    folder = _FOLDER.value
    if not folder:
      folder = os.path.join(scratch, 'images')
      os.makedirs(folder)
      _write_folder(folder, _pictures(_NUM_IMAGES.value, _SOURCE_SIZE.value))
    array_path = os.path.join(scratch, 'images.npy')
    array = _pictures(_NUM_IMAGES.value, size, seed=1)
    np.save(array_path, array[..., :1] if channels == 1 else array)

    def build(path, **keywords):
      start = time.perf_counter()
      source = image_sources.from_config(dict(config.data.to_dict(), path=path), **keywords)
      return source, time.perf_counter() - start

    sources = {
        'folder_cached': build(folder),
        'folder_streamed': build(folder, cache_bytes=0),
        'array': build(array_path),
    }
    model, step = _model_and_step(config)
    fixed = tf.constant(sources['array'][0].split('train', batch)[0])
    fixed_seconds = _step_seconds(step, lambda: fixed)
    consumption = batch / fixed_seconds
    results = {
        'command': common.command(),
        'consumption': {
            'step_seconds': fixed_seconds,
            'images_per_sec': consumption,
            'num_params': model.num_params,
        },
    }
    for name, (source, build_seconds) in sources.items():
      rate = _pipeline_rate(source, batch)
      iterator = iter(_batched(source.train_examples(1), batch))
      fed_seconds = _step_seconds(step, lambda it=iterator: next(it))
      results[name] = {
          'from_config_seconds': build_seconds,
          'images': sum(source.facts()['counts'].values()),
          'pipeline_images_per_sec': rate,
          'ratio': rate / consumption,
          'fed_step_seconds': fed_seconds,
          'fed_overhead': fed_seconds / fixed_seconds - 1,
      }
      print(name, results[name], flush=True)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  results['settings'] = dict(
      num_images=_NUM_IMAGES.value,
      source_size=None if _FOLDER.value else _SOURCE_SIZE.value,
      folder=common.relative(_FOLDER.value) if _FOLDER.value else None,
      image_size=size,
      channels=channels,
      batch_size=batch,
      nr_filters=config.model.nr_filters,
      nr_resnet=config.model.nr_resnet,
      jit_compile=config.train.jit_compile,
      steps=_STEPS.value,
      batches=_BATCHES.value,
      warmup=_WARMUP.value,
      cpu_count=os.cpu_count(),
      load_average_after=os.getloadavg(),
  )
  common.write_json(_OUTPUT.value, results)
  print('pipeline / step images/s:', {k: results[k]['ratio'] for k in sources})


if __name__ == '__main__':
  app.run(main)
