"""Stopping a run cleanly: SIGTERM (a preemption) or Ctrl-C saves a checkpoint at the step
reached, then `errors.Preempted` ends the run with the message that says how to resume.

On one worker, `StopSignals` asks the loop to stop after the current step. Under several
workers, SIGTERM to any of them must stop all at the same step: TF's
`PreemptionCheckpointHandler` (`handler`) agrees on the step and saves on every worker; Ctrl-C
stays with `StopSignals`.
"""

import os
import signal
import threading

from absl import logging
import tensorflow as tf

from tfsmooth import errors


def message(signal_name, step, total, checkpoint_dir):
  """What a stopped run says: where it stopped, what it saved, how to resume."""
  return (
      f'{signal_name} received: stopped at step {step}/{total} and saved '
      f'{os.path.join(checkpoint_dir, f"ckpt-{step}")}. Rerun the same command to resume '
      'from there.'
  )


class StopSignals:
  """SIGTERM and SIGINT (those of `signums`) ask the loop to checkpoint and stop after the
  current step (`received` names the signal); a second Ctrl-C interrupts at once. Signal
  handlers exist only in the main thread: elsewhere this catches nothing."""

  def __init__(self, signums):
    self.received = None
    self._signums = signums if threading.current_thread() is threading.main_thread() else ()
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.received and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.received = signal.Signals(signum).name
    logging.warning('%s received: saving a checkpoint after this step.', self.received)

  def __enter__(self):
    self._previous = {s: signal.signal(s, self._handle) for s in self._signums}
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


def handler(strategy, saved, step_fn, total):
  """Under several workers, a `PreemptionCheckpointHandler`: SIGTERM to any worker saves
  checkpoint `step_fn()` on all of them (`saved`: the run's `checkpoints.RunCheckpoints`), then
  raises `errors.Preempted`; the loop calls its `save_checkpoint_if_preempted()` after each call.
  None otherwise (`StopSignals` then handles SIGTERM)."""
  if not strategy.extended._in_multi_worker_mode():  # pylint: disable=protected-access
    return None

  def preempted():
    saved.remove_scratch()
    raise errors.Preempted(message('SIGTERM', step_fn(), total, saved.directory))

  return tf.distribute.experimental.PreemptionCheckpointHandler(
      strategy.cluster_resolver,
      tf.train.CheckpointManager(saved.checkpoint, saved.directory, 1),
      termination_config=tf.distribute.experimental.TerminationConfig(
          exit_fn=preempted, save_fn=lambda: saved.save(step_fn())
      ),
  )
