import numpy as np
from PIL import Image
import tensorflow as tf

from tfsmooth.evaluation import feature_networks
from tfsmooth.evaluation import neighbours


def test_nearest_neighbour_of_a_training_image_is_itself():
  train = np.random.default_rng(0).uniform(-1, 1, (50, 6, 6, 1))
  found = neighbours.nearest(train[[3, 17, 41]], train, k=4, batch_size=16)
  assert found.shape == (3, 4)
  np.testing.assert_array_equal(found[:, 0], [3, 17, 41])
  distances = [
      [np.sum((train[q] - train[i]) ** 2) for i in row] for q, row in zip([3, 17, 41], found)
  ]
  assert np.all(np.diff(distances, axis=1) >= 0)  # nearest first


def test_neighbour_grids_have_one_row_per_sample_and_k_plus_one_columns(tmp_path):
  rng = np.random.default_rng(1)
  train = rng.uniform(-1, 1, (30, 8, 8, 1)).astype(np.float32)
  samples = train[[2, 9]] + 0.01
  network = feature_networks.FeatureNetwork(
      'flat', lambda x: {'features': tf.reshape(x, [-1, 64]), 'logits': x[:, 0, :2, 0]}
  )
  k = 3
  found = neighbours.neighbour_grids(samples, train, network, str(tmp_path), k=k)
  for name in ('pixel', 'features'):
    np.testing.assert_array_equal(found[name][:, 0], [2, 9])
    grid = np.asarray(Image.open(tmp_path / f'nearest_{name}.png'))
    cell, pad = 8 * (96 // 8), 2  # save_image_grid's enlargement and padding
    assert grid.shape == (pad + 2 * (cell + pad), pad + (k + 1) * (cell + pad))
