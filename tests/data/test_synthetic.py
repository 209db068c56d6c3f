"""Synthetic data sets: exact densities against samples, entropies, splits, files, errors."""

import re
from unittest import mock

import numpy as np
import pytest

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth.configs import rings as rings_config
from tfsmooth.data import synthetic

# name: (entropy from DESIGN.md, histogram box per dim, bin width, sub-cells per bin and dim).
SETS = {
    'rings': (2.623, (-3.6, 3.6), 0.2, 10),
    'olympics': (0.923, (-3.5, 3.5), 0.1, 10),
    'checkerboard': (np.log(32.0), (-4.0, 4.0), 0.5, 2),
    'modes6_1d': (0.909, (-6.0, 6.0), 0.04, 20),
    'modes10_1d': (0.725, (-5.5, 5.5), 0.02, 20),
    'two_gaussians_1d': (-0.194, (-1.0, 1.0), 0.02, 10),
}
NUM_DRAWS = 200_000


def _expected_bin_mass(dataset, box, width, sub):
  """Probability of every histogram bin: midpoint rule on `sub` sub-cells per bin and dim."""
  lo, hi = box
  num_bins = round((hi - lo) / width)
  h = width / sub
  centres = lo + h * (np.arange(num_bins * sub) + 0.5)
  grid = np.stack(np.meshgrid(*[centres] * dataset.dim, indexing='ij'), -1).reshape(-1, dataset.dim)
  mass = np.exp(dataset.log_prob(grid)) * h**dataset.dim
  shape = [num_bins, sub] * dataset.dim
  return mass.reshape(shape).sum(axis=tuple(range(1, 2 * dataset.dim, 2)))


def _histogram_z_scores(dataset, samples, box, width, sub, density_factor=1.0):
  """(observed - expected) / sqrt(expected) counts, in histogram bins expecting >= 20 draws,
  with the density exp(log_prob) scaled by `density_factor`."""
  expected = NUM_DRAWS * density_factor * _expected_bin_mass(dataset, box, width, sub)
  edges = [np.linspace(box[0], box[1], len(expected) + 1)] * dataset.dim
  observed, _ = np.histogramdd(samples, bins=edges)
  assert observed.sum() > 0.99 * NUM_DRAWS  # the box covers the support
  assert observed[expected == 0].sum() == 0  # no samples where the density is zero
  enough = expected >= 20
  return (observed - expected)[enough] / np.sqrt(expected[enough])


def _matches(z):
  """Chi-square per bin within 4 standard deviations of 1, and no bin off by 5.5 sigma."""
  return np.mean(z**2) < 1 + 4 * np.sqrt(2 / len(z)) and np.abs(z).max() < 5.5


@pytest.mark.parametrize('name', SETS)
def test_log_prob_matches_histogram_of_samples(name):
  dataset = synthetic.get_dataset(name)
  _, box, width, sub = SETS[name]
  samples = dataset.sample(NUM_DRAWS, seed=7)
  assert samples.dtype == np.float32 and samples.shape == (NUM_DRAWS, dataset.dim)
  z = _histogram_z_scores(dataset, samples, box, width, sub)
  assert len(z) >= 50 and _matches(z)
  assert not _matches(_histogram_z_scores(dataset, samples, box, width, sub, density_factor=0.95))


@pytest.mark.parametrize(
    'wrong',
    [
        synthetic.NoisyCircles('rings', np.zeros((4, 2)), [0.75, 1.5, 2.25, 3.0], noise=0.088),
        synthetic.NoisyCircles(
            'olympics',
            [[-2.2, 0.5], [0, 0.5], [2.2, 0.5], [-1.1, -0.5], [1.1, -0.5]],
            1.0,
            noise=0.022,
        ),
        synthetic.GaussianMixture1D('modes6_1d', [-5, -3, -1, 1, 3, 5], 0.11),
    ],
)
def test_histogram_check_detects_a_noise_scale_wrong_by_10_percent(wrong):
  _, box, width, sub = SETS[wrong.name]
  samples = synthetic.get_dataset(wrong.name).sample(NUM_DRAWS, seed=7)
  assert not _matches(_histogram_z_scores(wrong, samples, box, width, sub))


