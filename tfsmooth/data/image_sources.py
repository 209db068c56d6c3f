"""Images from anywhere behind one interface: `from_config(config.data) -> ImageSource`.

Which data a config names (the config decides, never the file's contents):
  * data.name 'images': your own images from data.path, a folder of image files (flat, or one
    subfolder per class) or an array file (.npy: uint8 [N, H, W, C]; .npz: x and optionally
    y, int labels [N], and class_names). See `image_files` for how files are read and fitted.
  * data.name 'file' or a built-in point set (`synthetic.DATASETS`): points, not images
    (`is_image_config` is False; `synthetic.get_dataset` reads them). A uint8 image array given
    as points, or a float [N, D] array given as images, is refused naming the other config.
  * any other data.name: a TFDS image data set by name (`images`), shapes and classes from its
    builder's info; data.train_split / validation_split / test_split in TFDS's syntax.

Shape: data.image_size S (square; a multiple of 4, as PixelCNN++ halves the image twice) and
data.channels C (1 or 3); 0 (or absent) keeps the source's own where it has one (a TFDS set,
an array of square images); a folder needs both. Labels: data.labels (default False) reads the
classes (a TFDS 'label' feature or data.label_feature, a folder's class subfolders, an .npz's
y); `num_classes` and `class_names` are None without them.

Splits of a folder or an array: the N images (a folder's files in sorted order) are permuted
once with numpy's default_rng(data.split_seed); the first round(N * data.validation_fraction)
are validation, the next round(N * data.test_fraction) test (each at least 1), the rest train,
all kept in that permuted order (so the first k of a split are a random k). `facts()` records
what a run depends on (shape, classes, seed, counts, a hash of each split's names, a hash of
every file's bytes, and for up to `LISTED_FILES` files the list itself) for config.json;
`check(recorded)` refuses, in one paragraph naming what changed, a source that differs from
such a record, so a resume and an evaluation see the same images in the same splits.
"""

import collections
import dataclasses
import hashlib

from absl import logging
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth.data import image_files
from tfsmooth.data import images
from tfsmooth.data import synthetic

USER_IMAGES = 'images'  # data.name of a user's folder or array
POINTS_FILE = 'file'  # data.name of a user's points (synthetic.py)
SPLITS = ('train', 'validation', 'test')
TFDS_SPLITS = {'train': 'train[:-1000]', 'validation': 'train[-1000:]', 'test': 'test'}
FRACTIONS = {'validation': 0.1, 'test': 0.1}
LISTED_FILES = 1000  # facts() lists a folder's files (with digests) up to this many
SHUFFLE_BUFFER = 10_000
SIGMA_IMAGES = 10_000  # training images the sigma heuristic reads (a subset of 2000 enters)
_MEMO_SIZE = 1  # scans and arrays kept per process: the latest (a run builds its source twice)
_FLAGS_EXAMPLE = (
    'python launch/train.py --config=tfsmooth/configs/my_images.py '
    '--config.data.path=/path/to/images --workdir=/path/to/run'
)


def is_image_config(data):
  """Whether the data config `data` (config.data) names images: data.name 'images' or a TFDS
  name; points are data.name 'file' and the built-in point sets."""
  name = data.get('name', '')
  return name == USER_IMAGES or (name != POINTS_FILE and name not in synthetic.DATASETS)


