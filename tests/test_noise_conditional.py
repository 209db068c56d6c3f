"""One pair for every noise level: p(x~ | sigma) and p(x | x~, sigma), checked against things
computed another way.

The annealed walk given the true score of a 1-D mixture (closed form at every level) lands on
the smoothed density at sigma_min (a KS test), so the sampler is checked with no training; the
model's score is the finite difference of its own log-density at the row's level; at one fixed
level a noise-conditional pair trains to within a stated tolerance of the fixed pair (the
embedding's weights change the path, so not exactly); per-row levels keep rows independent;
levels outside the trained range, non-positive or one per batch are refused in one paragraph.
"""

import keras
import numpy as np
import pytest
from scipy import stats
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth.models import context
from tfsmooth.models import interface
from tfsmooth.models import made

MEANS = np.array([-5.0, -3.0, -1.0, 1.0, 3.0, 5.0])  # modes6_1d
SCALE = 0.1


def _true_score(x, level):
  """grad log p(x~ | level) of modes6_1d smoothed at `level` (a mixture of N(c, s^2 + level^2))."""
  variance = SCALE**2 + level**2
  weights = tf.nn.softmax(-0.5 * tf.square(x - MEANS) / variance, axis=-1)
  return tf.reduce_sum(weights * (MEANS - x), axis=-1, keepdims=True) / variance


def _smoothed_cdf(x, level):
  return np.mean([stats.norm.cdf(x, m, np.hypot(SCALE, level)) for m in MEANS], axis=0)


def test_annealed_walk_with_the_true_score_reaches_the_smoothed_density():
  """From exact draws at sigma_max = 2 down to sigma_min = 0.1 in 50 score evaluations (the
  default cap): the walk's end passes a KS test against the closed-form p(x~ | 0.1), while its
  start (the distribution at sigma_max) fails it."""
  rng = np.random.default_rng(0)
  n, low, high = 4000, 0.1, 2.0
  plan = smoothing.Annealing(levels=10, steps=5, step_size=0.5)
  start = MEANS[rng.integers(6, size=n)] + np.hypot(SCALE, high) * rng.standard_normal(n)
  noise = tf.constant(rng.standard_normal((n, plan.levels * plan.steps, 1)), tf.float32)
  x = smoothing.anneal(tf.constant(start[:, None], tf.float32), _true_score, noise, plan, low, high)
  assert stats.kstest(x.numpy()[:, 0], lambda v: _smoothed_cdf(v, low)).pvalue > 0.01
  assert stats.kstest(start, lambda v: _smoothed_cdf(v, low)).pvalue < 1e-6
  assert plan.score_evaluations == 50


def _pair(levels=None, kernel='gaussian', hidden=(16,)):
  conditions = {} if levels is None else {'sigma': levels}
  sigma_range = None if levels is None else (levels.low, levels.high)
  keras.utils.set_random_seed(3)
  pair = smoothing.SmoothedModel(
      made.MADE(2, hidden, 2, conditions=conditions, condition_dim=8),
      made.MADE(2, hidden, 2, conditional=True, conditions=conditions, condition_dim=8),
      kernels.SmoothingKernel(kernel, 0.3, sigma_range=sigma_range),
      smoothing.Annealing(levels=3, steps=2),
  )
  pair.build_variables()
  return pair


@pytest.fixture(scope='module')
def pair():
  return _pair(context.noise_levels(0.3, 0.05, 1.0))


def test_score_is_the_finite_difference_of_the_log_density_at_the_rows_level(pair):
  x = tf.constant([[0.4, -1.2], [2.0, 0.5], [-0.7, 0.1]], tf.float64)
  levels = tf.constant([0.05, 0.3, 1.0])
  grad = smoothing.score(pair.prior, tf.cast(x, tf.float32), sigma=levels).numpy()
  h = 1e-3
  for d in range(2):
    step = np.zeros((1, 2))
    step[0, d] = h
    up = pair.prior.log_prob(tf.cast(x + step, tf.float32), sigma=levels).numpy()
    down = pair.prior.log_prob(tf.cast(x - step, tf.float32), sigma=levels).numpy()
    np.testing.assert_allclose(grad[:, d], (up - down) / (2 * h), rtol=2e-2, atol=2e-2)
  # The level matters: the same points score differently at another level.
  other = smoothing.score(pair.prior, tf.cast(x, tf.float32), sigma=levels[::-1]).numpy()
  assert not np.allclose(grad, other)


