"""Flag mistakes of the launch/ binaries: one paragraph and exit status 2, never a traceback.

`errors.parse_flags` is tested in-process on fresh FlagValues (fast); three runs of
launch/train.py as subprocesses check what a user sees: exit status, stderr, nothing written.
"""

import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from tfsmooth import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGS = os.path.join(ROOT, 'tfsmooth', 'configs', 'rings.py')
WORKDIR_HELP = 'Directory for checkpoints, summaries, plots and metrics.json.'


def _parse(*args, directory_flags=('workdir',)):
  """errors.parse_flags on a binary with launch/train.py's flags, as `train.py *args`."""
  argv = ['train.py', *args]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file(
      'config', None, 'Experiment config file.', flag_values=values, sys_argv=argv
  )
  flags.DEFINE_string('workdir', None, WORKDIR_HELP, flag_values=values)
  flags.DEFINE_integer('num_samples', 16, 'Samples.', flag_values=values)
  flags.mark_flag_as_required('workdir', flag_values=values)
  return errors.parse_flags(argv, directory_flags, values), values


def _mistake(*args, **kwargs):
  with pytest.raises(errors.UserError) as error:
    _parse(*args, **kwargs)
  return str(error.value)


def test_good_flags_parse_and_keep_the_other_arguments(tmp_path):
  remaining, values = _parse(
      f'--config={RINGS}',
      '--config.train.steps=7',
      '--config.model.hidden_sizes=16,16',
      f'--workdir={tmp_path / "new" / "run"}',
      'extra',
  )
  assert remaining == ['train.py', 'extra']
  assert values.config.train.steps == 7 and values.config.model.hidden_sizes == (16, 16)


@pytest.mark.parametrize(
    'override, texts',
    [
        (
            '--config.train.stepz=10',
            [
                'Unknown config key in --config.train.stepz=10',
                'config.train has no field "stepz"',
                'Did you mean "steps" instead of "stepz"?',
                'batch_size, checkpoint_every',
                f'in the config file (--config={RINGS})',
            ],
        ),
        (
            '--config.model.hidden_units=64',
            ['config.model has no field "hidden_units"', 'hidden_sizes, loc_init_range'],
        ),
        ('--config.trian.steps=1', ['config has no field "trian"', 'Did you mean "train"']),
        ('--config.train.steps.x=1', ['config.train.steps is a value (int', 'has no "x"']),
    ],
)
def test_unknown_config_key_names_it_and_the_fields_there(override, texts):
  message = _mistake(f'--config={RINGS}', override, '--workdir=w')
  for text in texts:
    assert text in message


@pytest.mark.parametrize(
    'override, texts',
    [
        ('--config.train.steps=1.5', ['config.train.steps takes an int', 'sets 19000']),
        ('--config.smoothing.enabled=maybe', ['takes a bool (true or false)']),
        ('--config.train.final_lr_fraction=x', ['takes a float', 'sets 0.05']),
        ('--config.model.hidden_sizes=abc', ['holds int values', "got ('abc',)", '=256,256']),
    ],
)
def test_config_value_of_the_wrong_type_names_the_type(override, texts):
  message = _mistake(f'--config={RINGS}', override, '--workdir=w')
  assert message.startswith(f'Wrong type in {override}')
  for text in texts:
    assert text in message


def test_config_file_that_is_missing_not_python_or_refuses_its_variant(tmp_path):
  for args in (['--config=nope.py'], ['--config=nope.py', '--config.train.steps=3']):
    message = _mistake(*args, '--workdir=w')
    assert 'Cannot load the config file of --config=nope.py' in message
    assert "No such file or directory: 'nope.py'" in message and 'tfsmooth/configs' in message
  assert 'Is a directory' in _mistake(f'--config={tmp_path}', '--workdir=w')
  (tmp_path / 'config.txt').write_text('not python at all\n')
  message = _mistake(f'--config={tmp_path / "config.txt"}', '--workdir=w')
  assert 'config.txt is not valid Python' in message
  message = _mistake(f'--config={RINGS}:nope', '--workdir=w')
  assert message.endswith("Unknown variant 'nope': use one of :smoothed, :paper, :baseline.")
  assert 'Traceback' not in message


def test_a_bug_in_a_config_file_keeps_its_traceback(tmp_path):
  (tmp_path / 'buggy.py').write_text('def get_config(variant=None):\n  return None.x\n')
  with pytest.raises(AttributeError):
    _parse(f'--config={tmp_path / "buggy.py"}', '--config.train.steps=1', '--workdir=w')


def test_other_flag_mistakes_are_paragraphs(tmp_path):
  assert 'Flag --workdir must have a value' in _mistake(f'--config={RINGS}')
  assert "Unknown command line flag 'bogus'" in _mistake(
      f'--config={RINGS}', '--workdir=w', '--bogus'
  )
  message = _mistake(f'--config={RINGS}', '--workdir=w', '--num_samples=abc')
  assert message.startswith('flag --num_samples=abc: invalid literal') and '--helpshort' in message


def test_directory_flag_that_is_a_file_is_refused(tmp_path):
  notes = tmp_path / 'notes.txt'
  notes.write_text('keep me')
  message = _mistake(f'--config={RINGS}', f'--workdir={notes}')
  assert message.startswith(f'--workdir={notes} names an existing file, not a directory')
  assert WORKDIR_HELP.rstrip('.') in message and 'move the file away' in message
  message = _mistake(f'--config={RINGS}', f'--workdir={notes / "run"}')
  assert f'lies under {notes}, which is a file' in message
  _parse(f'--config={RINGS}', f'--workdir={notes}', directory_flags=())  # only the named flags
  assert notes.read_text() == 'keep me'


def _train(*args, cwd):
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'launch', 'train.py'), *args],
      cwd=cwd,
      env=dict(os.environ, PYTHONPATH=ROOT),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )


def test_train_binary_reports_mistakes_in_one_paragraph_and_writes_nothing(tmp_path):
  notes = tmp_path / 'notes.txt'
  notes.write_text('keep me')
  before = os.stat(notes).st_mtime_ns
  # Started together: each process spends its seconds importing TensorFlow.
  runs = {
      'key': _train(f'--config={RINGS}', '--config.train.stepz=10', '--workdir=run', cwd=tmp_path),
      'workdir': _train(f'--config={RINGS}', f'--workdir={notes}', cwd=tmp_path),
      'config': _train('--config=nope.py', '--workdir=run', cwd=tmp_path),
  }
  expected = {
      'key': ['--config.train.stepz=10', 'Did you mean "steps" instead of "stepz"?'],
      'workdir': [f'--workdir={notes} names an existing file'],
      'config': ['--config=nope.py', 'No such file or directory'],
  }
  for name, run in runs.items():
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 2, (name, stderr)
    assert stderr.startswith('Error: ') and 'Traceback' not in stderr, stderr
    assert '\n\n' not in stderr.strip() and not stdout, stderr  # one paragraph, nothing else
    text = ' '.join(stderr.split())
    for part in expected[name]:
      assert part in text, stderr
  assert sorted(os.listdir(tmp_path)) == ['notes.txt']  # no workdir was made
  assert notes.read_text() == 'keep me' and os.stat(notes).st_mtime_ns == before
