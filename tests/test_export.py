"""SavedModel exports: every signature through saved_model_cli and a fresh TF-only process,
equal to the in-process model, per-row seeds, versioning, and a failed export; the exports of a
model with a condition (a class label): one more input per condition in every signature,
checked in the graph, recorded in the metadata and the warm-up requests, and taken by keyword
by the loaded model."""

import json
import logging
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import export
from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.configs import fashion_mnist
from tfsmooth.configs import rings
from tfsmooth.data import synthetic
from tfsmooth.models import base
from tfsmooth.models import interface
from tfsmooth.models import made

SEEDS = np.array([[0, 1], [0, 2], [7, 3]], np.int32)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, 'launch', 'export.py')
CLI = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')

# Runs in a fresh interpreter that imports TensorFlow only: calls every signature given inputs
# in <dir>/inputs.npz (keys '<signature>.<input>') and saves the outputs.
FRESH_PROCESS = r"""
import sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
inputs = np.load(sys.argv[2])
out = {}
for name in model.signatures:
  args = {k.split('.', 1)[1]: tf.constant(inputs[k]) for k in inputs.files
          if k.split('.', 1)[0] == name}
  if not args:
    continue
  for key, value in model.signatures[name](**args).items():
    out[f'{name}.{key}'] = value.numpy()
assert 'tfsmooth' not in sys.modules and 'tensorflow_probability' not in sys.modules
np.savez(sys.argv[3], **out)
"""


def _env():
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')


def _fresh_outputs(version_dir, inputs, tmp_path):
  np.savez(tmp_path / 'inputs.npz', **inputs)
  subprocess.run(
      [
          sys.executable,
          '-c',
          FRESH_PROCESS,
          version_dir,
          str(tmp_path / 'inputs.npz'),
          str(tmp_path / 'outputs.npz'),
      ],
      check=True,
      env=_env(),
      timeout=600,
  )
  return dict(np.load(tmp_path / 'outputs.npz'))


def _cli_run(version_dir, signature, inputs, tmp_path):
  """Outputs of `saved_model_cli run` on one signature, {output key: array}."""
  folder = tmp_path / f'cli_{signature}'
  os.makedirs(folder)
  for key, value in inputs.items():
    np.save(folder / f'{key}.npy', value)
  given = ';'.join(f'{key}={folder / key}.npy' for key in inputs)
  subprocess.run(
      [
          CLI,
          'run',
          '--dir',
          version_dir,
          '--tag_set',
          'serve',
          '--signature_def',
          signature,
          '--inputs',
          given,
          '--outdir',
          str(folder / 'out'),
      ],
      check=True,
      env=_env(),
      capture_output=True,
      timeout=600,
  )
  return {f[:-4]: np.load(folder / 'out' / f) for f in os.listdir(folder / 'out')}


def _method_names(version_dir):
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(version_dir, 'saved_model.pb'), 'rb') as f:
    proto.ParseFromString(f.read())
  return {
      k: v.method_name
      for k, v in proto.meta_graphs[0].signature_def.items()
      if not k.startswith('__')
  }  # __saved_model_init_op is not a serving signature


@pytest.fixture(scope='module')
def rings_export(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('rings_run'))
  config = rings.get_config()
  config.model.hidden_sizes = config.conditional_model.hidden_sizes = (8,)
  config.train.update(steps=4, jit_compile=False, log_every=2, eval_every=2, checkpoint_every=2)
  config.eval.update(iw_samples=8, validation_samples=2, num_plot_samples=200, density_iw_samples=2)
  experiment.Run.create(config, workdir).train()
  run = experiment.Run.load(workdir)
  export_dir = str(tmp_path_factory.mktemp('exports'))
  return run, _export(run, export_dir), export_dir


def _export(run, export_dir, iw_samples=None):
  metadata = run.export_metadata()
  return export.export(run.model, export_dir, iw_samples or run.config.eval.iw_samples, metadata)


def rings_inputs():
  x = synthetic.get_dataset('rings').sample(3, seed=11).astype(np.float32)
  return {
      'sample': {'seed': SEEDS},
      'log_prob': {'x': x, 'seed': SEEDS},
      'denoise': {'x_tilde': x, 'seed': SEEDS},
      'denoise_single_step': {'x_tilde': x},
  }


