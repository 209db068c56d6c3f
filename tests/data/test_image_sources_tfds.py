"""Any TFDS image set by name through image_sources, under `tfds.testing.mock_data` (which fakes
examples from the builder's real features, so shapes and classes are the real info's), and the
offline Fashion-MNIST with its IDX labels."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfsmooth import errors
from tfsmooth import kernels
from tfsmooth.data import image_sources
from tfsmooth.data import images
from tests import offline_data

SPLITS = dict(train_split='train', validation_split='train', test_split='test')


def _source(name, **keys):
  return image_sources.from_config({'name': name, **SPLITS, **keys})


def test_another_tfds_set_takes_shape_and_classes_from_its_builder():
  with tfds.testing.mock_data(num_examples=6):
    svhn = _source('svhn_cropped', labels=True)
    assert svhn.event_shape == (32, 32, 3) and svhn.identity == 'tfds:svhn_cropped'
    assert svhn.class_names == [str(k) for k in range(10)]
    x, y = svhn.split('train', 4)
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32 and -1 <= x.min() <= x.max() <= 1
    assert y.dtype == np.int32 and np.all((0 <= y) & (y < 10))
    element = next(iter(svhn.train_examples(0)))
    assert element['x'].shape == (32, 32, 3) and element['labels'].dtype.name == 'int32'
    assert svhn.facts()['tfds_version'] == images.version('svhn_cropped')
    assert _source('cifar100', labels=True).num_classes == 100
    coarse = _source('cifar100', labels=True, label_feature='coarse_label')
    assert coarse.num_classes == 20
    assert _source('svhn_cropped').num_classes is None
    grey = _source('svhn_cropped', image_size=16, channels=1)
    assert grey.split('test')[0].shape == (6, 16, 16, 1)


def test_train_examples_of_a_tfds_set_are_seeded():
  with tfds.testing.mock_data(num_examples=8):
    source = _source('cifar100', labels=True)
    one = [e['labels'].numpy() for e in source.train_examples(1).take(12)]
    two = [e['labels'].numpy() for e in source.train_examples(1).take(12)]
    assert one == two


def test_images_of_varying_size_need_an_image_size():
  with tfds.testing.mock_data(num_examples=3):
    with pytest.raises(errors.UserError, match=r'any x any x 3.*--config.data.image_size'):
      _source('oxford_flowers102')
    flowers = _source('oxford_flowers102', image_size=12, labels=True)
    assert flowers.num_classes == 102
    assert flowers.split('train')[0].shape == (3, 12, 12, 3)


def test_names_that_are_no_image_sets_are_one_paragraph():
  with pytest.raises(errors.UserError, match=r"'cifar1000' \(did you mean cifar100.*rings"):
    _source('cifar1000')
  with pytest.raises(errors.UserError, match="'imdb_reviews' holds no images: its features"):
    _source('imdb_reviews')
  with pytest.raises(errors.UserError, match='no class feature at all'):
    _source('celeb_a', labels=True)
  with pytest.raises(errors.UserError, match='coarse_label'):
    _source('cifar100', labels=True, label_feature='fine')


def test_the_four_named_sets_keep_their_definitions():
  with tfds.testing.mock_data(num_examples=2):
    for name, shape in images.IMAGE_SHAPES.items():
      source = _source(name)
      assert source.event_shape == shape and source.split('train')[0].shape == (2,) + shape


def test_unprepared_tfds_data_is_the_unavailable_error(tmp_path):
  source = _source('svhn_cropped', data_dir=str(tmp_path))
  assert source.event_shape == (32, 32, 3)  # from TFDS's code, before any data
  assert source.facts()['counts'] == {'train': None, 'validation': None, 'test': None}
  with pytest.raises(images.DataUnavailableError, match='tfds build svhn_cropped'):
    source.split('test')


@offline_data.needs_idx
def test_offline_fashion_mnist_labels_come_from_the_idx_files():
  source = image_sources.from_config(
      {'name': 'fashion_mnist', 'source': 'idx', 'labels': True, 'train_split': 'train[:500]'}
  )
  assert source.class_names[:2] == ['T-shirt/top', 'Trouser']
  x, y = source.split('train')
  label_file = os.path.join(images.FASHION_MNIST_IDX_DIR, images.IDX_LABEL_FILES['train'])
  np.testing.assert_array_equal(y, images.read_idx(label_file)[:500])
  facts = source.facts()
  assert facts['counts'] == {'train': 500, 'validation': 1000, 'test': 10_000}
  source.check(facts)
  with pytest.raises(errors.UserError, match='the train split had 600 images, now 500'):
    source.check({**facts, 'counts': {**facts['counts'], 'train': 600}})
  assert source.sigma_heuristic() == pytest.approx(
      kernels.median_heuristic_sigma(x, max_points=2000, seed=0)
  )
