"""Image runs (`experiment.Run`, `tasks.ImageTask`) and their grids, on tiny PixelCNN++ models."""

import json
import math
import os

import numpy as np
from PIL import Image
import pytest

from tfsmooth import experiment
from tfsmooth import tasks
from tfsmooth.configs import fashion_mnist
from tfsmooth.data import images as image_data
from tfsmooth.programs import image_grids
from tfsmooth.evaluation import plots
from tests import offline_data

needs_idx = offline_data.needs_idx


tiny_config = offline_data.tiny_config


def test_image_configs_get_the_image_task():
  assert isinstance(tasks.for_config(fashion_mnist.get_config()), tasks.ImageTask)
  config = experiment.settle(fashion_mnist.get_config())
  assert config.data.event_shape == [28, 28, 1] and config.smoothing.sigma == 0.5


def test_baseline_and_pair_have_matching_parameter_counts():
  counts = {}
  for variant in ('baseline', 'smoothed'):
    model = experiment.build_model(experiment.settle(fashion_mnist.get_config(variant)))
    model.build_variables()
    counts[variant] = model.num_params
  assert abs(counts['baseline'] / counts['smoothed'] - 1) < 0.02


@needs_idx
def test_exact_bpd_is_minus_log_prob_over_dims():
  config = tiny_config('baseline')
  config.data.test_split = 'test[:3]'
  run = experiment.Run(experiment.settle(config), '/nonexistent')
  model = run.build_model()
  model.build_variables()
  x = image_data.load_images('fashion_mnist', 'test[:3]', source='idx')
  expected = -np.mean(model.log_prob(x).numpy()) / (28 * 28 * math.log(2.0))
  assert run.likelihood(model, 'test', 1).nll == pytest.approx(expected, rel=1e-5)


def test_save_grid_lays_out_rows(tmp_path):
  rows = [np.full((3, 4, 5, 1), -1.0), np.full((2, 4, 5, 1), 1.0)]
  plots.save_image_grid(rows, tmp_path / 'g.png', pad=1, min_height=4)
  grid = np.asarray(Image.open(tmp_path / 'g.png'))
  assert grid.shape == (2 * 5 + 1, 3 * 6 + 1)
  assert grid[1, 1] == 0 and grid[6, 1] == 255 and grid[6, 13] == 255  # empty cell stays white
  # 4-pixel-high images are enlarged 3x for min_height=12, each pixel a 3x3 block.
  rows[0][0, 0, 0] = 1.0
  plots.save_image_grid(rows, tmp_path / 'big.png', pad=1, min_height=12)
  big = np.asarray(Image.open(tmp_path / 'big.png'))
  assert big.shape == (2 * 13 + 1, 3 * 16 + 1)
  assert np.all(big[1:4, 1:4] == 255) and big[4, 4] == 0


def test_sample_modes_are_checked():
  run = experiment.Run(experiment.settle(tiny_config('baseline')), '/nonexistent')
  with pytest.raises(ValueError, match='do not apply'):
    image_grids.modes_of(run.build_model(), ['two_step'])
  assert image_grids.modes_of(run.build_model()) == ['samples', 'inpaint']
  smoothed = experiment.Run(experiment.settle(tiny_config('smoothed')), '/nonexistent')
  modes = ['smoothed', 'single_step', 'two_step', 'denoise', 'inpaint']
  assert image_grids.modes_of(smoothed.build_model()) == modes


@pytest.fixture(scope='module')
def smoothed_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('smoothed'))
  return workdir, experiment.Run.create(tiny_config('smoothed'), workdir).train()


# Slow: the smoothed pair's run and its 28 x 28 denoise / inpaint grids take about 150 s of CPU
# together (the fixture alone about half), minutes on 2 shared cores.
@pytest.mark.slow
@needs_idx
def test_smoothed_run_writes_metrics_and_grids(smoothed_run):
  workdir, metrics = smoothed_run
  with open(os.path.join(workdir, 'metrics.json')) as f:
    saved = json.load(f)
  assert saved['bpd_iw'] == metrics['bpd_iw']
  for key in ('bpd_elbo', 'bpd_iw', 'iw_samples', 'num_params', 'train_seconds', 'steps', 'sigma'):
    assert key in saved
  assert saved['steps'] == 2 and saved['sigma'] == 0.5 and saved['test_images'] == 6
  assert 0 < saved['bpd_iw'] <= saved['bpd_elbo'] + 1e-6
  for name in ('samples_smoothed.png', 'samples_single_step.png', 'samples_two_step.png'):
    assert os.path.exists(os.path.join(workdir, name))
  assert 'test bpd <=' in tasks.ImageTask.summary_line(saved)


@needs_idx  # not slow: two steps of a tiny PixelCNN++ (about 50 s of CPU)
def test_baseline_run_writes_exact_bpd(tmp_path):
  metrics = experiment.Run.create(tiny_config('baseline'), tmp_path).train()
  assert metrics['bpd'] > 0 and metrics['steps'] == 2 and 'bpd_iw' not in metrics
  assert os.path.exists(tmp_path / 'samples.png')
  assert '(exact)' in tasks.ImageTask.summary_line(metrics)


@pytest.mark.slow
@needs_idx
def test_denoise_and_inpaint_grids_are_seeded(smoothed_run, tmp_path):
  workdir, _ = smoothed_run
  run = experiment.Run.load(workdir)
  assert run.config.smoothing.sigma == 0.5 and run.step == 2
  grids = image_grids.make_grids(run, ['denoise', 'inpaint'], 2, 3, str(tmp_path))
  again = image_grids.make_grids(run, ['denoise', 'inpaint'], 2, 3, str(tmp_path / 'b'))
  other = image_grids.make_grids(run, ['inpaint'], 2, 4, str(tmp_path / 'c'))
  clean, noisy, first, second, single = grids['denoise']
  assert len(grids['denoise']) == 5 and first.shape == clean.shape
  np.testing.assert_array_equal(first, again['denoise'][2])
  masked, fill_a, fill_b, original = grids['inpaint']
  np.testing.assert_array_equal(fill_a[:, :14], original[:, :14])
  np.testing.assert_array_equal(fill_a, again['inpaint'][1])
  assert not np.array_equal(fill_a[:, 14:], other['inpaint'][1][:, 14:])
  assert np.all(masked[:, 14:] == 0.0)
  for mode in ('denoise', 'inpaint'):
    assert os.path.exists(tmp_path / f'sample_{mode}.png')
