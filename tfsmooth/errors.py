"""User mistakes (a wrong flag, config, file or workdir) reported as one paragraph, not a traceback.

Library code raises `UserError` (a `ValueError`) with a message that names the problem and the
fix. The absl binaries start with `run_main(main)`, which is `app.run(reported(main))` with
the flags checked as well:

  * `reported(main)`: a `UserError`, a missing file or data set, a path that is a file where a
    directory is needed (or the reverse) or is not permitted, an `app.UsageError`, or Ctrl-C is
    printed as one paragraph on stderr with exit status 2 (130 for Ctrl-C); a `Preempted` run
    (checkpoint saved on SIGTERM) exits 0; any other exception is a bug and keeps its traceback.
  * `parse_flags`, which `run_main` hands to absl: flags are parsed inside `app.run` before
    `main` runs, so their mistakes never reach `reported`. An unknown flag, a value of the wrong
    type (`--config.train.steps=1.5`, a tuple of the wrong element type), a missing required
    flag, a config file that does not exist or is not Python or refuses its variant
    (`--config=nope.py`, `rings.py:nope`), an unknown config key (`--config.train.stepz=10`,
    with ml_collections' "Did you mean" suggestion and the fields there are) and a directory
    flag that names an existing file (`--workdir=notes.txt`) all end the program with one
    paragraph and exit status 2, before `main` runs, so nothing is written. `--help` and the
    other absl flags behave as in absl.
  * Then the paths (`tfsmooth/paths.py`; local paths or URLs, read and written through
    tf.io.gfile): a directory flag or `--config.data.path` on a file system TensorFlow does
    not have here (`s3://...` without its plugin) or that exists but cannot be read, a
    `--config.data.path` that does not exist, and a directory the program writes (`WRITE`)
    that cannot be made or written end the program the same way, every read checked before
    the writes (which leave nothing behind).
"""

import difflib
import functools
import os
import re
import sys
import textwrap

from absl import app
from absl import flags
import ml_collections
from ml_collections.config_flags import config_flags as ml_config_flags
from ml_collections.config_flags import config_path

_HELP = 'Run with --helpshort to list the flags.'
_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs')
# OSErrors raised by file operations on the user's paths (FileNotFoundError included).
_PATH_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


class UserError(ValueError):
  """A mistake the user can fix; the message says what was wrong and what to do."""


def paragraph(message, width=100):
  """`message` as one wrapped paragraph."""
  return textwrap.fill(' '.join(str(message).split()), width)


def _exit_with(message, status=2):
  print(paragraph(message), file=sys.stderr, flush=True)
  sys.exit(status)


def reported(main):
  """Wraps an absl `main(argv)` so that user errors end the program with one paragraph."""

  @functools.wraps(main)
  def wrapper(argv):
    try:
      return main(argv)
    except UserError as e:
      _exit_with(f'Error: {e}')
    except _PATH_ERRORS as e:
      # A library message names the flag to change; a bare OS message ("[Errno 17] File
      # exists: 'x'") only names the path.
      hint = ' Check the paths given in the flags.' if e.filename is not None else ''
      _exit_with(f'Error: {e}{hint}')
    except app.UsageError as e:
      _exit_with(f'Error: {e}. {_HELP}')
    except Preempted as e:
      _exit_with(str(e), status=0)
    except KeyboardInterrupt:
      _exit_with(
          'Interrupted (Ctrl-C); a rerun with the same flags resumes from the last checkpoint.',
          status=130,
      )

  return wrapper


class Preempted(Exception):
  """Training stopped on a termination signal after saving a checkpoint; a rerun resumes."""


# How a program uses a directory flag (the values of `run_main`'s `directory_flags` mapping).
READ = 'read'  # readable where it exists (as every directory flag)
WRITE = 'write'  # also made if missing, and a small file written and removed in it
_FILE = 'file'  # --config.data.path: a file that must exist and be readable


def run_main(main, directory_flags=('workdir',)):
  """Runs an absl binary: `app.run(reported(main))`, its flags parsed by `parse_flags`.

  `directory_flags` names the flags that hold a directory: one that names an existing file, or
  lies under one, or whose file system is not available, or that cannot be read, is refused
  before `main` runs. Given as a mapping {name: READ or WRITE}, those the program writes
  (WRITE) are made and checked to be writable too.
  """

  def parser(argv):
    try:
      return parse_flags(argv, directory_flags)
    except UserError as e:
      _exit_with(f'Error: {e}')

  app.run(reported(main), flags_parser=parser)


