import numpy as np
import pytest
import tensorflow as tf

from tfsmooth.models import made


def _jacobian_of_params(model, inputs):
  """d(all mixture params of dim d) / d(inputs): [D_out, D_in] magnitudes, one example."""
  x = tf.constant(inputs[None])
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(x)
    logits, locs, scales = model.mixture_params(x)
    params = tf.concat([logits, locs, scales], axis=-1)[0]  # [D, 3K]
    rows = [tf.reduce_sum(params[d]) for d in range(params.shape[0])]
  return np.stack([np.abs(tape.gradient(r, x)[0].numpy()) for r in rows])


@pytest.mark.parametrize('ordering', ['natural', 'reversed', 'random'])
def test_made_is_autoregressive(ordering):
  model = made.MADE(5, hidden_sizes=(16, 16), num_mixtures=2, ordering=ordering)
  jac = _jacobian_of_params(model, np.random.default_rng(0).normal(size=5).astype(np.float32))
  degrees = made.input_degrees(5, ordering)
  for d in range(5):
    for j in range(5):
      if degrees[j] >= degrees[d]:
        assert jac[d, j] == 0, f'param of dim {d} depends on input {j}'
      else:
        assert jac[d, j] > 0, f'param of dim {d} ignores earlier input {j}'


def test_conditional_made_sees_all_conditioning_and_only_earlier_x():
  model = made.MADE(3, hidden_sizes=(16,), num_mixtures=2, conditional=True)
  jac = _jacobian_of_params(model, np.random.default_rng(1).normal(size=6).astype(np.float32))
  assert np.all(jac[:, :3] > 0)  # every x_d sees all of x~
  x_part = jac[:, 3:]
  assert np.all(np.triu(x_part) == 0) and np.all(np.tril(x_part, -1)[np.tril_indices(3, -1)] > 0)


def test_mixture_of_logistics_integrates_to_one():
  model = made.mixture_of_logistics(1, num_mixtures=4)
  grid = np.linspace(-60, 60, 400_001, dtype=np.float32)[:, None]
  density = np.exp(model.log_prob(grid).numpy())
  assert np.trapezoid(density, grid[:, 0].astype(np.float64)) == pytest.approx(1.0, abs=1e-4)


def test_made_density_integrates_to_one_in_2d():
  model = made.MADE(2, hidden_sizes=(8,), num_mixtures=2, loc_init_range=1.0)
  axis = np.linspace(-25, 25, 1201)
  grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
  density = np.exp(model.log_prob(grid.astype(np.float32)).numpy()).reshape(1201, 1201)
  assert np.trapezoid(np.trapezoid(density, axis), axis) == pytest.approx(1.0, abs=2e-3)


def test_sampling_is_seeded_and_graph_mode_agrees():
  model = made.MADE(3, hidden_sizes=(8,), num_mixtures=2)
  seed = tf.constant([4, 2])
  eager = model.sample(6, seed=seed).numpy()
  np.testing.assert_array_equal(eager, model.sample(6, seed=seed).numpy())
  graph = tf.function(lambda s: model.sample(6, seed=s))(seed).numpy()
  np.testing.assert_allclose(eager, graph, rtol=1e-5, atol=1e-5)
  assert not np.allclose(eager, model.sample(6, seed=tf.constant([4, 3])).numpy())


def test_wrong_dimension_and_missing_conditioning_are_clear_errors():
  model = made.MADE(2, hidden_sizes=(8,), num_mixtures=2)
  with pytest.raises(ValueError, match=r'shape \(4, 3\).*events of shape \(2,\)'):
    model.log_prob(tf.zeros([4, 3]))
  conditional = made.MADE(2, hidden_sizes=(8,), num_mixtures=2, conditional=True)
  with pytest.raises(ValueError, match='pass conditioning=x_tilde'):
    conditional.log_prob(tf.zeros([4, 2]))
