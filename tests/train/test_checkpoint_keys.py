"""Checkpoint keys of dropout seed states do not depend on how many models the process built:
Keras numbers seed generators by a process-wide counter, so the same PixelCNN++ with dropout
built second has other names. A checkpoint of one restores into its twin built later in the same
process, and a checkpoint keyed by the old numbering (what a fresh process gave) still restores."""

import numpy as np
import tensorflow as tf

from tfsmooth.models import pixelcnn
from tfsmooth.train import checkpoints


def _model():
  model = pixelcnn.PixelCNN((4, 4, 1), nr_resnet=1, nr_filters=4, nr_logistic_mix=2, dropout=0.5)
  model.build_variables()
  return model


def _assert_same(a, b):
  for u, v in zip(a.variables, b.variables):
    np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_a_twin_built_later_in_the_process_restores_the_checkpoint(tmp_path):
  first = _model()
  for v in first.trainable_variables:
    v.assign(v + 0.25)
  prefix = checkpoints.model_checkpoint(first).save(str(tmp_path / 'new' / 'ckpt'))
  twin = _model()  # its seed generators have other process numbers
  assert [v.path for v in twin.variables] != [v.path for v in first.variables]
  checkpoints.restore_model(twin, str(tmp_path / 'new'), ema=False)
  assert prefix.endswith('ckpt-1')
  _assert_same(first, twin)


def test_a_checkpoint_keyed_by_the_old_numbering_restores(tmp_path):
  first = _model()
  for v in first.trainable_variables:
    v.assign(v - 0.5)
  tf.train.Checkpoint(weights=checkpoints.keyed_variables(first, legacy=True)).save(
      str(tmp_path / 'old' / 'ckpt')
  )
  twin = _model()
  checkpoints.restore_model(twin, str(tmp_path / 'old'), ema=False)
  _assert_same(first, twin)
