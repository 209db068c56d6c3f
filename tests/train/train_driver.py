"""Trains a tiny MADE with `trainer.train` in its own process, for the multi-worker and signal
tests: `python tests/train/train_driver.py WORKDIR OUTPUT.npz STEPS [STRATEGY]`.

STRATEGY is a `strategy.get_strategy` name (`multi_worker` reads TF_CONFIG). Writes the final
weights to OUTPUT.npz; a preempted run exits 0 like the binaries.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402

from tests.train import tiny  # noqa: E402
from tfsmooth import errors  # noqa: E402
from tfsmooth.train import strategy as strategy_lib  # noqa: E402
from tfsmooth.train import trainer  # noqa: E402


@errors.reported
def main(argv):
  workdir, output, steps = argv[1], argv[2], int(argv[3])
  strategy = strategy_lib.get_strategy(argv[4] if len(argv) > 4 else 'default')
  result = trainer.train(tiny.model, tiny.dataset, tiny.config(steps), workdir, strategy)
  np.savez(output, *[v.numpy() for v in result.model.trainable_variables])


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  main(sys.argv)
