"""TFP's shape (issue 23, item 4), each checked against a computation done another way.

* `pair.joint_distribution()` is a `tfd.JointDistributionNamed` over {'x_tilde', 'x'}: its
  log_prob is log p(x~) + log p(x | x~) from the two stages directly (and, for the handmade
  1-D pair of tests/test_bounds_1d.py, from the closed-form densities); `sample` draws x~ from
  p(x~) and then x from p(x | x~) for that x~, with the seeds TFP's JointDistribution hands each
  part (rebuilt here from tfp.random), and its x - x~ and x follow the closed forms.
* The marginal bounds stay `likelihood`'s, with the kernel q(x~ | x) as proposal: they equal
  the ELBO and IW estimates made from the joint's log_prob at the same kernel draws, IW >= ELBO
  per row, and both lie below the joint's log-marginal integrated by quadrature, which is the
  closed-form log p(x). (ELBO <= IW <= log p against the true log-density, and the IW bound's
  tightening with K, are tests/test_bounds_1d.py's.)
* `Standardized` of a plain model is a `tfd.TransformedDistribution` by x = m + s z: log p(x) =
  log p_z((x - m) / s) - sum_d log s_d, and its draws are m + s times the inner model's for the
  same seeds; `StandardizedPair`'s p(x~), joint, bounds, smoothing and draws likewise.
"""

import functools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests import test_bounds_1d as bounds_1d
from tests.distributed import tiny_models
from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth import standardized
from tfsmooth.data import synthetic
from tfsmooth.models import made
from tfsmooth.models import realnvp

tfd = tfp.distributions

SHIFT = np.array([10.0, -3.0], np.float32)
SCALE = np.array([2.0, 0.25], np.float32)
LOG_DET = float(np.sum(np.log(SCALE)))  # sum_d log s_d = log 0.5


def _realnvp_pair():
  return smoothing.SmoothedModel(
      realnvp.RealNVP(2, num_couplings=2, hidden_sizes=(8,)),
      realnvp.RealNVP(2, num_couplings=2, hidden_sizes=(8,), conditional=True),
      kernels.SmoothingKernel('laplace', 0.3),
  )


@functools.cache
def _pair(kind):
  """A tiny pair of `kind` with fixed weights (built once per module)."""
  if kind != 'realnvp_pair':
    return tiny_models.build(kind)
  keras.utils.set_random_seed(0)
  model = _realnvp_pair()
  model.build_variables()
  for v in model.trainable_variables:  # couplings start as the identity: move them
    v.assign(v + 0.05)
  return model


PAIRS = ['made_pair', 'pixelcnn_pair', 'realnvp_pair']


def _of_family(distribution, cls):
  """Whether `distribution` is a `cls` (tfd.JointDistributionNamed, tfd.TransformedDistribution):
  TFP builds the class's twin that is no CompositeTensor (`_JointDistributionNamed`,
  `_TransformedDistribution`, its base) when a part is a Python callable or a Keras network."""
  twin = cls.__mro__[1]
  assert twin.__name__ == '_' + cls.__name__, cls.__mro__
  return isinstance(distribution, twin)


def _points(model, rows=3):
  """(x, x~) with x on the 8-bit grid for image pairs, x~ = x + noise."""
  shape = (rows,) + model.event_shape
  x = tf.random.stateless_uniform(shape, (4, 2), -1.0, 1.0)
  if len(model.event_shape) == 3:
    x = tf.round((x + 1.0) * 127.5) / 127.5 - 1.0
  return x, x + 0.3 * tf.random.stateless_normal(shape, (5, 2))


@pytest.mark.parametrize('kind', PAIRS)
def test_the_joint_is_a_named_tfp_joint_whose_log_prob_is_the_two_stages(kind):
  pair = _pair(kind)
  joint = pair.joint_distribution()
  assert _of_family(joint, tfd.JointDistributionNamed)
  assert set(joint.model) == {'x_tilde', 'x'}
  x, x_tilde = _points(pair)
  direct = pair.prior.log_prob(x_tilde) + pair.conditional_model.log_prob(x, x_tilde)
  np.testing.assert_allclose(
      joint.log_prob({'x_tilde': x_tilde, 'x': x}), direct, rtol=1e-5, atol=1e-4
  )


