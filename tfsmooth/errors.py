"""User mistakes (a wrong flag, config, file or workdir) reported as one paragraph, not a traceback.

Library code raises `UserError` (a `ValueError`) with a message that names the problem and the
fix. The absl binaries wrap their `main` in `reported`: a `UserError`, a missing file or data
set, or Ctrl-C is printed as one paragraph on stderr with exit status 2 (130 for Ctrl-C); a
`Preempted` run (checkpoint saved on SIGTERM) exits 0; any other exception is a bug and keeps
its traceback.
"""

import functools
import sys
import textwrap


class UserError(ValueError):
  """A mistake the user can fix; the message says what was wrong and what to do."""


def paragraph(message, width=100):
  """`message` as one wrapped paragraph."""
  return textwrap.fill(' '.join(str(message).split()), width)


def reported(main):
  """Wraps an absl `main(argv)` so that user errors end the program with one paragraph."""

  @functools.wraps(main)
  def wrapper(argv):
    try:
      return main(argv)
    except (UserError, FileNotFoundError) as e:
      print(paragraph(f'Error: {e}'), file=sys.stderr, flush=True)
      sys.exit(2)
    except Preempted as e:
      print(paragraph(str(e)), file=sys.stderr, flush=True)
      sys.exit(0)
    except KeyboardInterrupt:
      print(
          'Interrupted (Ctrl-C); a rerun with the same flags resumes from the last checkpoint.',
          file=sys.stderr,
          flush=True,
      )
      sys.exit(130)

  return wrapper


class Preempted(Exception):
  """Training stopped on a termination signal after saving a checkpoint; a rerun resumes."""