def parse_flags(argv, directory_flags=(), flag_values=None):
  """Parses `argv` into `flag_values` (default absl's FLAGS) and returns the other arguments.

  Raises `UserError`, with one paragraph naming the flag and the fix, for the user's mistakes
  listed in the module docstring. Exceptions that are no user's mistake (a bug in a config
  file) propagate unchanged.
  """
  flag_values = flags.FLAGS if flag_values is None else flag_values
  argv = list(argv)
  try:
    remaining = flag_values(argv)
  except flags.Error as e:
    raise UserError(_flag_error_message(str(e), argv, flag_values)) from None
  except SyntaxError as e:  # only config files are executed while flags are parsed
    raise UserError(
        f'The config file {e.filename} is not valid Python ({e.msg}, line {e.lineno}): a '
        'config flag takes a .py file whose get_config() returns the ConfigDict; '
        f"the project's are in {_relative(_CONFIG_DIR)}/."
    ) from None
  except (AttributeError, KeyError, IndexError, OSError) as e:
    message = _config_mistake(argv, flag_values, e)
    if message is None:
      raise
    raise UserError(message) from None
  message = _config_mistake(argv, flag_values) or _directory_mistake(directory_flags, flag_values)
  if message:
    raise UserError(message)
  _check_paths(directory_flags, flag_values)
  return remaining


def _relative(path):
  relative = os.path.relpath(path)
  return path if relative.startswith('..') else relative


def _config_flags(argv, flag_values):
  """[(flag, the argument given, [(override path, its argument)])] of the config flags in argv."""
  argv = flags.FLAGS.read_flags_from_files(argv, force_gnu=False)  # as ml_collections does
  out = []
  for name in list(flag_values):
    flag = flag_values[name]
    if not ml_config_flags.is_config_flag(flag) or flag.name != name:
      continue
    given, overrides = None, {}
    for i, arg in enumerate(argv):
      match = re.match(rf'^--?{re.escape(name)}(=|$)', arg)
      if match:
        given = arg[match.end() :] if match.group(1) else (argv[i + 1 :] or [None])[0]
      match = re.match(rf'^--?(no)?{re.escape(name)}\.([^=]+)', arg)
      if match:
        overrides.pop(match.group(2), None)  # ml_collections applies the last one
        overrides[match.group(2)] = arg
    out.append((flag, given, list(overrides.items())))
  return out


def _config_mistake(argv, flag_values, error=None):
  """The message for a config flag's unloadable file, unknown key or mistyped override, or
  None if there is none. With `error` (parsing failed) the config file is loaded again to find
  the override at fault; None then means `error` is not the user's mistake."""
  for flag, given, overrides in _config_flags(argv, flag_values):
    if given is None:
      continue
    arg = f'--{flag.name}={given}'
    try:
      if error is None:
        _touch(flag.value)
      if error is None and not any(_is_tuple(flag.value, path) for path, _ in overrides):
        continue
      config = flag.parser.parse(given)  # the config file's own values, before the overrides
      _touch(config)
    except OSError as e:
      reason = str(e.__cause__ or e).strip().splitlines()[-1].strip()
      return (
          f'Cannot load the config file of {arg}: {reason}. Pass the path of an existing '
          'Python config file (a variant, where the file has them, goes after a colon, '
          f"e.g. rings.py:baseline); the project's are in {_relative(_CONFIG_DIR)}/."
      )
    except Exception:  # pylint: disable=broad-except
      continue  # reported by absl's own error, or a bug in the config file
    for path, override in overrides:
      if error is not None:
        message = _unknown_key(flag.name, config, path, override, arg, error)
      else:
        message = _mistyped_tuple(flag, config, path, override)
      if message:
        return message
  return None


def _touch(config):
  """Raises the OSError of a config file that failed to load (ml_collections defers it)."""
  if config is not None:
    config.get('')


def _is_tuple(config, path):
  try:
    return isinstance(config_path.get_value(path, config), tuple)
  except Exception:  # pylint: disable=broad-except
    return False


def _unknown_key(name, config, path, override, arg, error):
  """The message for an override whose path is not in `config`, or None."""
  try:
    fields = config_path.split(path)
  except ValueError:
    return f'Cannot read the config key in {override}: write it as --{name}.group.field=value.'
  node, where = config, name
  for field in fields:
    if isinstance(node, ml_collections.ConfigDict) and isinstance(field, str):
      if field not in node:
        keys = sorted(node.keys())
        suggestion = _suggestion(error, field, keys)
        return (
            f'Unknown config key in {override}: {where} has no field "{field}". {suggestion}'
            f'The fields of {where} are: {", ".join(keys)}. Fix the key; every key and its '
            f'default is in the config file ({arg}).'
        )
      node = node[field]
    elif isinstance(node, (tuple, list)) and isinstance(field, int):
      if not -len(node) <= field < len(node):
        return f'Unknown config key in {override}: {where} has {len(node)} elements.'
      node = node[field]
    else:
      kind = type(node).__name__
      return (
          f'Unknown config key in {override}: {where} is a value ({kind} {node!r}), not a '
          f'group of fields, so it has no "{field}". Set it with --{where}=VALUE.'
      )
    where = f'{where}.{field}' if isinstance(field, str) else f'{where}[{field}]'
  return None


