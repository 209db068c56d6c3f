import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfsmooth.data import images
from tests import offline_data

needs_idx = offline_data.needs_idx


def _on_grid(x):
  return np.array_equal(np.round((x + 1.0) * 127.5) / 127.5 - 1.0, x)


@pytest.mark.parametrize('name', sorted(images.IMAGE_SHAPES))
def test_tfds_pipeline_under_mock_data(name):
  with tfds.testing.mock_data(num_examples=6):
    batches = list(images.make_dataset(name, 'train', batch_size=4, shuffle=True, source='tfds'))
  assert [b.shape for b in batches] == [
      (4,) + images.image_shape(name),
      (2,) + images.image_shape(name),
  ]
  x = np.concatenate([b.numpy() for b in batches])
  assert x.dtype == np.float32 and x.min() >= -1.0 and x.max() <= 1.0 and _on_grid(x)


def test_celeb_a_is_centre_cropped_then_resized():
  image = np.zeros((218, 178, 3), np.uint8)
  image[39:179, 19:159] = 200  # the central 140 x 140 square
  out = images._crop_and_resize_celeb_a(image).numpy()
  assert out.shape == (32, 32, 3) and np.all(out == 200)


def test_missing_tfds_data_names_the_fix(tmp_path):
  with pytest.raises(images.DataUnavailableError, match='--config.data.data_dir'):
    images.make_dataset('cifar10', 'train', 8, data_dir=str(tmp_path))
  with pytest.raises(images.DataUnavailableError, match='dataset-fashion-mnist'):
    images.make_dataset(
        'fashion_mnist', 'train', 8, data_dir=str(tmp_path), source='idx', idx_dir=str(tmp_path)
    )
  with pytest.raises(ValueError, match=r"Unknown data set 'imagenet'.*tfds.list_builders"):
    images.make_dataset('imagenet', 'train', 8)


@needs_idx
def test_offline_fashion_mnist_from_idx_files(tmp_path):
  test = images.load_images('fashion_mnist', 'test', source='idx')
  assert test.shape == (10_000, 28, 28, 1) and test.min() == -1.0 and test.max() == 1.0
  assert _on_grid(test[:100])
  # 'auto' falls back to the IDX files when TFDS has no prepared copy; the same pipeline.
  first = next(iter(images.make_dataset('fashion_mnist', 'test[:8]', 8, data_dir=str(tmp_path))))
  first = first.numpy()
  np.testing.assert_array_equal(first, test[:8])
  tail = images.load_images('fashion_mnist', 'train[-5:]', source='idx')
  raw = images.read_idx(os.path.join(images.FASHION_MNIST_IDX_DIR, images.IDX_FILES['train']))
  assert raw.shape == (60_000, 28, 28)
  np.testing.assert_array_equal(tail[..., 0], raw[-5:].astype(np.float32) / np.float32(127.5) - 1)


@needs_idx
def test_sigma_from_config_or_heuristic():
  assert images.resolve_sigma(0.3, 'fashion_mnist') == 0.3
  sigma = images.resolve_sigma('heuristic', 'fashion_mnist', max_points=500, source='idx')
  assert 0.2 < sigma < 0.8
