"""A user's image files and arrays: listing, decoding, checking, and fitting to one shape.

Every image a user brings (a file of a folder, a row of an array) becomes uint8
[S, S, C] (S = data.image_size, C = data.channels) by `fit_tensor`, in this order:

  1. decode (files): `tf.io.decode_image(..., expand_animations=False)` reads PNG, JPEG, BMP
     and GIF (an animated GIF gives its first frame), to float32 values on the 8-bit scale
     [0, 255]. 16-bit PNGs are decoded at 16 bits (`tf.io.decode_png(dtype=uint16)`) and
     divided by 257 (65535 -> 255); uint16 arrays likewise. They are converted, not refused:
     the discretized head scores 8-bit values, so an 8-bit version is what the model can
     learn, the resize below re-quantises every image anyway, and rounding here once from the
     16-bit values is better than what a user's hand conversion (often a truncating `>> 8`)
     or decode_image's own 16-to-8 stripping (it truncates) would give. A warning names how
     many images were converted; the bpd is then that of their 8-bit rounding.
  2. channels: an alpha channel is dropped (as `PIL.Image.convert('RGB')` and
     `decode_image(channels=3)` do: composite transparent images onto a background first if
     their hidden pixels hold junk); grey -> RGB copies the grey value into R, G and B;
     RGB -> grey is ITU-R 601 luma, 0.2989 R + 0.5870 G + 0.1140 B (`tf.image.rgb_to_grayscale`;
     PIL's 'L' mode uses the same weights).
  3. centre-crop to a square of side min(H, W) (offsets (H - s) // 2, (W - s) // 2, as CelebA's
     crop): cropping before resizing keeps the aspect ratio (resizing a non-square image
     straight to a square would stretch it) and resizes fewer pixels.
  4. resize to S x S, bilinear with antialiasing (`tf.image.resize(..., antialias=True)`, as
     CelebA's definition): antialiasing averages over the source pixels a target pixel covers
     when shrinking, where plain bilinear would alias. Skipped when the square is S already.
  5. round once to the nearest 8-bit value (clipped to [0, 255]). Everything before stays in
     float, so an image is rounded once, not after each step (each would lose up to half a
     level); steps 2 and 4 are linear, so converting channels first changes nothing but the
     work (fewer channels to resize).

A folder (`list_folder`) is read through `tf.io.gfile` (local paths, gs://, ram://, ...): files
with the extensions of `IMAGE_EXTENSIONS` (case-insensitive) are images, anything else is
ignored and listed at INFO, as are hidden files and folders (names starting with '.'). Flat, or
with labels one subfolder per class: the sorted subfolder names are the class names, the
position in that order the label, and each class's images are found at any depth below it.

`scan` decodes every file once, in parallel (a tf.data map, order kept), before training: a
corrupt file must not surface mid-run as a decode error. That costs one pass of reading and
decoding the whole folder, the work of one epoch of an uncached pipeline (for a large folder on
a network file system, dominated by reading it), in every process that builds the source
(training, evaluation, sampling); within a process the result is kept (`_SCANS`), and the
fitted uint8 images are kept in memory when they fit in `cache_bytes`, so the training
pipeline then decodes nothing.
"""

import collections
import dataclasses
import hashlib
import io
import os
import posixpath
import re

from absl import logging
import numpy as np
import tensorflow as tf

from tfsmooth import errors

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif')
ARRAY_EXTENSIONS = ('.npy', '.npz')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
CACHE_BYTES = 2**30  # fitted uint8 images kept in memory up to this size
LISTED_MAX = 20  # names shown in a message before "and N more"
_GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def names_in_text(names, limit=LISTED_MAX):
  """'a, b, c' or 'a, b, ... and 7 more'."""
  names = list(names)
  shown = ', '.join(names[:limit])
  return shown + (f' and {len(names) - limit} more' if len(names) > limit else '')