@pytest.mark.parametrize('kind', PAIRS)
def test_the_joints_sample_draws_x_from_p_x_given_its_x_tilde(kind):
  pair = _pair(kind)
  joint = pair.joint_distribution()
  # Event shapes [*event_shape] each: dynamically, and statically where the parts know theirs
  # (tfd.Autoregressive, MADE's, leaves its static shapes unknown).
  shapes = joint.event_shape_tensor()
  assert {k: tuple(v.numpy()) for k, v in shapes.items()} == {
      'x_tilde': pair.event_shape,
      'x': pair.event_shape,
  }
  assert all(shape.is_compatible_with(pair.event_shape) for shape in joint.event_shape.values())
  drawn = joint.sample(3, seed=(1, 2))
  assert {k: tuple(v.shape) for k, v in drawn.items()} == {
      'x_tilde': (3,) + pair.event_shape,
      'x': (3,) + pair.event_shape,
  }
  assert np.all(np.isfinite(joint.log_prob(drawn)))
  # JointDistribution salts the seed, then splits one seed off per part in model order.
  seed = tfp.random.sanitize_seed((1, 2), salt='JointDistribution')
  x_tilde_seed, seed = tfp.random.split_seed(seed)
  x_seed, _ = tfp.random.split_seed(seed)
  np.testing.assert_allclose(
      drawn['x_tilde'], pair.prior.distribution().sample(3, seed=x_tilde_seed), rtol=1e-5
  )
  np.testing.assert_allclose(
      drawn['x'],
      pair.conditional_model.distribution(drawn['x_tilde']).sample(seed=x_seed),
      rtol=1e-5,
      atol=1e-6,
  )


def test_the_closed_form_pairs_joint_density_and_draws():
  # p(x~) = 0.5 N(-0.3, 0.08^2) + 0.5 N(0.3, 0.08^2) and p(x | x~) = N(x~, 0.06^2).
  pair = bounds_1d._closed_form_pair()
  joint = pair.joint_distribution()
  x_tilde = np.array([[-0.35], [0.1], [0.3]], np.float32)
  x = np.array([[-0.3], [0.0], [0.45]], np.float32)

  def log_normal(v, mean, scale):
    return -0.5 * ((v - mean) / scale) ** 2 - math.log(scale * math.sqrt(2 * math.pi))

  halves = log_normal(x_tilde, -0.3, 0.08), log_normal(x_tilde, 0.3, 0.08)
  prior = np.logaddexp(*halves) - math.log(2.0)
  by_hand = (prior + log_normal(x, x_tilde, 0.06))[:, 0]
  np.testing.assert_allclose(joint.log_prob({'x_tilde': x_tilde, 'x': x}), by_hand, rtol=1e-5)
  # 4000 draws: x - x~ ~ N(0, 0.06^2) independent of x~, and x follows the marginal
  # 0.5 N(-0.3, 0.1^2) + 0.5 N(0.3, 0.1^2) (two_gaussians_1d), by a Kolmogorov-Smirnov distance.
  drawn = joint.sample(4000, seed=(3, 4))
  noise, x_tilde = (drawn['x'] - drawn['x_tilde']).numpy()[:, 0], drawn['x_tilde'].numpy()[:, 0]
  assert abs(np.std(noise) / 0.06 - 1) < 0.05 and abs(np.mean(noise)) < 0.005
  assert abs(np.corrcoef(noise, x_tilde)[0, 1]) < 0.05
  xs = np.sort(drawn['x'].numpy()[:, 0])
  unit = tfd.Normal(0.0, 1.0)
  cdf = 0.5 * unit.cdf((xs + 0.3) / 0.1) + 0.5 * unit.cdf((xs - 0.3) / 0.1)
  empirical = np.arange(1, xs.size + 1) / xs.size
  distance = np.max(np.maximum(np.abs(empirical - cdf), np.abs(empirical - 1 / xs.size - cdf)))
  assert distance < 1.63 / math.sqrt(xs.size)  # the 1% critical value


