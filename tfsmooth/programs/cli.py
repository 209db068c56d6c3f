"""The runner of the absl binaries in launch/: flags checked before `main`, user mistakes as one
paragraph, not a traceback.

A binary defines its flags and ends with

  if __name__ == '__main__':
    cli.run_main(main, {'workdir': cli.WRITE})

where `main()` takes no arguments and imports what it runs (TensorFlow is imported after the
runner has quieted its start-up, `tfsmooth.logs.quiet`). `run_main` is `app.run` with:

  * `parse_flags` as absl's flag parser: flags are parsed inside `app.run` before `main` runs,
    so their mistakes never reach `reported`. An unknown flag, a value of the wrong type, a
    missing required flag, a violated `flags.mark_flags_as_mutual_exclusive` group, a config
    file that cannot be loaded, an unknown config key (the messages: `flag_errors`), a directory
    flag that names an existing file (`--workdir=notes.txt`) and an argument left over after the
    flags all end the program with one paragraph and exit status 2, before `main` runs, so nothing is
    written. `--help` and the other absl flags behave as in absl.
  * Then the paths (`tfsmooth/paths.py`; local paths or URLs, read and written through
    tf.io.gfile): a directory flag or `--config.data.path` on a file system TensorFlow does not
    have here (`s3://...` without its plugin) or that exists but cannot be read, a
    `--config.data.path` that does not exist, and a directory the program writes (`WRITE`)
    that cannot be made or written end the program the same way, every read checked before the
    writes (which leave nothing behind).
  * `reported(main)`: a `UserError` (a write the storage refused, `writes.WriteFailed`, also
    says what the run in whose workdir it failed has saved), a missing file or data set, a
    path that is a file where a directory is needed (or the reverse) or is not permitted, an
    `app.UsageError`, or Ctrl-C is printed as one paragraph on stderr with exit status 2 (130
    for Ctrl-C); a `Preempted` run (checkpoint saved on SIGTERM) exits 0; any other exception
    is a bug and keeps its traceback. Scripts with their own `main(argv)` (benchmarks/) use `app.run(reported(main))`.
"""

import functools
import os
import sys

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections.config_flags import config_flags as ml_config_flags

from tfsmooth import errors
from tfsmooth import logs
from tfsmooth.programs import flag_errors

# How a program uses a directory flag (the values of `run_main`'s `directory_flags` mapping).
READ = 'read'  # readable where it exists (as every directory flag)
WRITE = 'write'  # also made if missing, and a small file written and removed in it
_FILE = 'file'  # --config.data.path: a file that must exist and be readable

# OSErrors raised by file operations on the user's paths (FileNotFoundError included).
_PATH_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


def _exit_with(message, status=2):
  print(errors.paragraph(message), file=sys.stderr, flush=True)
  sys.exit(status)


def reported(main):
  """Wraps an absl `main(argv)` so that user errors end the program with one paragraph."""

  @functools.wraps(main)
  def wrapper(argv):
    try:
      return main(argv)
    except errors.UserError as e:
      _exit_with(f'Error: {_with_saved(e)}')
    except _PATH_ERRORS as e:
      # A library message names the flag to change; a bare OS message ("[Errno 17] File
      # exists: 'x'") only names the path.
      hint = ' Check the paths given in the flags.' if e.filename is not None else ''
      _exit_with(f'Error: {e}{hint}')
    except app.UsageError as e:
      _exit_with(f'Error: {e}. {flag_errors.HELP}')
    except errors.Preempted as e:
      _exit_with(str(e), status=0)
    except KeyboardInterrupt:
      _exit_with(
          'Interrupted (Ctrl-C); a rerun with the same flags resumes from the last checkpoint.',
          status=130,
      )

  return wrapper


def _with_saved(error):
  """A `writes.WriteFailed` that does not say what the run had saved (a record or a plot written
  outside the trainer) says it when the file lies in a run's workdir; other errors as they are."""
  writes = sys.modules.get('tfsmooth.writes')  # never imported: no write can have failed
  if writes is None or not isinstance(error, writes.WriteFailed) or error.saved:
    return error
  from tfsmooth.train import checkpoints  # pylint: disable=g-import-not-at-top

  saved = checkpoints.saved_near(error.path)
  return error.with_saved(saved) if saved else error


