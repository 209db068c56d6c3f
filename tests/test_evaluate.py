"""launch/evaluate.py and tfsmooth/programs/sample_eval.py on untrained tiny Fashion-MNIST
PixelCNN++ runs, scored with the shipped classifier."""

import json
import os
import subprocess
import sys

import pytest

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import export
from tfsmooth.programs import sample_eval
from tfsmooth.train import checkpoints
from tests import offline_data

needs_idx = offline_data.needs_idx
BINARY = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'launch', 'evaluate.py')
TINY = dict(
    num_samples=4, batch_size=2, num_reference=16, bpd_examples=2, num_neighbours=2, splits=2
)
SCORES = (
    'fid',
    'kid',
    'kid_std',
    'inception_score',
    'inception_score_std',
    'feature_network',
    'num_samples',
    'num_reference',
    'plots',
)


def _workdir(tmp_path_factory, variant):
  """An untrained tiny run with its weights saved as the best checkpoint."""
  config = offline_data.tiny_config(variant, train=32, test=16, filters=4)
  workdir = str(tmp_path_factory.mktemp(variant))
  run = experiment.Run.create(config, workdir)
  model = run.build_model()
  model.build_variables()
  checkpoints.model_checkpoint(model).save(os.path.join(workdir, 'best', 'ckpt'))
  return workdir


@pytest.fixture(scope='module')
def network():
  return sample_eval.load_network('classifier', dataset='fashion_mnist')


@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
  return _workdir(tmp_path_factory, 'baseline')


def _read(out_dir):
  with open(os.path.join(out_dir, sample_eval.EVAL_FILE)) as f:
    return json.load(f)


def _figures(result):
  return {
      name: {k: v for k, v in entry.items() if k != 'plots'}
      for name, entry in result['samplers'].items()
  }


@needs_idx
def test_baseline_eval_with_c6_entries_and_reuse_of_stored_samples(baseline, network, tmp_path):
  out_dir = str(tmp_path / 'eval')
  source = sample_eval.open_source(workdir=baseline)
  sample_eval.evaluate(source, network, out_dir, single_step_sigmas=(0.1, 0.3), **TINY)
  result = _read(out_dir)
  # A model without labels or noise levels reports what it always did, and nothing more.
  assert set(result) == {
      'source',
      'dataset',
      'smoothed',
      'feature_network',
      'recorded_metrics',
      'bpd',
      'sampling',
      'samplers',
  }
  assert set(result['bpd']) == {'bpd', 'num_examples', 'kind'}
  sampling = result['sampling']
  assert set(sampling) - {'seconds_by_draw', 'timed_images'} == {
      'reused',
      'drawn',
      'seconds',
      'seed',
      'batch_size',
      'file',
  }
  if 'seconds_by_draw' in sampling:  # batches after the first, each draw timed
    assert list(sampling['seconds_by_draw']) == ['samples']  # a plain model: one draw
    assert sampling['timed_images'] == sampling['drawn'] - sampling['batch_size']
  assert not {'by_class', 'class_accuracy', 'noise_level'} & set(result['samplers']['samples'])
  assert result['bpd']['kind'] == 'exact' and result['bpd']['bpd'] > 0
  assert result['bpd']['num_examples'] == 2 and result['source']['step'] == 1
  assert result['feature_network']['name'] == 'fashion_mnist_classifier'
  assert set(result['samplers']) == {
      'samples',
      'samples_single_step_0.1',
      'samples_single_step_0.3',
  }
  assert result['samplers']['samples_single_step_0.3']['sigma'] == 0.3
  for entry in result['samplers'].values():
    assert set(SCORES) <= set(entry) and entry['num_samples'] == 4
    assert entry['feature_network'] == 'fashion_mnist_classifier'
    assert entry['num_reference'] == 16
    for figure in entry['plots']:
      assert os.path.exists(os.path.join(out_dir, figure))
  assert result['sampling']['drawn'] == 4 and result['sampling']['reused'] == 0
  grid = (tmp_path / 'eval' / 'grid_samples.png').read_bytes()

  def no_sampling(*args):
    raise AssertionError(f'resampled: {args}')

  source.model.draw = no_sampling
  lines = []
  sample_eval.evaluate(source, network, out_dir, log=lines.append, **TINY)
  again = _read(out_dir)
  assert _figures(again)['samples'] == _figures(result)['samples']
  assert again['bpd'] == result['bpd']
  assert again['sampling']['drawn'] == 0 and again['sampling']['reused'] == 4
  assert any(line.startswith('Reusing 4 stored samples') for line in lines)
  assert (tmp_path / 'eval' / 'grid_samples.png').read_bytes() == grid


