import os
import subprocess
import sys

from tfsmooth import logs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
from tfsmooth import logs
logs.quiet()
from absl import logging
import tensorflow as tf
logging.set_verbosity(logging.INFO)
tf.train.Checkpoint(v=tf.Variable(1.)).save(r'{}')
f = tf.function(lambda x: x + 1)
for n in range(8):
  f(tf.zeros([n]))
import numpy as np
from tfsmooth.evaluation import sample_quality
sample_quality.kid(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32))
logging.info('progress line')
"""


def test_quiet_binary_prints_only_its_own_lines(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  result = subprocess.run(
      [sys.executable, '-c', SCRIPT.format(tmp_path / 'ckpt')],
      cwd=ROOT,
      env=dict(env, PYTHONPATH=ROOT),
      capture_output=True,
      text=True,
      timeout=300,
      check=True,
  )
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].endswith('progress line'), result.stderr


def test_keep_drops_start_up_noise_but_not_errors():
  noise = [
      'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
      'I0000 00:00:1.1 4902 port.cc:153] oneDNN custom operations are on. You may see',
      'I0000 00:00:1.3 4902 cudart_stub.cc:31] Could not find cuda drivers on your machine',
      'E0000 00:00:1.4 4902 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error',
  ]
  guard = [
      'I0000 00:00:1.2 4902 cpu_feature_guard.cc:227] This TensorFlow binary is optimized',
      'To enable the following instructions: AVX2 AVX512F, in other operations, rebuild',
  ]
  real = 'E0000 00:00:1.5 4902 something.cc:1] a real error'
  assert logs.keep(noise[:2] + guard + noise[2:] + [real, 'its second line']) == [
      real,
      'its second line',
  ]
  # With CUDA drivers present, a cuInit failure is a real problem and stays.
  assert logs.keep(noise[3:]) == noise[3:]
