"""Image data sets as tf.data pipelines of float32 images in [-1, 1].

An 8-bit value k becomes x = k / 127.5 - 1: the 256 values are the centres of the bins (width
2/255) of the discretized logistic likelihood, and the data lie in [-1, 1].

Sources:
  * TFDS: `mnist`, `fashion_mnist`, `cifar10`, `celeb_a`, read with `download=False` from
    `data_dir` (default: TFDS's own, ~/tensorflow_datasets). CelebA images (218 x 178) are
    centre-cropped to 140 x 140, resized to 32 x 32 (bilinear, antialiased) and rounded back
    to 8 bits.
  * IDX (offline Fashion-MNIST): the files of the Debian package `dataset-fashion-mnist` in
    /usr/share/datasets/fashion-mnist/ are parsed into a uint8 array and wrapped with
    `tf.data.Dataset.from_tensor_slices`; from there the pipeline (rescaling, caching,
    shuffling, batching) is the same code as for TFDS.
  Splits take TFDS's syntax for both sources ('train', 'test', 'train[:90%]', 'train[-5000:]').
  With `source='auto'`, Fashion-MNIST comes from TFDS if it is prepared there, else from IDX.

sigma of the smoothing kernel: `resolve_sigma` passes a configured number through, or computes
the paper's heuristic (App. C.1): median pairwise distance / (2 sqrt(D)) on training images.
"""

import gzip
import os

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfsmooth import errors
from tfsmooth import kernels

IMAGE_SHAPES = {
    'mnist': (28, 28, 1),
    'fashion_mnist': (28, 28, 1),
    'cifar10': (32, 32, 3),
    'celeb_a': (32, 32, 3),
}
SOURCES = ('auto', 'tfds', 'idx')
FASHION_MNIST_IDX_DIR = '/usr/share/datasets/fashion-mnist'
IDX_FILES = {'train': 'train-images-idx3-ubyte.gz', 'test': 't10k-images-idx3-ubyte.gz'}
CELEB_A_CROP = 140


class DataUnavailableError(FileNotFoundError):
  """A data set is not available offline; the message says how to provide it."""


def image_shape(name):
  """(H, W, C) of the images of data set `name` after preprocessing."""
  _check_name(name)
  return IMAGE_SHAPES[name]


