"""Trains a tiny MADE with `trainer.train` in its own process, for the multi-worker and signal
tests: `python tests/train/train_driver.py WORKDIR OUTPUT.npz STEPS [STRATEGY [EVAL_EVERY]]`.

STRATEGY is a `strategy.get_strategy` name (`multi_worker` reads TF_CONFIG). With EVAL_EVERY
the run validates (mean NLL of `tiny.HELD_OUT`) and checkpoints every EVAL_EVERY steps, and
keeps its best; the chief's validations take a second longer (as when the chief writes
summaries, or saves to slow storage), so that other workers reach the end of the run first.
Writes the final weights (`arr_0`, `arr_1`, ...) and the result's `step` and
`best_step` (-1: none) to OUTPUT.npz; a preempted run exits 0 like the binaries.
"""

import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402

from tests.train import tiny  # noqa: E402
from tfsmooth import errors  # noqa: E402
from tfsmooth.train import strategy as strategy_lib  # noqa: E402
from tfsmooth.train import trainer  # noqa: E402

CHIEF_LAG = 1.0  # seconds


def _validation_fn(strategy):
  def validation(model):
    if strategy.extended.should_checkpoint:
      time.sleep(CHIEF_LAG)
    return {'validation': float(-np.mean(model.log_prob(tiny.HELD_OUT).numpy()))}

  return validation


def main(workdir, output, steps, strategy='default', eval_every=None):
  config = tiny.config(int(steps))
  if eval_every:
    config.update(eval_every=int(eval_every), checkpoint_every=int(eval_every))
  strategy = strategy_lib.get_strategy(strategy)
  try:
    result = trainer.train(
        tiny.model,
        tiny.dataset,
        config,
        workdir,
        strategy,
        eval_fn=_validation_fn(strategy) if eval_every else None,
    )
  except errors.Preempted as e:
    print(errors.paragraph(str(e)), file=sys.stderr, flush=True)
    return
  weights = [v.numpy() for v in result.model.trainable_variables]
  best_step = -1 if result.best_step is None else result.best_step
  np.savez(output, *weights, step=result.step, best_step=best_step)


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  main(*sys.argv[1:])
