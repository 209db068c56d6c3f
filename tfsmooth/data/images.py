"""Image data sets from TFDS (any image set, by name) and offline Fashion-MNIST, as tf.data
pipelines of float32 images in [-1, 1], with their class labels where asked for.

An 8-bit value k becomes x = k / 127.5 - 1: the 256 values are the centres of the bins (width
2/255) of the discretized logistic likelihood, and the data lie in [-1, 1].

Sources:
  * TFDS, any data set whose builder has an 'image' feature (`mnist`, `fashion_mnist`,
    `cifar10`, `celeb_a`, `svhn_cropped`, `cifar100`, ...), read with `download=False` from
    `data_dir` (default: TFDS's own, ~/tensorflow_datasets). Shapes and classes come from the
    builder's info (`tfds.builder(name).info.features`: its 'image' feature, and the 'label'
    `ClassLabel`, or another named by `label_feature`), which TFDS knows from its code, so
    they are known before the data is prepared. Four sets keep the project's definitions
    (`IMAGE_SHAPES`): MNIST and Fashion-MNIST 28 x 28 x 1, CIFAR-10 32 x 32 x 3 as TFDS gives
    them; CelebA images (218 x 178) centre-cropped to 140 x 140, resized to 32 x 32 (bilinear,
    antialiased) and rounded back to 8 bits.
  * IDX (offline Fashion-MNIST): the files of the Debian package `dataset-fashion-mnist` in
    /usr/share/datasets/fashion-mnist/ (images and labels) are parsed into uint8 arrays and
    wrapped with `tf.data.Dataset.from_tensor_slices`; from there the pipeline (rescaling,
    caching, shuffling, batching) is the same code as for TFDS.
  Splits take TFDS's syntax for both sources ('train', 'test', 'train[:90%]', 'train[-5000:]').
  With `source='auto'`, Fashion-MNIST comes from TFDS if it is prepared there, else from IDX.
  Other shapes (`image_size`, `channels`) go through `image_files.fit`, as a user's images do.

sigma of the smoothing kernel: `resolve_sigma` passes a configured number through, or computes
the paper's heuristic (App. C.1): median pairwise distance / (2 sqrt(D)) on training images.
"""

import difflib
import functools
import gzip
import os

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth.data import image_files

IMAGE_SHAPES = {
    'mnist': (28, 28, 1),
    'fashion_mnist': (28, 28, 1),
    'cifar10': (32, 32, 3),
    'celeb_a': (32, 32, 3),
}
SOURCES = ('auto', 'tfds', 'idx')
FASHION_MNIST_IDX_DIR = '/usr/share/datasets/fashion-mnist'
IDX_FILES = {'train': 'train-images-idx3-ubyte.gz', 'test': 't10k-images-idx3-ubyte.gz'}
IDX_LABEL_FILES = {'train': 'train-labels-idx1-ubyte.gz', 'test': 't10k-labels-idx1-ubyte.gz'}
CELEB_A_CROP = 140
LABEL_FEATURE = 'label'
# Shown where a name is unknown or no image set.
EXAMPLES = 'mnist, fashion_mnist, cifar10, celeb_a, svhn_cropped, cifar100'


class DataUnavailableError(FileNotFoundError):
  """A data set is not available offline; the message says how to provide it."""


def image_shape(name, data_dir=None):
  """(H, W, C) of the images of TFDS data set `name` after preprocessing: the project's
  definition for the four sets of `IMAGE_SHAPES`, else the builder's 'image' feature (None
  where its images vary in size)."""
  if name in IMAGE_SHAPES:
    return IMAGE_SHAPES[name]
  return tuple(image_feature(name, data_dir).shape)


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


@functools.lru_cache(maxsize=32)
def _info(name, data_dir):
  """The TFDS builder's info of `name` (known from TFDS's code, prepared or not)."""
  try:
    return tfds.builder(name, data_dir=data_dir).info
  except tfds.core.registered.DatasetNotFoundError as e:
    close = difflib.get_close_matches(
        name, tfds.list_builders(with_community_datasets=False), n=3, cutoff=0.7
    )
    hint = f' (did you mean {" or ".join(close)}?)' if close else ''
    from tfsmooth.data import synthetic  # pylint: disable=g-import-not-at-top

    raise errors.UserError(
        f'Unknown data set {name!r}{hint}: TFDS has no data set of that name and it is no '
        'built-in one. --config.data.name takes a TFDS image data set by name (e.g. '
        f'{EXAMPLES}; tfds.list_builders() lists them all), `images` with '
        '--config.data.path=DIR_OR_ARRAY for your own images (a folder of PNG, JPEG, BMP or GIF '
        'files, or a .npy/.npz array of uint8 images), a built-in point set '
        f'({", ".join(synthetic.DATASETS)}), or `file` with --config.data.path=POINTS for '
        'your own points (.npy, .npz or .csv, N x D).'
    ) from e