def run_main(main, directory_flags=('workdir',), verbosity=logging.INFO):
  """Runs a binary's `main()` (no arguments) under `app.run`, its flags parsed by `parse_flags`.

  First quiets TensorFlow's start-up (`logs.quiet`) and sets absl's log `verbosity` unless it
  is None (absl's default, warnings, then; a `--verbosity` flag wins either way). `directory_flags` names the flags that hold a directory: one
  that names an existing file, or lies under one, or whose file system is not available, or
  that cannot be read, is refused before `main` runs. Given as a mapping {name: READ or WRITE},
  those the program writes (WRITE) are made and checked to be writable too. Arguments left
  over after the flags are refused as well.
  """
  logs.quiet()
  if verbosity is not None:
    logging.set_verbosity(verbosity)

  def parser(argv):
    try:
      return parse_flags(argv, directory_flags, arguments=False)
    except errors.UserError as e:
      _exit_with(f'Error: {e}')

  app.run(reported(lambda argv: main()), flags_parser=parser)


def parse_flags(argv, directory_flags=(), flag_values=None, arguments=True):
  """Parses `argv` into `flag_values` (default absl's FLAGS) and returns the other arguments
  (the program name first), which are refused unless `arguments` (the binaries take none).

  Raises `errors.UserError`, with one paragraph naming the flag and the fix, for the user's
  mistakes listed in the module docstring. Exceptions that are no user's mistake (a bug in a
  config file) propagate unchanged.
  """
  flag_values = flags.FLAGS if flag_values is None else flag_values
  argv = list(argv)
  try:
    remaining = flag_values(argv)
  except (flags.Error, SyntaxError, AttributeError, KeyError, IndexError, OSError) as e:
    message = flag_errors.parse_error_message(e, argv, flag_values)
    if message is None:
      raise
    raise errors.UserError(message) from None
  if not arguments and len(remaining) > 1:
    raise errors.UserError(f'Unexpected arguments: {remaining[1:]}. {flag_errors.HELP}')
  message = flag_errors.config_mistake(argv, flag_values) or _directory_mistake(
      directory_flags, flag_values
  )
  if message:
    raise errors.UserError(message)
  _check_paths(directory_flags, flag_values)
  return remaining


def _directory_mistake(directory_flags, flag_values):
  """The message for a directory flag that names a file or lies under one, or None."""
  for name in directory_flags:
    if name not in flag_values or not flag_values[name].value:
      continue
    if '://' in os.fspath(flag_values[name].value):
      continue  # a URL: `_check_paths` asks its file system
    path = os.path.abspath(os.fspath(flag_values[name].value))
    node = path
    while not os.path.lexists(node) and os.path.dirname(node) != node:
      node = os.path.dirname(node)
    if os.path.isdir(node):
      continue
    given = flag_values[name].value
    where = 'names an existing file' if node == path else f'lies under {node}, which is a file'
    return (
        f'--{name}={given} {where}, not a directory (--{name}: '
        f'{flag_errors.clause(flag_values[name].help)}). Give a directory path, or move the '
        'file away.'
    )
  return None


def _check_paths(directory_flags, flag_values):
  """Raises the `UserError` of a directory flag, or of a config flag's data.path (read when
  data.name is 'file'), that `tfsmooth.paths` refuses; every read is checked before the first
  directory is made."""
  # Imported here: tfsmooth.paths imports TensorFlow, which a binary imports only after
  # `run_main` has quieted its start-up.
  from tfsmooth import paths  # pylint: disable=g-import-not-at-top

  modes = dict(directory_flags) if isinstance(directory_flags, dict) else {}
  given = {n: flag_values[n].value for n in directory_flags if n in flag_values}
  given = {f'--{n}': (v, modes.get(n)) for n, v in given.items() if v}
  for name in list(flag_values):
    flag = flag_values[name]
    if ml_config_flags.is_config_flag(flag) and flag.name == name and flag.value is not None:
      data = flag.value.get('data')
      if (
          isinstance(data, ml_collections.ConfigDict)
          and data.get('name') == 'file'
          and data.get('path')
      ):
        given[f'--{name}.data.path'] = (data.path, _FILE)
  for flag, (path, mode) in given.items():
    if mode != WRITE and not paths.check_readable(path, flag, directory=mode != _FILE):
      if mode == _FILE:
        raise errors.UserError(f'{flag}={path} does not exist: give the path of your points file.')
  for flag, (path, mode) in given.items():
    if mode == WRITE:
      paths.check_writable(path, flag)
