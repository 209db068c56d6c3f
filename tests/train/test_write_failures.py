"""A storage that refuses writes (a full disk, a lost permission) while a run saves a
checkpoint, the best checkpoint, a summary, metrics.json or a plot: one paragraph (what, where,
why, the newest intact checkpoint, the fix), exit status 2 from the binaries, nothing partial
left, and a rerun that resumes from the newest checkpoint to the same end as a run never
refused.

The refusals are injected (`refusals`: the errors and leftovers of a real full disk, seen on a
small tmpfs), at the k-th write of each writer.
"""

import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.train import refusals
from tests.train import tiny
from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import records
from tfsmooth import writes
from tfsmooth.configs import rings
from tfsmooth.programs import cli
from tfsmooth.train import checkpoints
from tfsmooth.train import lock
from tfsmooth.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVERY = 8  # steps between logs, evaluations and checkpoints
STEPS = 3 * EVERY
NO_SPACE = 'No space left on device'


def _config(validate):
  return tiny.config(
      STEPS,
      log_every=EVERY,
      checkpoint_every=EVERY,
      steps_per_loop=EVERY,
      eval_every=EVERY if validate else 0,
  )


def _validation(model):
  return {'validation': float(-np.mean(model.log_prob(tiny.HELD_OUT).numpy()))}


def _train(workdir, validate=False):
  return trainer.train(
      tiny.model,
      tiny.dataset,
      _config(validate),
      str(workdir),
      eval_fn=_validation if validate else None,
  )


def _weights(model):
  return [v.numpy() for v in model.trainable_variables]