@dataclasses.dataclass(frozen=True)
class Settings:
  """The data keys every source reads (see the module docstring), checked."""

  image_size: int = 0
  channels: int = 0
  labels: bool = False
  skip_unreadable: bool = False
  split_seed: int = 0
  validation_fraction: float = FRACTIONS['validation']
  test_fraction: float = FRACTIONS['test']

  @classmethod
  def of(cls, data):
    settings = cls(**{f.name: data.get(f.name, f.default) for f in dataclasses.fields(cls)})
    settings.validate()
    return settings

  def validate(self):
    size = self.image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size % 4:
      lower = max(4, int(size) // 4 * 4) if isinstance(size, (int, float)) else 28
      raise errors.UserError(
          f'data.image_size must be a positive multiple of 4 (PixelCNN++ halves the image '
          f'twice: 28 -> 14 -> 7, 32 -> 16 -> 8), got {size!r}: set e.g. '
          f'--config.data.image_size={lower} or {lower + 4}.'
      )
    if self.channels not in (0, 1, 3) or isinstance(self.channels, bool):
      raise errors.UserError(
          f'data.channels is 1 (grey) or 3 (RGB), got {self.channels!r}: set '
          '--config.data.channels=1 or 3 (colour images are converted to grey, grey to RGB, '
          'an alpha channel is dropped).'
      )
    for key in ('labels', 'skip_unreadable'):
      if not isinstance(getattr(self, key), bool):
        raise errors.UserError(
            f'data.{key} is True or False, got {getattr(self, key)!r}: '
            f'--config.data.{key}=True.'
        )
    fractions = (self.validation_fraction, self.test_fraction)
    if not all(0 < f < 1 for f in fractions) or sum(fractions) >= 1:
      raise errors.UserError(
          f'data.validation_fraction ({self.validation_fraction}) and data.test_fraction '
          f'({self.test_fraction}) are the shares of your images held out for validation and '
          'test: each must lie in (0, 1) and together below 1 (the rest trains), e.g. '
          '--config.data.validation_fraction=0.1 --config.data.test_fraction=0.1.'
      )
    if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, int):
      raise errors.UserError(
          f'data.split_seed is an integer, got {self.split_seed!r}: --config.data.split_seed=0.'
      )


def from_config(data, cache_bytes=image_files.CACHE_BYTES):
  """The `ImageSource` of the data config `data` (config.data; a ConfigDict or a dict).

  A folder is listed and every file decoded once here (`image_files.scan`), so that a corrupt
  file is refused (or skipped, data.skip_unreadable) before training starts. `cache_bytes`:
  a folder's fitted images are kept in memory up to this size, else decoded in the pipeline.
  """
  name = data.get('name', '')
  if not is_image_config(data):
    raise errors.UserError(
        f'data.name {name!r} names points, not images: image data is data.name '
        f'{USER_IMAGES!r} (your folder or array, --config.data.path) or a TFDS image data set.'
    )
  settings = Settings.of(data)
  path = data.get('path', '') or ''
  if name != USER_IMAGES:
    if path:
      raise errors.UserError(
          f'--config.data.path={path} is read with --config.data.name={USER_IMAGES} (your '
          f'images) or --config.data.name={POINTS_FILE} (your points), not with the TFDS data '
          f'set {name!r}: clear the path (--config.data.path=) or set the name.'
      )
    return TfdsSource(data, settings)
  if not path:
    raise errors.UserError(
        f'--config.data.name={USER_IMAGES} reads your images from --config.data.path, which is '
        'empty: pass a folder of image files (PNG, JPEG, BMP or GIF; flat, or one subfolder per '
        'class) or a .npy / .npz array of uint8 images [N, H, W, C], e.g. '
        f'{_FLAGS_EXAMPLE}.'
    )
  if tf.io.gfile.isdir(path):
    return FolderSource(path, settings, cache_bytes)
  if not tf.io.gfile.exists(path):
    raise errors.UserError(
        f'--config.data.path={path} does not exist (read through tf.io.gfile): pass the folder '
        'of your images or your .npy / .npz image array.'
    )
  lower = path.lower()
  if lower.endswith(image_files.ARRAY_EXTENSIONS):
    return ArraySource(path, settings)
  if lower.endswith('.csv'):
    raise errors.UserError(
        f'{path} is a .csv file, which tfsmooth reads as points: use --config.data.name='
        f'{POINTS_FILE} --config.data.path={path}. Images come as a folder of image files or a '
        '.npy / .npz array of uint8 images [N, H, W, C].'
    )
  if lower.endswith(image_files.IMAGE_EXTENSIONS):
    raise errors.UserError(
        f'--config.data.path={path} is one image file; tfsmooth learns from many: pass the '
        'folder that holds your images.'
    )
  raise errors.UserError(
      f'--config.data.path={path} is neither a folder nor a .npy / .npz array: pass the folder '
      'of your image files (PNG, JPEG, BMP, GIF) or an array file of uint8 images [N, H, W, C].'
  )


_WARNED = set()


def _warn_once(message):
  """`message` as an absl warning paragraph, once per process (a run builds its source twice)."""
  if message not in _WARNED:
    _WARNED.add(message)
    logging.warning('%s', errors.paragraph(message))


def _plain(value):
  """ConfigDicts, dicts and tuples as plain dicts and lists (as JSON gives them back)."""
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def _sha256(lines):
  return hashlib.sha256('\n'.join(lines).encode('utf-8')).hexdigest()


