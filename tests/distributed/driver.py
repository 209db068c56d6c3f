"""One worker of a multi-worker evaluation: `python -m tests.distributed.driver KIND OUTPUT.npz`
with TF_CONFIG set; every worker computes its replicas' share and gets the whole result."""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.distributed import tiny_models  # noqa: E402


def main(kind, output):
  strategy = tf.distribute.MultiWorkerMirroredStrategy()
  model = tiny_models.build(kind, strategy)
  np.savez(output, **tiny_models.evaluate(model, strategy))


if __name__ == '__main__':
  main(*sys.argv[1:])
