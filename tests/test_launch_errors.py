"""Flag mistakes of the launch/ binaries: one paragraph and exit status 2, never a traceback.

`cli.parse_flags` (tfsmooth/programs/cli.py) is tested in-process on fresh FlagValues (fast);
runs of launch/train.py as subprocesses check what a user sees: exit status, stderr, nothing
written.
"""

import functools
import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from tfsmooth import errors
from tfsmooth.programs import cli
from tfsmooth.programs import evaluating
from tfsmooth.programs import exporting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RINGS = os.path.join(ROOT, 'tfsmooth', 'configs', 'rings.py')
HELP = 'Run with --helpshort to list the flags.'
WORKDIR_HELP = 'Directory for checkpoints, summaries, plots and metrics.json.'


def _parse(*args, directory_flags=('workdir',), arguments=True):
  """cli.parse_flags on a binary with launch/train.py's flags, as `train.py *args`."""
  argv = ['train.py', *args]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file(
      'config', None, 'Experiment config file.', flag_values=values, sys_argv=argv
  )
  flags.DEFINE_string('workdir', None, WORKDIR_HELP, flag_values=values)
  flags.DEFINE_integer('num_samples', 16, 'Samples.', flag_values=values)
  flags.mark_flag_as_required('workdir', flag_values=values)
  return cli.parse_flags(argv, directory_flags, values, arguments), values


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
  # The binaries' runner takes no arguments: refused before --workdir is probed.
  message = _mistake(
      f'--config={RINGS}',
      f'--workdir={tmp_path / "run"}',
      'extra',
      directory_flags={'workdir': cli.WRITE},
      arguments=False,
  )
  assert message == f"Unexpected arguments: ['extra']. {HELP}"
  assert not list(tmp_path.iterdir())
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
  assert message.endswith(
      "Unknown variant 'nope': use one of :smoothed, :paper, :baseline, :noise_conditional."
  )
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


def _exclusive(*args):
  """cli.parse_flags on launch/export.py's source flags: exactly one of --workdir and
  --saved_model (absl's mark_flags_as_mutual_exclusive), --export_dir required."""
  values = flags.FlagValues()
  flags.DEFINE_string('workdir', None, 'A trained run.', flag_values=values)
  flags.DEFINE_string('saved_model', None, 'Instead of --workdir: an export.', flag_values=values)
  flags.DEFINE_string('export_dir', None, 'Model base path.', flag_values=values)
  flags.mark_flags_as_mutual_exclusive(
      ['workdir', 'saved_model'], required=True, flag_values=values
  )
  flags.mark_flag_as_required('export_dir', flag_values=values)
  with pytest.raises(errors.UserError) as error:
    cli.parse_flags(['export.py', *args], (), values)
  return ' '.join(str(error.value).split())


def test_mutually_exclusive_flags_are_named_with_their_help():
  helps = '--workdir: A trained run. --saved_model: Instead of --workdir: an export.'
  message = _exclusive('--workdir=a', '--saved_model=b', '--export_dir=out')
  assert message == (
      'Pass exactly one of --workdir and --saved_model; got both (--workdir=a, '
      f'--saved_model=b). {helps} {HELP}'
  )
  message = _exclusive()  # and --export_dir missing: both mistakes in one paragraph
  assert message.startswith(
      f'Pass exactly one of --workdir and --saved_model; got neither. {helps}'
  )
  assert 'Flag --export_dir must have a value' in message and message.endswith(HELP)


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


def _launch(binary, *args, cwd):
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'launch', binary), *args],
      cwd=cwd,
      env=dict(os.environ, PYTHONPATH=ROOT),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
  )