class ImageSource:
  """Images [N, H, W, C] as float32 in [-1, 1] (8-bit v as v / 127.5 - 1), in three splits.

  Attributes: `event_shape` (H, W, C); `class_names` and `num_classes` (None without
  labels); `labels` (whether labels are on); `identity`, a string naming the data (for matching
  a feature classifier to a run: with `event_shape` it fixes the images a run sees).
  """

  kind = ''

  def __init__(self, settings, event_shape, class_names, identity):
    self.settings = settings
    self.event_shape = tuple(int(d) for d in event_shape)
    self.labels = settings.labels
    self.class_names = list(class_names) if settings.labels else None
    self.identity = identity

  @property
  def num_classes(self):
    return None if self.class_names is None else len(self.class_names)

  def split(self, name, max_examples=None):
    """(float32 images [N, H, W, C] in [-1, 1], int32 labels [N] or None without labels) of
    the first `max_examples` (default all) images of split 'train', 'validation' or 'test'."""
    raise NotImplementedError

  def train_examples(self, seed):
    """An infinite tf.data.Dataset of single training images (float32 [H, W, C]), or with
    labels of {'x': image, 'labels': int32 label}, in a seeded shuffle, reshuffled every epoch,
    prefetched."""
    raise NotImplementedError

  def facts(self):
    """What a run's config.json records of its data (plain JSON values)."""
    return {
        'kind': self.kind,
        'identity': self.identity,
        'image_size': self.event_shape[0],
        'channels': self.event_shape[2],
        'num_classes': self.num_classes,
        'class_names': self.class_names,
    }

  def check(self, recorded):
    """Raises `errors.UserError`, one paragraph naming what changed, if this source differs from
    the `recorded` facts (a run's config.json); nothing for an empty record (older runs)."""
    if not recorded:
      return
    recorded = _plain(recorded)
    changes = self._changes(recorded, self.facts())
    if changes:
      raise errors.UserError(
          f'The data of this run changed since its config.json recorded it: '
          f'{"; ".join(changes)}. The run was trained on the recorded data and its splits were '
          'drawn from it, so resuming or evaluating it on other data would mix or miss '
          f'images. Restore {self._where()} as it was, or train a new run in a new --workdir.'
      )

  def _where(self):
    return self.identity

  def _changes(self, old, new):
    """Lines naming what differs between two facts records."""
    changes = []
    if old.get('kind') != new['kind']:
      return [f'it was {old.get("identity") or old.get("kind")}, now it is {new["identity"]}']
    for key, what in (
        ('image_size', 'the image size'),
        ('channels', 'the channels'),
        ('num_classes', 'the number of classes'),
        ('class_names', 'the class names'),
    ):
      if key in old and old[key] != new[key]:
        changes.append(f'{what} was {old[key]}, now {new[key]}')
    old_counts, new_counts = old.get('counts') or {}, new.get('counts') or {}
    for split in SPLITS:
      before, after = old_counts.get(split), new_counts.get(split)
      if before is not None and after is not None and before != after:
        changes.append(f'the {split} split had {before} images, now {after}')
    return changes

  def sigma_heuristic(self, max_points=2000, seed=0):
    """The paper's sigma (App. C.1) on the training images: median pairwise distance /
    (2 sqrt(D)), over a seeded subset of `max_points` of the first `SIGMA_IMAGES`."""
    train = self.split('train', SIGMA_IMAGES)[0]
    return kernels.median_heuristic_sigma(train, max_points=max_points, seed=seed)

  def _example(self, image, label=None):
    x = images.to_unit_range(image)
    return {'x': x, 'labels': label} if self.labels else x

  def _check_split(self, name):
    if name not in SPLITS:
      raise errors.UserError(f'Unknown split {name!r}: choose one of {", ".join(SPLITS)}.')


