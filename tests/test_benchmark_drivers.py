"""Every driver under benchmarks/ runs against today's code: each one, shrunk by its own flags
(a few training steps, tiny images, one repeat), runs as RESULTS.md runs it and writes its record
and plots. (The one-interface change broke benchmarks/denoising_1d.py, pixelcnn_speed.py and
sampling_speed.py silently: nothing ran them.) Drivers that take more than about a minute even
shrunk are marked slow (`pytest -m slow`). Each test runs its driver in a fresh process; run
this file alone and in one process (the machine has 2 cores)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from tfsmooth import experiment
from tfsmooth.configs import rings as rings_config
from tfsmooth.data import images as image_data
from tfsmooth.data import synthetic
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks
from tfsmooth.train import checkpoints
from tests import offline_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _drive(script, tmp_path, *flags):
  """The record a driver writes with `flags`, run as RESULTS.md runs it (from the root)."""
  results = tmp_path / 'results.json'
  done = subprocess.run(
      [
          sys.executable,
          os.path.join('benchmarks', script),
          f'--workdir={tmp_path / "runs"}',
          f'--results={results}',
          f'--plot_dir={tmp_path / "plots"}',
          '--steps=20',
          *flags,
      ],
      cwd=ROOT,
      env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2'),
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(results.read_text())


def test_denoising_1d_driver_writes_its_record(tmp_path):
  record = _drive(
      'denoising_1d.py', tmp_path, '--sigmas=0.3', '--conditional_mixtures=2', '--num_points=2000'
  )
  methods = record['sigmas']['0.3']['methods']
  assert {'single-step, learned p(x~)', 'p(x|x~), 2 logistics'} <= set(methods)
  for figures in methods.values():
    assert 0 <= figures['gap_fraction'] <= 1 and np.isfinite(figures['wasserstein'])
  # Closed-form anchors: exact posterior draws land on the data, the noisy input does not.
  assert (
      methods['exact posterior draw']['wasserstein']
      < 0.5 * methods['noisy input x~']['wasserstein']
  )
  assert sorted(os.listdir(tmp_path / 'plots')) == ['posterior_x0.png', 'sigma0.3_denoised.png']


@pytest.mark.slow  # 40 s: 8 tiny runs and their quadrature (suite budget, issue 23 item 8)
def test_kernel_study_driver_writes_its_record(tmp_path):
  record = _drive(
      'kernel_study.py',
      tmp_path,
      '--kernels=gaussian,uniform',
      '--sigmas=0.5',
      '--baseline_mixtures=2',
      '--seeds=0',
      '--seed_sigmas=',
      '--narrow_init=0',
  )
  runs = record['smoothed_runs']
  assert sorted(r['kernel'] for r in runs) == ['gaussian', 'uniform']
  for r in runs:  # the quadrature NLL of the pair is below its IW-100 bound (on NLL), untrained too
    assert r['nll_quadrature'] <= r['nll_iw'] + 0.01, r
  assert record['baselines'][0]['num_mixtures'] == 2 and np.isfinite(record['baselines'][0]['nll'])
  assert sorted(os.listdir(tmp_path / 'plots')) == ['density.png', 'elbo_vs_sigma.png']


# ---------------------------------------------------------------------------------------------
# Every other driver under benchmarks/, shrunk by its own flags. The speed drivers' timings are
# not checked (they are the machine's); what they record beside them is, against the records
# RESULTS.md cites where one exists (parameter counts do not depend on the image size).


def _run(script, *flags, timeout=900):
  """Runs `python benchmarks/<script> <flags>` from the repository root, as RESULTS.md does."""
  done = subprocess.run(
      [sys.executable, os.path.join('benchmarks', script), *flags],
      cwd=ROOT,
      env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2'),
      capture_output=True,
      text=True,
      timeout=timeout,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return done


def _snippet(code, *args):
  """Runs `python -c code args` in benchmarks/ (a driver imported in a fresh process: importing
  it defines its absl flags) and returns the JSON its last line prints."""
  done = subprocess.run(
      [sys.executable, '-c', code, *args],
      cwd=os.path.join(ROOT, 'benchmarks'),
      env=dict(os.environ, PYTHONPATH=ROOT),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert done.returncode == 0, done.stderr[-2000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def _record(path):
  with open(path) as f:
    return json.load(f)


RECORDS = os.path.join(ROOT, 'benchmarks', 'results')


@pytest.mark.slow  # 40 s: two models sampled naively (suite budget, issue 23 item 8)
def test_pixelcnn_speed_driver_draws_with_the_chosen_sampler(tmp_path):
  out = tmp_path / 'speed.json'
  _run(
      'pixelcnn_speed.py',
      '--models=tfp_pixelcnn,smoothed_pair',
      '--image_size=8',
      '--batch_size=2',
      '--steps=1',
      '--num_samples=2',
      '--sampler=naive',
      f'--output={out}',
  )
  record, recorded = _record(out), _record(os.path.join(RECORDS, 'pixelcnn_speed.json'))
  assert record['settings']['sampler'] == 'naive'
  assert record['settings']['image_shape'] == [8, 8, 1]
  for name in ('tfp_pixelcnn', 'smoothed_pair'):
    assert record[name]['num_params'] == recorded[name]['num_params']
    assert record[name]['step_seconds'] > 0 and record[name]['sample_seconds'] > 0
  assert record['tfp_pixelcnn']['sample_ratio_to_tfp'] == 1.0


@pytest.mark.slow  # 40-75 s: TFP's sampler in a second fresh process
def test_sampling_speed_driver_times_cached_naive_and_tfp(tmp_path):
  out = tmp_path / 'sampling.json'
  _run(
      'sampling_speed.py',
      '--shapes=8x8x1',
      '--models=cpu',
      '--batch_size=2',
      '--extrapolate=',
      '--xla=false',
      f'--output={out}',
  )
  row = _record(out)['8x8x1']['cpu']
  recorded = _record(os.path.join(RECORDS, 'sampling_speed.json'))['28x28x1']['cpu']
  assert row['num_params'] == recorded['num_params']
  assert row['naive_extrapolated_from_pixels'] is None
  assert row['tfp_extrapolated_from_pixels'] is None
  for key in ('cached_seconds', 'naive_seconds', 'tfp_seconds'):
    assert row[key] > 0
  assert row['speedup_vs_naive'] == row['naive_seconds'] / row['cached_seconds']


@pytest.mark.slow  # XLA compiles the cached sampler (about a minute)
def test_sampling_speed_driver_extrapolates_and_compiles(tmp_path):
  out = tmp_path / 'sampling.json'
  _run(
      'sampling_speed.py',
      '--shapes=8x8x1',
      '--models=cpu',
      '--batch_size=2',
      '--extrapolate=cpu',
      '--pixels=1',
      f'--output={out}',
  )
  row = _record(out)['8x8x1']['cpu']
  assert row['naive_extrapolated_from_pixels'] == 1 and row['tfp_extrapolated_from_pixels'] == 1
  assert row['cached_xla_seconds'] > 0 and 'speedup_vs_tfp_xla' in row


def test_eval_throughput_driver_measures_both_strategies(tmp_path):
  out = tmp_path / 'eval.json'
  _run(
      'eval_throughput.py',
      '--points=40',
      '--samples=20',
      '--iw_samples=2',
      '--batch_size=10',
      '--repeats=1',
      f'--output={out}',
  )
  record = _record(out)
  recorded = _record(os.path.join(RECORDS, 'eval_throughput.json'))
  assert record['settings']['num_params'] == recorded['settings']['num_params']
  assert set(record['median']) == {'1 device', '2 logical CPUs'}
  for key in ('bounds_points_per_s', 'samples_per_s'):
    ratio = record['median']['2 logical CPUs'][key] / record['median']['1 device'][key]
    assert record['ratio_2_over_1'][key] == pytest.approx(ratio)


@pytest.mark.slow  # 25 s: a training per value (suite budget, issue 23 item 8)
def test_steps_per_loop_driver_trains_each_value(tmp_path):
  out = tmp_path / 'loops.json'
  _run(
      'steps_per_loop.py',
      '--steps=20',
      '--loops=1,10',
      '--repeats=1',
      '--batch_size=64',
      f'--output={out}',
  )
  record = _record(out)
  assert record['1']['ratio'] == 1.0 and record['10']['median'] > 0
  assert record['settings']['batch_size'] == 64


@pytest.mark.slow  # 80 s: each model in its own fresh process
def test_train_throughput_driver_runs_both_models(tmp_path):
  out = tmp_path / 'throughput.json'
  _run(
      'train_throughput.py',
      '--batch_size=2',
      '--filters=4',
      '--resnets=1',
      '--mixtures=2',
      '--steps=1',
      '--warmup=1',
      '--modes=no_xla',
      f'--output={out}',
  )
  record = _record(out)
  ours, tfp = record['ours_no_xla'], record['tfp_no_xla']
  assert record['ratio']['no_xla'] == pytest.approx(
      ours['examples_per_sec'] / tfp['examples_per_sec']
  )
  assert ours['num_params'] > 0 and tfp['num_params'] > 0


@pytest.mark.slow  # TFP's XLA step recompiles on every call, and the profiler runs both models
def test_train_throughput_driver_xla_and_profile(tmp_path):
  small = ['--batch_size=2', '--filters=4', '--resnets=1', '--mixtures=2']
  _run(
      'train_throughput.py',
      *small,
      '--steps=1',
      '--warmup=1',
      '--modes=xla',
      f'--output={tmp_path / "xla.json"}',
  )
  assert _record(tmp_path / 'xla.json')['ratio']['xla'] > 0
  _run('train_throughput.py', *small, '--profile', f'--output={tmp_path / "profile.json"}')
  profile = _record(tmp_path / 'profile.json')
  for model in ('tfp', 'ours'):  # the 15 costliest op types: [seconds per step, share]
    total = profile[model]['op_seconds_per_step']
    by_op = list(profile[model]['by_op'].values())
    assert 0 < len(by_op) <= 15 and sum(share for _, share in by_op) <= 1 + 1e-9
    assert [share for _, share in by_op] == pytest.approx([s / total for s, _ in by_op])
  assert profile['op_seconds_ratio'] == pytest.approx(
      profile['tfp']['op_seconds_per_step'] / profile['ours']['op_seconds_per_step']
  )


# table1.py's runs, shrunk, are the finished runs that decompose.py and ema_vs_raw.py read.
TINY_RUN = {
    'train.steps': 20,
    'train.steps_per_loop': 10,
    'train.log_every': 10,
    'train.eval_every': 20,
    'train.checkpoint_every': 20,
    'eval.iw_samples': 2,
    'eval.validation_samples': 2,
    'eval.num_plot_samples': 100,
    'eval.density_iw_samples': 2,
}


@pytest.fixture(scope='module')
def table1_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('table1')
  _run(
      'table1.py',
      '--experiment=table1',
      '--datasets=rings',
      f'--workdir={root / "runs"}',
      f'--out={root / "out"}',
      f'--overrides={json.dumps(TINY_RUN)}',
  )
  return root


@pytest.mark.slow  # with decompose and ema_vs_raw on its runs: 55 s (suite budget)
def test_table1_driver_writes_its_record_table_and_samples(table1_runs):
  record = _record(table1_runs / 'out' / 'table1.json')
  recorded = _record(os.path.join(RECORDS, 'table1.json'))
  assert [(r['variant'], r['mixtures']) for r in record] == [
      ('baseline', 3),
      ('baseline', 6),
      ('smoothed', 3),
  ]
  for row in record:  # the same networks as the recorded 100k-step runs
    same = [
        r
        for r in recorded
        if (r['dataset'], r['variant'], r['mixtures']) == ('rings', row['variant'], row['mixtures'])
    ]
    assert row['num_params'] == same[0]['num_params'] and row['steps'] == 20
  assert (table1_runs / 'out' / 'table1.md').read_text().count('| rings |') == 3
  assert (table1_runs / 'out' / 'table1' / 'rings_samples.png').is_file()


@pytest.mark.slow  # on table1's runs (above)
def test_decompose_driver_splits_the_elbo_on_a_table1_run(table1_runs, tmp_path):
  out = tmp_path / 'decomposition.json'
  _run('decompose.py', f'--workdir={table1_runs / "runs" / "rings_smoothed3"}', f'--output={out}')
  terms = _record(out)
  limits = _record(os.path.join(RECORDS, 'test_split_true_nll.json'))['values']['rings']
  # The true NLL of the test points is the recorded limit (the data density, in closed form);
  # the excess splits into the two stages' excesses exactly (log q cancels).
  assert terms['true_nll'] == pytest.approx(limits['test_true_nll'], abs=1e-4)
  assert terms['nll_elbo'] - terms['true_nll'] == pytest.approx(
      (terms['prior_nll'] - terms['true_prior_nll'])
      + (terms['conditional_nll'] - terms['true_conditional_nll']),
      abs=1e-4,
  )


@pytest.mark.slow  # on table1's runs (above)
def test_ema_vs_raw_driver_scores_both_weight_sets(table1_runs, tmp_path):
  out = tmp_path / 'ema.json'
  _run(
      'ema_vs_raw.py',
      f'--output={out}',
      str(table1_runs / 'runs' / 'rings_smoothed3'),
      str(table1_runs / 'runs' / 'rings_baseline3'),
  )
  smoothed, baseline = _record(out)
  limits = _record(os.path.join(RECORDS, 'test_split_true_nll.json'))['values']['rings']
  assert smoothed['test_true_nll'] == pytest.approx(limits['test_true_nll'], abs=1e-4)
  assert smoothed['ema_iw_gap'] == pytest.approx(smoothed['ema_iw'] - smoothed['test_true_nll'])
  assert {'raw_iw', 'raw_elbo'} <= set(smoothed) and 'raw_exact' in baseline


@pytest.mark.slow  # two exports and four fresh TensorFlow processes
def test_export_latency_driver_records_median_loads(tmp_path):
  out = tmp_path / 'latency.json'
  _run(
      'export_latency.py',
      '--models=saved_models/rings/2',
      f'--before_checkout={ROOT}',  # this checkout on both sides: the sizes must agree
      '--points=4',
      '--repeats=3',
      f'--out={out}',
  )
  entry = _record(out)['models']['saved_models/rings/2']
  for side in ('before', 'after'):
    loads = sorted(p['load_seconds'] for p in entry[side]['each_process'])
    assert entry[side]['load_seconds'] == loads[1]  # the median of 3, not the warm-up's load
  assert entry['after']['warmup_process_load_seconds'] > 0
  assert entry['after']['saved_model_pb_bytes'] == entry['before']['saved_model_pb_bytes']


@pytest.mark.slow  # the main job twice, from a worktree of the base commit and from this tree
def test_main_job_wall_time_driver_times_both_trees(tmp_path):
  out = tmp_path / 'wall.json'
  train_flags = ','.join(f'--config.{k}={v}' for k, v in TINY_RUN.items())
  _run(
      'main_job_wall_time.py',
      '--base=HEAD',
      '--repeats=1',
      f'--train_flags={train_flags}',
      f'--output={out}',
  )
  record = _record(out)
  for runs in record['seconds'].values():
    (run,) = runs
    assert run['total'] == pytest.approx(run['training'] + run['test_and_plots'])


@offline_data.needs_idx
@pytest.mark.slow  # 21 s (suite budget)
def test_fid_floor_driver_scores_training_images(tmp_path):
  out = tmp_path / 'floor.json'
  _run(
      'fashion_mnist_fid_floor.py',
      '--num_samples=40',
      '--blur=0.5',
      '--noise=0.1',
      '--num_neighbour_rows=2',
      f'--grid_dir={tmp_path / "grids"}',
      f'--output={out}',
  )
  rows = _record(out)['rows']
  assert set(rows) == {'train_40', 'blur_0.5', 'noise_0.1'}
  # Blurring the same images moves them away from the test split's features.
  assert rows['blur_0.5']['fid'] > rows['train_40']['fid']
  assert sorted(os.listdir(tmp_path / 'grids')) == ['nearest_features.png', 'nearest_pixel.png']


def test_fashion_mnist_table2_markdown_reprints_its_record():
  """The table the driver prints from a record is the one it recorded (RESULTS.md's Table 2);
  a KID over one block (at most 1024 samples) has no standard error: '-', not a crash. In a
  fresh process: importing the driver defines its absl flags."""
  code = (
      'import json, sys\n'
      'import fashion_mnist_table2 as t\n'
      'record = json.load(open(sys.argv[1]))\n'
      'same = t.markdown(record) == record["markdown"]\n'
      'record["rows"][0]["kid_std"] = None\n'
      'print(json.dumps([same, "1.8275 ± - |" in t.markdown(record)]))\n'
  )
  assert _snippet(code, os.path.join(RECORDS, 'fashion_mnist_eval.json')) == [True, True]


@pytest.mark.slow  # two tiny trainings, two evaluations of PixelCNN++ samples
@offline_data.needs_idx
def test_fashion_mnist_table2_driver_collects_two_evaluations(tmp_path):
  evals = {}
  for variant in ('baseline', 'smoothed'):
    config = offline_data.tiny_config(variant, train=32, test=8, filters=4)
    workdir = str(tmp_path / variant)
    experiment.Run.create(config, workdir).train()
    evals[variant] = str(tmp_path / f'{variant}_eval')
    done = subprocess.run(
        [
            sys.executable,
            os.path.join('launch', 'evaluate.py'),
            f'--workdir={workdir}',
            f'--out_dir={evals[variant]}',
            '--num_samples=4',
            '--batch_size=2',
            '--num_reference=16',
            '--bpd_examples=2',
            '--num_neighbours=2',
            '--splits=2',
        ]
        + (['--single_step_sigmas=0.1'] if variant == 'baseline' else []),
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2'),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
  out = tmp_path / 'table2.json'
  _run(
      'fashion_mnist_table2.py',
      f'--baseline={evals["baseline"]}',
      f'--smoothed={evals["smoothed"]}',
      f'--output={out}',
  )
  record = _record(out)
  assert [r['sampler'] for r in record['rows']] == [
      'samples',
      'smoothed',
      'single_step',
      'two_step',
  ]
  assert record['two_step_fid_reduction'] == pytest.approx(
      1 - record['rows'][3]['fid'] / record['rows'][0]['fid']
  )
  assert [a['sigma'] for a in record['single_step_ablation']] == [0.1]
  assert os.listdir(tmp_path / 'table2')


def _noise_conditional_eval(directory, workdir, fids, sampling):
  """A noise-conditional pair's eval.json (and its plot files) as launch/evaluate.py --sigma
  writes it (sample_eval.evaluate), scored at sigma 0.5 with the raw weights of a run that
  keeps EMA averages: its training record is then not in eval.json (recorded_metrics {})."""
  directory.mkdir(parents=True)
  samplers = {}
  for name, fid in fids.items():
    plots = [f'grid_{name}.png', f'nearest_{name}_c_pixel.png', f'nearest_{name}_c_features.png']
    for plot in plots:
      (directory / plot).write_bytes(name.encode())
    samplers[name] = dict(
        fid=fid,
        kid=fid / 20,
        kid_std=0.03,
        inception_score=5.0,
        inception_score_std=0.1,
        reference_inception_score=8.3,
        feature_network='fashion_mnist_classifier',
        num_samples=5000,
        num_reference=10000,
        splits=10,
        noise_level=None if name == 'annealed' else 0.5,
        plots=plots,
    )
  evaluation = dict(
      source=dict(workdir=str(workdir), step=3000, checkpoint='best/ckpt-3000', weights='raw'),
      dataset='fashion_mnist',
      smoothed=True,
      feature_network=dict(name='fashion_mnist_classifier', test_accuracy=0.9089),
      recorded_metrics={},
      noise_level=dict(sigma=0.5, given='--sigma', trained_range=[0.05, 1.0]),
      bpd=dict(
          bpd_elbo=3.05, bpd_iw=3.03, iw_samples=4, num_examples=1000, kind='upper', sigma=0.5
      ),
      sampling=dict(sampling, seed=0, batch_size=100, file='eval_samples.npz'),
      samplers=samplers,
  )
  (directory / 'eval.json').write_text(json.dumps(evaluation))


def test_fashion_mnist_table2_adds_the_noise_conditional_pair(tmp_path):
  """--noise_conditional with --recorded, as the next session runs it: the baseline's and the
  fixed pair's rows come from the recorded table (unchanged, and the record stays as it was),
  the noise-conditional pair's four rows follow with its bounds at sigma 0.5, its params from
  the run's metrics.json and its ladder from config.json; the FID ratios to the recorded
  two-step FID and the 0.8 goal are those computed here by hand. One sampling.seconds for all
  samplers: the cost per image is recorded as not separable, no figure made up."""
  recorded = os.path.join(RECORDS, 'fashion_mnist_eval.json')
  with open(recorded, 'rb') as f:
    before = f.read()
  old = json.loads(before)
  run = tmp_path / 'run'
  run.mkdir()
  (run / 'metrics.json').write_text(
      json.dumps(dict(weights='ema', num_params=1_180_000, steps=3000, train_seconds=4500.0))
  )
  ladder = dict(annealed_levels=10, annealed_steps=5, annealed_step_size=0.5)
  (run / 'config.json').write_text(
      json.dumps(dict(smoothing=dict(ladder, annealed_end='two_step')))
  )
  fids = dict(smoothed=80.0, single_step=20.0, two_step=19.0, annealed=16.0)
  _noise_conditional_eval(
      tmp_path / 'nc_eval', run, fids, dict(reused=0, drawn=5000, seconds=2520.0)
  )
  out = tmp_path / 'nc_table.json'
  done = _run(
      'fashion_mnist_table2.py',
      f'--recorded={recorded}',
      f'--noise_conditional={tmp_path / "nc_eval"}',
      f'--output={out}',
      timeout=300,
  )
  with open(recorded, 'rb') as f:
    assert f.read() == before
  record = _record(out)
  assert (
      record['rows'][:4] == old['rows']
      and record['models']['smoothed'] == old['models']['smoothed']
  )
  nc_rows = record['rows'][4:]
  assert [(r['model'], r['sampler'], r['fid']) for r in nc_rows] == [
      ('noise_conditional', name, fid) for name, fid in fids.items()
  ]
  fixed = old['rows'][3]['fid']  # the fixed pair's two-step, 21.55
  nc = record['noise_conditional']
  assert nc['annealed_fid_ratio'] == pytest.approx(16.0 / fixed)
  assert nc['two_step_fid_ratio'] == pytest.approx(19.0 / fixed)
  assert nc['target_met'] is (16.0 <= 0.8 * fixed)
  assert nc['params_ratio'] == pytest.approx(1_180_000 / old['models']['smoothed']['num_params'])
  model = record['models']['noise_conditional']
  assert (model['num_params'], model['steps'], model['bpd']['sigma']) == (1_180_000, 3000, 0.5)
  cost = nc['cost']
  assert not cost['separable'] and cost['annealed_seconds_per_image'] is None
  assert 'not separable' in cost['why'] and cost['work']['score_evaluations'] == 50
  lines = record['markdown'].splitlines()
  assert lines[:6] + lines[-1:] == old['markdown'].splitlines()
  assert lines[9].startswith('| noise-conditional pair: annealed 10 levels x 5 Langevin steps')
  assert '| 1,180,000 | 3000 | <= 3.030 (IW-4), ELBO 3.050 at sigma=0.5 | **16.00** |' in lines[9]
  assert '(goal at most 0.8x: met)' in done.stdout
  assert sorted(os.listdir(tmp_path / 'nc_table')) == sorted(
      f'noise_conditional_{p.name}' for p in (tmp_path / 'nc_eval').iterdir() if p.suffix == '.png'
  )


def test_fashion_mnist_table2_noise_conditional_cost_and_refusals(tmp_path):
  """Where eval.json times the annealed draw apart from the one two-step shares with x~ and
  the single step (sampling.seconds_by_draw), the cost per image is each draw's seconds over
  the images drawn; timed together, or nothing drawn (all reused), no figure. A goal missed
  says 'not met'. The driver refuses to write over the record it reads (the record stays as
  it was) and an eval.json without noise levels."""
  run = tmp_path / 'run'
  run.mkdir()
  fids = dict(smoothed=80.0, single_step=20.0, two_step=19.0, annealed=18.0)
  draws = {'annealed': 2100.0, 'smoothed,single_step,two_step': 420.0}
  _noise_conditional_eval(
      tmp_path / 'nc_eval',
      run,
      fids,
      dict(reused=1000, drawn=4000, seconds=2520.0, seconds_by_draw=draws),
  )
  code = (
      'import json, sys\n'
      'import fashion_mnist_table2 as t\n'
      'evaluation = json.load(open(sys.argv[1]))\n'
      'apart = t.noise_conditional_cost(evaluation, None)\n'
      'evaluation["sampling"]["seconds_by_draw"] = {"annealed,two_step": 1.0}\n'
      'together = t.noise_conditional_cost(evaluation, None)\n'
      'evaluation["sampling"].update(drawn=0, seconds_by_draw=%r)\n'
      'reused = t.noise_conditional_cost(evaluation, None)\n'
      'record = json.load(open(sys.argv[2]))\n'
      't._add_noise_conditional(record, sys.argv[3], sys.argv[4])\n'
      'print(json.dumps([apart, together, reused, record["noise_conditional"]]))\n'
  ) % draws
  figures = tmp_path / 'figures'
  figures.mkdir()
  apart, together, reused, nc = _snippet(
      code,
      str(tmp_path / 'nc_eval' / 'eval.json'),
      os.path.join(RECORDS, 'fashion_mnist_eval.json'),
      str(tmp_path / 'nc_eval'),
      str(figures),
  )
  assert apart['separable'] and apart['two_step_draw'] == ['smoothed', 'single_step', 'two_step']
  assert apart['annealed_seconds_per_image'] == pytest.approx(2100.0 / 4000)
  assert apart['two_step_seconds_per_image'] == pytest.approx(420.0 / 4000)
  assert apart['annealed_over_two_step'] == pytest.approx(5.0)
  for cost in (together, reused):
    assert not cost['separable'] and cost['annealed_over_two_step'] is None
  assert 'in one draw' in together['why'] and 'reused' in reused['why']
  assert nc['annealed_fid_ratio'] == pytest.approx(18.0 / 21.55366076518738)
  assert not nc['target_met'] and '0.8x: not met' in nc['summary'][0]
  assert nc['params_ratio'] is None and nc['cost']['work'] is None  # the run keeps no records

  copy = tmp_path / 'copy.json'
  copy.write_bytes(open(os.path.join(RECORDS, 'fashion_mnist_eval.json'), 'rb').read())
  before = copy.read_bytes()
  fixed_level = _record(tmp_path / 'nc_eval' / 'eval.json')
  del fixed_level['noise_level']  # a fixed pair's evaluation
  (tmp_path / 'fixed_eval').mkdir()
  (tmp_path / 'fixed_eval' / 'eval.json').write_text(json.dumps(fixed_level))
  for flags, says in (
      ([f'--recorded={copy}', f'--output={copy}'], 'would rewrite the record it reads'),
      (
          [
              f'--recorded={copy}',
              f'--noise_conditional={tmp_path / "fixed_eval"}',
              f'--output={tmp_path / "o.json"}',
          ],
          "is no noise-conditional pair's evaluation",
      ),
  ):
    refused = subprocess.run(
        [sys.executable, os.path.join('benchmarks', 'fashion_mnist_table2.py'), *flags],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2'),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and says in refused.stderr, refused.stderr[-2000:]
  assert copy.read_bytes() == before


@pytest.mark.slow  # 40-70 s: PNGs written, checked and decoded three ways, a PixelCNN++ step
def test_image_pipeline_driver_compares_pipelines_with_a_step(tmp_path):
  out = tmp_path / 'pipeline.json'
  _run(
      'image_pipeline.py',
      '--num_images=40',
      '--source_size=12',
      '--image_size=8',
      '--batch_size=4',
      '--filters=4',
      '--resnets=1',
      '--steps=2',
      '--batches=3',
      '--warmup=1',
      f'--output={out}',
  )
  record = _record(out)
  step = record['consumption']['images_per_sec']
  for case in ('folder_cached', 'folder_streamed', 'array'):
    assert record[case]['images'] == 40
    assert record[case]['ratio'] == pytest.approx(record[case]['pipeline_images_per_sec'] / step)


@pytest.mark.slow  # three tiny trainings, sweeps and samplers: 2 min of CPU, 2-5 min here
def test_noise_conditional_driver_compares_one_model_with_fixed_pairs(tmp_path):
  n = 400
  record = _drive(
      'noise_conditional.py',
      tmp_path,
      f'--overrides={json.dumps(TINY_RUN)}',
      '--datasets=rings,modes6_1d',
      '--fixed_sigmas=0.3',
      f'--num_samples={n}',
      '--sweep_points=2',
      '--grid_step_sizes=0.5',
      '--grid_ladders=2x1',
      '--grid_samples=200',
  )
  rings, modes6 = record['datasets']['rings'], record['datasets']['modes6_1d']
  same = rings['same_budget']
  # The networks of the full-size configs (parameter counts do not depend on the steps).
  for variant, row in (
      ('noise_conditional', same['noise_conditional']),
      ('smoothed', same['fixed']),
  ):
    model = experiment.build_model(experiment.settle(rings_config.get_config(variant)))
    model.build_variables()
    assert row['num_params'] == model.num_params and row['steps'] == 20
  assert same['equal_steps_x_batch'] and same['sigma'] == 0.3
  cost = rings['training_cost']
  assert cost['fixed_train_seconds_total'] == pytest.approx(same['fixed']['train_seconds'])
  check = rings['bounds_vs_sigma']['check']  # a figure computed here is metrics.json's kind
  assert check['nll_iw_recomputed_from_the_best_checkpoint'] == pytest.approx(
      check['nll_iw_in_metrics'], abs=1e-4
  )

  # Energy distances against a second implementation: scipy's pairwise distances in 2-D, and
  # in 1-D scipy's energy_distance (the square root of the same figure, from the CDFs).
  samples = rings['samples']
  dataset = synthetic.DATASETS['rings']
  truth = dataset.sample(n, samples['truth_seed']).astype(np.float64)
  other = dataset.sample(n, samples['floor_seed'])
  shifted = (other + np.float32([0.1, 0.0])).astype(np.float64)

  def energy(x, y):
    mean = lambda a, b: distance.cdist(a, b).mean()  # noqa: E731
    return 2 * mean(x, y) - mean(x, x) - mean(y, y)

  assert samples['energy_floor'] == pytest.approx(energy(other.astype(np.float64), truth))
  assert samples['energy_shifted_by_0.1'] == pytest.approx(energy(shifted, truth))
  assert 0 < samples['energy_floor'] < samples['energy_shifted_by_0.1']
  modes = synthetic.DATASETS['modes6_1d']
  u, v = (modes.sample(n, modes6['samples'][k])[:, 0] for k in ('floor_seed', 'truth_seed'))
  assert modes6['samples']['energy_floor'] == pytest.approx(stats.energy_distance(u, v) ** 2)
  # The radii's exact law (a Rice mixture) lets fresh true draws pass their KS test.
  assert samples['ks_of'] == 'radius |x|' and samples['ks_floor_pvalue'] > 0.01
  judged = {**samples['fixed_pair_sigma0.3'], **samples['noise_conditional_sigma0.3']}
  assert len(samples['fixed_pair_sigma0.3']) == 3 and 'annealed' in judged
  for figures in judged.values():
    assert figures['energy_distance'] > 0 and 0 <= figures['ks'] <= 1

  for data in (rings, modes6):  # the annealed setting is the validation grid's best
    grid = data['annealing_grid']
    best = min(grid['grid'], key=lambda row: row['energy_distance'])
    assert grid['split'] == 'validation' and len(grid['grid']) == 2
    assert grid['chosen'] == {k: best[k] for k in ('levels', 'steps', 'step_size', 'end')}
    annealed = data['samples'][f'noise_conditional_sigma{data["reference_sigma"]:g}']['annealed']
    assert annealed['annealing'] == grid['chosen']
  # modes6_1d: the kernel study's Gaussian pairs beside the one model, at every one of their
  # sigmas (all within the model's range [0.1, 2]).
  study = _record(os.path.join(RECORDS, 'kernel_study.json'))
  gaussian = [r for r in study['smoothed_seed_means'] if r['kernel'] == 'gaussian']
  assert [r['nll_elbo'] for r in modes6['kernel_study']['gaussian_seed_means']] == [
      r['nll_elbo'] for r in gaussian
  ]
  swept = [r['sigma'] for r in modes6['bounds_vs_sigma']['noise_conditional']]
  assert all(any(np.isclose(r['sigma'], s) for s in swept) for r in gaussian)
  assert sorted(os.listdir(tmp_path / 'plots')) == [
      'modes6_1d_bounds_vs_sigma.png',
      'modes6_1d_samples.png',
      'rings_bounds_vs_sigma.png',
      'rings_samples.png',
  ]


@pytest.mark.slow  # 60 s here beside a benchmark: three PixelCNN++ samplers traced at 28 x 28
@offline_data.needs_idx
def test_annealed_grid_images_driver_chooses_on_the_validation_split(tmp_path):
  """benchmarks/annealed_grid_images.py on an untrained tiny noise-conditional PixelCNN++ pair
  (28 x 28: the shipped classifier's size): two settings, four samples each, the peer two-step.
  The reference is the validation split whole (8 images: neither its bpd cap of 4 nor the 6
  test images); its KID, recomputed here in numpy from the classifier's features of the stored
  samples and of the validation images read from the IDX files, is the recorded one; the
  chosen setting is the recorded grid's lowest FID."""
  config = offline_data.tiny_config('noise_conditional', train=32, validation=8, test=6, filters=4)
  config.data.validation_examples = 4  # the cap of the bpd validation: not the reference's
  workdir = tmp_path / 'run'
  run = experiment.Run.create(config, str(workdir))
  checkpoints.model_checkpoint(run.model).save(str(workdir / 'best' / 'ckpt'))
  run.lock.release()
  out = tmp_path / 'grid.json'
  _run(
      'annealed_grid_images.py',
      f'--workdir={workdir}',
      '--num_samples=4',
      '--batch_size=2',
      '--splits=2',
      '--grid_step_sizes=0.05,0.1',
      '--grid_ladders=2x1',
      '--grid_ends=two_step',
      '--grid_extra=',
      '--png_samples=2',
      f'--output={out}',
      timeout=600,
  )
  record = _record(out)
  assert record['reference']['split'] == 'validation' and record['reference']['num_reference'] == 8
  assert record['weights'] == 'raw' and record['num_samples'] == 4
  assert record['command'].startswith('python benchmarks/annealed_grid_images.py --workdir=')
  grid = record['grid']
  assert [row['setting'] for row in grid] == ['0.05/2x1/two_step', '0.1/2x1/two_step']
  for row in grid + [record['peer'], record['floor']]:
    assert (row['num_samples'], row['num_reference']) == (4, 8)
    assert np.isfinite([row['fid'], row['kid'], row['inception_score']]).all()
  for row in grid + [record['peer']]:
    assert row['sampling']['drawn'] == 4 and row['sampling']['timed_images'] == 2
  best = min(grid, key=lambda row: row['fid'])
  assert record['chosen'] == {k: best[k] for k in ('levels', 'steps', 'step_size', 'end')}
  assert record['chosen_setting'] == best['setting'] and record['chosen_fid'] == best['fid']
  configured = record['configured']  # the config's ladder, not in this grid
  assert (configured['setting'], configured['in_grid']) == ('0.5/10x5/two_step', False)
  assert (record['peer']['sampler'], record['peer']['sigma']) == ('two_step', 0.5)

  # KID, unbiased MMD^2 with k(a, b) = (a.b / F + 1)^3: one block of 4 samples and 8 images.
  network = feature_networks.load_classifier(feature_networks.CLASSIFIER_DIR)
  validation = classifier.load_labelled('train[32:40]', source='idx')[0]
  with np.load(os.path.join(ROOT, best['sampling']['file'])) as stored:
    samples = image_data.to_unit_range(stored['annealed']).numpy()
  x = network(samples)['features'].numpy().astype(np.float64)
  y = network(validation)['features'].numpy().astype(np.float64)
  kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
  within = lambda k: (k.sum() - np.trace(k)) / (len(k) * (len(k) - 1))  # noqa: E731
  kid = within(kernel(x, x)) + within(kernel(y, y)) - 2 * kernel(x, y).mean()
  assert best['kid'] == pytest.approx(kid, rel=1e-4, abs=1e-7)
  assert out.with_suffix('.png').is_file()


def _suite_time(tmp_path, *flags):
  """(finished process, record) of benchmarks/suite_time.py with `flags`, run from the root."""
  out = tmp_path / 'suite_time.json'
  done = subprocess.run(
      [sys.executable, os.path.join('benchmarks', 'suite_time.py'), f'--output={out}', *flags],
      cwd=ROOT,
      env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2'),
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert out.exists(), done.stderr[-3000:]
  return done, _record(out)


def _ci_pytest_command():
  """The pytest line of .ci/run, which the README says is its test command."""
  with open(os.path.join(ROOT, '.ci', 'run')) as f:
    return [line.strip() for line in f if 'pytest' in line][-1]


def test_suite_time_driver_runs_the_readme_command_in_a_fresh_clone(tmp_path):
  # Two fast tests of HEAD's tests/test_docs.py (no TensorFlow: the conftest left out), one
  # deselected; -n 0 after the README's -n 2 runs them in this process.
  selection = (
      'tests/test_docs.py::test_shell_reading '
      'tests/test_docs.py::test_value_and_group_mistakes_are_found'
  )
  args = f'-n 0 --noconftest -p no:cacheprovider {selection} -k shell_reading'
  done, record = _suite_time(tmp_path, '--durations=3', f'--pytest_args={args}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert record['readme_command'] == _ci_pytest_command()
  assert record['command_run'] == f'CI=true {_ci_pytest_command()} --durations=3 {args}'
  head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True)
  assert record['commit'] == head.stdout.strip()
  assert record['checkout_changes'] == []  # a clean clone, whatever this working tree holds
  assert (record['outcome'], record['exit_status']) == ('passed', 0)
  assert {k: v for k, v in record['counts'].items() if v} == {
      'passed': 1,
      'deselected': 1,
  }
  assert record['wall_seconds'] >= record['pytest_seconds'] > 0
  assert record['user_cpu_seconds'] > 0 and len(record['load_average_before']) == 3
  assert record['fashion_mnist_idx']['present'] == os.path.isdir(
      offline_data.images.FASHION_MNIST_IDX_DIR
  )


def test_suite_time_driver_records_failures_in_a_checkout_as_it_is(tmp_path):
  # A checkout of its own: the README, a package that shadows the installed tfsmooth, and an
  # uncommitted test file whose outcomes are known.
  checkout = tmp_path / 'checkout'
  (checkout / 'tfsmooth').mkdir(parents=True)
  (checkout / 'tfsmooth' / '__init__.py').write_text('')
  (checkout / 'README.md').write_text(open(os.path.join(ROOT, 'README.md')).read())
  git = ['git', '-c', 'user.name=t', '-c', 'user.email=t@t', '-C', str(checkout)]
  subprocess.run([*git, 'init', '--quiet'], check=True)
  subprocess.run([*git, 'add', 'README.md', 'tfsmooth'], check=True)
  subprocess.run([*git, 'commit', '--quiet', '-m', 'probe'], check=True)
  (checkout / 'test_probe.py').write_text(
      'import time\n'
      'import pytest\n'
      'def test_passes(): pass\n'
      'def test_sleeps(): time.sleep(0.3)\n'
      'def test_fails(): assert 1 == 2\n'
      'def test_skips(): pytest.skip("known")\n'
      'def test_deselected(): pass\n'
  )
  args = '-n 0 -p no:cacheprovider test_probe.py -k "not deselected"'
  done, record = _suite_time(tmp_path, f'--checkout={checkout}', f'--pytest_args={args}')
  assert done.returncode == 1
  assert (record['outcome'], record['exit_status']) == ('failed', 1)
  assert {k: v for k, v in record['counts'].items() if v} == {
      'passed': 2,
      'failed': 1,
      'skipped': 1,
      'deselected': 1,
  }
  assert record['checkout_changes'] == ['?? test_probe.py']
  assert record['readme_command'] == _ci_pytest_command()
  slowest = record['slowest'][0]
  assert slowest['test'] == 'test_probe.py::test_sleeps' and slowest['seconds'] >= 0.3
  # A test id that names nothing fails the run too, with no tests run.
  args = '-n 0 -p no:cacheprovider test_probe.py::test_missing'
  done, record = _suite_time(tmp_path, f'--checkout={checkout}', f'--pytest_args={args}')
  assert done.returncode == 1 and record['exit_status'] == 4 and record['outcome'] == 'failed'
  assert not any(record['counts'].values())


def test_every_driver_is_run_by_a_test_here():
  """A driver added under benchmarks/ needs a test in this file that runs it shrunk."""
  with open(__file__) as f:
    source = f.read()
  drivers = sorted(
      name
      for name in os.listdir(os.path.join(ROOT, 'benchmarks'))
      if name.endswith('.py') and name != 'common.py'
  )
  assert [d for d in drivers if f"'{d}'" not in source] == []
