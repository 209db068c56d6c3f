"""Readable logs for the binaries: progress and evaluation lines, not TensorFlow's start-up noise.

Call `quiet()` at the top of a binary, before anything imports TensorFlow:

  from tfsmooth import logs
  logs.quiet()

It loads TensorFlow and lists its devices with the process's stderr (file descriptor 2) sent to
a buffer, then writes back every line but the known start-up noise: the absl pre-init banner,
the oneDNN and CPU-instruction notices, and, on a host without CUDA drivers, the cuInit failure.
Anything else printed meanwhile (a real error) still shows. Later on it drops TensorFlow's
Python INFO lines, its checkpoint "Sharding callback" timings, its tf.function retracing
warnings and the deprecation warnings that TF-GAN's metric code triggers; C++ messages keep
TF_CPP_MIN_LOG_LEVEL=2 (errors only) unless the user set it.
"""

import logging
import os
import re
import sys
import tempfile

_NOISE = re.compile(
    '|'.join(
        [
            r'^WARNING: All log messages before absl::InitializeLog\(\) is called',
            r'port\.cc:\d+\] oneDNN custom operations are on',
            r'cpu_feature_guard\.cc:\d+\]',
            r'cudart_stub\.cc:\d+\] Could not find cuda drivers',
        ]
    )
)
_NO_DRIVER = re.compile(r'cudart_stub\.cc:\d+\] Could not find cuda drivers')
_CUINIT = re.compile(r'cuda_platform\.cc:\d+\] failed call to cuInit')
_PREFIX = re.compile(r'^([IWEF]\d{4} |WARNING: )')


class _DropNoise(logging.Filter):
  """Drops TensorFlow's checkpoint "Sharding callback" timings (logged through absl), its
  tf.function retracing warnings and the deprecation warnings TF-GAN's code triggers."""

  def filter(self, record):
    message = record.getMessage()
    return not (
        'Sharding callback duration' in message
        or 'triggered tf.function retracing' in message
        or ('tensorflow_gan' in message and 'is deprecated' in message)
    )


def keep(lines):
  """The lines of captured start-up stderr worth showing (a dropped message's continuation
  lines, which lack the 'I0000 ' style prefix, go with it)."""
  no_driver = any(_NO_DRIVER.search(line) for line in lines)
  kept, dropping = [], False
  for line in lines:
    if _PREFIX.match(line) or not dropping:
      dropping = bool(_NOISE.search(line) or (no_driver and _CUINIT.search(line)))
    if not dropping:
      kept.append(line)
  return kept


def quiet():
  """Imports TensorFlow without its start-up noise and quiets its Python logger (idempotent)."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if 'tensorflow' not in sys.modules:
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buffer:
      os.dup2(buffer.fileno(), 2)
      try:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top

        tf.config.list_physical_devices()
      finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        buffer.seek(0)
        lines = buffer.read().decode(errors='replace').splitlines()
        sys.stderr.write(''.join(line + '\n' for line in keep(lines)))
  logging.getLogger('tensorflow').setLevel(logging.WARNING)
  for name in ('tensorflow', 'absl'):
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropNoise) for f in logger.filters):
      logger.addFilter(_DropNoise())