class TfdsSource(ImageSource):
  """A TFDS image data set (offline Fashion-MNIST from IDX files where TFDS lacks it)."""

  kind = 'tfds'

  def __init__(self, data, settings):
    self.name = data.get('name')
    self.source = dict(
        data_dir=data.get('data_dir') or None,
        source=data.get('source', 'auto') or 'auto',
        idx_dir=data.get('idx_dir') or images.FASHION_MNIST_IDX_DIR,
    )
    self.label_feature = data.get('label_feature', images.LABEL_FEATURE) or images.LABEL_FEATURE
    self.specs = {s: data.get(f'{s}_split', TFDS_SPLITS[s]) for s in SPLITS}
    native = images.image_shape(self.name, self.source['data_dir'])
    size, channels = settings.image_size, settings.channels
    if not size:
      if native[0] is None or native[0] != native[1] or native[0] % 4:
        raise errors.UserError(
            f'The images of the TFDS data set {self.name!r} are {_shape_text(native)}, not '
            'square images whose side is a multiple of 4 (PixelCNN++ halves them twice): set '
            'the size they are centre-cropped and resized to, e.g. '
            '--config.data.image_size=32.'
        )
      size = native[0]
    if not channels:
      if native[2] not in (1, 3):
        raise errors.UserError(
            f'The images of the TFDS data set {self.name!r} have {native[2]} channels: set '
            '--config.data.channels=1 (grey) or 3 (RGB).'
        )
      channels = native[2]
    names = []
    if settings.labels:
      names = images.class_label(self.name, self.source['data_dir'], self.label_feature).names
    super().__init__(settings, (size, size, channels), names, f'tfds:{self.name}')
    self._keywords = dict(
        **self.source,
        labels=settings.labels,
        label_feature=self.label_feature,
        image_size=size,
        channels=channels,
    )

  def read(self, spec, max_examples=None):
    """(images, labels or None) of any TFDS split `spec` (e.g. 'train[:90%]')."""
    return images.load_examples(self.name, spec, max_examples, **self._keywords)

  def split(self, name, max_examples=None):
    self._check_split(name)
    return self.read(self.specs[name], max_examples)

  def train_examples(self, seed):
    # The pipeline of images.make_dataset (cache, shuffle, repeat, rescale, prefetch), so the
    # four named sets give the very stream they gave before labels existed.
    dataset = images.raw_examples(self.name, self.specs['train'], **self._keywords)
    dataset = dataset.cache().shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    fn = (lambda x, y: self._example(x, y)) if self.labels else self._example
    return dataset.repeat().map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

  def _count(self, spec):
    """Images in split `spec` where known without reading them (a prepared TFDS copy, or the
    Fashion-MNIST IDX headers), else None."""
    data_dir, source = self.source['data_dir'], self.source['source']
    if source != 'idx':
      count = images.split_count(self.name, spec, data_dir)
      if count is not None or source == 'tfds':
        return count
    if self.name == 'fashion_mnist' and images.has_idx(self.source['idx_dir']):
      return images.idx_count(spec, self.source['idx_dir'])
    return None

  def facts(self):
    return {
        **super().facts(),
        'tfds_version': images.version(self.name, self.source['data_dir']),
        'splits': dict(self.specs),
        'counts': {s: self._count(spec) for s, spec in self.specs.items()},
    }

  def _changes(self, old, new):
    changes = super()._changes(old, new)
    if old.get('splits') and old['splits'] != new['splits']:
      changes.append(f'the splits were {old["splits"]}, now {new["splits"]}')
    if changes and old.get('tfds_version') != new['tfds_version']:
      changes.append(f'TFDS version {old.get("tfds_version")} then, {new["tfds_version"]} now')
    return changes

  def _where(self):
    return f'the TFDS data set {self.name!r} (version, splits, --config.data.data_dir)'


def _shape_text(shape):
  return ' x '.join('any' if d is None else str(d) for d in shape)


def _split_indices(n, settings, where):
  """{'train', 'validation', 'test'}: index arrays of a seeded permutation of n images."""
  num_val = max(1, round(n * settings.validation_fraction))
  num_test = max(1, round(n * settings.test_fraction))
  num_train = n - num_val - num_test
  if num_train < 1:
    raise errors.UserError(
        f'{where} has {n} images, fewer than the splits need: validation gets {num_val} '
        f'({settings.validation_fraction:g}, at least 1) and test {num_test} '
        f'({settings.test_fraction:g}, at least 1), which leaves {num_train} to train on. Add '
        'images (3 at the very least, and a model learns little from fewer than hundreds), or '
        'lower --config.data.validation_fraction / --config.data.test_fraction.'
    )
  order = np.random.default_rng(settings.split_seed).permutation(n)
  return {
      'validation': order[:num_val],
      'test': order[num_val : num_val + num_test],
      'train': order[num_val + num_test :],
  }


