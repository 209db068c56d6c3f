"""launch/evaluate.py on conditioned models (tfsmooth/programs/sample_eval.py, evaluating.py):
a class-labelled run's per-class figures and a noise-conditional run scored at --sigma, on
untrained tiny Fashion-MNIST runs.

Checked against things computed another way: the sample labels against the training labels'
histogram read from the IDX label files; the class accuracies against the shipped classifier
called here on the stored samples and on the test images; the samples and bounds at a level
against the model's own draws and likelihood at that level.
"""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import seeds
from tfsmooth.data import images as image_data
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks
from tfsmooth.evaluation import sample_quality
from tfsmooth.programs import evaluating
from tfsmooth.programs import sample_eval
from tfsmooth.train import checkpoints
from tests import offline_data

needs_idx = offline_data.needs_idx
TINY = dict(
    num_samples=12, batch_size=4, num_reference=16, bpd_examples=2, num_neighbours=1, splits=2
)


def _workdir(tmp_path_factory, config, name):
  """An untrained run of `config` with its weights saved as the best checkpoint."""
  workdir = str(tmp_path_factory.mktemp(name))
  run = experiment.Run.create(config, workdir)
  keras.utils.set_random_seed(0)
  model = run.build_model()
  model.build_variables()
  checkpoints.model_checkpoint(model).save(os.path.join(workdir, 'best', 'ckpt'))
  return workdir


def _tiny_8x8(variant):
  """The tiny Fashion-MNIST config at 8 x 8 pixels (the annealed sampler 2 levels of 1 step)."""
  config = offline_data.tiny_config(variant, train=32, test=8, filters=4)
  config.data.image_size = 8
  if variant != 'baseline':
    config.smoothing.update(annealed_levels=2, annealed_steps=1)
  return config


@pytest.fixture(scope='module')
def labelled(tmp_path_factory):
  config = offline_data.tiny_config('baseline', train=32, test=16, filters=4)
  config.data.labels = True
  return _workdir(tmp_path_factory, config, 'labelled')


@pytest.fixture(scope='module')
def shipped():
  return sample_eval.load_network('classifier', dataset='fashion_mnist')


def _read(out_dir):
  with open(os.path.join(out_dir, sample_eval.EVAL_FILE)) as f:
    return json.load(f)


def _stored(out_dir):
  with np.load(os.path.join(out_dir, sample_eval.SAMPLES_FILE)) as stored:
    return {name: stored[name] for name in stored.files}


def test_sample_labels_follow_the_class_frequencies_whatever_the_count():
  counts = np.array([5, 0, 12, 3])
  n = 4000
  labels = sample_eval.sample_labels(counts, 3, n)
  p = counts / counts.sum()
  share = np.bincount(labels, minlength=4) / n
  # Within 4 binomial standard errors of the class frequencies; an empty class never drawn.
  assert np.all(np.abs(share - p) <= 4 * np.sqrt(p * (1 - p) / n)), (share, p)
  assert share[1] == 0
  # Sample j's label depends on j and the seed alone, not on how many are drawn.
  np.testing.assert_array_equal(sample_eval.sample_labels(counts, 3, 100), labels[:100])
  assert not np.array_equal(sample_eval.sample_labels(counts, 4, 100), labels[:100])