@pytest.mark.parametrize('name', SETS)
def test_density_integrates_to_one(name):
  dataset = synthetic.get_dataset(name)
  _, box, width, sub = SETS[name]
  box = (box[0] - 0.5, box[1] + 0.5)  # margin: the tails outside the histogram box
  assert _expected_bin_mass(dataset, box, width, sub).sum() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize('name', SETS)
def test_entropy_matches_design_table(name):
  estimate, stderr = synthetic.get_dataset(name).entropy(num_samples=NUM_DRAWS, seed=3)
  assert abs(estimate - SETS[name][0]) < 4 * stderr + 0.005


@pytest.mark.parametrize(
    'name, sigma', [('olympics', 0.05), ('modes6_1d', 0.2), ('checkerboard', 0.2)]
)
def test_gaussian_smoothed_density_is_the_convolution(name, sigma):
  # p(x~) = E_x N(x~; x, sigma^2 I), estimated over 1M data points at a few x~; the sigmas
  # are near the data's own noise, so forgetting it (noise sigma, not hypot) would fail.
  dataset = synthetic.get_dataset(name)
  x = dataset.sample(1_000_000, seed=5).astype(np.float64)
  x_tilde = dataset.gaussian_smoothed(sigma).sample(8, seed=6).astype(np.float64)
  log_q = -np.square(x_tilde[:, None, :] - x[None]).sum(-1) / (
      2 * sigma**2
  ) - dataset.dim * np.log(np.sqrt(2 * np.pi) * sigma)
  monte_carlo = np.log(np.mean(np.exp(log_q), axis=1))
  np.testing.assert_allclose(
      dataset.gaussian_smoothed(sigma).log_prob(x_tilde), monte_carlo, atol=0.03
  )


def test_smoothed_checkerboard_integrates_to_one_and_is_finite_far_away():
  smoothed = synthetic.get_dataset('checkerboard').gaussian_smoothed(0.3)
  grid = np.linspace(-7, 7, 561)
  points = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
  mass = np.exp(smoothed.log_prob(points)).sum() * (grid[1] - grid[0]) ** 2
  assert mass == pytest.approx(1.0, abs=1e-3)
  assert smoothed.gaussian_smoothed(0.4).sigma == pytest.approx(0.5)
  # Far from the board Phi(high) - Phi(low) would cancel to 0; the density stays positive.
  far = smoothed.log_prob([[9.0, 0.0], [-9.0, 0.0], [0.0, 9.0]])
  assert np.all(np.isfinite(far)) and np.all(far < -100)


def test_points_without_a_density_have_no_smoothed_density(tmp_path):
  np.save(tmp_path / 'p.npy', _points(d=2))
  with pytest.raises(ValueError, match='no known density'):
    synthetic.get_dataset('file', str(tmp_path / 'p.npy')).gaussian_smoothed(0.3)


def test_checkerboard_support():
  board = synthetic.get_dataset('checkerboard')
  inside = [[-3, -3], [-1, -1], [1, 1], [3, -1], [-4, -4], [3.99, 3.99]]
  outside = [[-1, 1], [1, -1], [3, 1], [4, 0], [-4.01, -3], [0, 5]]
  np.testing.assert_allclose(board.log_prob(inside), np.log(1 / 32.0))
  assert np.all(board.log_prob(outside) == -np.inf)


def test_float32_cast_keeps_points_below_cell_edges():
  x = np.array([2.0 - 1e-12, -1e-12, 3.5])
  assert np.all(synthetic._round_down_float32(x) <= x)


@pytest.mark.parametrize('name', ['rings', 'modes10_1d'])
def test_splits_sizes_deterministic_and_distinct(name):
  splits = synthetic.load_splits(name)
  again = synthetic.load_splits(synthetic.get_dataset(name))
  assert {k: v.shape for k, v in splits.items()} == {
      'train': (10_000, splits['train'].shape[1]),
      'validation': (1_000, splits['train'].shape[1]),
      'test': (5_000, splits['train'].shape[1]),
  }
  for split, points in splits.items():
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points, again[split])
  assert not np.array_equal(splits['train'][:1_000], splits['validation'])
  assert not np.array_equal(splits['train'][:5_000], splits['test'])
  assert not np.array_equal(splits['validation'], splits['test'][:1_000])


