"""Where a run is and how fast it goes: the steps at which the loop stops for logs, evaluations
and checkpoints (`Schedule`), and the training time, speed and ETA (`Progress`)."""

import dataclasses
import time

from absl import logging

from tfsmooth import errors


@dataclasses.dataclass(frozen=True)
class Schedule:
  """Steps of the run and the cadences of logs, evaluations and checkpoints (0: never
  evaluate; the last step always logs, evaluates and checkpoints)."""

  total: int
  steps_per_loop: int
  log_every: int
  eval_every: int
  checkpoint_every: int

  @classmethod
  def of(cls, config):
    """The schedule of `config.train`."""
    steps_per_loop = config.get('steps_per_loop', 1)
    if not isinstance(steps_per_loop, int) or steps_per_loop < 1:
      raise errors.UserError(
          f'train.steps_per_loop must be a positive integer, got '
          f'{steps_per_loop!r}; 1 returns to Python after every step.'
      )
    return cls(
        total=int(config.steps),
        steps_per_loop=steps_per_loop,
        log_every=config.get('log_every', 500),
        eval_every=config.get('eval_every', 0),
        checkpoint_every=config.get('checkpoint_every', 5000),
    )

  def steps_to_next_stop(self, step):
    """Steps the next call may run: up to steps_per_loop, ending on any log, evaluation,
    checkpoint or the last step, so that these happen at the same steps whatever the loop."""
    cadences = (self.log_every, self.eval_every, self.checkpoint_every)
    return min(
        [self.steps_per_loop, self.total - step]
        + [every - step % every for every in cadences if every]
    )

  def logs(self, step):
    return step % self.log_every == 0 or step == self.total

  def evaluates(self, step):
    return bool(self.eval_every and step % self.eval_every == 0 or step == self.total)

  def checkpoints(self, step):
    return step % self.checkpoint_every == 0 or step == self.total


class Progress:
  """Training time and speed: the seconds between logs, less evaluations (`restart` after
  one), add to the checkpointed `train_seconds` (a float64 variable)."""

  def __init__(self, train_seconds, step):
    self._train_seconds = train_seconds
    self._start, self._step = time.perf_counter(), step

  def restart(self):
    self._start = time.perf_counter()

  def log(self, step, total, loss, summaries):
    """Logs step, loss, speed and ETA, and writes the first three to `summaries`."""
    elapsed = time.perf_counter() - self._start
    self._train_seconds.assign_add(elapsed)
    steps_per_sec = (step - self._step) / max(elapsed, 1e-9)
    logging.info(
        'step %d/%d loss %.4f | %.1f steps/s | ETA %s',
        step,
        total,
        loss,
        steps_per_sec,
        format_seconds((total - step) / max(steps_per_sec, 1e-9)),
    )
    summaries.training(step, loss, steps_per_sec)
    self._start, self._step = time.perf_counter(), step


def format_seconds(seconds):
  """H:MM:SS."""
  seconds = int(max(seconds, 0))
  return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'
