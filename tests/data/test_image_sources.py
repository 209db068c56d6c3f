"""Images from anywhere: folders and arrays of a user's images (image_sources, image_files).

Small images are generated here with PIL and written through tf.io.gfile, mostly to TF's
in-process ram:// file system. Expected pixels are computed another way: solid colours through
the documented rules (ITU-R 601 luma, alpha dropped, round(v / 257)), labels from a class value
painted into every image of the class, sigma by scipy's pairwise distances.
"""

import io
import itertools
import json
import logging

import ml_collections
import numpy as np
from PIL import Image
import pytest
from scipy.spatial import distance
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.data import image_files
from tfsmooth.data import image_sources

_COUNTER = itertools.count()


def _folder():
  return f'ram://image_sources/{next(_COUNTER)}'


def _write(path, data):
  tf.io.gfile.makedirs(path.rsplit('/', 1)[0])
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(data)


def _encode(array, fmt='PNG', **kwargs):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def _solid(value, shape):
  return np.full(shape, value, np.uint8)


def _config(path, **overrides):
  return {'name': 'images', 'path': path, 'image_size': 8, 'channels': 1, **overrides}


def _class_folder(per_class=6, classes=('cat', 'dog', 'emu'), root=None):
  """Class k's images are solid grey 40 k + 20, of assorted sizes and formats."""
  root = root or _folder()
  shapes = [(12, 9), (8, 8), (9, 16), (20, 20, 3), (10, 11, 4), (30, 8)]
  for k, name in enumerate(classes):
    value = 40 * k + 20
    for i in range(per_class):
      shape = shapes[i % len(shapes)]
      fill = _solid(value, shape)
      fmt, ext = ('JPEG', 'jpg') if i == 1 else ('BMP', 'bmp') if i == 2 else ('PNG', 'png')
      if fmt != 'PNG' and fill.ndim == 3 and fill.shape[2] == 4:
        fmt, ext = 'PNG', 'png'
      _write(f'{root}/{name}/{i}.{ext}', _encode(fill, fmt, **({'quality': 100} if i == 1 else {})))
  return root


def _grey_levels(x):
  return np.round((x + 1.0) * 127.5).astype(int)


def test_class_subfolders_give_sorted_labels_that_follow_the_images():
  root = _class_folder(classes=('emu', 'cat', 'dog'))  # written unsorted
  source = image_sources.from_config(_config(root, labels=True))
  assert source.class_names == ['cat', 'dog', 'emu'] and source.num_classes == 3
  assert source.event_shape == (8, 8, 1)
  painted = {'emu': 20, 'cat': 60, 'dog': 100}  # the value _class_folder gave each class
  expected = {k: painted[name] for k, name in enumerate(source.class_names)}
  total = 0
  for split in image_sources.SPLITS:
    x, y = source.split(split)
    total += len(x)
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape[1:] == (8, 8, 1)
    levels = _grey_levels(x)
    for image, label in zip(levels, y):  # a JPEG of a solid grey stays within a level or two
      assert np.abs(image - expected[int(label)]).max() <= 2
  assert total == 18
  assert source.facts()['class_counts'] == [6, 6, 6]


