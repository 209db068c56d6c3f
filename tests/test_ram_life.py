"""The whole life of a run on TensorFlow's in-memory file system, as on cloud storage.

One process creates, trains, resumes, loads, exports, reloads and samples a MADE pair on a user
point file and a tiny PixelCNN++ pair, with the workdir, the export directory and the user data
all on `ram://` (the Fashion-MNIST IDX files are local input, only read). Nothing may be written
to local disk: the working directory, the temporary directory and pytest's own directory stay
as they were.
"""

import io
import logging
import os
import sys
import tempfile
import uuid

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import experiment
from tfsmooth import export
from tfsmooth import records
from tfsmooth.configs import rings
from tfsmooth.data import synthetic
from tests import offline_data

SEEDS = np.stack([np.full(6, 3), np.arange(6)], 1).astype(np.int32)


# TensorFlow's autograph writes the Python source of each function it converts to a temporary
# file (removed at exit) to import it from there: its scratch, not the project's output.
_AUTOGRAPH_SCRATCH = '__autograph_generated_file'


def _tree(root):
  """Every path under `root`, relative to it, but autograph's scratch files."""
  return {
      os.path.relpath(os.path.join(directory, name), root)
      for directory, dirs, files in os.walk(root)
      for name in dirs + files
      if not name.startswith(_AUTOGRAPH_SCRATCH)
  }


@pytest.fixture
def nothing_local(tmp_path_factory, monkeypatch):
  """Runs the test in an empty working directory with an empty temporary directory, and
  checks afterwards that they are still empty and that nothing else appeared under pytest's
  directory."""
  base = tmp_path_factory.getbasetemp()
  cwd, tmp = tmp_path_factory.mktemp('cwd'), tmp_path_factory.mktemp('tmp')
  monkeypatch.chdir(cwd)
  monkeypatch.setenv('TMPDIR', str(tmp))
  monkeypatch.setattr(tempfile, 'tempdir', str(tmp))
  monkeypatch.setattr(sys, 'dont_write_bytecode', True)
  before = _tree(base)
  yield
  assert not os.listdir(cwd) and not _tree(tmp)
  assert _tree(base) == before


def _ram(name):
  """A fresh ram:// directory (the in-memory file system lives as long as the process)."""
  return f'ram://life-{uuid.uuid4().hex[:8]}/{name}'


def _resumed(caplog, workdir, step):
  """Whether the trainer logged that it resumed `workdir` at `step`."""
  return any(
      r.getMessage().startswith('Resumed from')
      and workdir in r.getMessage()
      and r.getMessage().endswith(f'at step {step}.')
      for r in caplog.records
  )


def _life(config, more_steps, export_dir, caplog):
  """Create, train, resume with more steps, load, export, reload and sample; returns
  (the loaded run, the loaded SavedModel, its version directory)."""
  workdir = _ram('run')
  first = experiment.Run.create(config, workdir).train()
  steps = config.train.steps
  assert first['steps'] == steps and tf.io.gfile.exists(os.path.join(workdir, 'metrics.json'))
  saved = [n for _, _, files in tf.io.gfile.walk(workdir) for n in files if n.startswith('ckpt-')]
  assert saved, _listing(workdir)
  config.train.steps = steps + more_steps
  caplog.clear()
  with caplog.at_level(logging.INFO, logger='absl'):
    second = experiment.Run.create(config, workdir).train()
  assert second['steps'] == steps + more_steps
  assert _resumed(caplog, workdir, steps), [r.getMessage() for r in caplog.records]
  assert records.read_json(os.path.join(workdir, 'metrics.json')) == second

  run = experiment.Run.load(workdir)
  assert run.step == second['best_step'] and run.weights == 'ema'
  version_dir = export.export(run.model, export_dir, 2, run.export_metadata())
  assert version_dir == os.path.join(export_dir, '1')
  assert _listing(export_dir) == ['1']  # no temporary directory left
  metadata = records.read_json(os.path.join(version_dir, export.METADATA))
  assert metadata['step'] == run.step and metadata['weights'] == 'ema'
  loaded = tf.saved_model.load(version_dir)
  drawn = loaded.signatures['sample'](seed=tf.constant(SEEDS))
  for key, x in drawn.items():
    assert x.shape == (len(SEEDS),) + tuple(run.model.event_shape), key
    assert np.all(np.isfinite(x.numpy())), key
  return run, loaded, version_dir


def _listing(directory):
  """The entries of a ram:// directory without trailing slashes."""
  return [name.rstrip('/') for name in tf.io.gfile.listdir(directory)]


def test_made_pair_on_a_user_point_file_lives_on_ram(nothing_local, caplog):
  points = synthetic.get_dataset('rings').sample(400, seed=0)
  path = _ram('data/points.npy')
  tf.io.gfile.makedirs(os.path.dirname(path))
  buffer = io.BytesIO()
  np.save(buffer, points)
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(buffer.getvalue())

  config = rings.get_config()  # the smoothed pair, EMA weights
  config.data.update(name='file', path=path)
  config.model.hidden_sizes = config.conditional_model.hidden_sizes = (8,)
  config.train.update(
      steps=10,
      batch_size=64,
      jit_compile=False,
      log_every=5,
      eval_every=5,
      checkpoint_every=5,
      steps_per_loop=5,
  )
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=100, density_iw_samples=2)
  run, loaded, _ = _life(config, 10, _ram('exports/made'), caplog)
  workdir = run.workdir
  assert {'config.json', 'metrics.json', 'samples.png', 'density.png'} <= set(_listing(workdir))
  assert run.config.data.path == path
  bound = loaded.signatures['log_prob'](
      x=tf.constant(points[:6], tf.float32), seed=tf.constant(SEEDS)
  )
  assert np.all(np.isfinite(bound['log_prob'].numpy()))


@pytest.mark.slow  # minutes on 2 cores: tracing PixelCNN++'s step twice, sampling 784 pixels
@offline_data.needs_idx
def test_tiny_pixelcnn_pair_lives_on_ram(nothing_local, caplog):
  config = offline_data.tiny_config('smoothed', train=32, validation=4, test=4, filters=4)
  config.data.test_examples = 4
  for model in (config.model, config.conditional_model):
    model.nr_resnet = 1
  config.train.update(steps=1, checkpoint_every=1)
  config.eval.validation_samples = 2
  run, _, _ = _life(config, 1, _ram('exports/pixelcnn'), caplog)
  grids = [name for name in _listing(run.workdir) if name.startswith('samples')]
  assert grids, _listing(run.workdir)