def image_feature(name, data_dir=None):
  """The 'image' feature (`tfds.features.Image`) of TFDS data set `name`; a `UserError` for an
  unknown name or a data set without images."""
  features = _info(name, data_dir).features
  feature = features['image'] if 'image' in features else None
  if not isinstance(feature, tfds.features.Image):
    raise errors.UserError(
        f'The TFDS data set {name!r} holds no images: its features are '
        f'{", ".join(features.keys())}, and tfsmooth reads images from a TFDS feature '
        f"'image' (shape [H, W, C]). Choose an image data set (e.g. {EXAMPLES}) with "
        '--config.data.name, or bring your own data: --config.data.name=images '
        '--config.data.path=DIR_OR_ARRAY for images, --config.data.name=file '
        '--config.data.path=POINTS for points.'
    )
  return feature


def class_label(name, data_dir=None, label_feature=LABEL_FEATURE):
  """The `tfds.features.ClassLabel` feature `label_feature` of TFDS data set `name`; a
  `UserError` naming the ones it has if it is none."""
  features = _info(name, data_dir).features
  feature = features[label_feature] if label_feature in features else None
  if not isinstance(feature, tfds.features.ClassLabel):
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    have = (
        f'its class features are {", ".join(labels)} (choose one with '
        '--config.data.label_feature=NAME)'
        if labels
        else f'it has no class feature at all (its features: {", ".join(features.keys())})'
    )
    raise errors.UserError(
        f'data.labels=True needs the class of every image, but the TFDS data set {name!r} has '
        f'no class feature {label_feature!r}: {have}. Or train without labels: '
        '--config.data.labels=False.'
    )
  return feature


def split_count(name, spec, data_dir=None):
  """The number of examples of TFDS split `spec` (any split syntax) of a data set prepared in
  `data_dir`, from its info (nothing read), or None where TFDS has no prepared copy."""
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    return None
  try:
    return int(builder.info.splits[spec].num_examples)
  except (KeyError, ValueError):
    return None


def version(name, data_dir=None):
  """The version string of TFDS data set `name`."""
  return str(_info(name, data_dir).version)


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


def has_idx(idx_dir, labels=False):
  """Whether the Fashion-MNIST IDX image files (and with `labels` the label files) are in
  `idx_dir`."""
  files = list(IDX_FILES.values()) + (list(IDX_LABEL_FILES.values()) if labels else [])
  return all(tf.io.gfile.exists(os.path.join(idx_dir, f)) for f in files)


def _idx_pieces(split, idx_dir):
  """TFDS's absolute read instructions of a split over the IDX files' 'train' and 'test', and
  the lengths of those."""
  paths = {n: os.path.join(idx_dir, f) for n, f in IDX_FILES.items()}
  lengths = {n: _idx_length(p) for n, p in paths.items()}
  infos = {
      n: tfds.core.SplitInfo(name=n, shard_lengths=[length], num_bytes=0)
      for n, length in lengths.items()
  }
  try:
    return tfds.core.ReadInstruction.from_spec(split).to_absolute(infos), lengths
  except (KeyError, ValueError) as e:
    raise errors.UserError(
        f'Split {split!r} does not fit the IDX source, which has the splits '
        f'{", ".join(IDX_FILES)} (slices like train[:90%] are fine): {e}'
    ) from e


def _idx_arrays(split, idx_dir, files):
  """The rows of a TFDS-style split of the IDX `files` ({split name: file}), concatenated."""
  pieces, _ = _idx_pieces(split, idx_dir)
  arrays = {n: read_idx(os.path.join(idx_dir, files[n])) for n in {p.splitname for p in pieces}}
  return np.concatenate([arrays[p.splitname][p.from_ : p.to] for p in pieces])


def _idx_images(split, idx_dir, labels=False):
  """Fashion-MNIST images [N, 28, 28, 1] uint8 for a TFDS-style split, from IDX files; with
  `labels`, (images, labels [N] int32) from the label files beside them."""
  if not has_idx(idx_dir, labels):
    needed = list(IDX_FILES.values()) + (list(IDX_LABEL_FILES.values()) if labels else [])
    raise _unavailable('fashion_mnist', None, f'no IDX files {", ".join(needed)} in {idx_dir}')
  images = _idx_arrays(split, idx_dir, IDX_FILES)[..., None]
  if not labels:
    return images
  return images, _idx_arrays(split, idx_dir, IDX_LABEL_FILES).astype(np.int32)


def idx_count(split, idx_dir=FASHION_MNIST_IDX_DIR):
  """The number of images of a TFDS-style split of the Fashion-MNIST IDX files."""
  pieces, lengths = _idx_pieces(split, idx_dir)
  return sum(len(range(lengths[p.splitname])[p.from_ : p.to]) for p in pieces)


