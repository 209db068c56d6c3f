import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth.models import pixelcnn

tfd = tfp.distributions
TINY = dict(nr_resnet=1, nr_filters=8, nr_logistic_mix=2)
GRID = np.arange(256) / 127.5 - 1.0


def _head_params(rng, batch, channels, mixtures, scale=(0.05, 0.3)):
  """Random float64 head parameters: logits, locs, log-scales, raw couplings."""
  return (
      rng.normal(size=batch + (mixtures,)),
      rng.uniform(-0.8, 0.8, batch + (channels, mixtures)),
      np.log(rng.uniform(*scale, batch + (channels, mixtures))),
      rng.uniform(-0.9, 0.9, batch + (channels * (channels - 1) // 2, mixtures)),
  )


def _causal_gradients(network, shape):
  """|d out(pixel p) / d x(pixel q)| summed over channels, as an [HW, HW] matrix (p, q)."""
  n = shape[0] * shape[1]
  x = tf.tile(tf.random.stateless_normal((1,) + shape, [0, 1]), [n, 1, 1, 1])
  with tf.GradientTape() as tape:
    tape.watch(x)
    select = tf.reshape(tf.one_hot(tf.range(n), n), (n,) + shape[:2] + (1,))
    target = tf.reduce_sum(network(x) * select)
  return tf.reduce_sum(tf.abs(tape.gradient(target, x)), -1).numpy().reshape(n, n)


@pytest.mark.parametrize('shape', [(8, 8, 3), (4, 8, 1)])
def test_network_is_causal(shape):
  network = pixelcnn.PixelCNNNetwork(5, nr_resnet=1, nr_filters=8, dropout=0.0)
  grads = _causal_gradients(network, shape)
  now_or_later = np.triu(np.ones_like(grads), 0) > 0
  assert np.all(grads[now_or_later] == 0)
  width = shape[1]
  pixels = np.arange(grads.shape[0])
  left_ok, above_ok = pixels[pixels % width > 0], pixels[pixels >= width]
  assert np.all(grads[left_ok, left_ok - 1] > 0)  # sees its left neighbour
  assert np.all(grads[above_ok, above_ok - width] > 0)  # and the pixel above


def test_stacked_network_sees_all_of_top_and_only_earlier_bottom():
  height, width = 4, 8
  grads = _causal_gradients(
      pixelcnn.PixelCNNNetwork(5, nr_resnet=1, nr_filters=8, dropout=0.0), (2 * height, width, 1)
  )
  top = height * width
  bottom = grads[top:]
  assert np.all(bottom[:, :top] > 0)
  assert np.all(np.triu(bottom[:, top:], 0) == 0)


def test_conditional_model_scores_only_the_bottom_half():
  model = pixelcnn.PixelCNN(
      (4, 4, 1), conditional=True, likelihood='discretized_logistic', dropout=0.0, **TINY
  )
  x_tilde = tf.random.stateless_normal((2, 4, 4, 1), [0, 2])
  x = tf.random.stateless_uniform((2, 4, 4, 1), [0, 3], -1.0, 1.0)
  with tf.GradientTape() as tape:
    tape.watch([x, x_tilde])
    log_prob = model.log_prob(x, x_tilde)
  grad_x, grad_tilde = tape.gradient(log_prob, [x, x_tilde])
  assert log_prob.shape == (2,)
  assert np.all(np.abs(grad_x.numpy()) > 0) and np.any(np.abs(grad_tilde.numpy()) > 0)
  swapped = model.log_prob(tf.reverse(x, [0]), x_tilde)
  assert not np.allclose(swapped.numpy(), tf.reverse(log_prob, [0]).numpy())

  # The same network as plain (unconditional) PixelCNN densities: over the stacked 8 x 4 image
  # it scores log p(x~) + log p(x | x~), over the 4 x 4 top half alone log p(x~) (the network is
  # causal, so the top rows' terms do not see the bottom). log p(x | x~) is their difference; a
  # conditional score that counted the top half would be off by log p(x~).
  def plain(shape):
    return pixelcnn.PixelCNNDistribution(
        model.network, pixelcnn.DiscretizedLogisticMixture, shape, TINY['nr_logistic_mix']
    )

  log_stacked = plain((8, 4, 1)).log_prob(tf.concat([x_tilde, x], axis=1)).numpy()
  log_top = plain((4, 4, 1)).log_prob(x_tilde).numpy()
  assert np.all(np.abs(log_top) > 1.0)  # far beyond the tolerance below
  np.testing.assert_allclose(log_prob.numpy(), log_stacked - log_top, rtol=1e-4, atol=1e-3)


def test_discretized_head_matches_quantized_logistic_mixture():
  logits, locs, log_scales, coeffs = _head_params(
      np.random.default_rng(0), (5,), 1, 3, scale=(0.4, 1.0)
  )
  head = pixelcnn.DiscretizedLogisticMixture(logits, locs, log_scales, coeffs)
  log_probs = head.log_prob(GRID[:, None, None]).numpy()  # [256, 5]
  # Bin of k: ((k - 0.5) / 127.5 - 1, (k + 0.5) / 127.5 - 1]; QuantizedDistribution's bin of k
  # is (k - 1, k], hence the shift by 0.5.
  components = tfd.QuantizedDistribution(
      tfd.Logistic((locs[:, 0] + 1.0) * 127.5 - 0.5, np.exp(log_scales[:, 0]) * 127.5),
      low=0.0,
      high=255.0,
  )
  values = np.arange(256.0)[:, None, None]
  assert np.all(components.prob(values).numpy() > pixelcnn.MIN_BIN_MASS)  # no mid-bin fallback
  oracle = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), components)
  expected = oracle.log_prob(values[..., 0]).numpy()
  np.testing.assert_allclose(log_probs, expected, rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(np.exp(log_probs).sum(0), 1.0, rtol=1e-9)


def test_discretized_head_couples_rgb_channels():
  rng = np.random.default_rng(1)
  logits, locs, log_scales, raw = _head_params(rng, (4,), 3, 1, scale=(0.4, 1.0))
  head = pixelcnn.DiscretizedLogisticMixture(logits, locs, log_scales, raw)
  x = rng.choice(GRID, size=(4, 3))
  m, a = locs[..., 0], raw[..., 0]
  means = [m[:, 0], m[:, 1] + a[:, 0] * x[:, 0], m[:, 2] + a[:, 1] * x[:, 0] + a[:, 2] * x[:, 1]]
  expected = sum(
      tfd.QuantizedDistribution(
          tfd.Logistic((means[c] + 1.0) * 127.5 - 0.5, np.exp(log_scales[:, c, 0]) * 127.5),
          low=0.0,
          high=255.0,
      ).log_prob(np.round((x[:, c] + 1.0) * 127.5))
      for c in range(3)
  )
  np.testing.assert_allclose(head.log_prob(x).numpy(), expected.numpy(), rtol=1e-6)


def test_discretized_head_sums_to_one_over_two_coupled_channels():
  logits, locs, log_scales, coeffs = _head_params(np.random.default_rng(2), (), 2, 3)
  head = pixelcnn.DiscretizedLogisticMixture(logits, locs, log_scales, coeffs)
  grid = np.stack(np.meshgrid(GRID, GRID, indexing='ij'), -1).reshape(-1, 2)
  assert np.exp(head.log_prob(grid).numpy()).sum() == pytest.approx(1.0, abs=1e-6)


def test_discretized_head_edge_bins_tiny_mass_fallback_and_scale_floor():
  def log_prob(value, loc, log_scale):
    head = pixelcnn.DiscretizedLogisticMixture([0.0], [[loc]], [[log_scale]], np.zeros((0, 1)))
    return head.log_prob([[value]]).numpy()

  softplus = lambda z: np.logaddexp(0.0, z)  # noqa: E731
  z_top = (1.0 - 1.0 / 255.0 - 0.9) / 0.01  # the bin at 1 is (1 - 1/255, inf)
  np.testing.assert_allclose(log_prob(1.0, 0.9, np.log(0.01)), -softplus(z_top), rtol=1e-5)
  z_bottom = (-1.0 + 1.0 / 255.0 - 0.9) / 0.01  # the bin at -1 is (-inf, -1 + 1/255]
  np.testing.assert_allclose(
      log_prob(-1.0, 0.9, np.log(0.01)), z_bottom - softplus(z_bottom), rtol=1e-5
  )
  z = (-0.5 - 0.9) / 0.01  # mass ~ e^-140: density at the centre times the bin width
  np.testing.assert_allclose(
      log_prob(-0.5, 0.9, np.log(0.01)),
      z - np.log(0.01) - 2.0 * softplus(z) + np.log(2.0 / 255.0),
      rtol=1e-5,
  )
  assert log_prob(0.0, 0.0, -20.0) == log_prob(0.0, 0.0, pixelcnn.MIN_LOG_SCALE)


@pytest.mark.parametrize('channels', [1, 2])
def test_continuous_head_integrates_to_one(channels):
  logits, locs, log_scales, coeffs = _head_params(
      np.random.default_rng(3), (), channels, 3, scale=(0.2, 0.6)
  )
  head = pixelcnn.LogisticMixture(logits, locs, log_scales, coeffs)
  if channels == 1:
    axis = np.linspace(-40.0, 40.0, 200_001)
    density = np.exp(head.log_prob(axis[:, None]).numpy())
    assert np.trapezoid(density, axis) == pytest.approx(1.0, abs=1e-6)
  else:
    axis = np.linspace(-12.0, 12.0, 1201)
    grid = np.stack(np.meshgrid(axis, axis, indexing='ij'), -1)
    density = np.exp(head.log_prob(grid).numpy())
    assert np.trapezoid(np.trapezoid(density, axis), axis) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    'head_class', [pixelcnn.LogisticMixture, pixelcnn.DiscretizedLogisticMixture]
)
def test_head_samples_match_head_density(head_class):
  """Mean and covariance of 20k draws of two coupled channels vs the exact moments."""
  logits, locs, log_scales, coeffs = _head_params(
      np.random.default_rng(4), (), 2, 2, scale=(0.1, 0.2)
  )
  head = head_class(logits, locs, log_scales, coeffs)
  draws = head.sample(20_000, seed=[4, 5]).numpy()
  axis = GRID if head_class is pixelcnn.DiscretizedLogisticMixture else np.linspace(-4, 4, 801)
  grid = np.stack(np.meshgrid(axis, axis, indexing='ij'), -1).reshape(-1, 2)
  weights = np.exp(head.log_prob(grid).numpy())
  weights /= weights.sum()
  mean = weights @ grid
  cov = (grid - mean).T @ ((grid - mean) * weights[:, None])
  assert np.all(np.abs(draws.mean(0) - mean) < 4 * np.sqrt(np.diag(cov) / 20_000))
  np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.03 * np.abs(cov).max())
  if head_class is pixelcnn.DiscretizedLogisticMixture:
    np.testing.assert_allclose(np.round((draws + 1.0) * 127.5) / 127.5 - 1.0, draws, atol=1e-12)