@needs_idx
def test_labelled_eval_reports_per_class_kid_and_class_accuracy(labelled, shipped, tmp_path):
  out_dir = str(tmp_path / 'eval')
  source = sample_eval.open_source(workdir=labelled)
  result = sample_eval.evaluate(source, shipped, out_dir, **TINY)
  assert result == _read(out_dir)
  names = list(source.model.conditions['labels'].names[:10])
  assert result['labels']['class_names'] == names

  # The labels of the samples: drawn from the class frequencies of the training labels, read
  # here from the IDX label file of the run's 32 training images.
  train_labels = classifier.load_labelled('train[:32]', source='idx')[1]
  counts = np.bincount(train_labels, minlength=10)
  assert result['labels']['train_counts'] == counts.tolist()
  stored = _stored(out_dir)
  labels = stored['labels']
  assert json.loads(str(stored['key']))['labels']['class_counts'] == counts.tolist()
  np.testing.assert_array_equal(labels, sample_eval.sample_labels(counts, 0, 12))
  assert np.all(counts[labels] > 0)  # no sample of a class the training set lacks
  assert result['labels']['sample_counts'] == np.bincount(labels, minlength=10).tolist()

  # The class accuracy: the shipped classifier called here on the stored samples.
  test_x, test_labels = classifier.load_labelled('test[:16]', source='idx')
  predicted = np.argmax(shipped(sample_eval.to_float(stored['samples']))['logits'], axis=1)
  entry = result['samplers']['samples']
  assert entry['class_accuracy'] == pytest.approx(np.mean(predicted == labels))
  features = shipped(sample_eval.to_float(stored['samples']))['features'].numpy()
  test_outputs = shipped(test_x)
  for k, name in enumerate(names):
    mine, theirs = labels == k, test_labels == k
    by_class = entry['by_class'][name]
    assert by_class['num_samples'] == mine.sum() and by_class['num_reference'] == theirs.sum()
    if mine.any():
      assert by_class['accuracy'] == pytest.approx(np.mean(predicted[mine] == k))
    else:
      assert by_class['accuracy'] is None
    if mine.sum() >= 2 and theirs.sum() >= 2:  # KID of this class's samples vs its test images
      kid = sample_quality.kid(features[mine], test_outputs['features'].numpy()[theirs])
      assert by_class['kid'] == pytest.approx(kid[0], rel=1e-4, abs=1e-6)
    else:
      assert by_class['kid'] is None
  assert any(v['kid'] is not None for v in entry['by_class'].values())
  # The ceiling: the classifier's accuracy on the test images of each class.
  real = np.argmax(test_outputs['logits'], axis=1) == test_labels
  ceiling = result['labels']['test_image_accuracy']
  assert ceiling['overall'] == pytest.approx(np.mean(real))
  for k, name in enumerate(names):
    expected = np.mean(real[test_labels == k]) if np.any(test_labels == k) else None
    assert ceiling['by_class'][name] == (expected if expected is None else pytest.approx(expected))
  assert {'bpd', 'bpd_null', 'labels'} <= set(result['bpd'])

  # A rerun reuses the stored samples and labels and gives the same figures.
  source.model.draw = lambda *args, **kwargs: pytest.fail('resampled')
  again = sample_eval.evaluate(source, shipped, out_dir, **TINY)
  assert again['sampling']['reused'] == 12 and again['sampling']['drawn'] == 0
  assert again['labels'] == result['labels'] and again['samplers'] == result['samplers']


@pytest.fixture(scope='module')
def noise_conditional(tmp_path_factory):
  return _workdir(tmp_path_factory, _tiny_8x8('noise_conditional'), 'noise_conditional')


def _pixel_network():
  """A stand-in feature network for 8 x 8 images (the shipped classifier takes 28 x 28): the
  mean and spread of each image's pixels as features, its first 4 pixels as logits."""

  def call(x):
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    features = tf.stack([tf.reduce_mean(flat, 1), tf.math.reduce_std(flat, 1)], axis=1)
    return {'features': features, 'logits': flat[:, :4]}

  return feature_networks.FeatureNetwork('pixels', call)


@needs_idx
def test_sigma_is_refused_by_runs_without_noise_levels(labelled, tmp_path_factory, tmp_path):
  fixed = _workdir(tmp_path_factory, _tiny_8x8('smoothed'), 'fixed')
  for workdir, what in ((labelled, 'a model without smoothing'), (fixed, 'sigma=0.5')):
    with pytest.raises(errors.UserError) as refused:
      evaluating.evaluate(workdir, out_dir=str(tmp_path / 'eval'), sigma=0.3)
    message = str(refused.value)
    assert message.startswith('--sigma=0.3 scores a noise-conditional run') and what in message
    assert 'drop --sigma' in message and '--single_step_sigmas' in message
    assert '\n' not in message
  assert not (tmp_path / 'eval').exists()
  assert evaluating.default_out_dir('runs/nc', sigma=0.3) == os.path.join(
      'runs/nc', 'eval_sigma0.3'
  )


