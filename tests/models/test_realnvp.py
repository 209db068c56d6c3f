"""Tests for the RealNVP flow: exact log-det, normalisation, conditioning, seeding, errors."""

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import kernels
from tfsmooth import smoothing
from tfsmooth.models import realnvp


def random_flow(
    event_size=2, conditional=False, num_couplings=4, hidden_sizes=(16, 16), stddev=0.2, seed=0
):
  """A built flow with random (not identity-initialised) weights."""
  model = realnvp.RealNVP(event_size, num_couplings, hidden_sizes, conditional=conditional)
  model.build_variables()
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, stddev, v.shape).astype(np.float32))
  return model


@pytest.mark.parametrize('event_size,conditional', [(2, False), (3, True)])
def test_log_det_matches_autodiff_jacobian(event_size, conditional):
  model = random_flow(event_size, conditional, stddev=0.3)
  z = tf.random.stateless_normal([16, event_size], seed=[3, 4])
  c = tf.random.stateless_normal([16, event_size], seed=[5, 6]) if conditional else None
  bijector = model.bijector(c)
  with tf.GradientTape() as tape:
    tape.watch(z)
    x = bijector.forward(z)
  jacobian = tape.batch_jacobian(x, z)
  _, expected = np.linalg.slogdet(jacobian.numpy().astype(np.float64))
  np.testing.assert_allclose(
      bijector.forward_log_det_jacobian(z, event_ndims=1), expected, atol=1e-4
  )
  assert np.max(np.abs(expected)) > 0.1  # The flow is not volume-preserving.


def grid(half_width, num):
  edges = np.linspace(-half_width, half_width, num + 1)
  mids = (edges[1:] + edges[:-1]) / 2
  points = np.stack(np.meshgrid(mids, mids, indexing='ij'), -1).reshape(-1, 2)
  return points.astype(np.float32), (edges[1] - edges[0]) ** 2


def test_density_integrates_to_one():
  model = random_flow()
  samples = model.sample(20000, seed=[7, 8])
  assert np.max(np.abs(samples)) < 8.0  # The grid below holds all the mass.
  points, cell = grid(10.0, 500)
  mass = np.sum(np.exp(model.log_prob(points).numpy().astype(np.float64))) * cell
  assert mass == pytest.approx(1.0, abs=1e-4)