def test_flat_folder_mixed_sizes_and_channels_follow_the_documented_rules(caplog):
  root = _folder()
  rgb = (200, 100, 50)
  luma = round(0.2989 * 200 + 0.5870 * 100 + 0.1140 * 50)  # ITU-R 601, PIL's 'L' weights
  _write(f'{root}/rgb_wide.png', _encode(np.tile(np.uint8(rgb), (6, 14, 1))))
  rgba = np.concatenate([np.tile(np.uint8(rgb), (9, 9, 1)), _solid(0, (9, 9, 1))], axis=-1)
  _write(f'{root}/rgba.png', _encode(rgba))  # alpha 0 everywhere: dropped, colour kept
  _write(f'{root}/grey.bmp', _encode(_solid(luma, (16, 4)), 'BMP'))
  frames = [Image.fromarray(np.tile(np.uint8(c), (8, 8, 1))) for c in (rgb, (0, 255, 0))]
  buffer = io.BytesIO()
  frames[0].save(buffer, 'GIF', save_all=True, append_images=frames[1:])
  _write(f'{root}/animated.GIF', buffer.getvalue())  # first frame only; extension any case
  _write(f'{root}/sub/deeper.png', _encode(_solid(luma, (4, 4))))  # upsampled, still solid
  wide = np.full((8, 8), 257 * luma + 100, np.uint16)  # 16 bits: round(v / 257) = luma
  _write(f'{root}/wide16.png', _encode(wide))
  _write(f'{root}/notes.txt', b'not an image')
  _write(f'{root}/.DS_Store', b'\x00')
  caplog.set_level(logging.INFO, logger='absl')
  for channels in (1, 3):
    source = image_sources.from_config(
        _config(root, channels=channels, validation_fraction=0.2, test_fraction=0.2)
    )
    x = np.concatenate([source.split(s)[0] for s in image_sources.SPLITS])
    assert x.shape == (6, 8, 8, channels)
    levels = _grey_levels(x)
    if channels == 1:
      assert np.all(levels == luma)  # GIF palettes keep these colours exactly
    else:  # grey images copied into R, G and B; colour ones kept
      colour = [np.all(image == rgb) for image in levels]
      grey = [np.all(image == luma) for image in levels]
      assert sum(colour) == 3 and sum(grey) == 3
  messages = ' '.join(r.getMessage() for r in caplog.records)
  assert 'notes.txt' in messages and '.DS_Store' in messages and 'Ignoring 2 files' in messages
  assert source.facts()['converted_16bit'] == 1
  assert source.facts()['num_files'] == 6


def test_centre_crop_keeps_the_middle_square_and_the_aspect():
  root = _folder()
  image = _solid(0, (10, 30))
  image[:, 10:20] = 180  # the central 10 x 10 square
  for i in range(3):
    _write(f'{root}/{i}.png', _encode(image))
  source = image_sources.from_config(_config(root, image_size=4))
  x = np.concatenate([source.split(s)[0] for s in image_sources.SPLITS])
  assert np.all(_grey_levels(x) == 180)


def test_an_image_of_the_target_shape_passes_through_exactly():
  root = _folder()
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
  for i, p in enumerate(pixels):
    _write(f'{root}/{i}.png', _encode(p))
  source = image_sources.from_config(_config(root, validation_fraction=0.25, test_fraction=0.25))
  x = np.concatenate([source.split(s)[0] for s in image_sources.SPLITS])
  got = sorted(map(bytes, _grey_levels(x).astype(np.uint8)))
  assert got == sorted(map(bytes, pixels[..., None]))


def test_a_local_folder_works_as_ram(tmp_path):
  ram = _class_folder(per_class=3, classes=('a', 'b'))
  local = _class_folder(per_class=3, classes=('a', 'b'), root=str(tmp_path / 'images'))
  one = image_sources.from_config(_config(ram, labels=True))
  two = image_sources.from_config(_config(local + '/', labels=True))
  assert one.facts()['files_sha256'] == two.facts()['files_sha256']
  for split in image_sources.SPLITS:
    np.testing.assert_array_equal(one.split(split)[0], two.split(split)[0])
    np.testing.assert_array_equal(one.split(split)[1], two.split(split)[1])
  assert two.identity.startswith(f'folder:{local}#')


def test_corrupt_files_are_refused_by_name_or_skipped_with_a_warning(caplog):
  root = _class_folder(per_class=4, classes=('a', 'b'))
  _write(f'{root}/a/broken.png', b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)
  _write(f'{root}/b/empty.jpg', b'')
  with pytest.raises(errors.UserError, match=r'2 of 10 image files.*a/broken.png.*b/empty.jpg'):
    image_sources.from_config(_config(root, labels=True))
  with pytest.raises(errors.UserError, match='skip_unreadable=True'):
    image_sources.from_config(_config(root, labels=True))
  caplog.set_level(logging.WARNING, logger='absl')
  source = image_sources.from_config(_config(root, labels=True, skip_unreadable=True))
  facts = source.facts()
  assert facts['skipped'] == ['a/broken.png', 'b/empty.jpg'] and facts['num_files'] == 8
  assert sum(facts['counts'].values()) == 8
  assert any('a/broken.png' in r.getMessage() for r in caplog.records)
  # Every image the pipeline reaches decodes: a full pass over the training split.
  x = [e['x'] for e in source.train_examples(0).take(3 * facts['counts']['train'])]
  assert len(x) == 3 * facts['counts']['train']