@needs_idx
def test_a_noise_conditional_run_takes_a_level_in_its_range(noise_conditional):
  source = sample_eval.open_source(workdir=noise_conditional)
  condition = source.model.conditions['sigma']
  assert (condition.low, condition.high) == (0.05, 1.0)
  assert sample_eval.noise_level(source.model, 0.2) == 0.2
  assert sample_eval.noise_level(source.model, None) == source.config.smoothing.sigma
  for wrong in (2.0, 0.01, float('nan')):
    with pytest.raises(errors.UserError, match=r'outside the noise levels .*\[0\.05, 1\]'):
      sample_eval.noise_level(source.model, wrong)
  conditions, key = sample_eval.sample_conditions(source, 0, 6, 0.2)
  assert key == {'sigma': 0.2}
  np.testing.assert_array_equal(conditions['sigma'], np.full(6, 0.2, np.float32))
  assert sample_eval.sample_conditions(source, 0, 6)[1] == {'sigma': condition.default}


# Slow: tracing the pair's four samplers (the annealed one with its score steps) and the
# bounds at two levels takes over a minute of CPU on the 2 shared cores.
@pytest.mark.slow
@needs_idx
def test_sigma_scores_every_sampler_and_the_bounds_at_that_level(noise_conditional, tmp_path):
  source = sample_eval.open_source(workdir=noise_conditional)
  model, config = source.model, source.config
  network = _pixel_network()
  tiny = dict(TINY, num_samples=4, batch_size=4, num_reference=8)
  level = 0.2
  at_level = sample_eval.evaluate(source, network, str(tmp_path / 'at'), sigma=level, **tiny)
  reference = sample_eval.evaluate(source, network, str(tmp_path / 'reference'), **tiny)
  assert at_level['noise_level']['sigma'] == level and at_level['noise_level']['given'] == '--sigma'
  assert reference['noise_level']['sigma'] == config.smoothing.sigma
  assert 'annealed' in at_level['noise_level']
  assert set(at_level['samplers']) == {'smoothed', 'single_step', 'two_step', 'annealed'}
  assert at_level['samplers']['two_step']['noise_level'] == level
  assert at_level['samplers']['annealed']['noise_level'] is None

  # The stored samples are keyed by the level, and drawn at it: the model's own draw of the
  # same seed rows at that level (the same images but for a rare 8-bit rounding).
  drawn, other = _stored(str(tmp_path / 'at')), _stored(str(tmp_path / 'reference'))
  assert json.loads(str(drawn['key']))['sigma'] == level
  rows = seeds.rows(0, 'samples', 0, 4)
  direct = model.draw(rows, ['smoothed', 'two_step'], sigma=tf.fill([4], level))
  for name in ('smoothed', 'two_step'):
    gap = np.abs(drawn[name].astype(int) - image_data.to_uint8(direct[name]).astype(int))
    assert gap.max() <= 1 and np.mean(gap == 0) > 0.99
    assert not np.array_equal(drawn[name], other[name])  # another level, other images
  np.testing.assert_array_equal(drawn['annealed'], other['annealed'])  # its own ladder

  # The bounds at the level: the model's likelihood of the first 2 test images at it.
  points = source.task.split('test')[:2]
  record = model.likelihood(
      points,
      seeds.rows(config.eval.seed, 'test', 0, 2),
      config.eval.iw_samples,
      sigma=tf.fill([2], level),
  )
  to_bpd = lambda log_p: -np.mean(log_p) / (points[0].size * math.log(2))  # noqa: E731
  assert at_level['bpd']['bpd_iw'] == pytest.approx(to_bpd(record.log_prob), rel=1e-4)
  assert at_level['bpd']['bpd_elbo'] == pytest.approx(to_bpd(record.elbo), rel=1e-4)
  assert at_level['bpd']['sigma'] == level
  assert abs(at_level['bpd']['bpd_elbo'] - reference['bpd']['bpd_elbo']) > 1e-3
