import sys

import numpy as np
import pytest
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


def test_sample_quality_names_its_feature_network():
  rng = np.random.default_rng(0)
  samples, reference = rng.uniform(-1, 1, (2, 40, 4, 4, 1)).astype(np.float32)
  result = sample_quality.sample_quality(samples, reference, _toy_network(), batch_size=16)
  assert result['feature_network'] == 'toy'
  assert result['num_samples'] == 40 and result['num_reference'] == 40
  assert result['kid_std'] is None  # one KID block
  assert set(result) >= {'fid', 'kid', 'inception_score'}