def _tfds_examples(name, split, data_dir, labels, label_feature):
  try:
    dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
  except AssertionError as e:  # TFDS's "could not find data" when not prepared
    raise _unavailable(name, data_dir, str(e).split('.')[0]) from e
  if labels:
    return dataset.map(
        lambda example: (example['image'], tf.cast(example[label_feature], tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
  return dataset.map(lambda example: example['image'], num_parallel_calls=tf.data.AUTOTUNE)


def _crop_and_resize_celeb_a(image, size=IMAGE_SHAPES['celeb_a'][0], channels=3):
  """CelebA's definition: the central 140 x 140 square, resized to `size` (bilinear,
  antialiased) and rounded once to 8 bits (`image_files.fit_tensor`)."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  image = tf.image.crop_to_bounding_box(
      image, (height - CELEB_A_CROP) // 2, (width - CELEB_A_CROP) // 2, CELEB_A_CROP, CELEB_A_CROP
  )
  return image_files.fit_tensor(image, size, channels)


def _reshape_fn(name, data_dir, size, channels):
  """The map from a TFDS image to uint8 [size, size, channels], or None where it is one."""
  if not size or not channels:
    raise errors.UserError(
        f'The images of the TFDS data set {name!r} vary in size or channels '
        f'({image_shape(name, data_dir)}): set --config.data.image_size and '
        '--config.data.channels.'
    )
  if name == 'celeb_a':
    return functools.partial(_crop_and_resize_celeb_a, size=size, channels=channels)
  native = image_shape(name, data_dir)
  if tuple(native) == (size, size, channels) and image_feature(name, data_dir).np_dtype == np.uint8:
    return None
  return functools.partial(image_files.fit_tensor, size=size, channels=channels)


def _check_source(name, source):
  if source not in SOURCES:
    raise errors.UserError(
        f'Unknown data source {source!r}; choose one of {", ".join(SOURCES)} '
        '(--config.data.source).'
    )
  if source == 'idx' and name != 'fashion_mnist':
    raise errors.UserError(
        f'The IDX source holds only fashion_mnist, not {name!r}; use source=tfds.'
    )


def raw_examples(
    name,
    split,
    data_dir=None,
    source='auto',
    idx_dir=FASHION_MNIST_IDX_DIR,
    labels=False,
    label_feature=LABEL_FEATURE,
    image_size=0,
    channels=0,
):
  """A tf.data.Dataset of uint8 [H, W, C] images of TFDS data set `name` (CelebA already
  cropped and resized), or with `labels` of (image, int32 label) pairs (the `label_feature`
  class, or for IDX the label files).

  `image_size` and `channels` (0: the set's own) reshape the images with `image_files.fit`
  (centre-crop to a square, antialiased resize, channel conversion, one rounding); CelebA with
  another `image_size` is its 140 x 140 centre crop resized to that size.
  """
  _check_source(name, source)
  native = image_shape(name, data_dir)  # checks the name: a known image set
  if labels and (name != 'fashion_mnist' or source != 'idx'):
    class_label(name, data_dir, label_feature)
  dataset = None
  if source != 'idx':
    try:
      dataset = _tfds_examples(name, split, data_dir, labels, label_feature)
    except DataUnavailableError:
      if name != 'fashion_mnist' or source == 'tfds' or not has_idx(idx_dir, labels):
        raise
      logging.info(
          'TFDS has no prepared fashion_mnist; reading split %s from the IDX files in %s.',
          split,
          idx_dir,
      )
  if dataset is None:
    dataset = tf.data.Dataset.from_tensor_slices(_idx_images(split, idx_dir, labels))
  crop = _reshape_fn(name, data_dir, image_size or native[0], channels or native[2])
  if crop is not None:
    if labels:
      dataset = dataset.map(lambda x, y: (crop(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
      dataset = dataset.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
  return dataset


def raw_images(name, split, data_dir=None, source='auto', idx_dir=FASHION_MNIST_IDX_DIR):
  """A tf.data.Dataset of uint8 [H, W, C] images (CelebA already cropped and resized)."""
  return raw_examples(name, split, data_dir, source, idx_dir)


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


def load_examples(name, split, max_examples=None, **source):
  """The first `max_examples` (default all) examples of a split: (float32 images
  [N, H, W, C] in [-1, 1], int32 labels [N] or None without `labels`). `source` holds
  `raw_examples`'s keywords."""
  labels = source.get('labels', False)
  dataset = raw_examples(name, split, **source)
  if max_examples is not None:
    dataset = dataset.take(max_examples)
  if not labels:
    dataset = dataset.map(lambda x: (x, tf.zeros((), tf.int32)))
  images, classes = [], []
  for x, y in dataset.batch(4096).map(lambda x, y: (to_unit_range(x), y)):
    images.append(x.numpy())
    classes.append(y.numpy())
  if not images:
    size = source.get('image_size') or image_shape(name, source.get('data_dir'))[0]
    depth = source.get('channels') or image_shape(name, source.get('data_dir'))[2]
    return np.zeros((0, size, size, depth), np.float32), (
        np.zeros((0,), np.int32) if labels else None
    )
  return np.concatenate(images), (np.concatenate(classes) if labels else None)


def load_images(
    name, split, max_examples=None, data_dir=None, source='auto', idx_dir=FASHION_MNIST_IDX_DIR
):
  """The first `max_examples` (default all) images of a split: float32 [N, H, W, C] in [-1, 1]."""
  return load_examples(
      name, split, max_examples, data_dir=data_dir, source=source, idx_dir=idx_dir
  )[0]


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
