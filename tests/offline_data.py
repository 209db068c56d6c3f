"""The offline Fashion-MNIST IDX files that the image tests read, and what to do without them.

CI installs the Debian package `dataset-fashion-mnist` (see .ci/run), so there a missing file is
a broken setup and the tests that need the files fail. Elsewhere (the env var CI unset or empty)
they skip, and the run's summary says why (see `conftest.pytest_terminal_summary`).
"""

import os

import pytest

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