def _tiny_model(shape, conditional=False, likelihood='discretized_logistic'):
  model = pixelcnn.PixelCNN(shape, conditional=conditional, likelihood=likelihood, **TINY)
  model.build_variables()
  return model


@pytest.mark.parametrize('likelihood', ['logistic', 'discretized_logistic'])
def test_sampling_is_seeded_and_same_under_tf_function(likelihood):
  model = _tiny_model((4, 4, 3), likelihood=likelihood)
  eager = model.sample(2, seed=tf.constant([7, 8]))
  traced = tf.function(lambda seed: model.sample(2, seed=seed))
  assert eager.shape == (2, 4, 4, 3)
  # Graph-mode kernels may round differently in the last bit; 8-bit draws come out identical.
  atol = 0.0 if likelihood == 'discretized_logistic' else 1e-5
  np.testing.assert_allclose(traced(tf.constant([7, 8])), eager, rtol=0.0, atol=atol)
  np.testing.assert_array_equal(traced(tf.constant([7, 8])), traced(tf.constant([7, 8])))
  assert not np.allclose(traced(tf.constant([7, 9])).numpy(), eager.numpy())


def test_sampling_is_one_loop_not_unrolled():
  model = _tiny_model((4, 4, 1))
  graph = (
      tf.function(lambda seed: model.sample(1, seed=seed))
      .get_concrete_function(tf.TensorSpec([2], tf.int32))
      .graph
  )
  convs = [op for op in graph.get_operations() if op.type == 'Conv2D']
  assert any(op.type in ('While', 'StatelessWhile') for op in graph.get_operations())
  assert not convs  # every convolution lives inside the loop body