def _joint_log_marginal(pair, x, low=-2.0, high=2.0, num=4001):
  """log int p(x~, x) dx~ per point of x [N, 1], the joint's log_prob on a trapezoid grid."""
  grid = np.linspace(low, high, num).astype(np.float32)[:, None]
  log_weights = np.log(np.full(num, grid[1, 0] - grid[0, 0]))
  log_weights[[0, -1]] -= math.log(2.0)
  joint = pair.joint_distribution()
  out = []
  for point in x:
    log_joint = joint.log_prob({'x_tilde': grid, 'x': np.broadcast_to(point, grid.shape)})
    out.append(np.logaddexp.reduce(log_joint.numpy().astype(np.float64) + log_weights))
  return np.array(out)


def test_the_bounds_use_the_kernel_as_proposal_and_lie_below_the_joints_marginal():
  pair = bounds_1d._closed_form_pair()
  x = synthetic.get_dataset('two_gaussians_1d').sample(200, seed=1).astype(np.float32)
  log_marginal = _joint_log_marginal(pair, x)
  # The joint integrates to the closed-form marginal.
  truth = synthetic.get_dataset('two_gaussians_1d').log_prob(x)
  np.testing.assert_allclose(log_marginal, truth, atol=1e-4)
  k, rows = 16, seeds.rows(0, 'test', 0, x.shape[0])
  bounds = pair.likelihood(x, rows, num_samples=k)
  # The same bounds from the joint's log_prob, with q(x~ | x) as the proposal: row i draws its
  # K x~ from q(. | x_i) with seeds[i].
  x_tilde = np.stack([pair.kernel(x[i]).sample(k, seed=rows[i]).numpy() for i in range(len(x))])
  joint = pair.joint_distribution()
  log_w = np.stack(
      [
          joint.log_prob({'x_tilde': x_tilde[:, j], 'x': x}).numpy()
          - pair.kernel(x).log_prob(x_tilde[:, j]).numpy()
          for j in range(k)
      ],
      axis=1,
  ).astype(np.float64)
  np.testing.assert_allclose(bounds.elbo, log_w.mean(axis=1), rtol=1e-5, atol=1e-4)
  iw = np.logaddexp.reduce(log_w, axis=1) - math.log(k)
  np.testing.assert_allclose(bounds.log_prob, iw, rtol=1e-5, atol=1e-4)
  assert not bounds.exact and bounds.num_samples == k
  # IW >= ELBO row by row (Jensen, same draws); both below the log-marginal: the ELBO far
  # below (q is not p(x~ | x)), the IW bound on the mean within a few standard errors.
  assert np.all(bounds.log_prob >= bounds.elbo - 1e-5)
  assert np.mean(bounds.elbo) < np.mean(log_marginal) - 0.5
  excess = bounds.log_prob.numpy() - log_marginal
  assert np.mean(excess) <= 3 * np.std(excess) / math.sqrt(len(x)) + 1e-4


@pytest.fixture(scope='module')
def plain():
  tiny_models.build('made')  # seeds Keras like the other tiny models
  model = standardized.wrap(made.MADE(2, (8,), 2), SHIFT, SCALE)
  model.build_variables()
  return model


def test_standardized_is_a_transformed_distribution_by_the_change_of_variables(plain):
  assert type(plain) is standardized.Standardized
  distribution = plain.distribution()
  assert _of_family(distribution, tfd.TransformedDistribution)
  x = np.array([[11.0, -3.2], [7.5, -2.9], [10.0, -3.0]], np.float32)
  by_hand = plain.inner.log_prob((x - SHIFT) / SCALE).numpy() - LOG_DET
  np.testing.assert_allclose(distribution.log_prob(x), by_hand, rtol=1e-5)
  np.testing.assert_allclose(plain.log_prob(x), by_hand, rtol=1e-5)
  record = plain.likelihood(x)
  assert record.exact
  np.testing.assert_allclose(record.log_prob, by_hand, rtol=1e-5)