def rings_expected(model):
  inputs = rings_inputs()
  x = tf.constant(inputs['log_prob']['x'])
  drawn = tf.function(model.draw)(SEEDS)
  iw, elbo = tf.function(lambda x, s: model.likelihood(x, s, 8)[:2])(x, SEEDS)
  return {
      'sample.x': drawn['two_step'],
      'sample.x_tilde': drawn['smoothed'],
      'log_prob.log_prob': iw,
      'log_prob.elbo': elbo,
      'denoise.x': tf.function(model.denoise)(x, SEEDS)['two_step'],
      'denoise_single_step.x': tf.function(model.denoise_single_step)(x),
  }


def _assert_outputs_equal(outputs, expected, signatures):
  for key, value in expected.items():
    if key.split('.')[0] in signatures:
      np.testing.assert_allclose(outputs[key], np.asarray(value), rtol=1e-4, atol=1e-5, err_msg=key)


def test_rings_export_layout_metadata_and_method_names(rings_export):
  run, version_dir, export_dir = rings_export
  assert version_dir == os.path.join(export_dir, '1')
  assert set(_method_names(version_dir).values()) == {'tensorflow/serving/predict'}
  meta = export.read_metadata(version_dir)
  assert meta['sigma'] == 0.3 and meta['kernel'] == 'gaussian' and meta['iw_samples'] == 8
  assert meta['facts'] == run.model.facts() and meta['conditions'] == {}
  assert meta['step'] == run.step and meta['metrics']['nll_iw'] == run.read_metrics()['nll_iw']
  assert meta['weights'] == run.weights
  assert set(meta['signatures']) == {'sample', 'log_prob', 'denoise', 'denoise_single_step'}
  assert meta['signatures']['log_prob']['inputs'] == {'x': [None, 2], 'seed': [None, 2]}


def test_rings_signatures_in_a_fresh_tf_only_process(rings_export, tmp_path):
  run, version_dir, _ = rings_export
  inputs = {
      f'{name}.{key}': value
      for name, given in rings_inputs().items()
      for key, value in given.items()
  }
  inputs['serving_default.seed'] = SEEDS
  outputs = _fresh_outputs(version_dir, inputs, tmp_path)
  expected = rings_expected(run.model)
  _assert_outputs_equal(outputs, expected, rings_inputs())
  np.testing.assert_array_equal(outputs['serving_default.x'], outputs['sample.x'])


def test_rings_signatures_through_saved_model_cli(rings_export, tmp_path):
  run, version_dir, _ = rings_export
  expected = rings_expected(run.model)
  for signature, inputs in rings_inputs().items():
    outputs = _cli_run(version_dir, signature, inputs, tmp_path)
    _assert_outputs_equal(
        {f'{signature}.{k}': v for k, v in outputs.items()}, expected, [signature]
    )


def test_a_row_does_not_depend_on_the_rest_of_the_request(rings_export):
  _, version_dir, _ = rings_export
  model = tf.saved_model.load(version_dir)
  batch = model.signatures['sample'](seed=tf.constant(SEEDS))['x'].numpy()
  alone = model.signatures['sample'](seed=tf.constant(SEEDS[2:]))['x'].numpy()
  np.testing.assert_allclose(batch[2:], alone, rtol=1e-6)
  assert not np.allclose(batch[0], batch[1])
  x = tf.constant(rings_inputs()['log_prob']['x'])
  bound = model.signatures['log_prob'](x=x, seed=tf.constant(SEEDS))['log_prob'].numpy()
  bound_alone = model.signatures['log_prob'](x=x[1:2], seed=tf.constant(SEEDS[1:2]))
  np.testing.assert_allclose(bound[1:2], bound_alone['log_prob'].numpy(), rtol=1e-5)