class _IndexedSource(ImageSource):
  """A source of N images held by index (a folder's files, an array's rows), split once."""

  def _setup_splits(self, n, labels, where):
    self._labels = None if labels is None else np.asarray(labels, np.int32)
    self._splits = _split_indices(n, self.settings, where)

  def _names(self, indices):
    """The names that identify images `indices` in a split hash."""
    raise NotImplementedError

  def _uint8(self, indices):
    """uint8 [k, H, W, C] of images `indices`."""
    raise NotImplementedError

  def _train_images(self, indices):
    """A dataset of the uint8 images `indices` in order, or (image, label) with labels; and
    whether it is already decoded (in memory)."""
    raise NotImplementedError

  def split(self, name, max_examples=None):
    self._check_split(name)
    indices = self._splits[name][:max_examples]
    x = images.to_unit_range(self._uint8(indices)).numpy()
    return x, (self._labels[indices] if self.labels else None)

  def train_examples(self, seed):
    indices = self._splits['train']
    dataset, in_memory = self._train_images(indices, seed)
    if in_memory:  # already in a random order (the split's permutation): a buffer mixes it
      dataset = dataset.shuffle(
          min(len(indices), SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True
      ).repeat()
    fn = (lambda x, y: self._example(x, y)) if self.labels else self._example
    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

  def _slices(self, images_or_paths, indices):
    parts = (images_or_paths,) + ((self._labels[indices],) if self.labels else ())
    return tf.data.Dataset.from_tensor_slices(parts if self.labels else parts[0])

  def facts(self):
    counts = {s: int(len(i)) for s, i in self._splits.items()}
    facts = {
        **super().facts(),
        'split_seed': self.settings.split_seed,
        'validation_fraction': self.settings.validation_fraction,
        'test_fraction': self.settings.test_fraction,
        'counts': {s: counts[s] for s in SPLITS},
        'split_sha256': {s: _sha256(self._names(self._splits[s])) for s in SPLITS},
    }
    if self.labels:
      facts['class_counts'] = image_files.class_counts(self._labels, self.num_classes)
    return facts

  def _changes(self, old, new):
    changes = super()._changes(old, new)
    for key in ('split_seed', 'validation_fraction', 'test_fraction'):
      if key in old and old[key] != new[key]:
        changes.append(f'data.{key} was {old[key]}, now {new[key]}')
    if (
        old.get('class_counts')
        and new.get('class_counts')
        and old['class_counts'] != new['class_counts']
        and old.get('class_names') == new.get('class_names')
    ):
      moved = [
          f'{name}: {a} -> {b}'
          for name, a, b in zip(new['class_names'], old['class_counts'], new['class_counts'])
          if a != b
      ]
      changes.append(f'images per class changed ({image_files.names_in_text(moved, 10)})')
    if not changes and old.get('split_sha256') and old['split_sha256'] != new['split_sha256']:
      changed = [s for s in SPLITS if old['split_sha256'].get(s) != new['split_sha256'][s]]
      changes.append(f'the images of the {", ".join(changed)} split(s) differ')
    return changes


_SCANS = collections.OrderedDict()  # folder scans of this process (`_scan`)


def _scan(listing, size, channels, cache_bytes):
  """`image_files.scan` of a folder, kept for the process while the folder looks the same."""
  key = (listing.root, image_files.folder_signature(listing), size, channels, cache_bytes)
  if key in _SCANS:
    _SCANS.move_to_end(key)
    return _SCANS[key]
  result = image_files.scan(listing, size, channels, cache_bytes)
  _SCANS[key] = result
  while len(_SCANS) > _MEMO_SIZE:
    _SCANS.popitem(last=False)
  return result


class FolderSource(_IndexedSource):
  """A folder of image files (see `image_files`), every file decoded once when it is built."""

  kind = 'folder'

  def __init__(self, path, settings, cache_bytes=image_files.CACHE_BYTES):
    root = image_files.normalise(path)
    self.root = root
    if not settings.image_size or not settings.channels:
      raise errors.UserError(
          f'The images of a folder ({root}) may have any sizes and colours, so the size and '
          'channels they are fitted to must be set: --config.data.image_size=S (a multiple '
          'of 4, e.g. 28 or 32) and --config.data.channels=1 (grey) or 3 (RGB).'
      )
    size, channels = settings.image_size, settings.channels
    listing = image_files.list_folder(root, settings.labels)
    found = _scan(listing, size, channels, cache_bytes)
    self.skipped = sorted(found.unreadable)
    if found.unreadable:
      bad = [f'{name} ({error})' for name, error in sorted(found.unreadable.items())]
      text = (
          f'{len(bad)} of {len(listing.files)} image files in {root} cannot be read as images: '
          f'{image_files.names_in_text(bad, 10)}.'
      )
      if not settings.skip_unreadable:
        raise errors.UserError(
            f'{text} Fix or remove them, or leave them out with '
            '--config.data.skip_unreadable=True (they are then in no split, and the run records '
            'their names).'
        )
      _warn_once(f'{text} Left out (data.skip_unreadable=True).')
    keep = [i for i, f in enumerate(listing.files) if f not in found.unreadable]
    self.files = [listing.files[i] for i in keep]
    labels = None if listing.labels is None else [listing.labels[i] for i in keep]
    if not self.files:
      raise errors.UserError(
          f'None of the {len(listing.files)} image files in {root} can be read as an image: '
          'fix the files or point --config.data.path at another folder.'
      )
    if labels is not None:
      empty = sorted(set(range(len(listing.class_names))) - set(labels))
      if empty:
        raise errors.UserError(
            f'Every image of the class subfolder(s) '
            f'{", ".join(listing.class_names[k] for k in empty)} of {root} is unreadable (left '
            'out by data.skip_unreadable), so the class has no images to learn from: fix them, '
            'or remove the subfolder.'
        )
    self.wide = found.wide
    if found.wide:
      _warn_once(
          f'{len(found.wide)} of the images in {root} are 16-bit PNGs '
          f'({image_files.names_in_text(found.wide, 5)}): converted to 8 bits (round(v / 257)), '
          'as the model scores 8-bit values; its bpd is that of the 8-bit images.'
      )
    self.digests = [found.digests[f] for f in self.files]
    self.files_sha256 = _sha256(f'{d}  {f}' for d, f in zip(self.digests, self.files))
    self._images = found.images  # the readable files' images, in listing order
    self._listing = listing
    super().__init__(
        settings,
        (size, size, channels),
        listing.class_names or [],
        f'folder:{root}#{self.files_sha256[:12]}',
    )
    self._setup_splits(len(self.files), labels, f'The folder {root}')

  def _names(self, indices):
    return [self.files[i] for i in indices]

  def _paths(self, indices):
    return [self._listing.path(self.files[i]) for i in indices]

  def _uint8(self, indices):
    if self._images is not None:
      return self._images[indices]
    size, _, channels = self.event_shape
    batches = image_files.file_dataset(self._paths(indices), size, channels).batch(256)
    out = [b.numpy() for b in batches]
    return np.concatenate(out) if out else np.zeros((0,) + self.event_shape, np.uint8)

  def _train_images(self, indices, seed):
    if self._images is not None:
      return self._slices(self._images[indices], indices), True
    size, _, channels = self.event_shape
    dataset = self._slices(self._paths(indices), indices)
    dataset = dataset.shuffle(len(indices), seed=seed, reshuffle_each_iteration=True).repeat()

    def load(path, label=None):
      image = image_files.load_file(path, size, channels)[0]
      return image if label is None else (image, label)

    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), False

  def facts(self):
    facts = {
        **super().facts(),
        'path': self.root,
        'num_files': len(self.files),
        'files_sha256': self.files_sha256,
        'skipped': list(self.skipped),
        'converted_16bit': len(self.wide),
        'files': None,
    }
    if len(self.files) <= LISTED_FILES:
      facts['files'] = [f'{d}  {f}' for d, f in zip(self.digests, self.files)]
    return facts

  def _changes(self, old, new):
    changes = []
    if old.get('kind') == new['kind'] and old.get('files_sha256') != new['files_sha256']:
      changes.append(_file_changes(old, new))
    if old.get('kind') == new['kind'] and (old.get('skipped') or []) != new['skipped']:
      before, after = set(old.get('skipped') or []), set(new['skipped'])
      parts = []
      if after - before:
        parts.append(f'now unreadable: {image_files.names_in_text(sorted(after - before), 10)}')
      if before - after:
        parts.append(
            f'readable again or gone: {image_files.names_in_text(sorted(before - after), 10)}'
        )
      changes.append('skipped files changed (' + '; '.join(parts) + ')')
    return changes + super()._changes(old, new)

  def _where(self):
    return f'the folder {self.root}'


