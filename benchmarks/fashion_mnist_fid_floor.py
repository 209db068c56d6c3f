"""Domain FID / KID / IS floor on Fashion-MNIST: training images scored against test images.

A perfect model's samples are new draws from the data distribution, so Fashion-MNIST training
images scored against the test split give the figures no model can beat at that sample size
(FID is biased upwards at finite N; KID is unbiased). Blurred and noised copies of the same
training images show how far the metrics move for visible degradations. Feature network: the
project's Fashion-MNIST classifier (saved_models/fashion_mnist_classifier).

  python benchmarks/fashion_mnist_fid_floor.py \
      --output=benchmarks/results/fashion_mnist_fid_floor.json

Rows: `train` (the first --num_samples of a seeded permutation of the training split, for each
size), then for the largest size `blur_<s>` (Gaussian blur, s pixels) and `noise_<s>`
(x + N(0, s^2), clipped to [-1, 1]). Every row is scored against the whole test split.
The nearest-neighbour grids (paper App. C.5) of the first --num_neighbour_rows test images in
the training split, by pixel and by feature L2, go into --grid_dir.
"""

import os
import time

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

import common  # noqa: E402
from tfsmooth.data import images  # noqa: E402
from tfsmooth.evaluation import feature_networks  # noqa: E402
from tfsmooth.evaluation import neighbours  # noqa: E402
from tfsmooth.evaluation import sample_quality  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

_NUM_SAMPLES = flags.DEFINE_list(
    'num_samples', ['5000', '10000', '50000'], 'Training images per `train` row.'
)
_BLUR = flags.DEFINE_list('blur', ['0.5', '1.0'], 'Gaussian blur widths (pixels).')
_NOISE = flags.DEFINE_list('noise', ['0.1', '0.3'], 'Noise standard deviations ([-1, 1] scale).')
_CLASSIFIER_DIR = flags.DEFINE_string(
    'classifier_dir',
    feature_networks.CLASSIFIER_DIR,
    'The feature network (launch/train_classifier.py export).',
)
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the permutation and the noise.')
_GRID_DIR = flags.DEFINE_string(
    'grid_dir',
    'benchmarks/results/fashion_mnist_fid_floor',
    'Where the nearest-neighbour grids go.',
)
_GRID_ROWS = flags.DEFINE_integer('num_neighbour_rows', 8, 'Test images in the grids.')
_OUTPUT = flags.DEFINE_string(
    'output', 'benchmarks/results/fashion_mnist_fid_floor.json', 'JSON path.'
)


@cli.reported
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  network = feature_networks.load_classifier(_CLASSIFIER_DIR.value)
  rng = np.random.default_rng(_SEED.value)
  train = images.load_images('fashion_mnist', 'train')
  train = train[rng.permutation(len(train))]
  test = images.load_images('fashion_mnist', 'test')
  reference = sample_quality.activations(network, test)
  train_activations = sample_quality.activations(network, train)
  grids = neighbours.neighbour_grids(
      test[: _GRID_ROWS.value],
      train,
      network,
      _GRID_DIR.value,
      train_features=train_activations['features'],
  )
  print(f'nearest-neighbour grids in {_GRID_DIR.value}', flush=True)
  sizes = sorted(int(n) for n in _NUM_SAMPLES.value)
  largest = train[: sizes[-1]]
  activations = lambda x: sample_quality.activations(network, x)  # noqa: E731
  variants = [
      (f'train_{n}', lambda n=n: {k: v[:n] for k, v in train_activations.items()}) for n in sizes
  ]
  variants += [
      (f'blur_{s}', lambda s=float(s): activations(ndimage.gaussian_filter(largest, (0, s, s, 0))))
      for s in _BLUR.value
  ]
  variants += [
      (
          f'noise_{s}',
          lambda s=float(s): activations(
              np.clip(largest + s * rng.standard_normal(largest.shape, np.float32), -1.0, 1.0)
          ),
      )
      for s in _NOISE.value
  ]
  rows = {}
  for name, make in variants:
    start = time.time()
    rows[name] = sample_quality.scores(make(), reference, network.name)
    print(
        f'{name}: FID {rows[name]["fid"]:.3f}  KID {rows[name]["kid"]:.5f}  '
        f'IS {rows[name]["inception_score"]:.3f}  ({time.time() - start:.0f} s)',
        flush=True,
    )
  result = dict(
      command=common.command(),
      feature_network=network.name,
      classifier_test_accuracy=network.info.get('test_accuracy'),
      reference='test split',
      rows=rows,
      neighbour_grids={
          name: common.relative(os.path.join(_GRID_DIR.value, f'nearest_{name}.png'))
          for name in grids
      },
  )
  common.write_json(_OUTPUT.value, result)
  print(_OUTPUT.value, flush=True)


if __name__ == '__main__':
  app.run(main)