def test_exported_log_prob_matches_the_in_process_bound(rings_export):
  run, version_dir, _ = rings_export
  model = tf.saved_model.load(version_dir)
  x = synthetic.get_dataset('rings').sample(200, seed=5).astype(np.float32)
  seeds = np.stack([np.full(200, 9), np.arange(200)], 1).astype(np.int32)
  exported = model.signatures['log_prob'](x=tf.constant(x), seed=tf.constant(seeds))
  iw = tf.function(lambda x, s: run.model.likelihood(x, s, 8).log_prob)(x, seeds)
  np.testing.assert_allclose(exported['log_prob'].numpy(), iw.numpy(), rtol=1e-4, atol=1e-4)
  assert np.all(exported['log_prob'].numpy() >= exported['elbo'].numpy() - 1e-5)
  with pytest.raises(tf.errors.InvalidArgumentError, match='input x contains NaN'):
    model.signatures['log_prob'](x=tf.constant([[np.nan, 0.0]]), seed=tf.constant(SEEDS[:1]))


def test_failed_export_leaves_earlier_versions_and_no_partial_directory(rings_export, monkeypatch):
  run, version_dir, export_dir = rings_export
  before = sorted(os.listdir(version_dir))
  real_save = tf.saved_model.save

  def save_then_fail(obj, path, signatures=None):
    real_save(obj, path, signatures=signatures)
    raise KeyboardInterrupt  # as if stopped while writing

  monkeypatch.setattr(tf.saved_model, 'save', save_then_fail)
  with pytest.raises(KeyboardInterrupt):
    _export(run, export_dir)
  monkeypatch.undo()
  assert sorted(os.listdir(export_dir)) == ['1']
  assert sorted(os.listdir(version_dir)) == before
  os.makedirs(os.path.join(export_dir, '.tmp-9-999999999'))  # left by a killed export
  assert _export(run, export_dir) == os.path.join(export_dir, '2')
  assert sorted(os.listdir(export_dir)) == ['1', '2']


def test_rings_export_checks_inputs_in_the_graph_and_carries_warmup_requests(rings_export):
  _, version_dir, _ = rings_export
  model = tf.saved_model.load(version_dir)
  seed = tf.constant(SEEDS[:1])
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'input x must have shape \[N, 2\]'):
    model.signatures['log_prob'](x=tf.zeros([1, 3]), seed=seed)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'input x must have shape \[N, 2\]'):
    model.signatures['log_prob'](x=tf.zeros([1, 2, 1]), seed=seed)  # a rank the spec cannot see
  with pytest.raises(tf.errors.InvalidArgumentError, match='input seed must have one row per'):
    model.signatures['log_prob'](x=tf.zeros([3, 2]), seed=seed)
  with pytest.raises(tf.errors.InvalidArgumentError, match=r'input seed must have shape \[N, 2\]'):
    model.signatures['sample'](seed=tf.zeros([2, 3], tf.int32))
  replayed = export.read_warmup(version_dir)
  assert sorted(name for name, _ in replayed) == sorted(model.signatures)
  for name, inputs in replayed:
    outputs = model.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
    assert {v.shape[0] for v in outputs.values()} == {1}


def test_export_stores_each_weight_once_and_restores_them(rings_export):
  run, version_dir, _ = rings_export
  prefix = os.path.join(version_dir, export.VARIABLES)
  keys = set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map()) - {
      '_CHECKPOINTABLE_OBJECT_GRAPH'
  }
  assert len(keys) == len(run.model.variables)
  rebuilt = experiment.build_model(run.config)
  rebuilt.build_variables()
  export.restore_weights(rebuilt, version_dir)
  for restored, trained in zip(rebuilt.variables, run.model.variables):
    np.testing.assert_array_equal(restored.numpy(), trained.numpy())
  other = experiment.settle(run.config)
  other.model.hidden_sizes = (4,)
  wrong = experiment.build_model(other)
  wrong.build_variables()
  with pytest.raises(errors.UserError, match='do not fit the model rebuilt'):
    export.restore_weights(wrong, version_dir)


def test_export_refuses_metrics_of_other_weights(rings_export, tmp_path):
  run, _, _ = rings_export
  metadata = run.export_metadata()
  other = 'ema' if run.weights == 'raw' else 'raw'
  metadata['metrics'] = dict(metadata['metrics'], weights=other)
  with pytest.raises(errors.UserError, match=f'measured on the {other} weights'):
    export.export(run.model, str(tmp_path / 'exports'), 8, metadata)
  assert not os.path.exists(tmp_path / 'exports')