def test_levels_per_row_keep_rows_independent(pair):
  rows = seeds.rows(0, 'samples', 0, 3)
  levels = tf.constant([0.05, 0.3, 1.0])
  drawn = pair.draw(rows, sigma=levels)
  assert set(drawn) == {'smoothed', 'single_step', 'two_step', 'annealed'}
  for name, x in drawn.items():
    alone = pair.draw(rows[1:2], [name], sigma=levels[1:2])[name]
    np.testing.assert_allclose(alone[0], x[1], rtol=1e-4, atol=1e-5, err_msg=name)
  x = drawn['two_step']
  record = pair.likelihood(x, rows, 4, sigma=levels)
  alone = pair.likelihood(x[2:], rows[2:], 4, sigma=levels[2:])
  np.testing.assert_allclose(alone.log_prob, record.log_prob[2:], rtol=1e-5)
  # Smoothing at the row's level: the noise of a row at level s has scale s.
  many = tf.zeros([4000, 2])
  noisy = pair.smooth(many, seeds.rows(1, 'smooth_data', 0, 4000), sigma=tf.fill([4000], 0.7))
  assert float(tf.math.reduce_std(noisy)) == pytest.approx(0.7, rel=0.05)


def test_bad_levels_are_one_paragraph(pair):
  rows = seeds.rows(0, 'samples', 0, 2)
  with pytest.raises(errors.UserError, match=r'sigma holds values from .* outside \[0.05, 1'):
    pair.draw(rows, sigma=[0.3, 2.0])
  with pytest.raises(errors.UserError, match=r'outside \[0.05, 1'):
    pair.draw(rows, sigma=[0.0, 0.3])
  with pytest.raises(errors.UserError, match=r'one value per row, shape \[N\]'):
    pair.draw(rows, sigma=0.3)
  with pytest.raises(errors.UserError, match='sigma has 3 values but the input has 2 rows'):
    pair.draw(rows, sigma=[0.3, 0.3, 0.3])
  fixed = _pair()
  with pytest.raises(errors.UserError, match='trained without conditioning inputs'):
    fixed.draw(rows, sigma=[0.3, 0.3])
  with pytest.raises(errors.UserError, match='sigma_min < sigma_max'):
    context.noise_levels(0.3, 0.5, 1.0)


def test_a_laplace_pair_has_no_score_steps():
  laplace = _pair(context.noise_levels(0.3, 0.05, 1.0), kernel='laplace')
  assert laplace.samplers == ('smoothed', 'two_step')
  with pytest.raises(errors.UserError, match="no sampler 'annealed'"):
    laplace.draw(seeds.rows(0, 'samples', 0, 2), ['annealed'])
  with pytest.raises(errors.UserError, match='derived for Gaussian smoothing'):
    laplace.denoise_single_step(tf.zeros([1, 2]))


def test_at_one_fixed_level_it_trains_like_the_fixed_pair():
  """Both pairs see the same x~ (the ladder law of one level draws every example at 0.3, and
  the kernel's per-row draws equal its fixed-level ones for the same seed); after the same
  fit, their held-out IW bounds at 0.3 agree within 0.1 nats (the noise-conditional pair's
  extra embedding weights change the path: not exactly), and both beat their start."""
  points = np.random.default_rng(0).normal(size=(3000, 2)).astype(np.float32) * [1.5, 0.5]
  held_out, rows = points[:500], seeds.rows(0, 'test', 0, 500)
  bounds = {}
  for name, levels in (
      ('fixed', None),
      ('noise_conditional', context.noise_levels(0.3, 0.05, 1.0, law='ladder', ladder=(0.3,))),
  ):
    model = _pair(levels, hidden=(32,))
    start = float(tf.reduce_mean(model.likelihood(held_out, rows, 16).log_prob))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), seed=0)
    model.fit(points[500:], batch_size=100, epochs=6, verbose=0, shuffle=False)
    bounds[name] = float(tf.reduce_mean(model.likelihood(held_out, rows, 16).log_prob))
    assert bounds[name] > start + 0.3
  assert bounds['noise_conditional'] == pytest.approx(bounds['fixed'], abs=0.1)


