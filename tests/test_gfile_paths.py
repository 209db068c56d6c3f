"""Paths as URLs: user point files, IDX files and the classifier read through tf.io.gfile from
TensorFlow's in-memory file system (`ram://`) exactly as from local disk, and a flag whose file
system is not available or that cannot be written refused in one paragraph before anything runs.
"""

import gzip
import os
import subprocess
import sys
import time
import uuid

from absl import flags
from ml_collections import config_flags
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.data import images
from tfsmooth.data import synthetic
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks
from tfsmooth.programs import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGS = os.path.join(ROOT, 'tfsmooth', 'configs', 'rings.py')


def _ram(name):
  """A fresh ram:// directory (the in-memory file system is shared by the whole process)."""
  return f'ram://{name}-{uuid.uuid4().hex[:8]}'


def _copy_tree(source, target):
  """Copies the directory `source` to `target` file by file through tf.io.gfile."""
  for directory, _, files in tf.io.gfile.walk(source):
    relative = os.path.relpath(directory, source)
    into = target if relative == '.' else os.path.join(target, relative)
    tf.io.gfile.makedirs(into)
    for name in files:
      tf.io.gfile.copy(os.path.join(directory, name), os.path.join(into, name))


# (a) User point files.


def _point_files(tmp_path):
  """{file name: expected points} of .npy, .npz (one array and a keyed one) and .csv files
  (plain, with a header, with a byte-order mark) written under `tmp_path`."""
  points = np.random.default_rng(0).normal(size=(128, 3))
  np.save(tmp_path / 'p.npy', points)
  np.savez(tmp_path / 'one.npz', points)
  np.savez(tmp_path / 'two.npz', x=points, labels=np.arange(128))
  np.savetxt(tmp_path / 'plain.csv', points, delimiter=',')
  np.savetxt(tmp_path / 'header.csv', points, delimiter=',', header='a,b,c', comments='')
  (tmp_path / 'bom.csv').write_bytes(b'\xef\xbb\xbf' + (tmp_path / 'header.csv').read_bytes())
  return points


@pytest.mark.parametrize(
    'name, key',
    [
        ('p.npy', ''),
        ('one.npz', None),
        ('two.npz', 'x'),
        ('plain.csv', None),
        ('header.csv', None),
        ('bom.csv', None),
    ],
)
def test_point_file_on_ram_loads_as_on_local_disk(tmp_path, name, key):
  points = _point_files(tmp_path)
  url = os.path.join(_ram('points'), name)
  tf.io.gfile.makedirs(os.path.dirname(url))
  tf.io.gfile.copy(str(tmp_path / name), url)
  local = synthetic.get_dataset('file', tmp_path / name, key=key)
  remote = synthetic.get_dataset('file', url, key=key)
  assert remote.path == url
  np.testing.assert_array_equal(remote.points, local.points)
  np.testing.assert_allclose(remote.points, points, rtol=1e-6)
  local_splits, remote_splits = synthetic.load_splits(local), synthetic.load_splits(remote)
  for split in local_splits:
    np.testing.assert_array_equal(remote_splits[split], local_splits[split])


@pytest.mark.parametrize(
    'name, content, key',
    [
        ('empty.npy', b'', None),
        ('garbage.npy', b'not a numpy file at all', None),
        ('text.csv', b'1,2\n3,x\n', None),
        ('keys.npz', None, 'nope'),
        ('p.npy', None, 'x'),
    ],
)
def test_bad_point_file_on_ram_is_refused_as_on_local_disk(tmp_path, name, content, key):
  if content is None:
    if name.endswith('.npz'):
      np.savez(tmp_path / name, a=np.zeros((200, 2)), b=np.ones((200, 2)))
    else:
      np.save(tmp_path / name, np.zeros((200, 2)))
  else:
    (tmp_path / name).write_bytes(content)
  url = os.path.join(_ram('bad'), name)
  tf.io.gfile.makedirs(os.path.dirname(url))
  tf.io.gfile.copy(str(tmp_path / name), url)
  with pytest.raises(errors.UserError) as local:
    synthetic.get_dataset('file', tmp_path / name, key=key)
  with pytest.raises(errors.UserError) as remote:
    synthetic.get_dataset('file', url, key=key)
  assert str(remote.value) == str(local.value).replace(str(tmp_path / name), url)