def test_standardized_draws_are_the_inner_draws_mapped_to_the_users_units(plain):
  rows = seeds.rows(0, 'samples', 0, 4)
  inner = plain.inner.draw(rows)['samples'].numpy()
  np.testing.assert_allclose(plain.draw(rows)['samples'], SHIFT + SCALE * inner, rtol=1e-6)
  inner = plain.inner.distribution().sample(5, seed=(6, 7)).numpy()
  np.testing.assert_allclose(
      plain.distribution().sample(5, seed=(6, 7)), SHIFT + SCALE * inner, rtol=1e-6
  )


@pytest.fixture(scope='module')
def wrapped_pair():
  model = standardized.wrap(tiny_models.build('made_pair'), SHIFT, SCALE)
  assert type(model) is standardized.StandardizedPair
  return model


def test_standardized_pair_densities_by_the_change_of_variables(wrapped_pair):
  inner = wrapped_pair.inner
  x = np.array([[11.0, -3.2], [7.5, -2.9], [10.0, -3.0]], np.float32)
  x_tilde = x + np.array([[0.4, -0.1], [-0.5, 0.05], [0.0, 0.1]], np.float32)
  z, z_tilde = (x - SHIFT) / SCALE, (x_tilde - SHIFT) / SCALE
  prior = inner.prior.log_prob(z_tilde).numpy()
  np.testing.assert_allclose(
      wrapped_pair.smoothed_log_prob(x_tilde), prior - LOG_DET, rtol=1e-5, atol=1e-5
  )
  joint = wrapped_pair.joint_distribution()
  by_hand = prior + inner.conditional_model.log_prob(z, z_tilde).numpy() - 2 * LOG_DET
  np.testing.assert_allclose(
      joint.log_prob({'x_tilde': x_tilde, 'x': x}), by_hand, rtol=1e-5, atol=1e-5
  )
  # Its draws: the inner joint's for the same seed, both parts mapped by x = m + s z.
  drawn = joint.sample(4, seed=(8, 9))
  inner_drawn = inner.joint_distribution().sample(4, seed=(8, 9))
  for part in ('x_tilde', 'x'):
    np.testing.assert_allclose(
        drawn[part], SHIFT + SCALE * inner_drawn[part].numpy(), rtol=1e-5, atol=1e-5
    )
  # The bounds move by the log-Jacobian too (same kernel draws, in standardised units).
  rows = seeds.rows(0, 'test', 0, 3)
  bounds, inner_bounds = wrapped_pair.likelihood(x, rows, 8), inner.likelihood(z, rows, 8)
  np.testing.assert_allclose(bounds.log_prob, inner_bounds.log_prob - LOG_DET, rtol=1e-5)
  np.testing.assert_allclose(bounds.elbo, inner_bounds.elbo - LOG_DET, rtol=1e-5)
  with pytest.raises(errors.UserError, match='no closed-form p'):
    wrapped_pair.distribution()


def test_standardized_pair_smoothing_and_draws_in_the_users_units(wrapped_pair):
  inner = wrapped_pair.inner
  x = np.array([[11.0, -3.2], [7.5, -2.9]], np.float32)
  z = (x - SHIFT) / SCALE
  rows = seeds.rows(0, 'smooth_data', 0, 2)
  # Smoothing happens in standardised units: x~ - x = s (z~ - z), sigma times s per coordinate.
  np.testing.assert_allclose(
      wrapped_pair.smooth(x, rows) - x, SCALE * (inner.smooth(z, rows) - z).numpy(), atol=1e-5
  )
  rows = seeds.rows(0, 'samples', 0, 3)
  drawn, inner_drawn = wrapped_pair.draw(rows), inner.draw(rows)
  assert set(drawn) == set(inner.samplers)
  for name, values in inner_drawn.items():
    np.testing.assert_allclose(drawn[name], SHIFT + SCALE * values.numpy(), rtol=1e-5, atol=1e-5)