def _points(n=128, d=3):
  return np.random.default_rng(0).normal(size=(n, d))


def test_npy_npz_csv_files_load(tmp_path):
  points = _points()
  np.save(tmp_path / 'p.npy', points)
  np.savez(tmp_path / 'one.npz', points)
  np.savez(tmp_path / 'two.npz', x=points, labels=np.arange(128))
  np.savetxt(tmp_path / 'plain.csv', points, delimiter=',')
  np.savetxt(tmp_path / 'header.csv', points, delimiter=',', header='a,b,c', comments='')
  loaded = [
      synthetic.get_dataset('file', tmp_path / 'p.npy', key=''),  # config default key ''
      synthetic.get_dataset('file', str(tmp_path / 'one.npz')),
      synthetic.get_dataset('file', tmp_path / 'two.npz', key='x'),
      synthetic.get_dataset('file', tmp_path / 'plain.csv'),
      synthetic.get_dataset('file', tmp_path / 'header.csv'),
  ]
  for dataset in loaded:
    assert dataset.dim == 3 and not dataset.has_density
    np.testing.assert_allclose(dataset.points, points, rtol=1e-6)
  draws = loaded[0].sample(100, seed=1)
  assert draws.shape == (100, 3) and draws.dtype == np.float32
  np.testing.assert_array_equal(draws, loaded[0].sample(100, seed=1))
  assert all((row == loaded[0].points).all(axis=1).any() for row in draws)


def test_file_splits_partition_the_rows(tmp_path):
  np.save(tmp_path / 'p.npy', _points(n=160))
  dataset = synthetic.get_dataset('file', tmp_path / 'p.npy')
  splits = synthetic.load_splits(dataset)
  assert {k: len(v) for k, v in splits.items()} == {'train': 100, 'validation': 10, 'test': 50}
  together = np.concatenate([splits['train'], splits['validation'], splits['test']])
  np.testing.assert_array_equal(np.sort(together, axis=0), np.sort(dataset.points, axis=0))
  np.testing.assert_array_equal(splits['test'], synthetic.load_splits(dataset)['test'])
  np.save(tmp_path / 'least.npy', _points(n=100))
  least = synthetic.load_splits(synthetic.get_dataset('file', tmp_path / 'least.npy'))
  assert {k: len(v) for k, v in least.items()} == {'train': 63, 'validation': 6, 'test': 31}


def test_too_few_points_are_refused_with_the_split_counts(tmp_path):
  np.save(tmp_path / 'seven.npy', _points(n=7))
  with pytest.raises(errors.UserError) as error:
    synthetic.get_dataset('file', tmp_path / 'seven.npy')
  message = str(error.value)
  assert 'seven.npy has 7 points' in message
  assert 'train / validation / test would get 4 / 1 / 2 points' in message
  assert 'at least 100 points (they get 63 / 6 / 31)' in message
  np.save(tmp_path / 'ninety_nine.npy', _points(n=99))
  with pytest.raises(errors.UserError, match='has 99 points'):
    synthetic.get_dataset('file', tmp_path / 'ninety_nine.npy')


def _lattice(n=200, d=2):
  return np.random.default_rng(1).integers(-3, 4, size=(n, d)).astype(np.float64)


def test_integer_points_warn_once_and_name_the_dequantize_option(tmp_path):
  np.save(tmp_path / 'lattice.npy', _lattice())
  np.save(tmp_path / 'real.npy', _points())
  with mock.patch.object(synthetic.logging, 'warning') as warning:
    synthetic.get_dataset('file', tmp_path / 'real.npy')
    assert not warning.called
    synthetic.get_dataset('file', tmp_path / 'lattice.npy')
    synthetic.get_dataset('file', tmp_path / 'lattice.npy')  # a run reads its data twice
    assert warning.call_count == 1
    message = warning.call_args.args[0] % warning.call_args.args[1:]
    assert '\n' not in message  # one paragraph, one log line
    for text in ('lattice.npy', 'integer', 'unbounded below', '--config.data.dequantize=True'):
      assert text in message
    synthetic.get_dataset('file', tmp_path / 'lattice.npy', dequantize=True)
    assert warning.call_count == 1