@pytest.mark.parametrize(
    'layout, labels, message',
    [
        ({}, False, 'holds no images'),
        ({'readme.txt': b'x'}, False, r'holds no images \(it holds 1 other files: readme.txt\)'),
        ({'a/1.png': None, 'b/notes.txt': b'x'}, True, r'class subfolder b of .* holds no images'),
        ({'a/1.png': None, 'top.png': None}, True, r'1 images in the folder itself \(top.png\)'),
        ({'1.png': None, '2.png': None, '3.png': None}, True, 'has no subfolders with images'),
        ({'1.png': None, '2.png': None}, False, 'has 2 images, fewer than the splits need'),
    ],
)
def test_folder_layout_mistakes_are_one_paragraph(layout, labels, message):
  root = _folder()
  tf.io.gfile.makedirs(root)
  for name, data in layout.items():
    _write(f'{root}/{name}', _encode(_solid(7, (8, 8))) if data is None else data)
  with pytest.raises(errors.UserError, match=message) as error:
    image_sources.from_config(_config(root, labels=labels))
  assert '\n' not in str(error.value)


def test_settings_are_checked():
  root = _class_folder(per_class=2, classes=('a',))
  for overrides, message in (
      ({'image_size': 30}, r'multiple of 4.*image_size=28 or 32'),
      ({'image_size': 0}, 'must be set'),
      ({'channels': 2}, 'data.channels is 1'),
      ({'validation_fraction': 0.6, 'test_fraction': 0.5}, 'together below 1'),
      ({'labels': 'yes'}, 'data.labels is True or False'),
  ):
    with pytest.raises(errors.UserError, match=message):
      image_sources.from_config(_config(root, **overrides))
  with pytest.raises(errors.UserError, match='data.path, which is empty'):
    image_sources.from_config(_config(''))
  with pytest.raises(errors.UserError, match='does not exist'):
    image_sources.from_config(_config(root + '/nowhere'))
  with pytest.raises(errors.UserError, match='one image file'):
    image_sources.from_config(_config(root + '/a/0.png'))
  with pytest.raises(errors.UserError, match='names points'):
    image_sources.from_config(dict(name='file', path='points.npy'))
  with pytest.raises(errors.UserError, match='data.path=.* not with the TFDS data set'):
    image_sources.from_config(dict(name='mnist', path=root))


def test_points_and_images_are_told_apart_by_the_config():
  assert image_sources.is_image_config({'name': 'images', 'path': 'x.npy'})
  assert image_sources.is_image_config({'name': 'svhn_cropped'})
  assert not image_sources.is_image_config({'name': 'file', 'path': 'x.npy'})
  assert not image_sources.is_image_config({'name': 'rings'})
  points = _folder() + '/points.csv'
  _write(points, b'1,2\n3,4\n')
  with pytest.raises(errors.UserError, match='--config.data.name=file'):
    image_sources.from_config(_config(points))


def test_splits_are_stable_and_a_changed_folder_is_refused_naming_what_changed():
  root = _class_folder(per_class=5, classes=('a', 'b'))
  config = _config(root, labels=True, split_seed=3)
  first = image_sources.from_config(config)
  recorded = json.loads(ml_collections.ConfigDict({'facts': first.facts()}).to_json_best_effort())[
      'facts'
  ]  # as config.json gives it back
  image_sources._SCANS.clear()  # pylint: disable=protected-access  (a new process)
  second = image_sources.from_config(config)
  second.check(recorded)
  for split in image_sources.SPLITS:
    np.testing.assert_array_equal(first.split(split)[0], second.split(split)[0])
  names = {s: set(first._names(first._splits[s])) for s in image_sources.SPLITS}  # pylint: disable=protected-access
  assert set.union(*names.values()) == set(first.files) and sum(map(len, names.values())) == 10
  assert first.facts()['counts'] == {'train': 8, 'validation': 1, 'test': 1}
  other_seed = image_sources.from_config(_config(root, labels=True, split_seed=4))
  with pytest.raises(errors.UserError, match='data.split_seed was 3, now 4'):
    other_seed.check(recorded)

  _write(f'{root}/b/new.png', _encode(_solid(3, (8, 8))))
  tf.io.gfile.remove(f'{root}/a/0.png')
  _write(f'{root}/a/3.png', _encode(_solid(99, (5, 5))))  # another size: another length
  changed = image_sources.from_config(config)
  with pytest.raises(errors.UserError) as error:
    changed.check(recorded)
  message = str(error.value)
  assert '1 added: b/new.png' in message and '1 removed: a/0.png' in message
  assert '1 changed: a/3.png' in message and 'new --workdir' in message
  assert '\n' not in message


