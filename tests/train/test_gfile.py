"""The trainer and its checkpoints on a URL workdir (TensorFlow's in-memory `ram://` file system):
training, checkpoints, resuming, setting an unreadable checkpoint aside and summaries, with
nothing written to local disk."""

import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from tests.train import tiny
from tfsmooth.train import checkpoints
from tfsmooth.train import trainer

gfile = tf.io.gfile


def _tree(root):
  """Every path under `root` (local disk)."""
  return sorted(os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files)


@pytest.fixture
def local_disk_untouched(tmp_path, tmp_path_factory, monkeypatch):
  """Runs the test in an empty working directory and checks that neither it nor the pytest
  temporary tree gains a file."""
  cwd = tmp_path / 'cwd'
  cwd.mkdir()
  monkeypatch.chdir(cwd)
  before = _tree(tmp_path_factory.getbasetemp())
  yield
  assert not os.listdir(cwd)
  assert _tree(tmp_path_factory.getbasetemp()) == before


def _events(directory):
  """(tag, step, value) of every summary in the event files of `directory`."""
  out = []
  for name in sorted(gfile.listdir(directory)):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        out.append((value.tag, event.step, value))
  return out


def _image(value):
  """The uint8 batch [k, H, W, C] of an image summary (its tensor: width, height, k PNGs)."""
  tensor = tf.make_ndarray(value.tensor)
  images = np.stack([tf.io.decode_png(png).numpy() for png in tensor[2:]])
  assert [int(tensor[0]), int(tensor[1])] == [images.shape[2], images.shape[1]]
  return images


def _weights(model):
  return [v.numpy() for v in model.trainable_variables]


def test_ram_workdir_trains_resumes_sets_aside_and_writes_summaries(local_disk_untouched, caplog):
  workdir = f'ram://tfsmooth-test-{uuid.uuid4().hex}/run'
  directory = f'{workdir}/checkpoints'
  config = tiny.config(10, checkpoint_every=5, eval_every=5, steps_per_loop=3)
  scores = iter([2.0, 1.0, 3.0, 0.5])
  grid = np.arange(2 * 6 * 5 * 3, dtype=np.uint8).reshape(2, 6, 5, 3)

  def eval_fn(model):
    del model
    return {'validation': next(scores), 'images/samples': grid}

  first = trainer.train(
      tiny.model, tiny.dataset, config, workdir, eval_fn=eval_fn, config_text='{"a": 1}'
  )
  assert first.step == 10 and first.best_step == 10
  assert checkpoints.candidates(directory) == [f'{directory}/ckpt-10', f'{directory}/ckpt-5']
  assert gfile.exists(f'{workdir}/best/ckpt-10.index')

  # The newest checkpoint truncated, a save cut short: resuming takes ckpt-5, sets ckpt-10
  # aside and removes the orphan.
  index = f'{directory}/ckpt-10.index'
  with gfile.GFile(index, 'rb') as f:
    head = f.read()[:20]
  gfile.remove(index)  # ram:// overwrites a file in place: its tail would stay
  with gfile.GFile(index, 'wb') as f:
    f.write(head)
  gfile.makedirs(f'{directory}/ckpt-15_temp')
  with caplog.at_level('INFO', logger='absl'):  # absl's level may be set by other tests
    resumed = trainer.train(
        tiny.model, tiny.dataset, config.copy_and_resolve_references(), workdir, eval_fn=eval_fn
    )
  assert 'ckpt-10 is unreadable' in caplog.text
  assert f'Resumed from {directory}/ckpt-5 at step 5' in caplog.text
  assert gfile.stat(f'{directory}/unreadable/ckpt-10.index').length == 20
  assert not gfile.exists(f'{directory}/ckpt-15_temp')
  # The rerun's 3.0 at step 10 does not beat ckpt-5's best (2.0): the best stays the first
  # run's step 10 (1.0), and the model returned holds its weights.
  assert resumed.step == 10 and resumed.best_step == 10
  for a, b in zip(_weights(resumed.model), _weights(first.model)):
    np.testing.assert_array_equal(a, b)
  assert checkpoints.candidates(directory)[0] == f'{directory}/ckpt-10'

  # The best checkpoint loads into a fresh model from the URL.
  fresh = tiny.model()
  assert checkpoints.restore_best(fresh, workdir) == f'{workdir}/best/ckpt-10'
  for a, b in zip(_weights(fresh), _weights(resumed.model)):
    np.testing.assert_array_equal(a, b)

  events = _events(f'{workdir}/summaries')
  tags = sorted((tag, step) for tag, step, _ in events)
  assert [(tag, s) for tag, s in tags if tag.startswith('eval/')] == [
      ('eval/images/samples', 5),
      ('eval/images/samples', 10),
      ('eval/images/samples', 10),  # the rerun's
      ('eval/validation', 5),
      ('eval/validation', 10),
      ('eval/validation', 10),
  ]
  assert ('train/loss', 10) in tags
  for tag, _, value in events:
    if tag == 'eval/images/samples':
      np.testing.assert_array_equal(_image(value), grid)
  texts = [(step, v) for tag, step, v in events if tag == 'config']
  assert len(texts) == 1 and texts[0][0] == 0  # the rerun got no config_text
  assert '{"a": 1}' in tf.make_ndarray(texts[0][1].tensor).item().decode()
