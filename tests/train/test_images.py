"""The image experiment runner and launch/sample.py on tiny PixelCNN++ models."""

import importlib.util
import json
import math
import os

import ml_collections
import numpy as np
from PIL import Image
import pytest

from tfsmooth.configs import fashion_mnist
from tfsmooth.data import images as image_data
from tfsmooth.evaluation import plots
from tfsmooth.train import images

needs_idx = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(image_data.FASHION_MNIST_IDX_DIR, f))
            for f in image_data.IDX_FILES.values()),
    reason='Fashion-MNIST IDX files missing (apt-get install dataset-fashion-mnist)')
SAMPLE_PY = os.path.join(os.path.dirname(__file__), '..', '..', 'launch', 'sample.py')


def tiny_config(variant):
  config = fashion_mnist.get_config(variant)
  config.data.update(source='idx', train_split='train[:64]', validation_split='train[64:72]',
                     validation_examples=8, test_split='test[:6]', test_examples=0)
  for model in (config.model, config.conditional_model):
    model.update(nr_filters=8, nr_logistic_mix=2)
  config.train.update(steps=2, batch_size=4, eval_every=0, log_every=1, checkpoint_every=2)
  config.eval.update(num_samples=2, batch_size=4, iw_samples=2)
  return config


def _sample_module():
  spec = importlib.util.spec_from_file_location('sample_launch', SAMPLE_PY)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_image_configs_are_dispatched_to_the_image_runner():
  assert images.is_image_config(fashion_mnist.get_config())
  assert not images.is_image_config(ml_collections.ConfigDict({'data': {'name': 'rings'}}))


def test_baseline_and_pair_have_matching_parameter_counts():
  counts = {}
  for variant in ('baseline', 'smoothed'):
    model = images.build_model(fashion_mnist.get_config(variant))
    model.build_variables()
    counts[variant] = model.num_params
  assert abs(counts['baseline'] / counts['smoothed'] - 1) < 0.02


@needs_idx
def test_exact_bpd_is_minus_log_prob_over_dims():
  config = tiny_config('baseline')
  model = images.build_model(config)
  model.build_variables()
  x = image_data.load_images('fashion_mnist', 'test[:3]', source='idx')
  expected = -np.mean(model.log_prob(x).numpy()) / (28 * 28 * math.log(2.))
  assert images.bits_per_dim(model, config, x, 1, 0) == pytest.approx(expected, rel=1e-5)


def test_save_grid_lays_out_rows(tmp_path):
  rows = [np.full((3, 4, 5, 1), -1.), np.full((2, 4, 5, 1), 1.)]
  plots.save_image_grid(rows, tmp_path / 'g.png', pad=1, min_height=4)
  grid = np.asarray(Image.open(tmp_path / 'g.png'))
  assert grid.shape == (2 * 5 + 1, 3 * 6 + 1)
  assert grid[1, 1] == 0 and grid[6, 1] == 255 and grid[6, 13] == 255  # empty cell stays white
  # 4-pixel-high images are enlarged 3x for min_height=12, each pixel a 3x3 block.
  rows[0][0, 0, 0] = 1.
  plots.save_image_grid(rows, tmp_path / 'big.png', pad=1, min_height=12)
  big = np.asarray(Image.open(tmp_path / 'big.png'))
  assert big.shape == (2 * 13 + 1, 3 * 16 + 1)
  assert np.all(big[1:4, 1:4] == 255) and big[4, 4] == 0


def test_sample_modes_are_checked():
  sample = _sample_module()
  with pytest.raises(ValueError, match='do not apply'):
    sample.make_grids(tiny_config('baseline'), None, ['two_step'], 2, 0, '/nonexistent')


@pytest.fixture(scope='module')
def smoothed_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('smoothed'))
  config = tiny_config('smoothed')
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort())
  return workdir, images.run(config, workdir)


@pytest.mark.slow
@needs_idx
def test_smoothed_run_writes_metrics_and_grids(smoothed_run):
  workdir, metrics = smoothed_run
  with open(os.path.join(workdir, 'metrics.json')) as f:
    saved = json.load(f)
  assert saved['bpd_iw'] == metrics['bpd_iw']
  for key in ('bpd_elbo', 'bpd_iw', 'iw_samples', 'num_params', 'train_seconds', 'steps',
              'sigma'):
    assert key in saved
  assert saved['steps'] == 2 and saved['sigma'] == 0.5 and saved['test_images'] == 6
  assert 0 < saved['bpd_iw'] <= saved['bpd_elbo'] + 1e-6
  for name in images.SMOOTHED_GRIDS:
    assert os.path.exists(os.path.join(workdir, name))
  assert 'test bpd <=' in images.summary_line(saved)


@pytest.mark.slow
@needs_idx
def test_baseline_run_writes_exact_bpd(tmp_path):
  metrics = images.run(tiny_config('baseline'), str(tmp_path))
  assert metrics['bpd'] > 0 and metrics['steps'] == 2 and 'bpd_iw' not in metrics
  assert os.path.exists(tmp_path / 'samples.png')
  assert '(exact)' in images.summary_line(metrics)


@pytest.mark.slow
@needs_idx
def test_sample_launch_denoise_and_inpaint_are_seeded(smoothed_run, tmp_path):
  workdir, _ = smoothed_run
  sample = _sample_module()
  config, model, sigma = sample.load_run(workdir)
  assert sigma == 0.5
  grids = sample.make_grids(config, model, ['denoise', 'inpaint'], 2, 3, str(tmp_path))
  again = sample.make_grids(config, model, ['denoise', 'inpaint'], 2, 3, str(tmp_path / 'b'))
  other = sample.make_grids(config, model, ['inpaint'], 2, 4, str(tmp_path / 'c'))
  clean, noisy, first, second, single = grids['denoise']
  assert len(grids['denoise']) == 5 and first.shape == clean.shape
  np.testing.assert_array_equal(first, again['denoise'][2])
  masked, fill_a, fill_b, original = grids['inpaint']
  np.testing.assert_array_equal(fill_a[:, :14], original[:, :14])
  np.testing.assert_array_equal(fill_a, again['inpaint'][1])
  assert not np.array_equal(fill_a[:, 14:], other['inpaint'][1][:, 14:])
  assert np.all(masked[:, 14:] == 0.)
  for mode in ('denoise', 'inpaint'):
    assert os.path.exists(tmp_path / f'sample_{mode}.png')
