"""Class labels: both stages of a pair conditioned on the class (p(x~ | y), p(x | x~, y)), one
model answering with and without a label through the null class.

The class follows the label, measured against the truth on rings labelled by ring index (a
MADE pair that learns in seconds): samples drawn for ring k lie on ring k. Labels reach both
PixelCNN++ stages (a tiny model's log-density changes with the label), and the cached sampler
draws what the naive one does for labelled images. Bad labels are one paragraph naming the fix.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import seeds
from tfsmooth.configs import rings
from tfsmooth.data import synthetic
from tfsmooth.models import context
from tfsmooth.models import made
from tfsmooth.models import pixelcnn

RADII = np.array([0.75, 1.5, 2.25, 3.0])


@pytest.fixture(scope='module')
def labelled_rings(tmp_path_factory):
  config = rings.get_config()
  config.data.labels = True
  config.model.hidden_sizes = config.conditional_model.hidden_sizes = (64, 64)
  config.train.update(
      steps=800, batch_size=256, learning_rate=3e-3, eval_every=400, checkpoint_every=400
  )
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=200)
  config.eval.density_iw_samples = 2
  run = experiment.Run.create(config, str(tmp_path_factory.mktemp('labelled_rings')))
  return run, run.train()


def test_samples_drawn_for_ring_k_lie_on_ring_k(labelled_rings):
  run, _ = labelled_rings
  model = run.model
  rows = seeds.rows(1, 'samples', 0, 400)
  for k in range(4):
    x = model.draw(rows, ['two_step'], labels=tf.fill([400], k))['two_step'].numpy()
    nearest = np.argmin(np.abs(np.linalg.norm(x, axis=1)[:, None] - RADII), axis=1)
    assert np.mean(nearest == k) > 0.85, (k, np.bincount(nearest, minlength=4))
  # Through the null class the model draws from all rings (p(x), not one class).
  x = model.draw(rows, ['two_step'])['two_step'].numpy()
  nearest = np.argmin(np.abs(np.linalg.norm(x, axis=1)[:, None] - RADII), axis=1)
  assert np.all(np.bincount(nearest, minlength=4) > 40)


def test_labelled_metrics_state_what_they_score(labelled_rings):
  """Test figures are of log p(x | y); the _null ones of p(x) through the null class, which is
  the harder density (a label tells a point's ring): the truth says by how much (log 4)."""
  run, metrics = labelled_rings
  assert 'log p(x | y)' in metrics['labels']
  assert metrics['nll_null_iw'] > metrics['nll_iw'] + 0.5
  dataset = synthetic.DATASETS['rings']
  points, labels = run.task.split('test'), run.task.conditions('test')['labels']
  true_given_label = -np.mean(dataset.log_prob_given_label(points, labels))
  assert true_given_label == pytest.approx(metrics['test_true_nll'] - np.log(4), abs=0.02)
  assert metrics['nll_iw'] > true_given_label - 0.02  # a bound stays above the truth


def test_bad_labels_are_one_paragraph_naming_the_fix(labelled_rings):
  run, _ = labelled_rings
  rows = seeds.rows(0, 'samples', 0, 3)
  with pytest.raises(errors.UserError, match=r'outside \[0, 4\].*null class'):
    run.model.draw(rows, labels=[0, 1, 7])
  with pytest.raises(errors.UserError, match='labels has 2 values but the input has 3 rows'):
    run.model.draw(rows, labels=[0, 1])
  with pytest.raises(errors.UserError, match='int32 values'):
    run.model.draw(rows, labels=[0.5, 1.0, 2.0])
  plain = made.MADE(2, (8,), 2)
  plain.build_variables()
  with pytest.raises(errors.UserError, match='trained without conditioning inputs.*labels='):
    plain.log_prob(tf.zeros([1, 2]), labels=[0])


def test_labels_of_data_without_classes_are_refused():
  config = rings.get_config()
  config.data.name = 'checkerboard'
  config.data.labels = True
  with pytest.raises(errors.UserError, match='checkerboard has no class labels'):
    experiment.settle(config)


def _pixelcnns(conditional):
  """A tiny labelled PixelCNN++ with the cached sampler and one with the naive sampler, same
  weights; the continuous head, whose draws agree to float rounding (the discretized head's
  agree exactly but for the rare value that rounding moves across a bin edge)."""
  conditions = {'labels': context.labels(3)}
  models = [
      pixelcnn.PixelCNN(
          (4, 4, 1),
          conditional=conditional,
          nr_resnet=1,
          nr_filters=4,
          nr_logistic_mix=2,
          dropout=0.0,
          likelihood='logistic',
          sampler=sampler,
          conditions=conditions,
          name=f'pixelcnn_{sampler}',
      )
      for sampler in ('cached', 'naive')
  ]
  for m in models:
    m.build_variables()
  for a, b in zip(models[0].variables, models[1].variables):
    b.assign(a)
  return models


@pytest.mark.parametrize('conditional', [False, True], ids=['p(x~|y)', 'p(x|x~,y)'])
def test_labels_reach_pixelcnn_and_cached_equals_naive(conditional):
  cached, naive = _pixelcnns(conditional)
  rows = seeds.rows(0, 'samples', 0, 3)
  labels = tf.constant([0, 1, 3])  # 3: the null class
  x_tilde = tf.random.stateless_uniform([3, 4, 4, 1], [4, 5], -1, 1) if conditional else None
  x = tf.random.stateless_uniform([3, 4, 4, 1], [6, 7], -1, 1)
  drawn = cached.sample_rows(rows, x_tilde, labels=labels).numpy()
  same = dict(rtol=0.0, atol=1e-4)
  np.testing.assert_allclose(drawn, naive.sample_rows(rows, x_tilde, labels=labels), **same)
  completed = cached.complete_rows(x, 2, rows, x_tilde, labels=labels).numpy()
  naive_completed = naive.complete_rows(x, 2, rows, x_tilde, labels=labels)
  np.testing.assert_allclose(completed, naive_completed, **same)
  np.testing.assert_array_equal(completed[:, :2], x[:, :2])
  other = tf.constant([2, 2, 2])
  assert np.all(
      cached.log_prob(x, x_tilde, labels=labels) != cached.log_prob(x, x_tilde, labels=other)
  )
  assert not np.array_equal(drawn, cached.sample_rows(rows, x_tilde, labels=other).numpy())


def test_label_drop_sends_a_share_of_training_labels_to_the_null_class():
  condition = context.labels(5, drop_rate=0.3)
  labels = tf.zeros([20_000], tf.int32)
  dropped = condition.for_training(labels, tf.constant([3, 4]))
  share = float(tf.reduce_mean(tf.cast(dropped == 5, tf.float32)))
  assert share == pytest.approx(0.3, abs=0.015)
  assert set(np.unique(dropped)) == {0, 5}