def _file_changes(old, new):
  """What differs between two folders' file lists (named where the old facts list them)."""
  if old.get('files') is None or new.get('files') is None:
    return (
        f'its files differ (content hash {str(old.get("files_sha256"))[:12]} recorded, '
        f'{new["files_sha256"][:12]} now; {old.get("num_files")} readable files then, '
        f'{new["num_files"]} now; the record lists no names above {LISTED_FILES} files)'
    )

  def table(lines):
    return dict(reversed(line.split('  ', 1)) for line in lines)

  before, after = table(old['files']), table(new['files'])
  added = sorted(set(after) - set(before))
  removed = sorted(set(before) - set(after))
  changed = sorted(f for f in set(before) & set(after) if before[f] != after[f])
  parts = [
      f'{len(names)} {what}: {image_files.names_in_text(names, 10)}'
      for names, what in ((added, 'added'), (removed, 'removed'), (changed, 'changed'))
      if names
  ]
  return 'its files changed (' + '; '.join(parts) + ')'


_ARRAYS = collections.OrderedDict()  # array files read by this process


def _read_array(path):
  info = tf.io.gfile.stat(path)
  key = (path, info.length, info.mtime_nsec)
  if key not in _ARRAYS:
    _ARRAYS[key] = image_files.read_array(path)
    while len(_ARRAYS) > _MEMO_SIZE:
      _ARRAYS.popitem(last=False)
  return _ARRAYS[key]


