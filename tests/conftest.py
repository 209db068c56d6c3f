"""Test setup: quiet TF logs and four logical CPU devices for tf.distribute tests."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests import offline_data  # noqa: E402

NUM_LOGICAL_CPUS = 2
_cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * NUM_LOGICAL_CPUS
)


@pytest.fixture
def seed():
  return tf.constant([1, 2], tf.int32)


@pytest.fixture(scope='session')
def fashion_mnist_idx():
  """Use through `offline_data.needs_idx`: fails under CI without the files, else skips."""
  offline_data.require()


def pytest_terminal_summary(terminalreporter):
  """Says how many tests skipped for want of the IDX files, even under -q without -rs."""
  skipped = [
      report
      for report in terminalreporter.stats.get('skipped', [])
      if 'Fashion-MNIST IDX files missing' in str(report.longrepr)
  ]
  if skipped:
    terminalreporter.write_sep('=', 'missing offline data', yellow=True)
    terminalreporter.write_line(
        f'{len(skipped)} test(s) skipped: Fashion-MNIST IDX files missing from '
        f'{offline_data.images.FASHION_MNIST_IDX_DIR} ({offline_data.INSTALL}). '
        'With the env var CI set they fail instead.'
    )