def _assert_same_weights(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """The final weights of runs never refused: {validate: weights, best step}."""
  out = {}
  for validate in (False, True):
    result = _train(tmp_path_factory.mktemp('straight'), validate)
    out[validate] = (_weights(result.model), result.best_step)
  return out


def _files(directory):
  return sorted(os.listdir(directory))


def _ckpt(workdir, step, folder='checkpoints'):
  return str(workdir / folder / f'ckpt-{step}')


def _resumes(workdir, validate, caplog, resumed_step):
  """Reruns the run in `workdir` unrefused; checks that it resumed from `resumed_step`."""
  caplog.clear()
  with caplog.at_level(logging.INFO, logger='absl'):  # absl's level may be set by other tests
    result = _train(workdir, validate)
  assert f'Resumed from {_ckpt(workdir, resumed_step)} at step {resumed_step}.' in caplog.text
  return result


@pytest.mark.parametrize('point', ['data', 'index', 'state'])
def test_refused_checkpoint_is_one_paragraph_and_the_rerun_resumes(
    tmp_path, monkeypatch, caplog, straight, point
):
  workdir = tmp_path / 'run'
  refused = refusals.refuse_checkpoint_saves(monkeypatch.setattr, 'checkpoints', 2, point)
  with pytest.raises(writes.WriteFailed) as failure:
    _train(workdir)
  assert refused == [_ckpt(workdir, 2 * EVERY)]
  assert str(failure.value) == (
      f'Could not write the checkpoint of step {2 * EVERY} ({_ckpt(workdir, 2 * EVERY)}): '
      f'{NO_SPACE}. Free space (or raise the quota) on the storage of '
      f'{workdir / "checkpoints"}, then rerun the same command. The newest intact checkpoint '
      f'is {_ckpt(workdir, EVERY)} (step {EVERY}): training resumes from it.'
  )
  # Nothing of the refused save is left: no ckpt-16_temp/, no cut index or state temporary.
  assert _files(workdir / 'checkpoints') == [
      'checkpoint',
      f'ckpt-{EVERY}.data-00000-of-00001',
      f'ckpt-{EVERY}.index',
  ]
  assert checkpoints.restore_model(tiny.model(), str(workdir / 'checkpoints')) == _ckpt(
      workdir, EVERY
  )
  monkeypatch.undo()
  result = _resumes(workdir, False, caplog, EVERY)
  _assert_same_weights(_weights(result.model), straight[False][0])


def test_refused_best_checkpoint_costs_no_training(tmp_path, monkeypatch, caplog, straight):
  # The operator's case: validation and a periodic checkpoint on one step, the best refused.
  workdir = tmp_path / 'run'
  refused = refusals.refuse_checkpoint_saves(monkeypatch.setattr, 'best', 2, 'data')
  with pytest.raises(writes.WriteFailed) as failure:
    _train(workdir, validate=True)
  assert refused == [_ckpt(workdir, 2 * EVERY, 'best')]  # validation improved at step 16
  assert str(failure.value) == (
      f'Could not write the best checkpoint (step {2 * EVERY}) '
      f'({_ckpt(workdir, 2 * EVERY, "best")}): {NO_SPACE}. Free space (or raise the quota) on '
      f'the storage of {workdir / "best"}, then rerun the same command. The newest intact '
      f'checkpoint is {_ckpt(workdir, 2 * EVERY)} (step {2 * EVERY}): training resumes from it. '
      f'The best on validation so far is {_ckpt(workdir, EVERY, "best")} (step {EVERY}).'
  )
  assert _files(workdir / 'best') == [
      'checkpoint',
      f'ckpt-{EVERY}.data-00000-of-00001',
      f'ckpt-{EVERY}.index',
  ]
  monkeypatch.undo()
  result = _resumes(workdir, True, caplog, 2 * EVERY)
  # The rerun first saves the best that the refused save missed: the periodic checkpoint of
  # step 16 holds it.
  assert f'Saving the best checkpoint of step {2 * EVERY}, which the last run' in caplog.text
  weights, best_step = straight[True]
  assert result.best_step == best_step
  _assert_same_weights(_weights(result.model), weights)


def test_refused_summaries_still_save_the_checkpoint_of_their_step(
    tmp_path, monkeypatch, caplog, straight
):
  workdir = tmp_path / 'run'
  refusals.refuse_summary_flush(monkeypatch.setattr, nth=2)  # the log of step 16
  with pytest.raises(writes.WriteFailed) as failure:
    _train(workdir)
  assert str(failure.value) == (
      f'Could not write TensorBoard summaries ({workdir / "summaries"}): {NO_SPACE}. Free '
      f'space (or raise the quota) on the storage of {workdir}, then rerun the same command. '
      f'The newest intact checkpoint is {_ckpt(workdir, 2 * EVERY)} (step {2 * EVERY}): '
      'training resumes from it.'
  )
  monkeypatch.undo()
  result = _resumes(workdir, False, caplog, 2 * EVERY)
  _assert_same_weights(_weights(result.model), straight[False][0])


def test_leftovers_of_a_killed_save_go_and_older_checkpoints_resume(tmp_path, monkeypatch):
  # A run whose checkpoints predate `best_step` (the step of the best validation) resumes;
  # what a save killed midway leaves (no process was there to clean up) is removed.
  trackables = trainer._TrainState.trackables  # pylint: disable=protected-access

  def without_best_step(state):
    return {k: v for k, v in trackables(state).items() if k != 'best_step'}

  monkeypatch.setattr(trainer._TrainState, 'trackables', without_best_step)
  first = _train(tmp_path, validate=True)
  monkeypatch.undo()
  prefix = checkpoints.candidates(str(tmp_path / 'checkpoints'))[0]
  assert not [n for n, _ in tf.train.list_variables(prefix) if n.startswith('best_step')]
  for folder in ('checkpoints', 'best'):
    (tmp_path / folder / f'ckpt-{STEPS + 1}_temp').mkdir()
    (tmp_path / folder / 'checkpoint.tmp0123abcd').write_text('model_checkpoint_pa')
  result = _train(tmp_path, validate=True)
  assert (result.step, result.best_step) == (STEPS, first.best_step)
  _assert_same_weights(_weights(result.model), _weights(first.model))
  for folder in ('checkpoints', 'best'):
    assert not [n for n in _files(tmp_path / folder) if 'tmp' in n or 'temp' in n]


def test_reason_is_the_storages_own_words():
  # Real errors of TensorFlow's file systems, as they come.
  with pytest.raises(tf.errors.NotFoundError) as missing:
    with tf.io.gfile.GFile('/nonexistent-folder/x.json', 'w') as f:
      f.write('{}')
  failure = writes.WriteFailed.of('the record x.json', '/nonexistent-folder/x.json', missing.value)
  assert failure.reason == 'No such file or directory'
  assert 'Check that /nonexistent-folder can be written' in str(failure)
  # As seen on a full tmpfs (the checkpoint writer's op, and a summary writer's flush).
  seen = tf.errors.ResourceExhaustedError(
      None,
      None,
      '{{function_node __wrapped__SaveV2_dtypes_3_device_/job:localhost/replica:0/task:0/'
      'device:CPU:0}} /mnt/ck/ckpt-3_temp/part-00000-of-00001.data-00000-of-00001.tempstate'
      '15563512918710586051; No space left on device [Op:SaveV2]',
  )
  assert writes.WriteFailed.of('x', '/mnt/ck/ckpt-3', seen).reason == NO_SPACE
  denied = PermissionError(13, 'Permission denied', '/runs/x/metrics.json')
  failure = writes.WriteFailed.of('the record metrics.json', '/runs/x/metrics.json', denied)
  assert str(failure).startswith(
      'Could not write the record metrics.json (/runs/x/metrics.json): Permission denied. '
      'Restore write access to /runs/x, then rerun'
  )


def _paragraph(stderr):
  """The runner's last 'Error: ' paragraph, unwrapped (`errors.paragraph` also wraps at the
  hyphens of paths)."""
  return ' '.join(re.sub(r'-\n', '-', stderr.split('Error: ')[-1]).split())


def _rings_config():
  """A tiny rings MADE: 4 steps, validation and checkpoints every 2."""
  config = rings.get_config('baseline')
  config.model.hidden_sizes = (8,)
  config.train.update(steps=4, jit_compile=False, log_every=2, eval_every=2, checkpoint_every=2)
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=200, density_iw_samples=2)
  return config