def test_flag_mistakes_get_one_clear_error(tmp_path):
  with pytest.raises(errors.UserError, match='not a version directory'):
    sample_eval.open_source(saved_model=str(tmp_path))
  with pytest.raises(errors.UserError, match='--inception_path'):
    sample_eval.load_network('inception')
  with pytest.raises(errors.UserError, match='trained on fashion_mnist'):
    sample_eval.load_network('classifier', dataset='cifar10')


@pytest.mark.slow  # four fresh processes that import TensorFlow
def test_binary_reports_flag_mistakes_as_one_paragraph(tmp_path):
  for flags, start in (
      (['--workdir=a', '--saved_model=b'], 'Error: Pass exactly one'),
      ([], 'Error: Pass exactly one'),
      (['--workdir=a', '--single_step_sigmas=0.1,-1'], 'Error: --single_step_sigmas must be'),
      ([f'--saved_model={tmp_path}'], f'Error: {tmp_path} is not a version directory'),
  ):
    done = subprocess.run(
        [sys.executable, BINARY, *flags], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and done.stderr.strip().startswith(start)
    assert 'Traceback' not in done.stderr


# Slow: sampling the 28 x 28 pair (x~, then x | x~) takes about 60 s of CPU.
@pytest.mark.slow
@needs_idx
def test_smoothed_eval_scores_three_samplers_and_both_bounds(tmp_path_factory, network, tmp_path):
  workdir = _workdir(tmp_path_factory, 'smoothed')
  sample_eval.evaluate(sample_eval.open_source(workdir=workdir), network, str(tmp_path), **TINY)
  result = _read(str(tmp_path))
  assert set(result['samplers']) == {'smoothed', 'single_step', 'two_step'}
  bpd = result['bpd']
  assert bpd['iw_samples'] == 2 and 0 < bpd['bpd_iw'] <= bpd['bpd_elbo'] + 1e-6
  for entry in result['samplers'].values():
    assert set(SCORES) <= set(entry)
  with pytest.raises(errors.UserError, match='App. C.6'):
    sample_eval.evaluate(
        sample_eval.open_source(workdir=workdir),
        network,
        str(tmp_path),
        single_step_sigmas=(0.1,),
        **TINY,
    )


@needs_idx  # not slow: the baseline fixture is shared; export and eval take about 25 s of CPU
def test_saved_model_input_scores_its_signatures(baseline, network, tmp_path):
  run = experiment.Run.load(baseline)
  version_dir = export.export(run.model, str(tmp_path / 'export'), 1, run.export_metadata())
  source = sample_eval.open_source(saved_model=version_dir)
  sample_eval.evaluate(source, network, str(tmp_path / 'eval'), **TINY)
  result = _read(str(tmp_path / 'eval'))
  assert result['source']['saved_model'] == os.path.abspath(version_dir)
  assert set(result['samplers']) == {'samples'} and result['bpd']['bpd'] > 0
  assert set(SCORES) <= set(result['samplers']['samples'])
  run_bpd = sample_eval.bpd(sample_eval.RunSource(baseline), source.task.split('test')[:2], 1)
  run_bpd = run_bpd['bpd']
  assert result['bpd']['bpd'] == pytest.approx(run_bpd, rel=1e-5)
