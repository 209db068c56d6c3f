"""launch/sample.py --sigma: a noise-conditional image run's grids at a chosen noise level
(tfsmooth/programs/image_grids.py), on a tiny 8 x 8 Fashion-MNIST pair.

Checked against what the level means, not against the grid code: the denoising grid's x~ is the
clean image plus noise of standard deviation sigma; its single-step row is x~ + sigma^2 times
the gradient of log p(x~ | sigma) taken here by a GradientTape; the grids without --sigma are
those at the reference level; the annealed sampler walks its own ladder, so its grid is the same
at every --sigma. A run without noise levels, and a level outside the trained range, are refused
in one paragraph before anything is written.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth.programs import image_grids
from tests import offline_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_idx = offline_data.needs_idx


def _config(variant):
  """The tiny Fashion-MNIST config at 8 x 8 pixels, its annealed sampler 2 levels of 1 step."""
  config = offline_data.tiny_config(variant)
  config.data.image_size = 8
  if variant != 'baseline':
    config.smoothing.update(annealed_levels=2, annealed_steps=1)
  return config


def _untrained(variant):
  run = experiment.Run(experiment.settle(_config(variant)), '/nonexistent')
  keras.utils.set_random_seed(0)
  run.model = run.build_model()
  run.model.build_variables()
  return run


@pytest.fixture(scope='module')
def nc_run():
  return _untrained('noise_conditional')


@needs_idx
def test_denoising_grid_is_at_the_given_level(nc_run, tmp_path):
  model = nc_run.model
  for sigma in (0.1, 0.9):
    grids = image_grids.make_grids(nc_run, ['denoise'], 6, 0, str(tmp_path), sigma=sigma)
    assert (tmp_path / f'sample_denoise_sigma{sigma:g}.png').is_file()
    clean, noisy, _, _, single = grids['denoise']
    # x~ = x + e with e of standard deviation sigma (6 images of 64 pixels: 384 values).
    assert np.std(noisy - clean) == pytest.approx(sigma, rel=0.15)
    # The single step at the same level: x~ + sigma^2 grad_x~ log p(x~ | sigma), the gradient
    # taken here through the prior's log-density.
    x = tf.constant(noisy)
    with tf.GradientTape() as tape:
      tape.watch(x)
      log_p = model.prior.log_prob(x, sigma=tf.fill([len(noisy)], sigma))
    expected = noisy + sigma**2 * tape.gradient(log_p, x).numpy()
    np.testing.assert_allclose(single, expected, rtol=1e-4, atol=1e-4)


# Slow: tracing the two-step and annealed samplers of the pair takes about 35 s of CPU, a
# minute or more on the 2 shared cores.
@pytest.mark.slow
@needs_idx
def test_sampler_grids_are_at_the_given_level(nc_run, tmp_path):
  assert image_grids.modes_of(nc_run.model) == [
      'smoothed',
      'single_step',
      'two_step',
      'annealed',
      'denoise',
      'inpaint',
  ]
  grids = {}
  for sigma in (0.1, 0.9):
    grids[sigma] = image_grids.make_grids(
        nc_run, ['two_step', 'annealed'], 6, 0, str(tmp_path), sigma=sigma
    )
  assert not np.array_equal(grids[0.1]['two_step'][0], grids[0.9]['two_step'][0])
  # The annealed sampler starts at sigma_max and ends at sigma_min whatever --sigma is.
  np.testing.assert_array_equal(grids[0.1]['annealed'][0], grids[0.9]['annealed'][0])
  # No --sigma: the reference level (smoothing.sigma), under the plain file names.
  reference = nc_run.config.smoothing.sigma
  plain = image_grids.make_grids(nc_run, ['two_step'], 6, 0, str(tmp_path / 'plain'))
  at = image_grids.make_grids(nc_run, ['two_step'], 6, 0, str(tmp_path / 'plain'), sigma=reference)
  np.testing.assert_array_equal(plain['two_step'][0], at['two_step'][0])
  assert sorted(os.listdir(tmp_path / 'plain')) == [
      'sample_two_step.png',
      f'sample_two_step_sigma{reference:g}.png',
  ]
  assert sorted(os.listdir(tmp_path)) == sorted(
      ['plain'] + [f'sample_{m}_sigma{s:g}.png' for m in ('two_step', 'annealed') for s in grids]
  )


@needs_idx
def test_sigma_is_refused_in_one_paragraph_before_anything_is_drawn(nc_run, tmp_path):
  for variant, what in (('smoothed', 'the one level sigma=0.5'), ('baseline', 'without smoothing')):
    run = _untrained(variant)
    with pytest.raises(errors.UserError, match=f'--sigma=0.3 draws .*{what}.*drop --sigma') as e:
      image_grids.make_grids(run, [], 2, 0, str(tmp_path), sigma=0.3)
    assert '\n' not in str(e.value)
  for sigma in (2.0, 0.0, -0.3, float('nan')):
    with pytest.raises(errors.UserError, match=r'outside the noise levels .* \[0.05, 1\]'):
      image_grids.make_grids(nc_run, [], 2, 0, str(tmp_path), sigma=sigma)
  assert os.listdir(tmp_path) == []


@pytest.mark.slow  # two training steps of the tiny pair, then two binaries (about a minute)
@needs_idx
def test_sample_binary_takes_sigma(tmp_path):
  workdir = tmp_path / 'run'
  experiment.Run.create(_config('noise_conditional'), str(workdir)).train()

  def sample(*flags):
    return subprocess.run(
        [sys.executable, os.path.join('launch', 'sample.py'), f'--workdir={workdir}', *flags],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2'),
        capture_output=True,
        text=True,
        timeout=600,
    )

  out = tmp_path / 'grids'
  done = sample('--sigma=0.2', '--modes=two_step,denoise', '--num_samples=2', f'--out_dir={out}')
  assert done.returncode == 0, done.stderr[-3000:]
  names = ['sample_denoise_sigma0.2.png', 'sample_two_step_sigma0.2.png']
  assert sorted(os.path.basename(p) for p in done.stdout.split()) == names
  assert sorted(os.listdir(out)) == names
  refused = sample('--sigma=3', f'--out_dir={tmp_path / "refused"}')
  assert refused.returncode == 2
  assert 'outside the noise levels this run was trained on, [0.05, 1]' in refused.stderr
  assert not os.path.exists(tmp_path / 'refused') or not os.listdir(tmp_path / 'refused')
