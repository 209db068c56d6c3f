"""What TensorBoard shows of a run (`experiment.Run.train`): the settled config as text, and at
every evaluation the validation figure and a picture of every sampler, from fixed seed rows."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests import offline_data
from tfsmooth import experiment
from tfsmooth.configs import rings


def _events(workdir):
  """{tag: {step: summary value}} of the run's event files."""
  out = {}
  directory = os.path.join(workdir, 'summaries')
  for name in sorted(tf.io.gfile.listdir(directory)):
    for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
      for value in event.summary.value:
        out.setdefault(value.tag, {})[event.step] = value
  return out


def _image(value):
  """The uint8 batch [k, H, W, C] of an image summary (its tensor: width, height, k PNGs)."""
  tensor = tf.make_ndarray(value.tensor)
  return np.stack([tf.io.decode_png(png).numpy() for png in tensor[2:]])


def _check_config_text(events, workdir):
  assert list(events['config']) == [0]
  text = tf.make_ndarray(events['config'][0].tensor).item().decode()
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.loads(text.split('```json\n')[1].split('\n```')[0]) == json.load(f)


def test_point_run_shows_config_and_sample_scatters(tmp_path):
  config = rings.get_config('paper')  # a pair: smoothed, single-step and two-step samplers
  config.model.hidden_sizes = config.conditional_model.hidden_sizes = (8,)
  config.train.update(steps=4, jit_compile=False, log_every=2, eval_every=2, checkpoint_every=2)
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=200, density_iw_samples=2)
  run = experiment.Run.create(config, str(tmp_path))
  metrics = run.train()
  events = _events(str(tmp_path))
  _check_config_text(events, str(tmp_path))
  assert sorted(events['eval/validation']) == [2, 4]
  names = ['smoothed', 'single_step', 'two_step']
  assert sorted(t for t in events if t.startswith('eval/images/')) == [
      f'eval/images/{n}' for n in sorted(names)
  ]
  for name in names:
    images = {step: _image(v) for step, v in events[f'eval/images/{name}'].items()}
    assert sorted(images) == [2, 4]
    assert images[2].shape == images[4].shape and images[2].shape[::3] == (1, 3)
    assert np.any(images[2] != 255)  # something drawn on the white figure
  # Fixed seed rows: the weights evaluated at the best step, loaded again, draw the very same
  # pictures.
  loaded = experiment.Run.load(str(tmp_path))
  assert loaded.step == metrics['best_step']
  again = loaded.task.summary_images(loaded, loaded.model)
  for name in names:
    shown = _image(events[f'eval/images/{name}'][metrics['best_step']])
    np.testing.assert_array_equal(shown, again[f'images/{name}'])


@pytest.mark.slow  # PixelCNN++ draws pixel by pixel: about 25 s per evaluation here
@offline_data.needs_idx
def test_image_run_shows_a_grid_of_every_sampler_at_each_evaluation(tmp_path):
  config = offline_data.tiny_config('baseline')
  config.train.eval_every = 1
  experiment.Run.create(config, str(tmp_path)).train()
  events = _events(str(tmp_path))
  _check_config_text(events, str(tmp_path))
  assert sorted(t for t in events if t.startswith('eval/images/')) == ['eval/images/samples']
  grids = {step: _image(v) for step, v in events['eval/images/samples'].items()}
  assert sorted(grids) == [1, 2]
  # One row of 8 images of 28 x 28 x 1, enlarged 3x, 2 pixels apart.
  assert grids[1].shape == (1, 2 + 84 + 2, 2 + 8 * (84 + 2), 1)