@pytest.mark.parametrize('conditional', [False, True])
def test_pixel_never_depends_on_later_noise(conditional):
  shape = (4, 4, 3)
  model = _tiny_model(shape, conditional=conditional)
  x_tilde = tf.random.stateless_normal((2,) + shape, [1, 1]) if conditional else None
  dist = model.distribution(x_tilde)
  noise_shape = (1, 2) if conditional else (2,)
  u = tf.random.stateless_uniform(noise_shape + shape[:2] + (dist.noise_depth,), [2, 3])
  sample_from_uniform = tf.function(dist.sample_from_uniform)
  x = sample_from_uniform(u).numpy().reshape(noise_shape + (16, 3))
  pixel = 9
  changed = tf.reshape(u, noise_shape + (16, -1)).numpy()
  changed[..., pixel, :] = 1.0 - changed[..., pixel, :]
  y = sample_from_uniform(changed.reshape(u.shape)).numpy().reshape(x.shape)
  np.testing.assert_array_equal(x[..., :pixel, :], y[..., :pixel, :])
  assert not np.array_equal(x[..., pixel, :], y[..., pixel, :])
  # Each pixel of the result is its own conditional's draw given the final earlier pixels.
  flat_x = x.reshape((-1,) + shape)
  heads = dist.pixel_distributions(flat_x, x_tilde, training=False)
  redrawn = heads.sample_from_uniform(tf.reshape(u, (-1,) + shape[:2] + (dist.noise_depth,)))
  np.testing.assert_array_equal(redrawn.numpy(), flat_x)


