"""What TPUs need, checked on CPU: the evaluation and sampling steps of MADE, RealNVP and the
PixelCNN++ pair compile with XLA (jit_compile=True: static shapes, no host-side ops), with
row-independent results; so does the train loop with several steps per call."""

import numpy as np
import pytest
import tensorflow as tf

from tests.distributed import tiny_models
from tests.train import tiny
from tfsmooth import seeds
from tfsmooth.evaluation import replicated
from tfsmooth.train import trainer

# XLA compiles the PixelCNN++ pair's pixel loops for minutes on 2 cores: run on purpose.
SLOW_PIXELCNN_PAIR = pytest.param('pixelcnn_pair', marks=pytest.mark.slow)


@pytest.mark.parametrize('kind', ['made', 'realnvp', 'made_pair', SLOW_PIXELCNN_PAIR])
def test_evaluation_and_sampling_steps_compile_with_xla(kind):
  # XLA draws stateless random numbers with another algorithm than TF's CPU kernels, so its
  # draws are other numbers from the same seeds: seeded rows reproduce within one setting,
  # independent of the batch size there; an exact likelihood is the same number.
  model = tiny_models.build(kind)
  x = tiny_models.points(model)
  rows = seeds.rows(0, 'test', 0, len(x)).numpy()
  likelihood = lambda x, s: tuple(model.likelihood(x, s, 2)[:2])
  draw = lambda s: model.draw(s)
  compiled = replicated.map_batches(likelihood, (x, rows), 3, jit_compile=True)
  again = replicated.map_batches(likelihood, (x, rows), 5, jit_compile=True)
  np.testing.assert_allclose(compiled, again, rtol=1e-5, atol=1e-5)
  if model.exact_likelihood:
    plain = replicated.map_batches(likelihood, (x, rows), 3)
    np.testing.assert_allclose(compiled, plain, rtol=1e-4, atol=1e-4)
  drawn = replicated.map_batches(draw, (rows,), 3, jit_compile=True)
  drawn_again = replicated.map_batches(draw, (rows,), 5, jit_compile=True)
  assert set(drawn) == set(model.samplers)
  for name, value in drawn.items():
    assert value.shape == x.shape and np.all(np.isfinite(value))
    np.testing.assert_allclose(value, drawn_again[name], rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize('kind', ['realnvp', 'made_pair', SLOW_PIXELCNN_PAIR])
def test_train_loop_with_steps_per_loop_compiles_with_xla(kind, tmp_path):
  model = tiny_models.build(kind)
  points = np.repeat(tiny_models.points(model), 4, axis=0)
  examples = lambda: tf.data.Dataset.from_tensor_slices(points).repeat()
  config = tiny.config(4, batch_size=4, ema_decay=0.0, jit_compile=True, steps_per_loop=2)
  result = trainer.train(lambda: tiny_models.build(kind), examples, config, str(tmp_path))
  assert result.step == 4
