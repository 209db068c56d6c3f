"""The project's exceptions for what is no bug: a user's mistake, a run stopped by a signal.

Library code raises `UserError` (a `ValueError`) with a message that names the problem and the
fix; the binaries' runner (`tfsmooth.programs.cli`) prints it as one `paragraph` on stderr with
exit status 2 instead of a traceback. The trainer raises `Preempted` after saving a checkpoint
on a termination signal; the runner ends the program with its message and exit status 0.

This module imports nothing but the standard library, so any module of the package may raise
these without pulling in absl, ml_collections or TensorFlow.
"""

import textwrap


class UserError(ValueError):
  """A mistake the user can fix; the message says what was wrong and what to do."""


class Preempted(Exception):
  """Training stopped on a termination signal after saving a checkpoint; a rerun resumes."""


def paragraph(message, width=100):
  """`message` as one wrapped paragraph."""
  # Never break a path at its hyphens or in the middle: a path copied from a message works.
  return textwrap.fill(
      ' '.join(str(message).split()), width, break_on_hyphens=False, break_long_words=False
  )
