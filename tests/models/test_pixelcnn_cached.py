"""The cached PixelCNN++ sampler draws what the naive one draws, for the same weights and noise."""

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth.models import pixelcnn

TINY = dict(nr_resnet=2, nr_filters=8, nr_logistic_mix=2, dropout=0.0)
# (event shape, likelihood, conditional): together they cover 1 and 3 channels, both heads,
# p(x) and the stacked p(x | x~), two image sizes (one of them not square).
CASES = {
    'rgb_8x8_discretized': ((8, 8, 3), 'discretized_logistic', False),
    'gray_12x8_logistic_stacked': ((12, 8, 1), 'logistic', True),
}


def _perturbed_model(shape, likelihood, conditional):
  """A tiny model with every weight moved off its init (non-zero biases, unequal norms)."""
  model = pixelcnn.PixelCNN(shape, conditional=conditional, likelihood=likelihood, **TINY)
  model.build_variables()
  rng = np.random.default_rng(0)
  for v in model.trainable_variables:
    v.assign(v.numpy() + rng.normal(0.0, 0.2, v.shape).astype(np.float32))
  return model


def _samplers(model, conditioning):
  """Traced complete_from_uniform(x_known, num_known_rows, u) of both samplers."""
  head = pixelcnn.HEADS[model.head]
  return {
      name: tf.function(
          pixelcnn.PixelCNNDistribution(
              model.network,
              head,
              model.event_shape,
              model.nr_logistic_mix,
              conditioning,
              sampler=name,
          ).complete_from_uniform
      )
      for name in pixelcnn.SAMPLERS
  }


@pytest.fixture(scope='module', params=list(CASES))
def case(request):
  shape, likelihood, conditional = CASES[request.param]
  model = _perturbed_model(shape, likelihood, conditional)
  x_tilde = tf.random.stateless_normal((3,) + shape, [1, 1]) if conditional else None
  return model, x_tilde, _samplers(model, x_tilde)


def _assert_same(model, a, b):
  if model.head == 'discretized_logistic':
    np.testing.assert_array_equal(a, b)  # identical 8-bit values
  else:
    np.testing.assert_allclose(a, b, rtol=0.0, atol=1e-4)


def test_cached_equals_naive_when_sampling_and_completing(case):
  model, _, samplers = case
  shape = model.event_shape
  u = pixelcnn._uniform((3,) + shape[:2] + (model.nr_logistic_mix + shape[-1],), [3, 4], tf.float32)
  x_known = tf.round(tf.random.stateless_uniform((3,) + shape, [5, 5], -1.0, 1.0) * 127.5) / 127.5
  draws = []
  for rows in (0, 3, 6):  # 0: sampling; 3 and 6: known rows ending mid-way at coarser levels
    cached = samplers['cached'](x_known, tf.constant(rows), u).numpy()
    _assert_same(model, cached, samplers['naive'](x_known, tf.constant(rows), u).numpy())
    np.testing.assert_array_equal(cached[:, :rows], x_known.numpy()[:, :rows])
    draws.append(cached)
  assert not np.allclose(draws[0][:, 6:], draws[1][:, 6:])  # the known rows matter


def test_cached_sampler_is_the_default_and_names_are_checked():
  assert pixelcnn.PixelCNN((4, 4, 1), **TINY).sampler == 'cached'
  with pytest.raises(ValueError, match='sampler'):
    pixelcnn.PixelCNN((4, 4, 1), sampler='fast', **TINY)


def test_saved_sampler_takes_any_batch_and_rows_keep_their_draws(tmp_path):
  """A SavedModel of the default sampler with per-row seeds [None, 2], as the exports have."""
  shape = (4, 4, 1)
  model = pixelcnn.PixelCNN(shape, **dict(TINY, nr_resnet=1))
  model.build_variables()
  noise_shape = shape[:2] + (model.nr_logistic_mix + shape[-1],)

  def sample(seeds):
    noise = tf.map_fn(
        lambda s: pixelcnn._uniform(noise_shape, s, tf.float32),
        seeds,
        fn_output_signature=tf.float32,
    )
    return model.distribution().sample_from_uniform(noise)

  module = tf.Module()
  module.model = model
  module.sample = tf.function(sample, input_signature=[tf.TensorSpec([None, 2], tf.int32)])
  tf.saved_model.save(module, str(tmp_path), signatures={'sample': module.sample})
  loaded = tf.saved_model.load(str(tmp_path)).signatures['sample']
  seeds = tf.constant([[0, 1], [0, 2], [0, 3]])
  three = list(loaded(seeds=seeds).values())[0].numpy()
  np.testing.assert_array_equal(list(loaded(seeds=seeds[:2]).values())[0].numpy(), three[:2])
  np.testing.assert_array_equal(three, sample(seeds).numpy())  # eagerly, in this process
  assert not np.array_equal(three[0], three[1])