def _suggestion(error, field, keys):
  """ml_collections' 'Did you mean "x" instead of "y"?' for `field`, else a close key's."""
  text = ''
  while error is not None:
    text += ' ' + ' '.join(str(a) for a in error.args)
    error = error.__context__
  match = re.search(rf'Did you mean "[^"]+" instead of "{re.escape(field)}"\?', text)
  if match:
    return match.group(0) + ' '
  close = difflib.get_close_matches(field, keys, n=1)
  return f'Did you mean "{close[0]}" instead of "{field}"? ' if close else ''


def _mistyped_tuple(flag, config, path, override):
  """The message for a tuple override whose elements are not of the config file's element
  type (ml_collections keeps `--config.model.hidden_sizes=abc` as the string tuple ('abc',))."""
  try:
    default = config_path.get_value(path, config)
    value = config_path.get_value(path, flag.value)
  except Exception:  # pylint: disable=broad-except
    return None
  if not isinstance(default, tuple) or not default or not isinstance(value, tuple):
    return None
  kind = type(default[0])
  if kind not in (int, float, str, bool) or any(type(v) is not kind for v in default):
    return None
  accepted = (int, float) if kind is float else kind

  def matches(v):
    return isinstance(v, accepted) and (kind is bool or not isinstance(v, bool))

  if all(matches(v) for v in value):
    return None
  example = ','.join(str(v) for v in default)
  return (
      f'Wrong type in {override}: {flag.name}.{path} holds {kind.__name__} values (the config '
      f'file sets {default!r}), got {value!r}. Give a comma-separated list of '
      f'{kind.__name__}s, e.g. --{flag.name}.{path}={example}.'
  )


def _flag_error_message(message, argv, flag_values):
  """absl's flag error as a paragraph: the config file's own error without its traceback, the
  expected type of a config field."""
  match = re.match(r'flag (--\S+?): Error whilst parsing config file:.*\n(.+?)\s*$', message, re.S)
  if match:
    refusal = re.sub(r'^ValueError: ', '', match.group(2).strip().splitlines()[-1])
    if re.search(r'get_config\(\) takes 0 positional arguments', refusal):
      refusal = 'the file has no variants, so drop the colon and what follows it.'
    return f'The config file refused {match.group(1)}: {refusal}'
  match = re.match(r'flag --(\w+)\.([^=\s]+)=(.*?): (.*)$', message, re.S)
  if match:
    name, path, value, detail = match.groups()
    field = _config_field(argv, flag_values, name, path)
    if field:
      kind, default = field
      if kind == 'bool':
        kind, detail, example = 'bool', 'true or false', 'true'
      else:
        example = None if default is None else str(default)
      article = 'an' if kind[:1] in 'aeiou' else 'a'
      return (
          f'Wrong type in --{name}.{path}={value}: {name}.{path} takes {article} {kind} '
          f'({detail}); the config file sets {default!r}. Give {article} {kind}'
          + (f', e.g. --{name}.{path}={example}.' if example else '.')
      )
  return f'{message.rstrip(".")}. {_HELP}'


def _config_field(argv, flag_values, name, path):
  """(type name, the config file's value) of a config flag's field, or None."""
  for flag, given, _ in _config_flags(argv, flag_values):
    if flag.name != name or given is None:
      continue
    try:
      config = flag.parser.parse(given)
      kind = config_path.get_type(path, config)
      default = config_path.get_value(path, config)
    except Exception:  # pylint: disable=broad-except
      return None
    return getattr(kind, '__name__', str(kind)), default
  return None


def _clause(text):
  """`text` without its final full stop (an ellipsis kept), to sit inside a sentence."""
  return text[:-1] if text.endswith('.') and not text.endswith('..') else text


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
        f'--{name}={given} {where}, not a directory (--{name}: {_clause(flag_values[name].help)}). '
        f'Give a directory path, or move the file away.'
    )
  return None


def _check_paths(directory_flags, flag_values):
  """Raises the `UserError` of a directory flag, or of a config flag's data.path (read when
  data.name is 'file'), that `tfsmooth.paths` refuses; every read is checked before the first
  directory is made."""
  from tfsmooth import paths  # pylint: disable=g-import-not-at-top  # imports TensorFlow

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
        raise UserError(f'{flag}={path} does not exist: give the path of your points file.')
  for flag, (path, mode) in given.items():
    if mode == WRITE:
      paths.check_writable(path, flag)
