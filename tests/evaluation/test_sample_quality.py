import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import tensorflow as tf

from tfsmooth.evaluation import feature_networks
from tfsmooth.evaluation import sample_quality
from tfsmooth.evaluation import tfgan


def test_tfgan_metrics_load_without_the_package_init():
  metrics = tfgan.classifier_metrics()
  assert metrics is sys.modules['tensorflow_gan.python.eval.classifier_metrics']
  assert callable(metrics.frechet_classifier_distance_from_activations)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
  features = np.random.default_rng(0).normal(size=(500, 8))
  assert abs(sample_quality.fid(features, features)) < 1e-6
  shifts = [sample_quality.fid(features, features + shift) for shift in (0.5, 1.0, 2.0)]
  # Only the mean term changes: |shift|^2 per dimension, 8 dimensions.
  np.testing.assert_allclose(shifts, [2.0, 8.0, 32.0], rtol=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_not_for_two():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 2000, 16))
  same, same_std = sample_quality.kid(a, b, block_size=500)
  shifted, _ = sample_quality.kid(a, b + 1.0, block_size=500)
  assert abs(same) < 3 * same_std + 1e-3
  assert shifted > 100 * max(same_std, 1e-4)


def test_inception_score_of_uniform_and_of_confident_logits():
  score, std = sample_quality.inception_score(np.zeros((100, 10)), splits=10)
  assert score == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-9)
  k = 4  # confident one-hot logits, each of the k classes used equally in every split
  logits = 50.0 * np.tile(np.eye(k), (30, 1))
  score, _ = sample_quality.inception_score(logits, splits=10)
  assert score == pytest.approx(k, rel=1e-6)


def _toy_network():
  """features: per-image means of two halves; logits: (sum, -sum)."""

  def call(x):
    halves = [x[:, :, :2], x[:, :, 2:]]
    features = tf.stack([tf.reduce_mean(h, [1, 2, 3]) for h in halves], 1)
    total = tf.reduce_sum(x, [1, 2, 3])
    return {'features': features, 'logits': tf.stack([total, -total], 1)}

  return feature_networks.FeatureNetwork('toy', call)


def test_batched_activations_equal_one_shot_and_accept_batch_iterables():
  images = np.random.default_rng(0).uniform(-1, 1, (23, 4, 4, 1)).astype(np.float32)
  network = _toy_network()
  one_shot = sample_quality.activations(network, images, batch_size=len(images))
  batched = sample_quality.activations(network, images, batch_size=5)
  streamed = sample_quality.activations(network, (images[i : i + 7] for i in range(0, 23, 7)))
  for key in ('features', 'logits'):
    np.testing.assert_allclose(batched[key], one_shot[key], rtol=1e-6)
    np.testing.assert_allclose(streamed[key], one_shot[key], rtol=1e-6)
  assert batched['features'].shape == (23, 2) and batched['logits'].shape == (23, 2)


def test_scores_name_the_feature_network():
  rng = np.random.default_rng(0)
  samples, reference = rng.uniform(-1, 1, (2, 40, 4, 4, 1)).astype(np.float32)
  network = _toy_network()
  result = sample_quality.scores(
      sample_quality.activations(network, samples, batch_size=16),
      sample_quality.activations(network, reference, batch_size=16),
      network.name,
  )
  assert result['feature_network'] == 'toy'
  assert result['num_samples'] == 40 and result['num_reference'] == 40
  assert result['kid_std'] is None  # one KID block
  assert set(result) >= {'fid', 'kid', 'inception_score'}


# Direct numpy/scipy computations of the three figures, to check the TF-GAN path against.