def test_large_folders_record_hashes_and_counts_not_names(monkeypatch):
  monkeypatch.setattr(image_sources, 'LISTED_FILES', 4)
  root = _class_folder(per_class=3, classes=('a', 'b'))
  recorded = image_sources.from_config(_config(root, labels=True)).facts()
  assert recorded['files'] is None
  _write(f'{root}/b/new.png', _encode(_solid(3, (8, 8))))
  with pytest.raises(errors.UserError, match=r'6 readable files then, 7 now.*b: 3 -> 4'):
    image_sources.from_config(_config(root, labels=True)).check(recorded)


def test_train_examples_are_seeded_infinite_and_the_same_decoded_in_the_pipeline():
  root = _class_folder(per_class=4, classes=('a', 'b'))
  cached = image_sources.from_config(_config(root, labels=True))
  streamed = image_sources.from_config(_config(root, labels=True), cache_bytes=0)
  assert cached._images is not None and streamed._images is None  # pylint: disable=protected-access
  n = cached.facts()['counts']['train']
  first = [(e['x'].numpy(), int(e['labels'])) for e in cached.train_examples(5).take(3 * n)]
  again = [(e['x'].numpy(), int(e['labels'])) for e in cached.train_examples(5).take(3 * n)]
  piped = [(e['x'].numpy(), int(e['labels'])) for e in streamed.train_examples(5).take(3 * n)]
  other = [int(e['labels']) for e in cached.train_examples(6).take(3 * n)]
  for (x1, y1), (x2, y2), (x3, y3) in zip(first, again, piped):
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(x1, x3)
    assert y1 == y2 == y3
  assert [y for _, y in first] != other
  train_x, train_y = cached.split('train')
  pool = {(bytes(_grey_levels(x)), int(y)) for x, y in zip(train_x, train_y)}
  assert {(bytes(_grey_levels(x)), y) for x, y in first} <= pool  # training images only
  for split in ('validation', 'test'):
    np.testing.assert_array_equal(cached.split(split)[0], streamed.split(split)[0])
  unlabelled = image_sources.from_config(_config(root))
  element = next(iter(unlabelled.train_examples(0)))
  assert element.shape == (8, 8, 1) and unlabelled.split('test')[1] is None
  assert unlabelled.num_classes is None and unlabelled.class_names is None


def test_sigma_heuristic_on_the_training_images():
  root = _folder()
  rng = np.random.default_rng(1)
  for i in range(12):
    _write(f'{root}/{i}.png', _encode(rng.integers(0, 256, (8, 8), dtype=np.uint8)))
  source = image_sources.from_config(_config(root))
  train = source.split('train')[0].reshape(-1, 64).astype(np.float64)
  expected = np.median(distance.pdist(train)) / (2 * np.sqrt(64))
  assert source.sigma_heuristic() == pytest.approx(expected, rel=1e-6)


# Arrays.


def _save(path, **arrays):
  buffer = io.BytesIO()
  if set(arrays) == {'x'} and path.endswith('.npy'):
    np.save(buffer, arrays['x'])
  else:
    np.savez(buffer, **arrays)
  _write(path, buffer.getvalue())
  return path


def test_npy_images_keep_their_values_and_shape():
  rng = np.random.default_rng(2)
  x = rng.integers(0, 256, (10, 12, 12, 3), dtype=np.uint8)
  path = _save(_folder() + '/x.npy', x=x)
  source = image_sources.from_config(dict(name='images', path=path))
  assert source.event_shape == (12, 12, 3) and source.identity.startswith(f'array:{path}#')
  for split in image_sources.SPLITS:
    indices = source._splits[split]  # pylint: disable=protected-access
    np.testing.assert_array_equal(source.split(split)[0], x[indices] / np.float32(127.5) - 1)
  grey = _save(_folder() + '/grey.npy', x=x[..., 0])  # [N, H, W]: grey
  assert image_sources.from_config(dict(name='images', path=grey)).event_shape == (12, 12, 1)
  fitted = image_sources.from_config(dict(name='images', path=path, image_size=8, channels=1))
  assert fitted.split('train')[0].shape[1:] == (8, 8, 1)


