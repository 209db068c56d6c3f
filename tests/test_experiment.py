"""The run object: settled config record, refused resumes, user data, bad input, old workdirs."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth.configs import rings


def tiny_config(steps=4, **data):
  config = rings.get_config('paper')
  config.model.hidden_sizes = config.conditional_model.hidden_sizes = (8,)
  config.train.update(steps=steps, jit_compile=False, log_every=2, eval_every=2, checkpoint_every=2)
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=200, density_iw_samples=2)
  config.data.update(data)
  return config


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('rings'))
  return workdir, experiment.Run.create(tiny_config(), workdir).train()


def test_run_writes_settled_config_metrics_and_plots(trained):
  workdir, metrics = trained
  record = json.loads(open(os.path.join(workdir, 'config.json')).read())
  assert record['data']['event_shape'] == [2] and record['format'] == experiment.FORMAT
  saved = json.loads(open(os.path.join(workdir, 'metrics.json')).read())
  assert saved == metrics and metrics['steps'] == 4
  assert metrics['nll_iw'] <= metrics['nll_elbo']
  assert metrics['entropy'] == pytest.approx(2.623, abs=0.005) and metrics['paper_nll'] == 2.71
  for name in ('samples.png', 'density.png'):
    assert os.path.getsize(os.path.join(workdir, name)) > 10_000


def test_load_rebuilds_the_trained_model(trained):
  workdir, metrics = trained
  run = experiment.Run.load(workdir)
  assert run.step == metrics['best_step']
  iw = run.likelihood(run.model, 'validation', 2).nll
  assert iw == pytest.approx(metrics['validation_nll'], rel=1e-5)


def test_load_gives_the_ema_or_the_raw_weights(tmp_path):
  config = tiny_config()
  config.train.ema_decay = 0.9
  experiment.Run.create(config, str(tmp_path)).train()
  ema, raw = experiment.Run.load(str(tmp_path)), experiment.Run.load(str(tmp_path), ema=False)
  assert (ema.weights, raw.weights) == ('ema', 'raw') and ema.checkpoint == raw.checkpoint
  assert not np.allclose(
      ema.model.trainable_variables[0].numpy(), raw.model.trainable_variables[0].numpy()
  )


def test_resume_with_another_model_is_refused_and_keeps_the_record(trained):
  workdir, _ = trained
  path = os.path.join(workdir, 'config.json')
  before = open(path).read()
  changed = tiny_config(steps=6)
  changed.conditional_model.num_mixtures = 6
  changed.smoothing.sigma = 0.2
  with pytest.raises(errors.UserError) as info:
    experiment.Run.create(changed, workdir)
  message = str(info.value)
  assert 'conditional_model.num_mixtures: recorded 3, now 6' in message
  assert 'smoothing.sigma: recorded 0.3, now 0.2' in message
  assert 'train.steps' not in message.split('Differences:')[1].split('Rerun')[0]
  assert open(path).read() == before
  # A bad value is refused before anything is written, too.
  zero_sigma = tiny_config()
  zero_sigma.smoothing.sigma = 0.0
  with pytest.raises(errors.UserError, match='sigma'):
    experiment.Run.create(zero_sigma, workdir)
  assert open(path).read() == before


def _checkpoint(workdir, step):
  """The prefix of the ordinary training checkpoint of `step`."""
  return os.path.join(workdir, 'checkpoints', f'ckpt-{step}')


def _saved_weights(prefix):
  """{name: value} of the model weights a checkpoint file holds."""
  reader = tf.train.load_checkpoint(prefix)
  return {
      name: reader.get_tensor(name)
      for name, _ in tf.train.list_variables(prefix)
      if name.startswith('weights/')
  }


def _logged_losses(event_file):
  """{step: train/loss} of one TensorBoard events file."""
  losses = {}
  for event in tf.compat.v1.train.summary_iterator(event_file):
    for value in event.summary.value:
      if value.tag == 'train/loss':
        losses[event.step] = float(tf.make_ndarray(value.tensor))
  return losses


def _constant_lr_config(points_file, steps, iw_samples):
  """A tiny run on user points (3-D: no density plot) at a constant learning rate, so that
  steps 5-6 of a 6-step run are the same whether or not it stopped at step 4 (the rings
  default decays the rate to a fraction at `steps`, which a resume with more steps changes)."""
  config = tiny_config(name='file', path=points_file)
  config.train.update(steps=steps, final_lr_fraction=None, lr_decay=1.0)
  config.eval.iw_samples = iw_samples
  return config


@pytest.mark.parametrize(
    'tf_config, writes',
    [
        ({'cluster': {'worker': ['a:1', 'b:2']}, 'task': {'type': 'worker', 'index': 0}}, True),
        ({'cluster': {'worker': ['a:1', 'b:2']}, 'task': {'type': 'worker', 'index': 1}}, False),
        (
            {
                'cluster': {'chief': ['a:1'], 'worker': ['b:2']},
                'task': {'type': 'worker', 'index': 0},
            },
            False,
        ),
    ],
)
def test_only_the_chief_records_the_config(tmp_path, monkeypatch, tf_config, writes):
  monkeypatch.setenv('TF_CONFIG', json.dumps(tf_config))
  workdir = tmp_path / 'w'
  run = experiment.Run.create(tiny_config(), str(workdir))
  assert run.config.smoothing.sigma == 0.3
  assert (workdir / 'config.json').exists() == writes
  assert workdir.exists() == writes


def test_more_steps_and_other_evaluation_settings_resume(tmp_path):
  points = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
  np.save(tmp_path / 'points.npy', points)
  points_file = str(tmp_path / 'points.npy')
  workdir, straight = str(tmp_path / 'resumed'), str(tmp_path / 'straight')
  first_metrics = experiment.Run.create(_constant_lr_config(points_file, 4, 2), workdir).train()
  assert first_metrics['steps'] == 4 and first_metrics['iw_samples'] == 2
  first_events = set(glob.glob(os.path.join(workdir, 'summaries', '*')))
  at_4 = _saved_weights(_checkpoint(workdir, 4))

  run = experiment.Run.create(_constant_lr_config(points_file, 6, 8), workdir)
  assert run.config.train.steps == 6 and run.config.eval.iw_samples == 8
  metrics = run.train()
  # The new settings apply: six steps, test bounds with 8 draws.
  assert metrics['steps'] == 6 and metrics['iw_samples'] == 8
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints')).endswith('ckpt-6')
  reader = tf.train.load_checkpoint(_checkpoint(workdir, 6))
  assert reader.get_tensor('optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE') == 6
  # It started from step 4: this run logged step 6 only (a restart logs 2, 4 and 6), and its
  # training time adds to the first run's.
  (events,) = set(glob.glob(os.path.join(workdir, 'summaries', '*'))) - first_events
  resumed_losses = _logged_losses(events)
  assert sorted(resumed_losses) == [6]
  assert metrics['train_seconds'] > first_metrics['train_seconds']

  # And it continued the same trajectory (weights, Adam moments, data position, noise seeds):
  # its loss and weights at step 6 equal those of a run trained 6 steps straight.
  experiment.Run.create(_constant_lr_config(points_file, 6, 2), straight).train()
  (straight_events,) = glob.glob(os.path.join(straight, 'summaries', '*'))
  straight_losses = _logged_losses(straight_events)
  assert sorted(straight_losses) == [2, 4, 6]
  assert resumed_losses[6] == pytest.approx(straight_losses[6], rel=1e-6)
  at_6 = _saved_weights(_checkpoint(workdir, 6))
  straight_6 = _saved_weights(_checkpoint(straight, 6))
  assert at_6.keys() == straight_6.keys() == at_4.keys()
  for name in at_6:
    np.testing.assert_allclose(at_6[name], straight_6[name], rtol=1e-6, atol=1e-7)
  assert not all(np.allclose(at_4[name], at_6[name]) for name in at_6)


@pytest.mark.parametrize(
    'key,value,match',
    [
        ('steps', -5, 'train.steps must be a positive integer'),
        ('steps', 0, 'train.steps must be a positive integer'),
        ('batch_size', 0, 'train.batch_size must be a positive integer'),
    ],
)
def test_bad_training_settings_are_refused(tmp_path, key, value, match):
  config = tiny_config()
  config.train[key] = value
  with pytest.raises(errors.UserError, match=match):
    experiment.Run.create(config, tmp_path / 'w')
  assert not os.path.exists(tmp_path / 'w')


def test_empty_or_broken_point_files_are_user_errors(tmp_path):
  empty = tmp_path / 'empty.npy'
  empty.write_bytes(b'')
  with pytest.raises(errors.UserError, match='empty.npy'):
    experiment.Run.create(tiny_config(name='file', path=str(empty)), tmp_path / 'w')
  text = tmp_path / 'bad.npy'
  text.write_text('not numpy')
  with pytest.raises(errors.UserError, match='bad.npy'):
    experiment.Run.create(tiny_config(name='file', path=str(text)), tmp_path / 'w')


def test_user_points_of_any_dimension(tmp_path):
  points = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
  np.save(tmp_path / 'mine.npy', points)
  workdir = tmp_path / 'mine'
  metrics = experiment.Run.create(
      tiny_config(name='file', path=str(tmp_path / 'mine.npy')), workdir
  ).train()
  assert 'paper_nll' not in metrics and 'entropy' not in metrics
  assert np.isfinite(metrics['nll_iw'])
  assert os.path.exists(workdir / 'samples.png') and not os.path.exists(workdir / 'density.png')
  assert 'paper' not in experiment.Run(experiment.read_record(workdir), workdir).summary_line(
      metrics
  )


def test_workdir_from_before_settling_still_loads(trained, tmp_path):
  workdir, _ = trained
  old = tmp_path / 'old'
  os.makedirs(old)
  for name in ('checkpoints', 'best'):
    os.symlink(os.path.join(workdir, name), old / name)
  record = json.loads(open(os.path.join(workdir, 'config.json')).read())
  del record['format'], record['data']['event_shape']
  (old / 'config.json').write_text(json.dumps(record))
  run = experiment.Run.load(old)
  assert run.config.data.event_shape == [2] and run.model.num_params > 0


def test_missing_or_corrupt_record_names_the_fix(tmp_path):
  with pytest.raises(FileNotFoundError, match='launch/train.py'):
    experiment.Run.load(tmp_path)
  (tmp_path / 'config.json').write_text('{"data": ')
  with pytest.raises(errors.UserError, match='not valid JSON'):
    experiment.Run.load(tmp_path)


def test_create_builds_the_model_and_metadata_names_the_trained_step(tmp_path):
  """Run.create(config, workdir).model is the built, untrained model (its weights are the ones
  training starts from); after train(), export_metadata records the step of the weights the
  model holds (the best checkpoint's), not None."""
  config = tiny_config()
  run = experiment.Run.create(config, str(tmp_path))
  assert run.model.built and run.model.num_params > 0 and run.step is None
  initial = [v.numpy().copy() for v in run.model.trainable_variables]
  metrics = run.train()
  assert any(
      not np.array_equal(a, v.numpy()) for a, v in zip(initial, run.model.trainable_variables)
  )
  metadata = run.export_metadata()
  assert metadata['step'] == metrics['best_step'] is not None
  assert metadata['metrics'] == metrics and run.lock is None