class ArraySource(_IndexedSource):
  """An image array file (.npy, or .npz with x and optionally y and class_names), in memory."""

  kind = 'array'

  def __init__(self, path, settings):
    self.path = path
    array = _read_array(path)
    n, height, width, depth = array.x.shape
    size, channels = settings.image_size, settings.channels
    if not size:
      if height != width or height % 4:
        raise errors.UserError(
            f'The images in {path} are {height} x {width}, not square with a side that is a '
            'multiple of 4 (PixelCNN++ halves them twice): set the size they are centre-cropped '
            'and resized to, e.g. --config.data.image_size=32.'
        )
      size = height
    if not channels:
      if depth not in (1, 3):
        raise errors.UserError(
            f'The images in {path} have {depth} channels: set --config.data.channels=1 (grey) '
            'or 3 (RGB).'
        )
      channels = depth
    names = []
    if settings.labels:
      if array.y is None:
        raise errors.UserError(
            f'data.labels=True, but {path} has no labels: save them as y beside the images '
            '(np.savez(path, x=images, y=labels), int labels [N]), or train without labels: '
            '--config.data.labels=False.'
        )
      count = len(array.class_names) if array.class_names else int(array.y.max()) + 1
      names = array.class_names or [str(k) for k in range(count)]
      empty = [names[k] for k, c in enumerate(image_files.class_counts(array.y, count)) if not c]
      if empty:
        raise errors.UserError(
            f'{path}: the classes {image_files.names_in_text(empty)} of 0..{count - 1} have no '
            'images, and a class without images cannot be learnt. Labels are class indices 0, '
            '1, ..., K - 1 with every class present (labels that start at 1: save y - 1).'
        )
    if array.x.dtype == np.uint16:
      _warn_once(
          f'The images in {path} are 16-bit: converted to 8 bits (round(v / 257)), as the '
          'model scores 8-bit values; its bpd is that of the 8-bit images.'
      )
    self.sha256 = array.sha256
    self.array_shape = list(array.x.shape)
    self.dtype = array.x.dtype.name
    self._images = image_files.fit_array(array.x, size, channels)
    super().__init__(settings, (size, size, channels), names, f'array:{path}#{array.sha256[:12]}')
    self._setup_splits(n, array.y if settings.labels else None, path)

  def _names(self, indices):
    return [str(i) for i in indices]

  def _uint8(self, indices):
    return self._images[indices]

  def _train_images(self, indices, seed):
    del seed
    return self._slices(self._images[indices], indices), True

  def facts(self):
    return {
        **super().facts(),
        'path': self.path,
        'sha256': self.sha256,
        'array_shape': self.array_shape,
        'dtype': self.dtype,
    }

  def _changes(self, old, new):
    changes = []
    if old.get('kind') == new['kind'] and old.get('sha256') != new['sha256']:
      changes.append(
          f'the array file changed (sha256 {str(old.get("sha256"))[:12]} recorded, '
          f'{new["sha256"][:12]} now; shape {old.get("array_shape")} then, '
          f'{new["array_shape"]} now)'
      )
    return changes + super()._changes(old, new)

  def _where(self):
    return f'the array file {self.path}'
