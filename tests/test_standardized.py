"""A user's points in any units: a file of N(0, (10^6)^2 I) points trains to the unit-scale
file's test NLL plus 2 log 10^6 (the model sees the same standardised points), and samples,
smoothed and denoised points and the export come back in the file's units."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import experiment
from tfsmooth import export
from tfsmooth import seeds
from tfsmooth.configs import rings

SCALE = 1e6


def _config(path, steps=60):
  config = rings.get_config('paper')
  config.model.hidden_sizes = config.conditional_model.hidden_sizes = (8,)
  config.data.update(name='file', path=str(path))
  config.train.update(steps=steps, log_every=30, eval_every=30, checkpoint_every=30)
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=100, density_iw_samples=2)
  return config


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  folder = tmp_path_factory.mktemp('units')
  points = np.random.default_rng(0).normal(size=(400, 2)).astype(np.float32)
  out = {}
  for name, factor in (('unit', 1.0), ('big', SCALE)):
    path = folder / f'{name}.npy'
    np.save(path, points * factor)
    workdir = str(folder / name)
    metrics = experiment.Run.create(_config(path), workdir).train()
    out[name] = (experiment.Run.load(workdir), metrics)
  return out


def test_nll_in_the_files_units_moves_by_the_log_jacobian(runs):
  (unit, unit_metrics), (big, big_metrics) = runs['unit'], runs['big']
  assert big.config.data.standardize and big.config.data.scale[0] == pytest.approx(
      SCALE * unit.config.data.scale[0], rel=1e-6
  )
  shift = 2 * math.log(SCALE)
  assert big_metrics['nll_iw'] == pytest.approx(unit_metrics['nll_iw'] + shift, abs=0.1)
  assert big_metrics['nll_elbo'] == pytest.approx(unit_metrics['nll_elbo'] + shift, abs=0.1)


def test_draws_and_denoising_are_in_the_files_units(runs, tmp_path):
  (unit, _), (big, _) = runs['unit'], runs['big']
  rows = seeds.rows(0, 'samples', 0, 50)
  unit_draws, big_draws = unit.model.draw(rows), big.model.draw(rows)
  for name in unit.model.samplers:
    np.testing.assert_allclose(
        big_draws[name], SCALE * unit_draws[name].numpy(), rtol=1e-3, atol=1e2
    )
  x = tf.constant([[1.0, -0.5], [0.2, 0.3]]) * SCALE
  denoised = big.model.denoise(x, rows[:2])
  np.testing.assert_allclose(
      denoised['two_step'],
      SCALE * unit.model.denoise(x / SCALE, rows[:2])['two_step'].numpy(),
      rtol=1e-3,
      atol=1e2,
  )
  version = export.export(big.model, str(tmp_path / 'exports'), 4, big.export_metadata())
  served = tf.saved_model.load(version).signatures
  np.testing.assert_allclose(served['sample'](seed=rows)['x'], big_draws['two_step'], rtol=1e-5)
  bound = served['log_prob'](x=x, seed=rows[:2])['log_prob']
  np.testing.assert_allclose(bound, big.model.likelihood(x, rows[:2], 4).log_prob, rtol=1e-5)