def _refused_after_training(workdir, monkeypatch, capsys, name):
  """Trains (or resumes) the tiny rings run in `workdir` through the binaries' runner with
  writes to `name` refused; checks the exit status and that nothing of `name` is left; returns
  the run and the paragraph."""
  run = experiment.Run.create(_rings_config(), str(workdir))
  refused = refusals.refuse_file_writes(monkeypatch.setattr, name, budget=100)
  with pytest.raises(SystemExit) as end:
    cli.reported(lambda argv: run.train())(['train.py'])
  monkeypatch.undo()
  assert end.value.code == 2
  assert refused == [f'{workdir / name}.tmp-{os.getpid()}']
  assert not [n for n in os.listdir(workdir) if n.startswith(name)]  # nor its temporary
  assert not os.path.exists(lock.path_of(str(workdir)))  # Run.train released the lock
  return run, _paragraph(capsys.readouterr().err)


def test_refused_record_then_plot_after_training(tmp_path, monkeypatch, capsys):
  workdir = tmp_path / 'run'
  run, paragraph = _refused_after_training(workdir, monkeypatch, capsys, 'metrics.json')
  best = run.metrics['best_step']
  saved = (
      f'then rerun the same command. The newest intact checkpoint is {_ckpt(workdir, 4)} (step '
      f'4): training resumes from it. The best on validation so far is '
      f'{_ckpt(workdir, best, "best")} (step {best}).'
  )
  assert paragraph == (
      f'Could not write the record metrics.json ({workdir / "metrics.json"}): {NO_SPACE}. Free '
      f'space (or raise the quota) on the storage of {workdir}, {saved}'
  )
  # The rerun finds training done: it evaluates the same weights to the same figures, writes
  # metrics.json, and is refused the first plot.
  rerun, paragraph = _refused_after_training(workdir, monkeypatch, capsys, 'samples.png')
  assert rerun.metrics == run.metrics
  assert records.read_json(str(workdir / 'metrics.json')) == run.metrics
  assert paragraph == (
      f'Could not write the plot samples.png ({workdir / "samples.png"}): {NO_SPACE}. Free '
      f'space (or raise the quota) on the storage of {workdir}, {saved}'
  )
  assert experiment.Run.create(_rings_config(), str(workdir)).train() == run.metrics
  for plot in ('samples.png', 'density.png'):
    assert tf.io.decode_png(tf.io.read_file(str(workdir / plot))).shape[-1] in (3, 4)


def _refusing(args, refusal=None, tf_config=None):
  """tests/train/refusing_train.py `args` in a subprocess, refusing `refusal`."""
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  for name in ('TF_CONFIG', refusals.ENVIRONMENT):
    env.pop(name, None)
  if refusal:
    env[refusals.ENVIRONMENT] = refusal
  if tf_config:
    env['TF_CONFIG'] = json.dumps(tf_config)
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'tests', 'train', 'refusing_train.py'), *args],
      cwd=ROOT,
      env=env,
      stderr=subprocess.PIPE,
      text=True,
  )