def test_default_rings_pair_graph_is_small_and_its_export_quiet(tmp_path, caplog):
  model = experiment.build_model(experiment.settle(rings.get_config()))
  model.build_variables()
  caplog.set_level(logging.INFO, logger='absl')
  version_dir = export.export(model, str(tmp_path), 100)
  assert os.path.getsize(os.path.join(version_dir, 'saved_model.pb')) <= 1.5e6
  assert not [r for r in caplog.records if 'will be renamed' in r.getMessage()]


def _launch(*args, cwd):
  return subprocess.run(
      [sys.executable, LAUNCH, *args],
      cwd=cwd,
      env=dict(_env(), PYTHONPATH=REPO),
      capture_output=True,
      text=True,
      timeout=900,
      check=False,
  )


def test_launch_export_takes_a_workdir_or_a_saved_model(rings_export, tmp_path):
  run, version_dir, _ = rings_export
  for given in ([], [f'--workdir={run.workdir}', f'--saved_model={version_dir}']):
    done = _launch(*given, '--export_dir=out', cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert 'exports one model' in done.stderr and 'Traceback' not in done.stderr
  assert not os.path.exists(tmp_path / 'out' / '1')
  done = _launch(f'--saved_model={os.path.dirname(version_dir)}', '--export_dir=out', cwd=tmp_path)
  assert done.returncode == 2 and '--saved_model=' in done.stderr and 'Traceback' not in done.stderr


def test_launch_export_re_exports_an_export(rings_export, tmp_path):
  _, version_dir, _ = rings_export
  done = _launch(f'--saved_model={version_dir}', '--export_dir=again', cwd=tmp_path)
  assert done.returncode == 0, done.stderr
  old, new = export.read_metadata(version_dir), export.read_metadata(tmp_path / 'again' / '1')
  assert new['weights'] == old['weights'] and new['metrics'] == old['metrics']
  assert new['step'] == old['step'] and new['iw_samples'] == old['iw_samples']
  assert 'measured on these weights' in new['metrics_source']
  assert new['re_exported_from']['version'] == old['version']
  x = tf.constant(rings_inputs()['log_prob']['x'])
  answers = [
      tf.saved_model.load(d).signatures['log_prob'](x=x, seed=tf.constant(SEEDS))['log_prob']
      for d in (version_dir, str(tmp_path / 'again' / '1'))
  ]
  np.testing.assert_allclose(answers[0].numpy(), answers[1].numpy(), rtol=1e-6)


@pytest.fixture(scope='module')
def image_export(tmp_path_factory):
  """An untrained tiny Fashion-MNIST pair with weights moved off their initial values."""
  config = fashion_mnist.get_config('smoothed')
  for model in (config.model, config.conditional_model):
    model.update(nr_filters=4, nr_logistic_mix=2)
  run = experiment.Run(experiment.settle(config), str(tmp_path_factory.mktemp('image_run')))
  run.model = run.build_model()
  run.model.build_variables()
  rng = np.random.default_rng(0)
  for v in run.model.trainable_variables:
    v.assign(v + 0.05 * rng.standard_normal(v.shape).astype(np.float32))
  return run, export.export(run.model, str(tmp_path_factory.mktemp('image_exports')), 2)


def image_inputs():
  x = np.round(np.random.default_rng(1).uniform(-1, 1, (2, 28, 28, 1)) * 127.5) / 127.5
  x = x.astype(np.float32)
  seeds = SEEDS[:2]
  return {
      'sample': {'seed': seeds},
      'log_prob': {'x': x, 'seed': seeds},
      'denoise': {'x_tilde': x, 'seed': seeds},
      'denoise_single_step': {'x_tilde': x},
      'inpaint': {'x': x, 'num_known_rows': np.array([24, 20], np.int32), 'seed': seeds},
  }


def image_expected(model):
  inputs = image_inputs()
  x, seeds = tf.constant(inputs['log_prob']['x']), SEEDS[:2]
  drawn = tf.function(model.draw)(seeds)
  iw, elbo = tf.function(lambda x, s: model.likelihood(x, s, 2)[:2])(x, seeds)
  return {
      'sample.x': drawn['two_step'],
      'sample.x_tilde': drawn['smoothed'],
      'log_prob.log_prob': iw,
      'log_prob.elbo': elbo,
      'denoise.x': tf.function(model.denoise)(x, seeds)['two_step'],
      'denoise_single_step.x': tf.function(model.denoise_single_step)(x),
      'inpaint.x': tf.function(lambda x, s: model.inpaint(x, [24, 20], s))(x, seeds),
  }


@pytest.mark.slow  # ~2.5 min; tests/test_golden.py checks fresh PixelCNN++ exports' outputs
def test_image_signatures_in_a_fresh_process_and_saved_model_cli(image_export, tmp_path):
  run, version_dir = image_export
  assert set(_method_names(version_dir).values()) == {'tensorflow/serving/predict'}
  inputs = {
      f'{name}.{key}': value
      for name, given in image_inputs().items()
      for key, value in given.items()
  }
  outputs = _fresh_outputs(version_dir, inputs, tmp_path)
  expected = image_expected(run.model)
  _assert_outputs_equal(outputs, expected, image_inputs())
  for row, count in enumerate(image_inputs()['inpaint']['num_known_rows']):
    np.testing.assert_array_equal(
        outputs['inpaint.x'][row, :count], image_inputs()['inpaint']['x'][row, :count]
    )
  for signature in ('sample', 'inpaint'):
    cli = _cli_run(version_dir, signature, image_inputs()[signature], tmp_path)
    _assert_outputs_equal({f'{signature}.{k}': v for k, v in cli.items()}, expected, [signature])


def test_inpaint_refuses_more_known_rows_than_the_image_has(image_export):
  _, version_dir = image_export
  model = tf.saved_model.load(version_dir)
  inputs = image_inputs()['inpaint']
  with pytest.raises(tf.errors.InvalidArgumentError, match='<= the image height 28'):
    model.signatures['inpaint'](
        x=tf.constant(inputs['x']),
        num_known_rows=tf.constant([24, 29]),
        seed=tf.constant(inputs['seed']),
    )


def test_image_export_refuses_pixels_outside_the_data_range(image_export):
  _, version_dir = image_export
  meta = export.read_metadata(version_dir)
  assert meta['signatures']['inpaint']['ranges'] == {'x': [-1.0, 1.0], 'num_known_rows': [0, 28]}
  bound = export.noise_bound(kernels.SmoothingKernel(meta['kernel'], meta['sigma']))
  assert meta['signatures']['denoise']['ranges']['x_tilde'] == pytest.approx(
      [-1 - bound, 1 + bound]
  )
  model = tf.saved_model.load(version_dir)
  inputs = image_inputs()['inpaint']
  with pytest.raises(
      tf.errors.InvalidArgumentError, match=r'input x must hold values in \[-1, 1\]'
  ):
    model.signatures['inpaint'](
        x=tf.fill([2, 28, 28, 1], 5.0),
        num_known_rows=tf.constant(inputs['num_known_rows']),
        seed=tf.constant(inputs['seed']),
    )


def test_export_needs_a_restored_model(tmp_path):
  run = experiment.Run(experiment.settle(rings.get_config()), str(tmp_path))
  with pytest.raises(errors.UserError, match='Run.load'):
    export.export(run.model, str(tmp_path / 'exports'))


# A model with a condition, for exports of conditioned models: a tiny MADE shifted by a learned
# vector per class (test-only: tfsmooth's own class-conditional models are tested elsewhere).
LABELS = interface.Condition(
    'labels', 'label', tf.int32, 0, 2, 2, 'class 0 or 1, 2 for none', ('a', 'b', 'none')
)
SHIFTS = np.array([[2.0, 0.0], [-2.0, 1.0], [0.0, 0.0]], np.float32)


class LabelShiftedMADE(base.DensityModel):
  """p(x | label) = p_made(x - e_label), or p(x | x~, label) = p_made(x - e_label | x~): a MADE
  shifted by the learned vector e of the row's class."""

  conditions = {'labels': LABELS}

  def __init__(self, conditional=False):
    super().__init__((2,), conditional=conditional)
    self.made = made.MADE(2, (8,), 2, conditional=conditional)

  def build_variables(self):
    self.made.build_variables()
    self.shifts = self.add_weight(shape=(3, 2), initializer='zeros', name='label_shifts')
    super().build_variables()

  def distribution(self, conditioning=None, labels=None):
    shift = tfp.bijectors.Shift(tf.gather(self.shifts, labels))
    return tfp.distributions.TransformedDistribution(self.made.distribution(conditioning), shift)


def labelled_pair():
  keras.utils.set_random_seed(0)
  pair = smoothing.SmoothedModel(
      LabelShiftedMADE(), LabelShiftedMADE(conditional=True), kernels.SmoothingKernel()
  )
  pair.build_variables()
  rng = np.random.default_rng(0)
  for v in pair.trainable_variables:
    v.assign(0.3 * rng.standard_normal(v.shape).astype(np.float32))
  for stage in (pair.prior, pair.conditional_model):
    stage.shifts.assign(SHIFTS)
  return pair


def test_the_labelled_test_model_is_a_shifted_made():
  pair = labelled_pair()
  x = np.random.default_rng(2).normal(size=(3, 2)).astype(np.float32)
  labels = np.array([0, 1, 2], np.int32)
  np.testing.assert_allclose(
      pair.prior.log_prob(x, labels=labels), pair.prior.made.log_prob(x - SHIFTS[labels]), rtol=1e-6
  )
  drawn = pair.draw(SEEDS, ['smoothed'], labels=labels)['smoothed'].numpy()
  default = pair.draw(SEEDS, ['smoothed'])['smoothed'].numpy()
  np.testing.assert_allclose(drawn[2], default[2], rtol=1e-6)  # 2 is the default
  assert not np.allclose(drawn[:2], default[:2], atol=0.5)


# Runs in a fresh TensorFlow-only interpreter: calls the signatures with the inputs in argv[2]
# (keys '<signature>.<input>'), saves the outputs in argv[3], then sends the requests of argv[4]
# (JSON [signature, {input: [shape, dtype, fill]}]) and prints each one's error message.
CONDITIONED_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
inputs = np.load(sys.argv[2])
out = {}
for name in model.signatures:
  args = {k.split('.', 1)[1]: tf.constant(inputs[k]) for k in inputs.files
          if k.split('.', 1)[0] == name}
  if not args:
    continue
  for key, value in model.signatures[name](**args).items():
    out[f'{name}.{key}'] = value.numpy()
np.savez(sys.argv[3], **out)
messages = []
for signature, given in json.loads(sys.argv[4]):
  args = {k: tf.constant(np.full(shape, fill, dtype)) for k, (shape, dtype, fill) in given.items()}
  try:
    model.signatures[signature](**args)
    messages.append('answered')
  except tf.errors.InvalidArgumentError as e:
    messages.append(e.message)
assert 'tfsmooth' not in sys.modules and 'tensorflow_probability' not in sys.modules
print(json.dumps(messages))
"""
POINTS = [[3, 2], 'float32', 0.5]
ROW_SEEDS = [[3, 2], 'int32', 1]
BAD_LABELS = [  # requests with bad labels, and what the refusal must say
    (
        ['sample', {'seed': ROW_SEEDS, 'label': [[3], 'int32', 5]}],
        'input label must hold values in [0, 2] (class 0 or 1, 2 for none)',
    ),
    (
        ['log_prob', {'x': POINTS, 'seed': ROW_SEEDS, 'label': [[3], 'int32', -1]}],
        'input label must hold values in [0, 2]',
    ),
    (
        ['denoise', {'x_tilde': POINTS, 'seed': ROW_SEEDS, 'label': [[2], 'int32', 0]}],
        'input label must have one row per row of input x_tilde',
    ),
    (
        ['denoise_single_step', {'x_tilde': POINTS, 'label': [[3, 1], 'int32', 0]}],
        'input label must have shape [N]',
    ),
    (['sample', {'seed': ROW_SEEDS, 'label': [[3], 'int32', 1]}], 'answered'),
]


@pytest.fixture(scope='module')
def labelled_export(tmp_path_factory):
  pair = labelled_pair()
  return pair, export.export(pair, str(tmp_path_factory.mktemp('labelled')), 4)


def test_a_conditioned_export_takes_and_records_its_conditions(labelled_export, tmp_path):
  pair, version_dir = labelled_export
  meta = export.read_metadata(version_dir)
  assert meta['conditions'] == {'labels': LABELS.describe()}
  assert set(meta['signatures']) == {'sample', 'log_prob', 'denoise', 'denoise_single_step'}
  for described in meta['signatures'].values():
    assert described['inputs']['label'] == [None]
    assert described['ranges']['label'] == [0, 2]
  replayed = export.read_warmup(version_dir)
  assert sorted(name for name, _ in replayed) == sorted(meta['signatures']) + ['serving_default']
  assert all(inputs['label'].tolist() == [2] for _, inputs in replayed)

  x = np.random.default_rng(3).normal(size=(3, 2)).astype(np.float32)
  labels = np.array([1, 0, 2], np.int32)
  given = {
      'sample': {'seed': SEEDS},
      'log_prob': {'x': x, 'seed': SEEDS},
      'denoise': {'x_tilde': x, 'seed': SEEDS},
      'denoise_single_step': {'x_tilde': x},
  }
  np.savez(
      tmp_path / 'inputs.npz',
      **{f'{s}.{k}': v for s, inputs in given.items() for k, v in inputs.items()},
      **{f'{s}.label': labels for s in given},
  )
  done = subprocess.run(
      [
          sys.executable,
          '-c',
          CONDITIONED_PROCESS,
          version_dir,
          str(tmp_path / 'inputs.npz'),
          str(tmp_path / 'outputs.npz'),
          json.dumps([request for request, _ in BAD_LABELS]),
      ],
      env=_env(),
      capture_output=True,
      text=True,
      timeout=600,
      check=False,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  messages = json.loads(done.stdout.strip().splitlines()[-1])
  for (request, expected), message in zip(BAD_LABELS, messages):
    assert expected in message, (request, message)

  outputs = dict(np.load(tmp_path / 'outputs.npz'))
  drawn = pair.draw(SEEDS, labels=labels)
  bound = pair.likelihood(x, SEEDS, 4, labels=labels)
  denoised = pair.denoise(x, SEEDS, labels=labels)
  expected = {
      'sample.x': drawn['two_step'],
      'sample.x_tilde': drawn['smoothed'],
      'log_prob.log_prob': bound.log_prob,
      'log_prob.elbo': bound.elbo,
      'denoise.x': denoised['two_step'],
      'denoise_single_step.x': denoised['single_step'],
  }
  _assert_outputs_equal(outputs, expected, given)
  unlabelled = pair.draw(SEEDS, ['smoothed'])['smoothed'].numpy()
  assert not np.allclose(outputs['sample.x_tilde'][:2], unlabelled[:2], atol=0.5)


def test_a_loaded_conditioned_export_takes_its_conditions_by_keyword(labelled_export):
  pair, version_dir = labelled_export
  loaded = export.ExportedModel(version_dir)
  assert loaded.conditions == {'labels': LABELS}
  x = np.random.default_rng(4).normal(size=(3, 2)).astype(np.float32)
  labels = np.array([0, 2, 1], np.int32)
  for given in ({'labels': labels}, {}):
    expected, actual = pair.draw(SEEDS, **given), loaded.draw(SEEDS, **given)
    for name in pair.samplers:
      np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
  np.testing.assert_allclose(
      loaded.likelihood(x, SEEDS, 4, labels=labels).log_prob,
      pair.likelihood(x, SEEDS, 4, labels=labels).log_prob,
      rtol=1e-4,
      atol=1e-5,
  )
  denoised = loaded.denoise(x, SEEDS, labels=labels)
  for name, value in pair.denoise(x, SEEDS, labels=labels).items():
    np.testing.assert_allclose(denoised[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
  with pytest.raises(errors.UserError, match=r'labels holds values from 5 to 5, outside \[0, 2\]'):
    loaded.draw(SEEDS, labels=[5, 5, 5])
  with pytest.raises(errors.UserError, match='labels has 2 values but the input has 3 rows'):
    loaded.likelihood(x, SEEDS, 4, labels=[0, 1])