def test_binaries_report_mistakes_in_one_paragraph_and_write_nothing(tmp_path):
  notes = tmp_path / 'notes.txt'
  notes.write_text('keep me')
  before = os.stat(notes).st_mtime_ns
  train = functools.partial(_launch, 'train.py', cwd=tmp_path)
  # Started together: each process spends its seconds importing TensorFlow.
  runs = {
      'key': train(f'--config={RINGS}', '--config.train.stepz=10', '--workdir=run'),
      'workdir': train(f'--config={RINGS}', f'--workdir={notes}'),
      'config': train('--config=nope.py', '--workdir=run'),
      'exclusive': _launch('export.py', '--workdir=run', '--saved_model=old', cwd=tmp_path),
  }
  expected = {
      'key': ['--config.train.stepz=10', 'Did you mean "steps" instead of "stepz"?'],
      'workdir': [f'--workdir={notes} names an existing file'],
      'config': ['--config=nope.py', 'No such file or directory'],
      'exclusive': [
          'Pass exactly one of --workdir and --saved_model; got both',
          'Flag --export_dir must have a value',
      ],
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


def test_export_program_takes_one_source_and_knows_its_weights(tmp_path):
  with pytest.raises(errors.UserError, match='got neither'):
    exporting.export_model(str(tmp_path / 'out'))
  with pytest.raises(errors.UserError, match='got both'):
    exporting.export_model(str(tmp_path / 'out'), workdir='run', saved_model='old/1')
  for version in ('1', '2', 'tmp'):
    (tmp_path / 'base' / version).mkdir(parents=True)
  with pytest.raises(errors.UserError) as error:
    exporting.read_old(str(tmp_path / 'base'))
  assert 'It holds the versions 1, 2: pass one of them' in str(error.value)
  assert f'--saved_model={tmp_path / "base" / "2"}.' in str(error.value)
  assert not (tmp_path / 'out').exists()
  # The record names the weights; --weights (None when not given) may only agree with it.
  assert exporting.weights_of({'weights': 'raw'}, 'v/1') == 'raw'
  assert exporting.weights_of({'weights': 'raw'}, 'v/1', given='raw') == 'raw'
  assert exporting.weights_of({}, 'v/1', given='ema') == 'ema'
  with pytest.raises(errors.UserError, match='--weights=ema was given.*Drop --weights'):
    exporting.weights_of({'weights': 'raw'}, 'v/1', given='ema')
  with pytest.raises(errors.UserError, match=r'pass --weights=ema or .*ema_decay=0\.999'):
    exporting.weights_of({'config': {'train': {'ema_decay': 0.999}}}, 'v/1')


def test_evaluate_program_settles_its_flags(tmp_path):
  assert evaluating.default_out_dir('runs/fmnist') == 'runs/fmnist'
  assert evaluating.default_out_dir('runs/fmnist', ema=False) == 'runs/fmnist/eval_raw_weights'
  # An export's results go to eval/<model>/<version> in the working directory, not into it.
  for version_dir in ('saved_models/fashion_mnist_smoothed/3', 'gs://b/fashion_mnist_smoothed/3/'):
    out = evaluating.default_out_dir(saved_model=version_dir)
    assert out == os.path.join('eval', 'fashion_mnist_smoothed', '3')
  assert evaluating.default_out_dir(saved_model='3') == os.path.join(
      'eval', os.path.basename(os.getcwd()), '3'
  )
  assert evaluating.parse_sigmas(['0.1', '0.3']) == [0.1, 0.3]
  with pytest.raises(errors.UserError, match='takes numbers'):
    evaluating.parse_sigmas(['0.1', 'x'])
  with pytest.raises(errors.UserError, match='must be positive'):
    evaluating.parse_sigmas(['0.1', '-1'])
  evaluating.check_counts(10, 0, 10)
  for num_samples, num_reference in ((9, 0), (10, 5)):
    with pytest.raises(errors.UserError, match='a sample per split'):
      evaluating.check_counts(num_samples, num_reference, 10)
  with pytest.raises(errors.UserError, match='Pass exactly one of --workdir'):
    evaluating.evaluate(out_dir=str(tmp_path / 'eval'))
  assert not list(tmp_path.iterdir())