def test_launch_train_refused_its_best_checkpoint_exits_2_with_one_paragraph(tmp_path, caplog):
  # The operator's full disk: the first validation and checkpoint fall on one step (2), and
  # the best checkpoint does not fit.
  workdir = tmp_path / 'run'
  flags = [
      '--config=tfsmooth/configs/rings.py:baseline',
      '--config.model.hidden_sizes=(8,)',
      '--config.train.steps=4',
      '--config.train.jit_compile=False',
      '--config.train.log_every=2',
      '--config.train.eval_every=2',
      '--config.train.checkpoint_every=2',
      '--config.eval.num_plot_samples=200',
      f'--workdir={workdir}',
  ]
  first = _refusing(flags, 'checkpoint:best:1:data')
  _, err = first.communicate(timeout=300)
  assert first.returncode == 2, err[-3000:]
  assert 'Traceback' not in err
  assert err.rstrip().endswith(
      errors.paragraph(
          f'Error: Could not write the best checkpoint (step 2) ({_ckpt(workdir, 2, "best")}): '
          f'{NO_SPACE}. Free space (or raise the quota) on the storage of {workdir / "best"}, '
          f'then rerun the same command. The newest intact checkpoint is {_ckpt(workdir, 2)} '
          '(step 2): training resumes from it.'
      )
  )
  assert os.listdir(workdir / 'best') == []  # no ckpt-2_temp
  # The same command again, in this process (the trainer-level tests compare resumed runs
  # with runs never refused).
  caplog.clear()
  with caplog.at_level(logging.INFO, logger='absl'):  # absl's level may be set by other tests
    metrics = experiment.Run.create(_rings_config(), str(workdir)).train()
  assert f'Resumed from {_ckpt(workdir, 2)} at step 2.' in caplog.text
  assert 'Saving the best checkpoint of step 2, which the last run could not.' in caplog.text
  assert metrics['steps'] == 4 and metrics['best_step'] in (2, 4)
  assert checkpoints.candidates(str(workdir / 'best')) == [
      _ckpt(workdir, metrics['best_step'], 'best')
  ]


def test_two_workers_stop_together_when_the_chief_is_refused(tmp_path):
  # The chief's second periodic checkpoint (step 8) is refused; the other worker's first
  # scratch save (step 4) too, which it only warns about. Both end at step 8 with a paragraph
  # (no worker waits for the other); the chief's checkpoint of step 4 stays whole.
  # (Resuming two workers: test_faults.)
  workdir, every, steps = tmp_path / 'run', 4, 12
  cluster = {'worker': [f'127.0.0.1:{p}' for p in tiny.free_ports(2)]}

  def workers(refusals_of_workers, run):
    return [
        _refusing(
            ['--driver', str(workdir), str(tmp_path / f'{run}{i}.npz'), str(steps)]
            + ['multi_worker', str(every)],
            refusal,
            {'cluster': cluster, 'task': {'type': 'worker', 'index': i}},
        )
        for i, refusal in enumerate(refusals_of_workers)
    ]

  first = workers(['checkpoint:checkpoints:2:data', 'checkpoint:scratch_worker1:1:data'], 'first')
  ends = [w.communicate(timeout=300) for w in first]
  assert [w.returncode for w in first] == [2, 2], ends[0][1][-3000:] + ends[1][1][-3000:]
  assert 'a scratch save no one reads' in ends[1][1]
  best = checkpoints.candidates(str(workdir / 'best'))[0]  # the best save of step 8 went on
  saved = (
      f'The newest intact checkpoint is {_ckpt(workdir, every)} (step {every}): training '
      f'resumes from it. The best on validation so far is {best} (step {checkpoints.step_of(best)}).'
  )
  chief, other = [_paragraph(err) for _, err in ends]
  assert chief == (
      f'Could not write the checkpoint of step {2 * every} ({_ckpt(workdir, 2 * every)}): '
      f'{NO_SPACE}. Free space (or raise the quota) on the storage of {workdir / "checkpoints"}, '
      f'then rerun the same command. {saved}'
  )
  assert other == (
      f"Could not write the run's files at step {2 * every} ({workdir}): the chief worker's "
      'write failed (its message says which and why), and every worker stops with it. Do what '
      f"the chief worker's message says, then rerun the same command. {saved}"
  )
  assert _files(workdir / 'checkpoints') == [
      'checkpoint',
      f'ckpt-{every}.data-00000-of-00001',
      f'ckpt-{every}.index',
  ]
  assert checkpoints.restore_model(tiny.model(), str(workdir / 'checkpoints')) == _ckpt(
      workdir, every
  )
