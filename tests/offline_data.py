"""The offline Fashion-MNIST IDX files that the image tests read, and what to do without them.

CI installs the Debian package `dataset-fashion-mnist` (see .ci/run), so there a missing file is
a broken setup and the tests that need the files fail. Elsewhere (the env var CI unset or empty)
they skip, and the run's summary says why (see `conftest.pytest_terminal_summary`).
"""

import os

import pytest

from tfsmooth.configs import fashion_mnist
from tfsmooth.data import images
from tfsmooth.evaluation import classifier

FILES = tuple(images.IDX_FILES.values()) + tuple(classifier.LABEL_FILES.values())
INSTALL = 'apt-get install dataset-fashion-mnist'


def missing(idx_dir=None):
  """The Fashion-MNIST IDX files (images and labels) not in `idx_dir`."""
  idx_dir = idx_dir or images.FASHION_MNIST_IDX_DIR
  return [f for f in FILES if not os.path.exists(os.path.join(idx_dir, f))]


def in_ci():
  return bool(os.environ.get('CI'))


def require(idx_dir=None):
  """Nothing if the files are there; else fail under CI, skip (with the reason) elsewhere."""
  absent = missing(idx_dir)
  if not absent:
    return
  reason = (
      f'Fashion-MNIST IDX files missing from {idx_dir or images.FASHION_MNIST_IDX_DIR}: '
      f'{", ".join(absent)} ({INSTALL})'
  )
  if in_ci():
    pytest.fail(f'{reason}; CI is set, so this is a broken setup, not a reason to skip.')
  pytest.skip(reason)


# Marks a test that reads the files. The fixture is session-scoped, so it runs before any module
# fixture that builds a run from the data.
needs_idx = pytest.mark.usefixtures('fashion_mnist_idx')


def tiny_config(variant, train=64, validation=8, test=6, filters=8):
  """`configs/fashion_mnist.py:<variant>` on the first images of the IDX files, with PixelCNN++s
  of `filters` filters and 2 logistics, 2 steps of batch 4 and 2-draw bounds: seconds, not
  minutes. Tests override what they need on top."""
  config = fashion_mnist.get_config(variant)
  config.data.update(
      source='idx',
      train_split=f'train[:{train}]',
      validation_split=f'train[{train}:{train + validation}]',
      validation_examples=validation,
      test_split=f'test[:{test}]',
      test_examples=0,
  )
  for model in (config.model, config.conditional_model):
    model.update(nr_filters=filters, nr_logistic_mix=2)
  config.train.update(steps=2, batch_size=4, eval_every=0, log_every=1, checkpoint_every=2)
  config.eval.update(num_samples=2, batch_size=4, iw_samples=2)
  return config