FRESH = r"""
import json
import sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
signatures = loaded.signatures
seed = tf.constant([[0, 1], [0, 2], [5, 3]])
sigma = tf.constant([0.05, 0.3, 1.0])
out = {
    'names': sorted(signatures),
    'x_tilde': signatures['sample'](seed=seed, sigma=sigma)['x_tilde'].numpy().tolist(),
    'annealed': signatures['sample_annealed'](seed=seed)['x'].numpy().tolist(),
    'inputs': {
        name: sorted(fn.structured_input_signature[1]) for name, fn in signatures.items()
    },
    'bound': signatures['log_prob'](
        x=tf.zeros([3, 2]), seed=seed, sigma=sigma)['log_prob'].numpy().tolist(),
}
refusals = []
for bad in ([0.0, 0.3, 0.3], [0.3, 0.3, 5.0], [0.3, 0.3]):
  try:
    signatures['sample'](seed=seed, sigma=tf.constant(bad))
  except tf.errors.InvalidArgumentError as e:
    refusals.append(next((l for l in e.message.splitlines() if 'input ' in l), e.message))
out['refusals'] = refusals
assert 'tfsmooth' not in sys.modules
print(json.dumps(out))
"""


def test_signatures_take_sigma_in_a_fresh_tensorflow_process(pair, tmp_path):
  """Every signature takes sigma [N] (one per row, checked in the graph naming sigma) but the
  annealed sampler's own, sample_annealed, which sets its own levels and takes only the seed
  (an input that did nothing would mislead a TF Serving user); outputs equal the model's."""
  import json
  import subprocess
  import sys

  from tfsmooth import export

  version = export.export(pair, str(tmp_path / 'exports'), iw_samples=4)
  metadata = export.read_metadata(version)
  assert metadata['conditions']['sigma']['range'] == [0.05, 1.0]
  assert 'sample_annealed' in metadata['signatures']
  done = subprocess.run(
      [sys.executable, '-c', FRESH, version], capture_output=True, text=True, timeout=600
  )
  assert done.returncode == 0, done.stderr[-2000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  assert {'sample', 'sample_annealed', 'log_prob', 'denoise', 'denoise_single_step'} <= set(
      out['names']
  )
  assert out['inputs']['sample_annealed'] == ['seed']
  for name in ('sample', 'denoise', 'denoise_single_step', 'log_prob'):
    assert 'sigma' in out['inputs'][name], (name, out['inputs'][name])
  assert metadata['signatures']['sample_annealed']['inputs'] == {'seed': [None, 2]}
  assert 'sigma input' not in metadata['signatures']['sample_annealed']['returns']
  seed = tf.constant([[0, 1], [0, 2], [5, 3]])
  sigma = tf.constant([0.05, 0.3, 1.0])
  drawn = pair.draw(seed, ['smoothed', 'annealed'], sigma=sigma)
  np.testing.assert_allclose(out['x_tilde'], drawn['smoothed'], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out['annealed'], drawn['annealed'], rtol=1e-4, atol=1e-4)
  # In Python too the annealed sampler needs no sigma, and ignores one given.
  alone = pair.draw(seed, ['annealed'])['annealed']
  np.testing.assert_allclose(alone, drawn['annealed'], rtol=1e-5, atol=1e-6)
  bound = pair.likelihood(tf.zeros([3, 2]), seed, 4, sigma=sigma).log_prob
  np.testing.assert_allclose(out['bound'], bound, rtol=1e-4)
  assert len(out['refusals']) == 3
  assert all('input sigma' in message for message in out['refusals']), out['refusals']


def test_a_labelled_noise_conditional_pair_anneals_with_its_labels_only():
  """With labels and levels, the annealed sampler reads the labels and not sigma: the model
  says so (`sampler_conditions`), its own signature takes seed and label (every other one
  sigma too), and that signature draws what the model draws for those labels."""
  from tfsmooth.export import signatures as signatures_lib

  conditions = {
      context.LABELS: context.labels(3),
      context.SIGMA: context.noise_levels(0.3, 0.05, 1.0),
  }
  keras.utils.set_random_seed(4)
  labelled = smoothing.SmoothedModel(
      made.MADE(2, (8,), 2, conditions=conditions, condition_dim=8),
      made.MADE(2, (8,), 2, conditional=True, conditions=conditions, condition_dim=8),
      kernels.SmoothingKernel('gaussian', 0.3, sigma_range=(0.05, 1.0)),
      smoothing.Annealing(levels=2, steps=1),
  )
  labelled.build_variables()
  assert interface.sampler_conditions(labelled, 'annealed') == (context.LABELS,)
  assert interface.sampler_conditions(labelled, 'two_step') == (context.LABELS, context.SIGMA)
  traced = signatures_lib.Servable(labelled, 2).serving_signatures
  takes = {  # traced, not loaded: the inputs are the specs' names
      name: sorted(spec.name for spec in tf.nest.flatten(fn.structured_input_signature))
      for name, fn in traced.items()
  }
  assert takes['sample_annealed'] == ['label', 'seed']
  assert takes['sample'] == ['label', 'seed', 'sigma']
  rows = seeds.rows(0, 'samples', 0, 3)
  label = tf.constant([0, 2, 3])  # 3: the null class
  drawn = traced['sample_annealed'](seed=rows, label=label)['x']
  expected = labelled.draw(rows, ['annealed'], labels=label)['annealed']
  np.testing.assert_allclose(drawn, expected, rtol=1e-4, atol=1e-5)
  other = labelled.draw(rows, ['annealed'], labels=tf.constant([1, 0, 2]))['annealed']
  assert not np.allclose(other, expected)  # the labels matter


def test_a_standardized_pair_answers_which_conditions_its_samplers_read(pair):
  """Standardized (x = shift + scale z around the pair, as points runs train) passes the
  question on, so its export's sample_annealed takes no sigma either."""
  from tfsmooth import standardized
  from tfsmooth.export import signatures as signatures_lib

  wrapped = standardized.Standardized(pair, shift=[1.0, -2.0], scale=[2.0, 0.5])
  assert interface.sampler_conditions(wrapped, 'annealed') == ()
  assert interface.sampler_conditions(wrapped, 'two_step') == (context.SIGMA,)
  traced = signatures_lib.Servable(wrapped, 2).serving_signatures
  specs = tf.nest.flatten(traced['sample_annealed'].structured_input_signature)
  assert [spec.name for spec in specs] == ['seed']


@pytest.mark.parametrize(
    'dataset, record, chosen_at',
    [
        ('rings', 'noise_conditional.json', ('datasets', 'rings', 'annealing_grid', 'chosen')),
        (
            'modes6_1d',
            'noise_conditional.json',
            ('datasets', 'modes6_1d', 'annealing_grid', 'chosen'),
        ),
        (
            'olympics',
            'noise_conditional_olympics.json',
            ('datasets', 'olympics', 'annealing_grid', 'chosen'),
        ),
        ('fashion_mnist', 'fashion_mnist_annealed_grid.json', ('chosen',)),
    ],
)
def test_configs_anneal_as_their_validation_grid_chose(dataset, record, chosen_at):
  """Each config's annealed defaults are the setting its recorded validation grid chose
  (benchmarks/noise_conditional.py for points, benchmarks/annealed_grid_images.py for
  Fashion-MNIST), so a config edit or a rerun of the grid shows here."""
  import functools
  import importlib
  import json
  import pathlib

  path = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks' / 'results' / record
  chosen = functools.reduce(lambda d, k: d[k], chosen_at, json.loads(path.read_text()))
  config = importlib.import_module(f'tfsmooth.configs.{dataset}').get_config('noise_conditional')
  configured = {key: config.smoothing[f'annealed_{key}'] for key in chosen}
  assert configured == chosen
