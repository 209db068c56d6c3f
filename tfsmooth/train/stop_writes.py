"""The writes of one stop of a training run (checkpoints, summaries), and how a refused one ends
the run (`writes.WriteFailed`: one paragraph naming what could not be written, why, the newest
intact checkpoint a rerun resumes from, and the fix), on every worker at the same point.
"""

from absl import logging
import tensorflow as tf

from tfsmooth import writes


class StopWrites:
  """The run's writes of one stop (checkpoints, summaries), and how a failing one ends the run.

  `attempt` makes each write; a `writes.WriteFailed` is kept and the other writes of the stop
  still happen (a failing summary or best checkpoint does not keep the periodic checkpoint
  from being saved). `settle`, at the end of the stop, raises the first failure, saying what
  the run has saved by then (`RunCheckpoints.describe`).

  Only the chief can fail a write (other workers' summaries are no-ops and their scratch saves
  only warn); under several workers, the others would wait for the dead chief in the next
  collective op. So every worker settles at the same points (all make the same attempts:
  writes hold no collective op) with an all-reduce of the failures, and all raise
  `WriteFailed`: the chief its own, the others one that points to the chief's.
  """

  def __init__(self, strategy, saved, workdir):
    self._strategy = strategy
    self._saved = saved
    self._workdir = workdir
    self._several = strategy.extended._in_multi_worker_mode()  # pylint: disable=protected-access
    self._attempts = 0
    self._failure = None

  def attempt(self, write, *args):
    """Returns `write(*args)`, or None if the storage refused it (kept for `settle`)."""
    self._attempts += 1
    try:
      return write(*args)
    except writes.WriteFailed as e:
      if self._failure is None:
        self._failure = e
      else:
        logging.warning('Could not write %s either (%s).', e.what, e.reason)
      return None

  def settle(self, step):
    """Raises the first failure among the writes attempted since the last call, on every
    worker (at step `step`)."""
    if not self._attempts:
      return
    failure, self._failure, self._attempts = self._failure, None, 0
    if self._several and self._count(failure is not None) and failure is None:
      failure = writes.WriteFailed(
          f"the run's files at step {step}",
          self._workdir,
          "the chief worker's write failed (its message says which and why), and every worker "
          'stops with it',
          kind='chief',
      )
    if failure is not None:
      raise failure.with_saved(self._saved.describe())

  def _count(self, failed):
    """The number of replicas whose worker's write failed, on every worker."""
    flags = self._strategy.run(lambda: tf.constant(float(failed)))
    return int(self._strategy.reduce(tf.distribute.ReduceOp.SUM, flags, axis=None))
