"""absl and ml_collections flag mistakes worded as one paragraph that names the flag and the fix.

absl parses the flags inside `app.run`, before `main`, and raises its own errors there; a
config flag (ml_collections `DEFINE_config_file`) loads its file meanwhile, or lazily later. The
runner (`tfsmooth.programs.cli.parse_flags`) hands what went wrong to this module:

  * `parse_error_message`: an exception raised while absl parsed the flags. An unknown flag, a
    value of the wrong type (`--config.train.steps=1.5`, a tuple of the wrong element type), a
    missing required flag, a violated `mark_flags_as_mutual_exclusive` group (worded with the
    flags' help), a config file that does not exist or is not Python or refuses its variant
    (`--config=nope.py`, `rings.py:nope`), an unknown config key (`--config.train.stepz=10`,
    with ml_collections' "Did you mean" suggestion and the fields there are).
  * `config_mistake`: what a successful parse leaves unchecked: a config file that fails only
    when first read, a tuple override whose elements are not of the file's element type.

Exceptions that are no user's mistake (a bug in a config file) get no message, so the caller
lets them keep their traceback.
"""

import difflib
import os
import re

from absl import flags
import ml_collections
from ml_collections.config_flags import config_flags as ml_config_flags
from ml_collections.config_flags import config_path

HELP = 'Run with --helpshort to list the flags.'
_CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs')
# absl's error of a `mark_flags_as_mutual_exclusive` group, one line of its validators' message.
_EXCLUSIVE = re.compile(
    r'^flags [^\n]*?: (Exactly|At most) one of \(([\w, ]+)\) must have a value other than None\.$',
    re.M,
)


def parse_error_message(error, argv, flag_values):
  """The paragraph for `error`, raised while `flag_values` parsed `argv`, or None when it is
  no user's mistake (the caller re-raises it)."""
  if isinstance(error, flags.Error):
    return _flag_error_message(str(error), argv, flag_values)
  if isinstance(error, SyntaxError):  # only config files are executed while flags are parsed
    return (
        f'The config file {error.filename} is not valid Python ({error.msg}, line '
        f'{error.lineno}): a config flag takes a .py file whose get_config() returns the '
        f"ConfigDict; the project's are in {_relative(_CONFIG_DIR)}/."
    )
  if isinstance(error, (AttributeError, KeyError, IndexError, OSError)):
    return _config_mistake(argv, flag_values, error)
  return None


def config_mistake(argv, flag_values):
  """The paragraph for a config flag of parsed `flag_values` whose file fails to load or whose
  tuple override has elements of the wrong type, or None."""
  return _config_mistake(argv, flag_values)


def clause(text):
  """`text` without its final full stop (an ellipsis kept), to sit inside a sentence."""
  return text[:-1] if text.endswith('.') and not text.endswith('..') else text


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
  expected type of a config field, a mutually exclusive group with its flags' help."""
  if _EXCLUSIVE.search(message):
    worded = _EXCLUSIVE.sub(lambda match: _exclusive(match, flag_values), message)
    return f'{worded.rstrip(".")}. {HELP}'
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
  return f'{message.rstrip(".")}. {HELP}'


def _exclusive(match, flag_values):
  """A violated `mark_flags_as_mutual_exclusive` group as a sentence: the flags to choose
  from, what was given, and each flag's help (which says what it is for)."""
  quantity, names = match.group(1).lower(), match.group(2).split(', ')
  given = [f'--{n}={flag_values[n].value}' for n in names if flag_values[n].value is not None]
  choices = ', '.join(f'--{n}' for n in names[:-1]) + f' and --{names[-1]}'
  if not given:
    got = 'neither' if len(names) == 2 else 'none of them'
  else:
    got = ('both' if len(given) == 2 == len(names) else 'several') + f' ({", ".join(given)})'
  helps = ' '.join(f'--{n}: {clause(flag_values[n].help)}.' for n in names)
  return f'Pass {quantity} one of {choices}; got {got}. {helps}'


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