def test_conditional_density_integrates_to_one_for_each_condition():
  model = random_flow(conditional=True, seed=1)
  c = np.array([[0.0, 0.0], [1.5, -1.0]], np.float32)
  assert np.max(np.abs(model.sample(None, [7, 8], conditioning=np.repeat(c, 10000, 0)))) < 8.0
  points, cell = grid(10.0, 500)
  log_p = model.distribution(c).log_prob(np.repeat(points[:, None, :], 2, axis=1))  # [G, 2]
  mass = np.sum(np.exp(log_p.numpy().astype(np.float64)), axis=0) * cell
  np.testing.assert_allclose(mass, [1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize('event_size', [2, 3])
def test_conditional_flow_uses_every_coordinate_of_the_condition(event_size):
  model = random_flow(event_size, conditional=True)
  x = tf.random.stateless_normal([32, event_size], seed=[1, 1])
  c = tf.random.stateless_normal([32, event_size], seed=[2, 2])
  log_p = model.log_prob(x, c)
  assert np.all(np.abs(model.log_prob(x, c + 1.0) - log_p) > 1e-4)
  for j in range(event_size):
    shifted = c + 0.5 * tf.one_hot(j, event_size)
    assert np.all(np.abs(model.log_prob(x, shifted) - log_p) > 1e-4), f'ignores c[{j}]'


def test_sample_shapes_and_seeding(seed):
  model = random_flow()
  assert model.sample(7, seed).shape == (7, 2)
  cond = random_flow(conditional=True)
  c = tf.random.stateless_normal([5, 2], seed=[9, 9])
  assert cond.sample(None, seed, conditioning=c).shape == (5, 2)
  assert cond.distribution(c).sample(3, seed=seed).shape == (3, 5, 2)
  assert cond.distribution(c).batch_shape == (5,) and cond.distribution(c).event_shape == (2,)

  eager = cond.sample(None, seed, conditioning=c)
  np.testing.assert_array_equal(eager, cond.sample(None, seed, conditioning=c))
  assert not np.allclose(eager, cond.sample(None, seed + 1, conditioning=c))
  sample_fn = tf.function(lambda s: cond.sample(None, s, conditioning=c))
  np.testing.assert_array_equal(sample_fn(seed), sample_fn(seed))
  np.testing.assert_allclose(sample_fn(seed), eager, atol=1e-5)
  np.testing.assert_allclose(
      tf.function(lambda s: model.sample(7, s))(seed), model.sample(7, seed), atol=1e-5
  )


def test_log_prob_in_tf_function_and_xla_matches_eager():
  model = random_flow(conditional=True)
  x = tf.random.stateless_normal([8, 2], seed=[1, 3])
  c = tf.random.stateless_normal([8, 2], seed=[2, 3])
  eager = model.log_prob(x, c)
  for jit in (False, True):
    np.testing.assert_allclose(
        tf.function(model.log_prob, jit_compile=jit)(x, c), eager, rtol=1e-5, atol=1e-5
    )


def test_zero_initialised_flow_is_standard_normal_and_trainable():
  model = realnvp.RealNVP(2, 2, (8,))
  model.build_variables()
  x = tf.constant([[0.0, 0.0], [1.0, -2.0]])
  np.testing.assert_allclose(
      model.log_prob(x), [-np.log(2 * np.pi), -np.log(2 * np.pi) - 2.5], rtol=1e-6
  )
  with tf.GradientTape() as tape:
    loss = -tf.reduce_mean(model.log_prob(x))
  grads = tape.gradient(loss, model.trainable_variables)
  assert all(g is not None for g in grads)
  assert len(grads) == 2 * 2 * 2  # Couplings x (hidden, output) layers x (kernel, bias).


def test_variables_are_created_under_a_strategy_scope():
  strategy = tf.distribute.MirroredStrategy(
      ['/cpu:0', '/cpu:1'], cross_device_ops=tf.distribute.ReductionToOneDevice()
  )
  with strategy.scope():
    model = realnvp.RealNVP(2, 2, (8,), conditional=True)
    model.build_variables()
  assert model.trainable_variables
  assert all(
      isinstance(v.value, tf.distribute.DistributedValues) for v in model.trainable_variables
  )
  x = tf.zeros([4, 2])
  per_replica = strategy.run(tf.function(lambda: tf.reduce_sum(model.log_prob(x, x))))
  assert len(strategy.experimental_local_results(per_replica)) == 2


@pytest.mark.parametrize(
    'event_size,couplings,hidden,conditional',
    [(2, 4, (16, 16), False), (2, 3, (8,), True), (5, 2, (4, 6), True)],
)
def test_count_params_matches_the_model(event_size, couplings, hidden, conditional):
  model = realnvp.RealNVP(event_size, couplings, hidden, conditional=conditional)
  model.build_variables()
  assert model.num_params == realnvp.count_params(event_size, couplings, hidden, conditional)


def test_width_for_params_matches_a_smoothed_pair():
  pair = realnvp.count_params(2, 8, (64, 64)) + realnvp.count_params(2, 8, (64, 64), True)
  width = realnvp.width_for_params(pair, 2, 8, 2)
  counts = {w: realnvp.count_params(2, 8, (w, w)) for w in (width - 1, width, width + 1)}
  assert min(counts, key=lambda w: abs(counts[w] - pair)) == width


def test_from_config():
  config = ml_collections.ConfigDict(
      {'name': 'realnvp', 'num_couplings': 3, 'hidden_sizes': (8, 8), 'max_log_scale': 2.0}
  )
  model = realnvp.from_config(config, (2,), conditional=True)
  assert model.conditional and model.event_shape == (2,) and len(model.couplings) == 3
  model.build_variables()
  assert model.num_params == realnvp.count_params(2, 3, (8, 8), conditional=True)


def test_clear_errors_for_wrong_dimensions():
  model = realnvp.RealNVP(2, 2, (8,))
  with pytest.raises(ValueError, match='trailing dimensions'):
    model.log_prob(tf.zeros([4, 3]))
  cond = realnvp.RealNVP(2, 2, (8,), conditional=True)
  with pytest.raises(ValueError, match='trailing dimensions'):
    cond.log_prob(tf.zeros([4, 2]), tf.zeros([4, 3]))
  with pytest.raises(ValueError, match='trailing dimensions'):
    cond.distribution(tf.zeros([4, 1]))
  with pytest.raises(ValueError, match='conditional'):
    cond.log_prob(tf.zeros([4, 2]))
  with pytest.raises(ValueError, match='D >= 2'):
    realnvp.RealNVP(1)
  with pytest.raises(ValueError, match='flat vectors'):
    realnvp.from_config(ml_collections.ConfigDict(), (4, 4, 1), conditional=False)


def test_flows_plug_into_the_smoothed_model(seed):
  model = smoothing.SmoothedModel(
      random_flow(), random_flow(conditional=True, seed=1), kernels.SmoothingKernel('gaussian', 0.3)
  )
  x = tf.random.stateless_normal([6, 2], seed=[4, 4])
  rows = tf.stack([seed + [0, i] for i in range(6)])
  iw, elbo = tf.function(lambda x, s: model.likelihood(x, s, 8)[:2])(x, rows)
  assert elbo.shape == iw.shape == (6,) and np.all(np.isfinite(elbo))
  assert np.all(np.isfinite(iw))  # the bounds themselves: tests/test_bounds_1d.py
  assert all(x.shape == (6, 2) for x in model.draw(rows).values())
  assert model.num_params == (
      realnvp.count_params(2, 4, (16, 16)) + realnvp.count_params(2, 4, (16, 16), conditional=True)
  )