def _direct_fid(a, b):
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), unbiased covariances, scipy sqrtm."""
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  root = scipy.linalg.sqrtm(s1 @ s2)
  mean_term = np.sum((a.mean(0) - b.mean(0)) ** 2)
  return mean_term + np.trace(s1 + s2 - 2 * np.real(root)), mean_term


def _direct_mmd2(a, b):
  """The plain unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018, eq. 3)."""
  d = a.shape[1]

  def k(x, y):
    return (x @ y.T / d + 1) ** 3

  m, n = len(a), len(b)
  k_aa, k_bb, k_ab = k(a, a), k(b, b), k(a, b)
  within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
  within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
  return within_a + within_b - 2 * k_ab.mean()


def _direct_inception_score(logits, splits):
  """(mean, population std) over equal splits of exp(mean_x KL(p(y|x) || p(y)))."""
  per_split = []
  for part in np.split(logits, splits):
    log_p = scipy.special.log_softmax(part, axis=1)
    p = np.exp(log_p)
    log_marginal = np.log(p.mean(0))
    per_split.append(np.exp(np.mean(np.sum(p * (log_p - log_marginal), axis=1))))
  return np.mean(per_split), np.std(per_split), per_split


def _correlated(rng, n, mean, scale):
  return rng.normal(size=(n, len(mean))) @ scale + mean


def test_fid_with_unequal_covariances_equals_the_closed_form():
  rng = np.random.default_rng(0)
  d = 6
  a = _correlated(rng, 700, rng.normal(size=d), rng.normal(size=(d, d)))
  b = _correlated(rng, 400, rng.normal(size=d), 0.5 * rng.normal(size=(d, d)))
  expected, mean_term = _direct_fid(a, b)
  # The covariance term carries most of the value: an FID of the means alone would fail.
  assert expected - mean_term > 0.5 * expected
  assert sample_quality.fid(a, b) == pytest.approx(expected, rel=1e-8)
  assert sample_quality.fid(b, a) == pytest.approx(expected, rel=1e-8)


def test_fid_of_equal_means_is_the_covariance_term_alone():
  # Same mean, covariances 1 and 4 per dimension: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = d (1 - 2)^2.
  rng = np.random.default_rng(1)
  d = 4
  base = rng.normal(size=(100_000, d))
  value = sample_quality.fid(base, 2.0 * rng.normal(size=(100_000, d)))
  assert value == pytest.approx(d * (2.0 - 1.0) ** 2, rel=0.03)


def test_kid_with_one_block_equals_the_plain_unbiased_mmd2():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(300, 5))
  b = 1.3 * rng.normal(size=(250, 5)) + 0.2
  value, std = sample_quality.kid(a, b, block_size=300)
  assert value == pytest.approx(_direct_mmd2(a, b), rel=1e-9)
  assert np.isnan(std)  # one block: no spread to estimate an error from


def test_kid_with_blocks_is_the_mean_of_per_block_unbiased_mmd2():
  # TF-GAN's block estimator: both (seeded, shuffled) sets split into the same number of
  # near-equal consecutive blocks, the plain estimate on each pair of blocks, their mean, and the
  # standard error of that mean. The shuffle is the documented one: numpy's default_rng(seed).
  rng = np.random.default_rng(3)
  a = rng.normal(size=(400, 5))
  b = 1.3 * rng.normal(size=(300, 5)) + 0.2
  shuffle = np.random.default_rng(7)
  a_shuffled, b_shuffled = shuffle.permutation(a), shuffle.permutation(b)
  blocks = [
      _direct_mmd2(x, y)
      for x, y in zip(np.array_split(a_shuffled, 4), np.array_split(b_shuffled, 4), strict=True)
  ]
  value, std = sample_quality.kid(a, b, block_size=100, seed=7)
  assert value == pytest.approx(np.mean(blocks), rel=1e-9)
  assert std == pytest.approx(np.std(blocks, ddof=1) / np.sqrt(len(blocks)), rel=1e-9)


def test_inception_score_equals_exp_mean_kl_per_split():
  logits = 3.0 * np.random.default_rng(4).normal(size=(200, 7))
  expected_mean, expected_std, per_split = _direct_inception_score(logits, splits=5)
  assert np.ptp(per_split) > 0.05  # the splits differ, so the std is checked too
  score, std = sample_quality.inception_score(logits, splits=5)
  assert score == pytest.approx(expected_mean, rel=1e-9)
  assert std == pytest.approx(expected_std, rel=1e-7)


def test_scores_entries_equal_the_direct_computations():
  rng = np.random.default_rng(5)
  samples = {
      'features': _correlated(rng, 120, np.zeros(4), rng.normal(size=(4, 4))),
      'logits': 2.0 * rng.normal(size=(120, 6)),
  }
  reference = {
      'features': _correlated(rng, 150, np.ones(4), rng.normal(size=(4, 4))),
      'logits': 4.0 * rng.normal(size=(150, 6)),
  }
  result = sample_quality.scores(samples, reference, 'toy', splits=3, kid_block_size=200)
  fid, _ = _direct_fid(samples['features'], reference['features'])
  score, score_std, _ = _direct_inception_score(samples['logits'], 3)
  reference_score, _, _ = _direct_inception_score(reference['logits'], 3)
  assert result['fid'] == pytest.approx(fid, rel=1e-8)
  assert result['kid'] == pytest.approx(
      _direct_mmd2(samples['features'], reference['features']), rel=1e-9
  )
  assert result['kid_std'] is None
  assert result['inception_score'] == pytest.approx(score, rel=1e-9)
  assert result['inception_score_std'] == pytest.approx(score_std, rel=1e-7)
  assert result['reference_inception_score'] == pytest.approx(reference_score, rel=1e-9)
  assert (result['num_samples'], result['num_reference'], result['splits']) == (120, 150, 3)