def to_unit_range(images):
  """uint8 values k -> float32 k / 127.5 - 1 in [-1, 1]."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(x):
  """Images in [-1, 1] (values outside are clipped) -> the nearest 8-bit values, uint8."""
  return np.round((np.clip(np.asarray(x), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def read_idx(path):
  """A (gzipped) IDX file of unsigned bytes as a numpy uint8 array of its stated shape
  (`path` a local path or a URL: read through tf.io.gfile)."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  if path.endswith('.gz'):
    data = gzip.decompress(data)
  if data[:3] != b'\x00\x00\x08':
    raise errors.UserError(f'{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()}).')
  ndim = data[3]
  shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim))
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_length(path):
  """The first dimension of an IDX file, from its header."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    header = gzip.GzipFile(fileobj=f).read(8) if path.endswith('.gz') else f.read(8)
  return int.from_bytes(header[4:], 'big')


def _check_name(name):
  if name not in IMAGE_SHAPES:
    raise errors.UserError(
        f'Unknown image data set {name!r}; choose one of '
        f'{", ".join(IMAGE_SHAPES)} (--config.data.name).'
    )


def _unavailable(name, data_dir, cause):
  """The error for a data set that is not available offline, naming the ways to provide it."""
  fixes = [
      (
          f'prepare it with TFDS on a machine with internet access (`tfds build {name}`), copy '
          'the resulting data directory here and pass --config.data.data_dir=/path/to/it'
      )
  ]
  if name == 'celeb_a':
    fixes[0] += ' (CelebA needs some files downloaded by hand; see its TFDS catalogue page)'
  if name == 'fashion_mnist':
    fixes.insert(
        0,
        '`apt-get install dataset-fashion-mnist` (IDX files in '
        f'{FASHION_MNIST_IDX_DIR}), or pass --config.data.idx_dir=/dir/with/the/IDX/files',
    )
  where = data_dir or 'the default TFDS data_dir'
  return DataUnavailableError(
      f'Data set {name!r} is not available offline ({cause}; looked in '
      f'{where}). To provide it: {"; or ".join(fixes)}.'
  )


def _has_idx(idx_dir):
  return all(tf.io.gfile.exists(os.path.join(idx_dir, f)) for f in IDX_FILES.values())


def _idx_images(split, idx_dir):
  """Fashion-MNIST images [N, 28, 28, 1] uint8 for a TFDS-style split, from IDX files."""
  if not _has_idx(idx_dir):
    raise _unavailable(
        'fashion_mnist', None, f'no IDX files {", ".join(IDX_FILES.values())} in {idx_dir}'
    )
  paths = {n: os.path.join(idx_dir, f) for n, f in IDX_FILES.items()}
  infos = {
      n: tfds.core.SplitInfo(name=n, shard_lengths=[_idx_length(p)], num_bytes=0)
      for n, p in paths.items()
  }
  try:
    pieces = tfds.core.ReadInstruction.from_spec(split).to_absolute(infos)
  except (KeyError, ValueError) as e:
    raise errors.UserError(
        f'Split {split!r} does not fit the IDX source, which has the splits '
        f'{", ".join(IDX_FILES)} (slices like train[:90%] are fine): {e}'
    ) from e
  arrays = {n: read_idx(paths[n])[..., None] for n in {p.splitname for p in pieces}}
  return np.concatenate([arrays[p.splitname][p.from_ : p.to] for p in pieces])


def _tfds_images(name, split, data_dir):
  try:
    dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
  except AssertionError as e:  # TFDS's "could not find data" when not prepared
    raise _unavailable(name, data_dir, str(e).split('.')[0]) from e
  dataset = dataset.map(lambda example: example['image'], num_parallel_calls=tf.data.AUTOTUNE)
  if name == 'celeb_a':
    dataset = dataset.map(_crop_and_resize_celeb_a, num_parallel_calls=tf.data.AUTOTUNE)
  return dataset


def _crop_and_resize_celeb_a(image):
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  image = tf.image.crop_to_bounding_box(
      image, (height - CELEB_A_CROP) // 2, (width - CELEB_A_CROP) // 2, CELEB_A_CROP, CELEB_A_CROP
  )
  image = tf.image.resize(image, IMAGE_SHAPES['celeb_a'][:2], method='bilinear', antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def raw_images(name, split, data_dir=None, source='auto', idx_dir=FASHION_MNIST_IDX_DIR):
  """A tf.data.Dataset of uint8 [H, W, C] images (CelebA already cropped and resized)."""
  _check_name(name)
  if source not in SOURCES:
    raise errors.UserError(
        f'Unknown data source {source!r}; choose one of {", ".join(SOURCES)} '
        '(--config.data.source).'
    )
  if source == 'idx' and name != 'fashion_mnist':
    raise errors.UserError(
        f'The IDX source holds only fashion_mnist, not {name!r}; use source=tfds.'
    )
  if source == 'idx':
    return tf.data.Dataset.from_tensor_slices(_idx_images(split, idx_dir))
  try:
    return _tfds_images(name, split, data_dir)
  except DataUnavailableError:
    if name != 'fashion_mnist' or source == 'tfds' or not _has_idx(idx_dir):
      raise
  logging.info(
      'TFDS has no prepared fashion_mnist; reading split %s from the IDX files in %s.',
      split,
      idx_dir,
  )
  return tf.data.Dataset.from_tensor_slices(_idx_images(split, idx_dir))


def make_dataset(
    name,
    split,
    batch_size,
    data_dir=None,
    source='auto',
    idx_dir=FASHION_MNIST_IDX_DIR,
    shuffle=False,
    repeat=False,
    seed=0,
    drop_remainder=False,
    shuffle_buffer=10_000,
    cache=True,
):
  """Batches [B, H, W, C] (or with batch_size None single images) of float32 in [-1, 1].

  Args:
    name, split, data_dir, source, idx_dir: as in `raw_images`.
    batch_size: images per batch, or None for single images.
    shuffle: shuffle (buffer `shuffle_buffer`, seeded, reshuffled every epoch).
    repeat: repeat forever (for training).
    drop_remainder: drop the last, smaller batch.
    cache: keep the decoded uint8 images in memory after the first pass.
  """
  dataset = raw_images(name, split, data_dir, source, idx_dir)
  if cache:
    dataset = dataset.cache()
  if shuffle:
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
  if repeat:
    dataset = dataset.repeat()
  if batch_size:
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
  return dataset.map(to_unit_range, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_images(
    name, split, max_examples=None, data_dir=None, source='auto', idx_dir=FASHION_MNIST_IDX_DIR
):
  """The first `max_examples` (default all) images of a split: float32 [N, H, W, C] in [-1, 1]."""
  dataset = raw_images(name, split, data_dir, source, idx_dir)
  if max_examples is not None:
    dataset = dataset.take(max_examples)
  batches = [b.numpy() for b in dataset.batch(4096).map(to_unit_range)]
  return np.concatenate(batches) if batches else np.zeros((0,) + image_shape(name), np.float32)


def resolve_sigma(sigma, name, max_points=2000, seed=0, **source):
  """A smoothing sigma: the number `sigma`, or with sigma='heuristic' the paper's heuristic.

  The heuristic (`kernels.median_heuristic_sigma`) runs on the first 10,000 training images
  (a seeded subset of `max_points` of them). `source` holds `raw_images`'s data_dir, source,
  idx_dir. The paper's values: 0.5 for MNIST, 0.3 for CIFAR-10 and CelebA.
  """
  if sigma != 'heuristic':
    return float(sigma)
  images = load_images(name, 'train', max_examples=10_000, **source)
  return kernels.median_heuristic_sigma(images, max_points=max_points, seed=seed)