def test_missing_point_file_on_ram_names_the_flag():
  url = os.path.join(_ram('missing'), 'points.npy')
  with pytest.raises(FileNotFoundError, match='--config.data.path') as error:
    synthetic.get_dataset('file', url)
  assert url in str(error.value)


# (b) Fashion-MNIST IDX files.


def _idx_bytes(array, gzipped=True):
  """`array` (uint8) in the IDX format read_idx reads: magic 0 0 8 ndim, big-endian sizes."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + b''.join(n.to_bytes(4, 'big') for n in array.shape)
  data = header + array.tobytes()
  return gzip.compress(data) if gzipped else data


def _write(url, data):
  tf.io.gfile.makedirs(os.path.dirname(url))
  with tf.io.gfile.GFile(url, 'wb') as f:
    f.write(data)


def test_idx_files_read_from_ram():
  rng = np.random.default_rng(0)
  train = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
  test = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
  labels = {'train': np.arange(5) % 10, 'test': np.arange(3) + 4}
  idx_dir = _ram('idx')
  _write(os.path.join(idx_dir, images.IDX_FILES['train']), _idx_bytes(train))
  _write(os.path.join(idx_dir, images.IDX_FILES['test']), _idx_bytes(test))
  for split, name in classifier.LABEL_FILES.items():
    _write(os.path.join(idx_dir, name), _idx_bytes(labels[split]))
  _write(os.path.join(idx_dir, 'plain-idx3-ubyte'), _idx_bytes(train, gzipped=False))

  np.testing.assert_array_equal(images.read_idx(os.path.join(idx_dir, 'plain-idx3-ubyte')), train)
  np.testing.assert_array_equal(
      images.read_idx(os.path.join(idx_dir, images.IDX_FILES['test'])), test
  )
  raw = images.raw_images('fashion_mnist', 'train[1:4]', source='idx', idx_dir=idx_dir)
  np.testing.assert_array_equal(np.stack(list(raw.as_numpy_iterator())), train[1:4, ..., None])
  both = images.load_images('fashion_mnist', 'train+test', source='idx', idx_dir=idx_dir)
  assert both.shape == (8, 28, 28, 1)
  x, y = classifier.load_labelled('test', source='idx', idx_dir=idx_dir)
  np.testing.assert_array_equal(y, labels['test'])
  np.testing.assert_allclose(x, test[..., None] / 127.5 - 1.0, atol=1e-6)

  with pytest.raises(images.DataUnavailableError, match='no IDX files'):
    images.raw_images('fashion_mnist', 'train', source='idx', idx_dir=_ram('empty'))


# (c) The classifier.


def test_classifier_loads_from_a_ram_copy():
  url = _ram('classifier')
  _copy_tree(feature_networks.CLASSIFIER_DIR, url)
  local = feature_networks.load_classifier()
  remote = feature_networks.load_classifier(url)
  assert remote.name == local.name and remote.info == local.info
  x = tf.random.stateless_uniform([4, 28, 28, 1], [1, 2], minval=-1.0, maxval=1.0)
  for key, value in local(x).items():
    np.testing.assert_allclose(remote(x)[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-5)
  with pytest.raises(errors.UserError, match='--classifier_dir'):
    feature_networks.load_classifier(_ram('none'))


# (d) Flags naming paths that cannot be used.


def _parse(*args, directory_flags):
  """cli.parse_flags on fresh FlagValues with a config flag and the named string flags."""
  argv = ['prog.py', *args]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'Config.', flag_values=values, sys_argv=argv)
  for name in directory_flags:
    flags.DEFINE_string(name, '', f'The {name}.', flag_values=values)
  return cli.parse_flags(argv, directory_flags, values), values


def _refusal(*args, directory_flags):
  with pytest.raises(errors.UserError) as error:
    _parse(*args, directory_flags=directory_flags)
  return ' '.join(str(error.value).split())


def test_flag_on_an_unavailable_file_system_names_path_and_flag():
  for mode in (cli.WRITE, cli.READ, None):
    directory_flags = {'workdir': mode} if mode else ('workdir',)
    message = _refusal(
        f'--config={RINGS}', '--workdir=s3://nope/run', directory_flags=directory_flags
    )
    assert message.startswith('--workdir=s3://nope/run is on a file system TensorFlow cannot')
    assert "scheme 's3' not implemented" in message and 'ram://' in message, message
  message = _refusal(
      f'--config={RINGS}',
      '--config.data.name=file',
      '--config.data.path=s3://nope/points.npy',
      directory_flags={},
  )
  assert message.startswith('--config.data.path=s3://nope/points.npy is on a file system')


def test_data_path_must_exist_and_reads_are_checked_before_any_directory_is_made():
  workdir, missing = _ram('run'), _ram('nothing')
  message = _refusal(
      f'--config={RINGS}',
      '--config.data.name=file',
      f'--config.data.path={missing}/points.npy',
      f'--workdir={workdir}',
      directory_flags={'workdir': cli.WRITE},
  )
  assert message == (
      f'--config.data.path={missing}/points.npy does not exist: give the path of your points '
      'file.'
  )
  assert not tf.io.gfile.exists(workdir)
  # data.path is only checked for data set 'file' (another set refuses a path itself), and a
  # missing directory that is read is left to the program (it says what belongs there).
  _parse(
      f'--config={RINGS}',
      f'--config.data.path={missing}',
      f'--saved_model={missing}',
      directory_flags={'saved_model': cli.READ},
  )


def test_writable_flag_is_probed_leaving_nothing_behind(tmp_path):
  workdir = os.path.join(_ram('made'), 'run')
  points = os.path.join(_ram('data'), 'points.npy')
  _write(points, b'x')
  _parse(
      f'--config={RINGS}',
      '--config.data.name=file',
      f'--config.data.path={points}',
      f'--workdir={workdir}',
      directory_flags={'workdir': cli.WRITE},
  )
  assert tf.io.gfile.isdir(workdir) and tf.io.gfile.listdir(workdir) == []  # a URL's stays
  _parse(f'--workdir={tmp_path / "a" / "run"}', directory_flags={'workdir': cli.WRITE})
  assert not list(tmp_path.iterdir())  # a local directory made for the check is removed
  (tmp_path / 'run').mkdir()
  _parse(f'--workdir={tmp_path / "run"}', directory_flags={'workdir': cli.WRITE})
  assert [p.name for p in tmp_path.iterdir()] == ['run'] and not list((tmp_path / 'run').iterdir())


def test_unwritable_or_file_flags_are_refused():
  message = _refusal('--out_dir=/proc/tfsmooth/out', directory_flags={'out_dir': cli.WRITE})
  assert message.startswith('--out_dir=/proc/tfsmooth/out cannot be written: making it and')
  assert 'give another --out_dir; no file was written.' in message
  url = os.path.join(_ram('file'), 'notes.txt')
  _write(url, b'keep me')
  for mode in (cli.WRITE, None):
    directory_flags = {'out_dir': mode} if mode else ('out_dir',)
    message = _refusal(f'--out_dir={url}', directory_flags=directory_flags)
    assert message.startswith(f'--out_dir={url} names an existing file, not a directory.')


def test_train_binary_refuses_an_unavailable_workdir_before_anything_runs(tmp_path):
  start = time.monotonic()
  run = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'train.py'), f'--config={RINGS}']
      + ['--workdir=s3://nope/run'],
      cwd=tmp_path,
      env=dict(os.environ, PYTHONPATH=ROOT),
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
  )
  seconds = time.monotonic() - start
  assert run.returncode == 2, run.stderr
  assert not run.stdout and run.stderr.startswith('Error: --workdir=s3://nope/run ')
  assert 'Traceback' not in run.stderr and '\n\n' not in run.stderr.strip(), run.stderr
  assert "scheme 's3' not implemented" in ' '.join(run.stderr.split())
  assert not list(tmp_path.iterdir())  # nothing written, not even a local "s3:" directory
  assert seconds < 120, seconds  # TensorFlow's import; no model is built