def test_dequantize_adds_seeded_uniform_noise_to_every_split(tmp_path):
  lattice = _lattice()
  np.save(tmp_path / 'lattice.npy', lattice)
  plain = synthetic.load_splits(synthetic.get_dataset('file', tmp_path / 'lattice.npy'))
  dataset = synthetic.get_dataset('file', tmp_path / 'lattice.npy', dequantize=True)
  noisy = synthetic.load_splits(dataset)
  np.testing.assert_array_equal(dataset.points, lattice)  # the file's values are kept
  for split, points in noisy.items():
    assert points.dtype == np.float32 and points.shape == plain[split].shape
    # Each point lies in the unit cube [k, k + 1) of its lattice point k.
    np.testing.assert_array_equal(np.floor(points), plain[split])
    noise = points - plain[split]
    assert noise.min() >= 0 and noise.max() < 1
    assert abs(noise.mean() - 0.5) < 4 * np.sqrt(1 / 12 / noise.size)  # U[0, 1): var 1/12
    assert len(np.unique(noise)) == noise.size
    np.testing.assert_array_equal(points, synthetic.load_splits(dataset)[split])  # fixed seed
  assert not np.array_equal(noisy['validation'] % 1, noisy['test'][: len(noisy['validation'])] % 1)
  draws = dataset.sample(500, seed=0)
  assert np.all(draws >= np.floor(draws)) and not np.array_equal(draws, np.floor(draws))
  with pytest.raises(errors.UserError, match='only applies to your own'):
    synthetic.get_dataset('rings', dequantize=True)


def test_dequantize_is_a_frozen_config_key_of_the_point_configs():
  config = rings_config.get_config()
  assert config.data.dequantize is False
  assert not 'data.dequantize'.startswith(experiment.MUTABLE)


def test_file_dataset_has_no_density(tmp_path):
  np.save(tmp_path / 'p.npy', _points())
  dataset = synthetic.get_dataset('file', tmp_path / 'p.npy')
  for method in (lambda: dataset.log_prob(_points()), dataset.entropy):
    with pytest.raises(ValueError, match='no known density'):
      method()


def test_unknown_name_lists_valid_names_and_file_flags():
  with pytest.raises(ValueError) as error:
    synthetic.get_dataset('ringz')
  for text in (
      'ringz',
      'rings',
      'olympics',
      'checkerboard',
      'two_gaussians_1d',
      '--config.data.name=file',
      '--config.data.path=',
  ):
    assert text in str(error.value)
  with pytest.raises(ValueError, match='--config.data.path='):
    synthetic.get_dataset('file')


def test_nan_points_report_count_and_first_row(tmp_path):
  points = _points(n=32)
  points[[5, 9, 20], 1] = [np.nan, np.inf, np.nan]
  np.savetxt(tmp_path / 'bad.csv', points, delimiter=',')
  with pytest.raises(ValueError, match=r'3 of 32 rows contain NaN or inf.*first is row 5'):
    synthetic.get_dataset('file', tmp_path / 'bad.csv')


def test_wrong_dimension_names_both_dims():
  with pytest.raises(ValueError, match=r'D=3 .*D=2 is expected'):
    synthetic.validate_points(_points(d=3), dim=2)
  with pytest.raises(ValueError, match=r'D=1 .*D=2 is expected'):
    synthetic.get_dataset('rings').log_prob(np.zeros((4, 1)))
  with pytest.raises(ValueError, match=r'reshape to \[N, 1\]'):
    synthetic.validate_points(np.zeros(5))
  with pytest.raises(ValueError, match='numeric'):
    synthetic.validate_points(np.array([['a', 'b']]))


def test_missing_file_and_bad_extension(tmp_path):
  with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'nope.npy'))):
    synthetic.get_dataset('file', tmp_path / 'nope.npy')
  (tmp_path / 'points.txt').write_text('1,2\n')
  with pytest.raises(ValueError, match=r"'\.txt'.*\.npy, \.npz, \.csv"):
    synthetic.get_dataset('file', tmp_path / 'points.txt')
  np.savez(tmp_path / 'two.npz', x=_points(), y=_points())
  with pytest.raises(ValueError, match=r"\['x', 'y'\].*key="):
    synthetic.get_dataset('file', tmp_path / 'two.npz')