def to_channels(image, channels):
  """float [H, W, C] (C 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) -> [H, W, channels] (1 or 3):
  alpha dropped, grey copied into RGB, RGB to ITU-R 601 luma."""

  def grey():
    weights = tf.constant(_GREY_WEIGHTS, image.dtype)
    return tf.tensordot(image[..., :3], weights, 1)[..., None]

  def colour():
    return image[..., :3]

  def from_grey():
    return image[..., :1] if channels == 1 else tf.tile(image[..., :1], [1, 1, 3])

  from_colour = grey if channels == 1 else colour
  depth = image.shape[-1]
  if depth is not None:  # known when tracing: no branch for the other case
    out = from_colour() if depth >= 3 else from_grey()
  else:
    out = tf.cond(tf.shape(image)[-1] >= 3, from_colour, from_grey)
  return tf.ensure_shape(out, [None, None, channels])


def fit_tensor(image, size, channels):
  """One image [H, W, C] -> uint8 [size, size, channels]: channels converted, centre-cropped
  to a square, resized (bilinear, antialiased), rounded once (the module docstring says why
  in this order). uint8 input is on the 8-bit scale, uint16 is divided by 257, float input is
  taken as on the 8-bit scale [0, 255]."""
  if image.dtype == tf.uint16:
    image = tf.cast(image, tf.float32) / 257.0
  else:
    image = tf.cast(image, tf.float32)
  image = to_channels(image, channels)
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  side = tf.minimum(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  image = image[top : top + side, left : left + side]
  image = tf.cond(
      tf.equal(side, size),
      lambda: image,
      lambda: tf.image.resize(image, (size, size), method='bilinear', antialias=True),
  )
  image = tf.ensure_shape(image, [size, size, channels])
  return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def is_16_bit(contents):
  """Whether encoded image bytes (a scalar string tensor) are a PNG of 16 bits per sample (the
  IHDR bit depth, byte 24; PNG is the only one of the formats read that has 16 bits)."""
  long_enough = tf.strings.length(contents) > 24
  return tf.cond(
      long_enough,
      lambda: tf.logical_and(
          tf.equal(tf.strings.substr(contents, 0, 8), PNG_SIGNATURE),
          tf.equal(tf.strings.substr(contents, 24, 1), b'\x10'),
      ),
      lambda: tf.constant(False),
  )


def decode(contents):
  """(float32 [H, W, C] on the 8-bit scale, whether it was a 16-bit PNG) of encoded bytes."""
  wide = is_16_bit(contents)
  image = tf.cond(
      wide,
      lambda: tf.cast(tf.io.decode_png(contents, dtype=tf.uint16), tf.float32) / 257.0,
      lambda: tf.cast(tf.io.decode_image(contents, expand_animations=False), tf.float32),
  )
  return tf.ensure_shape(image, [None, None, None]), wide


def load_file(path, size, channels):
  """(uint8 [size, size, channels], fingerprint of the file's bytes (uint8 [8], FarmHash64 as
  `tf.fingerprint` computes it, stable across platforms), 16-bit or not) of the image file
  `path` (a string tensor)."""
  contents = tf.io.read_file(path)
  image, wide = decode(contents)
  return fit_tensor(image, size, channels), tf.fingerprint(contents[None])[0], wide


# ----------------------------------------------------------------------------------------------
# Folders


@dataclasses.dataclass
class Listing:
  """The image files of a folder: `files` relative paths ('/'-separated, sorted), `labels`
  ([N] int, or None without classes), `class_names` (sorted subfolder names, or None),
  `ignored` relative paths of files that are no images (by extension) or hidden."""

  root: str
  files: list
  labels: list = None
  class_names: list = None
  ignored: list = dataclasses.field(default_factory=list)

  def path(self, relative):
    return (
        posixpath.join(self.root, relative)
        if '://' in self.root
        else os.path.join(self.root, *relative.split('/'))
    )


def normalise(path):
  """`path` without trailing separators (a URL's scheme kept)."""
  path = os.fspath(path)
  stripped = path.rstrip('/')
  return stripped if stripped and not stripped.endswith(':') else path


def _walk(root):
  """(relative dir, [subdirs], [files]) below `root` through tf.io.gfile, sorted. TF's ram://
  file system lists by name prefix (listing ram://d/a also returns 'nim.gif' for a file
  ram://d/anim.gif), so there names that do not exist are dropped."""
  check = root.startswith('ram://')
  for directory, subdirs, files in tf.io.gfile.walk(root):
    if check and not tf.io.gfile.isdir(directory):
      continue
    relative = directory[len(root) :].strip('/')
    if check:
      subdirs[:] = [d for d in subdirs if tf.io.gfile.isdir(posixpath.join(directory, d))]
      files = [f for f in files if tf.io.gfile.exists(posixpath.join(directory, f))]
    hidden = [d for d in subdirs if d.startswith('.')]
    subdirs[:] = sorted(d.rstrip('/') for d in subdirs if not d.startswith('.'))
    yield relative, subdirs, sorted(files), hidden


def _is_image(name):
  return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')


def list_folder(root, classes):
  """The `Listing` of folder `root`; with `classes`, one subfolder per class.

  Raises `errors.UserError` (one paragraph naming the folder and the fix) for a folder with no
  images, and with `classes` for one without class subfolders, images beside the class
  subfolders, or a class subfolder without images.
  """
  root = normalise(root)
  files, ignored = [], []
  for relative, _, names, hidden in _walk(root):
    prefix = relative + '/' if relative else ''
    ignored.extend(prefix + h + '/' for h in hidden)
    for name in names:
      (files if _is_image(name) else ignored).append(prefix + name)
  files.sort()
  if ignored:
    logging.info(
        'Ignoring %d files in %s that are no images (by extension; images are %s) or hidden: %s',
        len(ignored),
        root,
        ', '.join(IMAGE_EXTENSIONS),
        names_in_text(ignored),
    )
  if not files:
    others = (
        f' (it holds {len(ignored)} other files: {names_in_text(ignored, 5)})' if ignored else ''
    )
    raise errors.UserError(
        f'The folder {root} (--config.data.path) holds no images{others}. tfsmooth reads '
        f'image files with the extensions {", ".join(IMAGE_EXTENSIONS)} (any case), in the '
        'folder itself or, for classes, one subfolder per class: put your images there, or '
        'point --config.data.path at the folder that holds them.'
    )
  if not classes:
    return Listing(root, files, ignored=ignored)
  top = [f for f in files if '/' not in f]
  class_names = sorted({f.split('/', 1)[0] for f in files if '/' in f})
  subfolders = next(_walk(root))[1]
  if not class_names:
    raise errors.UserError(
        f'data.labels=True reads the class of every image from its subfolder, but the folder '
        f'{root} has no subfolders with images ({len(files)} images lie in the folder itself). '
        'Put the images of each class into a subfolder named after the class '
        f'({root}/cats/..., {root}/dogs/...), or train without labels: '
        '--config.data.labels=False.'
    )
  if top:
    raise errors.UserError(
        f'The folder {root} has class subfolders ({names_in_text(class_names, 5)}) and also '
        f'{len(top)} images in the folder itself ({names_in_text(top, 5)}), which belong to no '
        'class. Move them into the subfolder of their class (or a new one), or train without '
        'labels (--config.data.labels=False reads every image at any depth).'
    )
  empty = [d for d in subfolders if d not in class_names]
  if empty:
    raise errors.UserError(
        f'The class subfolder{"s" if len(empty) > 1 else ""} {names_in_text(empty)} of {root} '
        f'hold{"" if len(empty) > 1 else "s"} no images (extensions '
        f'{", ".join(IMAGE_EXTENSIONS)}): a class without images cannot be learnt. Add its '
        'images, or remove the subfolder (then it is no class).'
    )
  index = {name: i for i, name in enumerate(class_names)}
  labels = [index[f.split('/', 1)[0]] for f in files]
  return Listing(root, files, labels, class_names, ignored)


@dataclasses.dataclass
class Scan:
  """What `scan` found: `images` uint8 [N, S, S, C] of the readable files in listing order
  (None where they did not fit in the cache), `digests` {relative path: 16 hex digits},
  `unreadable` {relative path: error}, `wide` relative paths of 16-bit PNGs."""

  images: np.ndarray
  digests: dict
  unreadable: dict
  wide: list


def _decoder(size, channels):
  def load(index, path):
    image, digest, wide = load_file(path, size, channels)
    return index, image, digest, wide

  return load


def _first_line(error):
  """The gist of a TF error: its first line without the wrapped-function and op decorations."""
  message = getattr(error, 'message', None) or str(error)
  message = re.sub(r'\{\{function_node [^}]*\}\}\s*', '', message)
  message = re.sub(
      r'\s*\[Op:\w+\].*$', '', message.strip().splitlines()[0] if message.strip() else ''
  )
  return message[:200] or type(error).__name__


def scan(listing, size, channels, cache_bytes=CACHE_BYTES, batch=256):
  """Decodes every file of `listing` once, in parallel: the `Scan` (images kept if
  N * size^2 * channels bytes <= `cache_bytes`)."""
  paths = [listing.path(f) for f in listing.files]
  n = len(paths)
  keep = n * size * size * channels <= cache_bytes
  dataset = (
      tf.data.Dataset.from_tensor_slices((tf.range(n, dtype=tf.int64), tf.constant(paths)))
      .map(_decoder(size, channels), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .ignore_errors()
      .batch(batch)
      .prefetch(2)
  )
  found, images, digests, wide = [], [], {}, []
  for index, image, digest, is_wide in dataset:
    index = index.numpy()
    found.append(index)
    if keep:
      images.append(image.numpy())
    for i, d, w in zip(index, digest.numpy(), is_wide.numpy()):
      digests[listing.files[i]] = bytes(d).hex()
      if w:
        wide.append(listing.files[i])
  found = np.concatenate(found) if found else np.zeros((0,), np.int64)
  unreadable = {}
  for i in sorted(set(range(n)) - set(found.tolist())):
    try:  # again, eagerly, for the error message
      load_file(tf.constant(paths[i]), size, channels)
      unreadable[listing.files[i]] = 'failed in the pipeline'
    except (tf.errors.OpError, ValueError) as e:
      unreadable[listing.files[i]] = _first_line(e)
  kept = None
  if keep:
    kept = np.concatenate(images) if images else np.zeros((0, size, size, channels), np.uint8)
  return Scan(kept, digests, unreadable, wide)


def file_dataset(paths, size, channels):
  """uint8 [size, size, channels] images decoded from `paths` (a string tensor or a dataset
  of them), in parallel, in order."""
  dataset = (
      paths if isinstance(paths, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices(paths)
  )
  return dataset.map(
      lambda path: load_file(path, size, channels)[0],
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True,
  )


def folder_signature(listing):
  """What identifies a folder's state within one process without reading it: the listing,
  and for local and ram:// paths each file's size and modification time (one stat each; on
  object stores that would be one request per file, so there the names alone)."""
  stat = '://' not in listing.root or listing.root.startswith('ram://')
  if not stat:
    return tuple(listing.files)
  out = []
  for f in listing.files:
    info = tf.io.gfile.stat(listing.path(f))
    out.append((f, info.length, info.mtime_nsec))
  return tuple(out)


# ----------------------------------------------------------------------------------------------
# Arrays


@dataclasses.dataclass
class ArrayFile:
  """An image array file: `x` uint8 or uint16 [N, H, W, C], `y` int labels [N] or None,
  `class_names` (the .npz's 'class_names', or None), `sha256` of the file's bytes."""

  path: str
  x: np.ndarray
  y: np.ndarray = None
  class_names: list = None
  sha256: str = ''


def _points_hint(path):
  return (
      f'For points (an [N, D] array of numbers) use --config.data.name=file '
      f'--config.data.path={path}.'
  )


def read_array(path):
  """The `ArrayFile` of `path`: .npy (uint8 images [N, H, W, C], or [N, H, W] for grey) or .npz
  with 'x' (such images) and optionally 'y' (int labels [N]) and 'class_names' (strings).

  Raises `errors.UserError` for anything else: a float array or a 2-D one (points: data.name
  'file'), labels whose count differs from the images', non-integer or negative labels.
  """
  ext = os.path.splitext(path)[1].lower()
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  if not data:
    raise errors.UserError(f'{path} is empty (0 bytes); save your images with np.save.')
  digest = hashlib.sha256(data).hexdigest()
  try:
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise errors.UserError(
        f'Cannot read {path} as a NumPy file ({e}); save your images with np.save (an array '
        '[N, H, W, C] of uint8) or np.savez (x=images, y=labels).'
    ) from e
  y = names = None
  if ext == '.npz':
    with loaded:
      if 'x' not in loaded.files:
        raise errors.UserError(
            f'{path} holds the arrays {", ".join(loaded.files)} but no x: save the images as x '
            '(and the labels, if any, as y): np.savez(path, x=images, y=labels).'
        )
      x = loaded['x']
      y = loaded['y'] if 'y' in loaded.files else None
      if 'class_names' in loaded.files:
        names = [str(n) for n in loaded['class_names'].tolist()]
  else:
    x = loaded
  x = _check_images(x, path)
  if y is not None:
    y = _check_labels(y, len(x), path, names)
  return ArrayFile(path, x, y, names, digest)


def _check_images(x, path):
  if x.dtype.kind == 'f' or x.ndim == 2:
    what = 'floats' if x.dtype.kind == 'f' else 'a 2-D array'
    raise errors.UserError(
        f'{path} holds {what} of shape {list(x.shape)} ({x.dtype}), which are no 8-bit '
        'images: --config.data.name=images reads uint8 images [N, H, W, C] (or [N, H, W] for '
        'grey). For images in [0, 1] save np.round(x * 255).astype(np.uint8); for [-1, 1], '
        f'np.round((x + 1) * 127.5).astype(np.uint8). {_points_hint(path)}'
    )
  if x.dtype not in (np.uint8, np.uint16) or x.ndim not in (3, 4):
    raise errors.UserError(
        f'{path} holds an array of shape {list(x.shape)} and dtype {x.dtype}: '
        '--config.data.name=images reads uint8 images [N, H, W, C] with C = 1 (grey), 3 (RGB) '
        'or 4 (RGBA), or [N, H, W] for grey. Convert them with x.astype(np.uint8) if the values '
        f'are 0..255. {_points_hint(path)}'
    )
  if x.ndim == 3:
    x = x[..., None]
  if x.shape[-1] not in (1, 2, 3, 4) or not all(x.shape):
    raise errors.UserError(
        f'{path} holds images of shape {list(x.shape)}: expected [N, H, W, C] with N, H, W >= 1 '
        'and C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA), channels last.'
    )
  return x


def _check_labels(y, n, path, names):
  if y.ndim != 1 or len(y) != n:
    raise errors.UserError(
        f'{path}: the labels y have shape {list(y.shape)} but there are {n} images in x: give '
        f'one integer label per image, y of shape [{n}] (np.savez(path, x=images, y=labels)).'
    )
  if y.dtype.kind not in 'iu' and not (
      y.dtype.kind == 'f' and np.all(np.isfinite(y)) and np.all(y == np.round(y))
  ):
    raise errors.UserError(
        f'{path}: the labels y are {y.dtype}, not integer class indices 0, 1, ...: save '
        'y.astype(np.int32) (map class names to indices first, e.g. with np.unique(names, '
        'return_inverse=True)).'
    )
  y = y.astype(np.int64)
  limit = len(names) if names is not None else None
  bad = (y < 0) | (y >= limit) if limit is not None else y < 0
  if bad.any():
    first = int(np.argmax(bad))
    within = f'[0, {limit}) (its {limit} class_names)' if limit is not None else '>= 0'
    raise errors.UserError(
        f'{path}: {int(bad.sum())} labels lie outside {within}; the first is y[{first}] = '
        f'{y[first]}. Labels are class indices 0, 1, ..., K - 1.'
    )
  return y.astype(np.int32)


def fit_array(x, size, channels, batch=512):
  """uint8 [N, size, size, channels] of an image array (`fit_tensor` on each image; an array
  of that shape already is returned as it is)."""
  if x.dtype == np.uint8 and x.shape[1:] == (size, size, channels):
    return x
  dataset = (
      tf.data.Dataset.from_tensor_slices(x)
      .map(lambda image: fit_tensor(image, size, channels), num_parallel_calls=tf.data.AUTOTUNE)
      .batch(batch)
  )
  return np.concatenate([b.numpy() for b in dataset])


def class_counts(labels, num_classes):
  """[num_classes] counts of the labels."""
  counts = collections.Counter(int(v) for v in labels)
  return [counts.get(k, 0) for k in range(num_classes)]