def test_npz_labels_follow_the_images_and_wrong_labels_are_refused():
  y = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 1])
  x = np.stack([_solid(50 * label + 10, (8, 8, 1)) for label in y])
  names = np.array(['zero', 'one', 'two'])
  path = _save(_folder() + '/xy.npz', x=x, y=y, class_names=names)
  source = image_sources.from_config(dict(name='images', path=path, labels=True))
  assert source.class_names == ['zero', 'one', 'two']
  for split in image_sources.SPLITS:
    images, labels = source.split(split)
    assert np.all(_grey_levels(images)[:, 0, 0, 0] == 50 * labels + 10)
  wrong = _save(_folder() + '/wrong.npz', x=x, y=y[:-1])
  with pytest.raises(errors.UserError, match=r'labels y have shape \[9\] but there are 10 images'):
    image_sources.from_config(dict(name='images', path=wrong, labels=True))
  unlabelled = _save(_folder() + '/x.npz', x=x)
  with pytest.raises(errors.UserError, match='has no labels'):
    image_sources.from_config(dict(name='images', path=unlabelled, labels=True))
  one_based = _save(_folder() + '/one.npz', x=x, y=y + 1)
  with pytest.raises(errors.UserError, match='classes 0 of 0..3 have no images'):
    image_sources.from_config(dict(name='images', path=one_based, labels=True))


def test_arrays_that_are_no_images_name_the_points_config():
  folder = _folder()
  floats = _save(folder + '/f.npy', x=np.zeros((10, 8, 8, 1), np.float32))
  points = _save(folder + '/p.npy', x=np.zeros((10, 2), np.uint8))
  for path in (floats, points):
    with pytest.raises(
        errors.UserError, match=f'--config.data.name=file --config.data.path={path}'
    ):
      image_sources.from_config(dict(name='images', path=path))
  odd = _save(folder + '/odd.npy', x=np.zeros((10, 10, 10, 1), np.uint8))
  with pytest.raises(errors.UserError, match='image_size=32'):
    image_sources.from_config(dict(name='images', path=odd))


def test_sixteen_bit_arrays_are_rounded_to_eight_bits():
  values = np.array([0, 128, 1000, 65535], np.uint16)
  x = np.broadcast_to(values[:, None, None, None], (4, 4, 4, 1)).copy()
  source = image_sources.from_config(
      dict(name='images', path=_save(_folder() + '/w.npy', x=x), validation_fraction=0.25)
  )
  got = np.concatenate([source.split(s)[0] for s in image_sources.SPLITS])
  assert sorted(_grey_levels(got)[:, 0, 0, 0]) == sorted(np.round(values / 257).astype(int))


def test_fit_tensor_agrees_with_the_scan():
  """`image_files.fit_array` (arrays) and `scan` (files) fit an image the same way."""
  rng = np.random.default_rng(3)
  image = rng.integers(0, 256, (14, 10, 3), dtype=np.uint8)
  root = _folder()
  _write(f'{root}/one.png', _encode(image))
  listing = image_files.list_folder(root, classes=False)
  scanned = image_files.scan(listing, 8, 1)
  np.testing.assert_array_equal(scanned.images[0], image_files.fit_array(image[None], 8, 1)[0])


def test_sixteen_bit_pngs_are_rounded_not_truncated(caplog):
  root = _folder()
  level, rest = 200, 100  # v = 257 * 200 + 100: v / 257 rounds to 200, v >> 8 gives 201
  for i in range(3):
    _write(f'{root}/{i}.png', _encode(np.full((8, 8), 257 * level + rest, np.uint16)))
  caplog.set_level(logging.WARNING, logger='absl')
  source = image_sources.from_config(_config(root))
  x = np.concatenate([source.split(s)[0] for s in image_sources.SPLITS])
  assert np.all(_grey_levels(x) == level)
  assert any('16-bit PNGs' in r.getMessage() for r in caplog.records)