def test_conditional_sampling_draws_x_given_each_x_tilde():
  model = _tiny_model((4, 8, 1), conditional=True, likelihood='logistic')
  x_tilde = tf.random.stateless_normal((3, 4, 8, 1), [5, 5])
  draws = model.distribution(x_tilde).sample(2, seed=[3, 4])
  assert draws.shape == (2, 3, 4, 8, 1)
  log_probs = model.distribution(x_tilde).log_prob(draws).numpy()
  assert log_probs.shape == (2, 3) and np.all(np.isfinite(log_probs))


def test_log_prob_shapes_training_switch_and_from_config():
  config = dict(nr_resnet=1, nr_filters=8, nr_logistic_mix=2, dropout=0.5)
  prior = pixelcnn.from_config(config, (4, 4, 1), conditional=False)
  conditional = pixelcnn.from_config(config, (4, 4, 1), conditional=True)
  assert prior.head == 'logistic' and conditional.head == 'discretized_logistic'
  x = tf.random.stateless_normal((3, 2, 4, 4, 1), [6, 6])
  assert prior.distribution().log_prob(x).shape == (3, 2)
  x = x[0]
  inference = prior.distribution(training=False).log_prob(x)
  np.testing.assert_array_equal(inference, prior.log_prob(x))
  assert not np.allclose(prior.distribution(training=True).log_prob(x), inference)
  with pytest.raises(ValueError, match='divisible by 4'):
    pixelcnn.PixelCNN((6, 8, 1))
