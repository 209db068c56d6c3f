"""README.md and RESULTS.md say only what the code answers, checked statically on every run.

A command in the docs drifts silently: a flag renamed, a config key moved, a script removed, a
library function given another signature. Here, without running anything:

  * every shell command of the docs (```sh blocks, and inline `python launch/...` or
    `python benchmarks/...` spans) is tokenised as a shell would (line continuations, quotes,
    `&&` / `;` / `|` / `&`, environment prefixes such as TF_CONFIG=..., `nice`): each
    `python <script>.py` names a script that exists, passes only flags it defines (absl's own
    flags too), with values its enum and number flags accept, passes its required flags and
    not two of a mutually exclusive group; `--config=<file>[:<variant>]` and
    `--config.a.b=<value>` are parsed by ml_collections' own `config_flags` machinery against
    the real config file, so an unknown file, variant or key, or a value of the wrong type,
    fails here as it would fail the binary;
  * a script's flags are read from its source with `ast` (the `DEFINE_*` calls of the script
    and of the repository modules it imports: the binaries import TensorFlow, which is too slow
    to load per script), cross-checked for launch/ against absl's own registry of the binary
    imported in a fresh process;
  * every ```python block parses, and every `tfsmooth` name it imports or reaches by
    attribute (`experiment.Run.create`) exists, called with arguments its signature accepts;
  * every relative link resolves to a file, and the README's module table names files that
    exist and classes and functions (`SmoothedModel`, `*_rows`) that they define.
"""

import ast
import dataclasses
import functools
import importlib
import inspect
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ('README.md', 'RESULTS.md')
SCRIPT_DIRS = ('launch', 'benchmarks')
# Flags every absl binary accepts (app.run defines the help flags, absl.logging the log ones).
ABSL_FLAGS = (
    'help',
    'helpshort',
    'helpfull',
    'helpxml',
    'flagfile',
    'undefok',
    'logtostderr',
    'alsologtostderr',
    'log_dir',
    'v',
    'verbosity',
    'stderrthreshold',
    'showprefixforinfo',
    'only_check_args',
    'pdb',
    'pdb_post_mortem',
    'run_with_pdb',
    'run_with_profiling',
    'profile_file',
    'use_cprofile_for_profiling',
    'logger_levels',
)
_SHELL_WRAPPERS = {'nice': 2, 'time': 0, 'env': 0, 'exec': 0}  # program: options it takes first
_ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')


# ---------------------------------------------------------------------------------------------
# Reading the docs.


@dataclasses.dataclass(frozen=True)
class Block:
  doc: str
  line: int  # 1-based line of the block's first line of code
  lang: str
  text: str

  def where(self):
    return f'{self.doc}:{self.line}'


def _doc_text(doc):
  return (ROOT / doc).read_text(encoding='utf-8')


def fenced_blocks(doc, text=None):
  """The ``` blocks of a Markdown document, with their language tag."""
  text = _doc_text(doc) if text is None else text
  blocks, lang, start, body = [], None, 0, []
  for number, line in enumerate(text.splitlines(), 1):
    stripped = line.strip()
    if lang is None and stripped.startswith('```'):
      lang, start, body = stripped[3:].strip() or 'text', number + 1, []
    elif lang is not None and stripped.startswith('```'):
      blocks.append(Block(doc, start, lang, '\n'.join(body) + '\n'))
      lang = None
    elif lang is not None:
      body.append(line)
  assert lang is None, f'{doc}: a ``` block opened at line {start - 1} is never closed'
  return blocks


def inline_commands(doc, text=None):
  """`python launch/...` and `python benchmarks/...` spans outside the fenced blocks."""
  text = _doc_text(doc) if text is None else text
  found, fenced = [], False
  for number, line in enumerate(text.splitlines(), 1):
    if line.strip().startswith('```'):
      fenced = not fenced
      continue
    if fenced:
      continue
    for span in re.findall(r'`([^`]+)`', line):
      if re.match(r'(nice -n \d+ )?python3? (launch|benchmarks)/', span):
        found.append(Block(doc, number, 'sh', span + '\n'))
  return found


def shell_commands(script):
  """The simple commands of a shell script: argv lists, environment prefixes and wrappers
  (`nice -n 10`, `time`, `env`) removed; quotes, comments and line continuations resolved as
  bash does for the cases the docs use."""
  commands = []
  for line in script.replace('\\\n', ' ').splitlines():
    lexer = shlex.shlex(line, posix=True, punctuation_chars=';&|')
    lexer.whitespace_split = True
    argv = []
    for token in list(lexer) + [';']:
      if token and set(token) <= set(';&|'):
        if argv:
          commands.append(argv)
        argv = []
      else:
        argv.append(token)
  out = []
  for argv in commands:
    while argv and _ASSIGNMENT.match(argv[0]):
      argv = argv[1:]
    while argv and argv[0] in _SHELL_WRAPPERS:
      argv = argv[1 + _SHELL_WRAPPERS[argv[0]] :]
    if argv:
      out.append(argv)
  return out


def python_script_commands(block):
  """(script, arguments) of every `python <dir>/<name>.py ...` command of a shell block."""
  for argv in shell_commands(block.text):
    if re.fullmatch(r'python[0-9.]*', argv[0]) and len(argv) > 1 and argv[1].endswith('.py'):
      yield argv[1], argv[2:]


def _all_blocks():
  blocks = []
  for doc in DOCS:
    blocks += fenced_blocks(doc) + inline_commands(doc)
  return blocks


def _commands():
  out = []
  for block in _all_blocks():
    if block.lang in ('sh', 'bash', 'shell'):
      out += [(block, script, args) for script, args in python_script_commands(block)]
  return out


COMMANDS = _commands()


# ---------------------------------------------------------------------------------------------
# What a script defines, read from its source.


@dataclasses.dataclass
class ScriptFlags:
  kinds: dict  # flag name -> DEFINE_ function name ('DEFINE_string', 'DEFINE_config_file', ...)
  enums: dict  # enum flag name -> allowed values
  required: set
  exclusive: list  # (names, required) of each mutually exclusive group
  sources: list  # files read


def _constant(node):
  try:
    return ast.literal_eval(node)
  except ValueError:
    return None


def _call_name(node):
  func = node.func
  return func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')


def _argument(call, position, keyword):
  for kw in call.keywords:
    if kw.arg == keyword:
      return kw.value
  return call.args[position] if len(call.args) > position else None


def _repository_imports(tree, script_path):
  """Files of the repository modules a module imports (tfsmooth.*, and a benchmark's
  `common`), at any depth of the module."""
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names += [node.module] + [f'{node.module}.{alias.name}' for alias in node.names]
  files = []
  for name in names:
    if name.split('.')[0] == 'tfsmooth':
      base = ROOT.joinpath(*name.split('.'))
      files += [p for p in (base.with_suffix('.py'), base / '__init__.py') if p.is_file()]
    elif '.' not in name and (script_path.parent / f'{name}.py').is_file():
      files.append(script_path.parent / f'{name}.py')
  return files


@functools.cache
def script_flags(script):
  """The flags of a script (its path relative to the repository root), read with `ast`."""
  path = ROOT / script
  result = ScriptFlags({}, {}, set(), [], [])
  todo, seen = [path], set()
  while todo:
    current = todo.pop()
    if current in seen:
      continue
    seen.add(current)
    result.sources.append(current)
    tree = ast.parse(current.read_text(encoding='utf-8'), str(current))
    todo += _repository_imports(tree, path)
    for node in ast.walk(tree):
      if not isinstance(node, ast.Call):
        continue
      name = _call_name(node)
      if name.startswith('DEFINE_') and name != 'DEFINE_alias':
        flag = _constant(_argument(node, 0, 'name'))
        if not isinstance(flag, str):
          continue  # defined under a computed name: not checked
        result.kinds[flag] = name
        if name in ('DEFINE_enum', 'DEFINE_multi_enum'):
          values = _constant(_argument(node, 2, 'enum_values'))
          if values is not None:
            result.enums[flag] = list(values)
        required = _argument(node, 99, 'required')
        if required is not None and _constant(required):
          result.required.add(flag)
      elif name == 'DEFINE_alias':
        alias, original = _constant(_argument(node, 0, 'name')), _constant(node.args[1])
        if isinstance(alias, str):
          result.kinds[alias] = ('alias', original)
      elif name == 'mark_flag_as_required':
        result.required.add(_constant(node.args[0]))
      elif name == 'mark_flags_as_required':
        result.required.update(_constant(node.args[0]) or ())
      elif name == 'mark_flags_as_mutual_exclusive':
        required = _argument(node, 1, 'required')
        result.exclusive.append(
            (list(_constant(node.args[0]) or ()), bool(required and _constant(required)))
        )
  for flag, kind in list(result.kinds.items()):
    if isinstance(kind, tuple):
      result.kinds[flag] = result.kinds.get(kind[1], 'DEFINE_string')
  return result


_BOOL_VALUES = ('true', 'false', 't', 'f', '1', '0', 'yes', 'no', 'y', 'n')


def _parse_arguments(args):
  """[(name, value or None, raw)] of the --flags of an argument list (positionals skipped,
  nothing after `--`)."""
  out = []
  for arg in args:
    if arg == '--':
      break
    if arg.startswith('-') and len(arg) > 1:
      name, sep, value = arg.lstrip('-').partition('=')
      out.append((name, value if sep else None, arg))
  return out


def _value_problem(kind, flag, value, enums):
  """Why `value` is no value of a flag of this DEFINE_ kind (None if it is one)."""
  if value is None or '...' in value or value.startswith('$'):
    return None
  if kind in ('DEFINE_integer', 'DEFINE_multi_integer'):
    if not re.fullmatch(r'[-+]?\d[\d_]*', value):
      return f'--{flag}={value} is not an integer'
  elif kind in ('DEFINE_float', 'DEFINE_multi_float'):
    try:
      float(value)
    except ValueError:
      return f'--{flag}={value} is not a number'
  elif kind in ('DEFINE_bool', 'DEFINE_boolean'):
    if value.lower() not in _BOOL_VALUES:
      return f'--{flag}={value} is not a boolean'
  elif flag in enums and value not in enums[flag]:
    return f'--{flag}={value} is not one of {enums[flag]}'
  return None


def command_problems(script, args):
  """What is wrong with `python <script> <args>` run from the repository root, by the script's
  own definitions ([] if nothing)."""
  if not (ROOT / script).is_file():
    return [f'{script} does not exist']
  if script.split('/')[0] not in SCRIPT_DIRS:
    return []
  defined = script_flags(script)
  problems, given, config_args = [], set(), {}
  for name, value, raw in _parse_arguments(args):
    base = name.split('.')[0]
    if base in defined.kinds and defined.kinds[base] in (
        'DEFINE_config_file',
        'DEFINE_config_dict',
    ):
      config_args.setdefault(base, []).append(raw)
      given.add(base)
      continue
    kind = defined.kinds.get(name)
    if (
        kind is None
        and name.startswith('no')
        and defined.kinds.get(name[2:], '').endswith(('_bool', '_boolean'))
    ):
      given.add(name[2:])
      continue
    if kind is None and name not in ABSL_FLAGS:
      problems.append(f'{script} defines no flag --{name}')
      continue
    given.add(name)
    if kind:
      problem = _value_problem(kind, name, value, defined.enums)
      if problem:
        problems.append(f'{script}: {problem}')
  problems += [f'{script} requires --{f}' for f in sorted(defined.required - given)]
  for group, required in defined.exclusive:
    chosen = [f for f in group if f in given]
    if len(chosen) > 1 or (required and not chosen):
      problems.append(f'{script} takes exactly one of --{", --".join(group)}; got {chosen}')
  for name, raws in config_args.items():
    problems += config_problems(name, raws)
  return problems


def config_problems(name, raws):
  """Parses --<name>=<file>[:<variant>] and --<name>.a.b=<value> with ml_collections'
  config_flags in a fresh FlagValues, the config file read from the repository root."""
  argv = []
  for raw in raws:
    flag, _, value = raw.lstrip('-').partition('=')
    if flag == name:
      path, colon, variant = value.partition(':')
      if not (ROOT / path).is_file():
        return [f'--{name}={value}: no config file {path}']
      value = str(ROOT / path) + colon + variant
    argv.append(f'--{flag}={value}')
  values = flags.FlagValues()
  config_flags.DEFINE_config_file(
      name, None, 'the config', flag_values=values, lock_config=True, sys_argv=['binary', *argv]
  )  # the override flags are read from sys_argv, as a binary's from sys.argv
  try:
    values(['binary', *argv])
    if values[name].value is None:  # (reading the value loads a lazily read config)
      return [f'{" ".join(raws)}: no config loaded']
  except Exception as e:  # pylint: disable=broad-except  (any failure is the finding)
    return [f'{" ".join(raws)}: {type(e).__name__}: {e}']
  return []


# ---------------------------------------------------------------------------------------------
# The checks of the commands.


def test_the_docs_have_commands_to_check():
  """The reader finds the docs' commands (an empty list would pass everything below)."""
  scripts = {script for _, script, _ in COMMANDS}
  assert {'launch/train.py', 'launch/evaluate.py', 'launch/export.py'} <= scripts
  assert sum(script.startswith('benchmarks/') for script in scripts) >= 10
  assert len(COMMANDS) >= 60


@pytest.mark.parametrize(
    'block,script,args', COMMANDS, ids=[f'{b.where()}:{s}' for b, s, _ in COMMANDS]
)
def test_command_is_accepted_by_its_script(block, script, args):
  problems = command_problems(script, args)
  assert not problems, f'{block.where()}: ' + '; '.join(problems)


def test_shell_reading():
  script = (
      'CLUSTER=x\n'
      'for i in 0 1; do\n'
      '  TF_CONFIG="{$CLUSTER, \\"index\\": $i}" \\\n'
      '  python launch/train.py --config=tfsmooth/configs/rings.py \\\n'
      "      --workdir=runs/a --config.train.steps=20 &  # a comment's quote\n"
      'done\n'
      "pip install -e '.[test]' && nice -n 0 python benchmarks/table1.py "
      '--overrides=\'{"train.steps": 40000}\' | tee log\n'
  )
  assert shell_commands(script) == [
      ['for', 'i', 'in', '0', '1'],
      ['do'],
      [
          'python',
          'launch/train.py',
          '--config=tfsmooth/configs/rings.py',
          '--workdir=runs/a',
          '--config.train.steps=20',
      ],
      ['done'],
      ['pip', 'install', '-e', '.[test]'],
      ['python', 'benchmarks/table1.py', '--overrides={"train.steps": 40000}'],
      ['tee', 'log'],
  ]


@pytest.mark.parametrize(
    'args,finding',
    [
        (['--config=tfsmooth/configs/rings.py', '--workdir=w', '--steps=3'], 'no flag --steps'),
        (['--workdir=w'], 'requires --config'),
        (['--config=tfsmooth/configs/ring.py', '--workdir=w'], 'no config file'),
        (['--config=tfsmooth/configs/rings.py:papers', '--workdir=w'], 'papers'),
        (['--config=tfsmooth/configs/rings.py', '--config.train.stepz=3', '--workdir=w'], 'stepz'),
        (['--config=tfsmooth/configs/rings.py', '--config.train.steps=x', '--workdir=w'], 'steps'),
    ],
)
def test_mistakes_are_found(args, finding):
  """The checker finds each kind of mistake (a checker that finds nothing passes every doc)."""
  problems = command_problems('launch/train.py', args)
  assert any(finding in p for p in problems), problems


def test_value_and_group_mistakes_are_found():
  problems = command_problems(
      'launch/evaluate.py', ['--workdir=w', '--saved_model=s', '--weights=best']
  )
  assert any('exactly one of' in p for p in problems), problems
  assert any('--weights=best' in p for p in problems), problems
  assert command_problems('launch/nothing.py', []) == ['launch/nothing.py does not exist']


@pytest.mark.parametrize(
    'script', sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'launch').glob('*.py'))
)
def test_flags_read_from_source_are_the_binarys_flags(script):
  """The flags `ast` reads from a launch/ binary are those absl registers when the binary is
  imported (in a fresh process: the binaries define their flags at import, TensorFlow later)."""
  code = (
      'import json, runpy, sys\n'
      'from absl import app, flags, logging\n'
      'before = set(flags.FLAGS)\n'
      'runpy.run_path(sys.argv[1], run_name="imported_binary")\n'
      'print(json.dumps(sorted(set(flags.FLAGS) - before)))\n'
  )
  done = subprocess.run(
      [sys.executable, '-c', code, str(ROOT / script)],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=120,
      env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='3'),
  )
  assert done.returncode == 0, done.stderr[-2000:]
  registered = set(json.loads(done.stdout.strip().splitlines()[-1]))
  assert set(script_flags(script).kinds) == registered


# ---------------------------------------------------------------------------------------------
# Python blocks.

PYTHON_BLOCKS = [b for b in _all_blocks() if b.lang == 'python']


def _tfsmooth_bindings(tree):
  """{local name: dotted tfsmooth path} of a block's imports."""
  bound = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split('.')[0] == 'tfsmooth':
          bound[alias.asname or alias.name.split('.')[0]] = (
              alias.name if alias.asname else 'tfsmooth'
          )
    elif isinstance(node, ast.ImportFrom) and (node.module or '').split('.')[0] == 'tfsmooth':
      for alias in node.names:
        bound[alias.asname or alias.name] = f'{node.module}.{alias.name}'
  return bound


def _resolve(dotted):
  """The object at a dotted path (a module, then attributes); raises if anything is missing."""
  parts = dotted.split('.')
  for i in range(len(parts), 0, -1):
    try:
      value = importlib.import_module('.'.join(parts[:i]))
    except ImportError:
      continue
    for part in parts[i:]:
      value = getattr(value, part)
    return value
  raise ImportError(f'no module in {dotted}')


def _dotted(node):
  names = []
  while isinstance(node, ast.Attribute):
    names.append(node.attr)
    node = node.value
  if isinstance(node, ast.Name):
    return '.'.join([node.id] + names[::-1])
  return None


def python_block_problems(block):
  """What a python block names in tfsmooth that does not exist or does not take its call."""
  try:
    tree = ast.parse(block.text)
  except SyntaxError as e:
    return [f'does not parse: {e}']
  bound = _tfsmooth_bindings(tree)
  problems = []
  for local, target in bound.items():
    try:
      _resolve(target)
    except (ImportError, AttributeError) as e:
      problems.append(f'{local} ({target}): {e}')
  calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
  for node in ast.walk(tree):
    if not isinstance(node, ast.Attribute) or isinstance(node.ctx, ast.Store):
      continue
    dotted = _dotted(node)
    if dotted is None or dotted.split('.')[0] not in bound:
      continue
    path = bound[dotted.split('.')[0]] + dotted[len(dotted.split('.')[0]) :]
    try:
      value = _resolve(path)
    except (ImportError, AttributeError) as e:
      problems.append(f'{dotted}: {e}')
      continue
    call = calls.get(id(node))
    if call is None or not callable(value):
      continue
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
      continue
    try:
      inspect.signature(value).bind(*call.args, **{k.arg: k.value for k in call.keywords})
    except TypeError as e:
      problems.append(f'{dotted}(...) does not fit {dotted}{inspect.signature(value)}: {e}')
    except ValueError:
      pass  # no signature to read (a builtin)
  return problems


def test_the_docs_have_python_blocks():
  assert sum(b.doc == 'README.md' for b in PYTHON_BLOCKS) >= 3


@pytest.mark.parametrize('block', PYTHON_BLOCKS, ids=lambda b: b.where())
def test_python_block_names_what_exists(block):
  problems = python_block_problems(block)
  assert not problems, f'{block.where()}: ' + '; '.join(problems)


def test_python_block_mistakes_are_found():
  block = Block(
      'x',
      1,
      'python',
      'from tfsmooth import experiment, seeds\n'
      'from tfsmooth.configs import nowhere\n'
      'seeds.rows(0, "samples", 0)\n'
      'experiment.Run.make(1)\n',
  )
  problems = ' '.join(python_block_problems(block))
  assert 'nowhere' in problems and 'seeds.rows' in problems and 'Run.make' in problems


# ---------------------------------------------------------------------------------------------
# Links and the module table.


def _links(doc):
  text = _doc_text(doc)
  return [
      (doc, target)
      for target in re.findall(r'\]\(([^)\s]+)\)', text)
      if not re.match(r'[a-z]+:|#', target)
  ]


LINKS = [link for doc in DOCS for link in _links(doc)]


@pytest.mark.parametrize('doc,target', LINKS, ids=[f'{d}:{t}' for d, t in LINKS])
def test_link_resolves(doc, target):
  assert (ROOT / doc).parent.joinpath(target.split('#')[0]).exists(), f'{doc} links {target}'


def module_table_rows(text):
  """(path, contents) of the README table whose header is `| module | contents |`."""
  lines = text.splitlines()
  start = lines.index('| module | contents |')
  rows = []
  for line in lines[start + 2 :]:
    if not line.startswith('|'):
      break
    cells = [c.strip() for c in re.split(r'(?<!\\)\|', line)[1:-1]]
    rows.append((cells[0].strip('`'), cells[1]))
  return rows


def _definitions(path):
  """Names of the classes, functions and methods defined under a file or directory."""
  files = [path] if path.is_file() else sorted(path.rglob('*.py'))
  names = set()
  for file in files:
    for node in ast.walk(ast.parse(file.read_text(encoding='utf-8'))):
      if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        names.add(node.name)
  return names


def module_table_problems(text):
  problems = []
  for path, contents in module_table_rows(text):
    target = ROOT / path
    if not target.exists():
      problems.append(f'{path} does not exist')
      continue
    if target.is_file() and target.suffix != '.py' or path in ('launch/', 'benchmarks/'):
      continue
    defined = _definitions(target)
    for span in re.findall(r'`([^`]+)`', contents):
      name = re.match(r'[*\w]+', span)
      if not name:
        continue
      name = name.group(0)
      if '*' in name:
        pattern = re.compile(name.replace('*', r'[A-Za-z]\w*') + '$')  # public names
        if not any(pattern.match(d) for d in defined):
          problems.append(f'{path}: nothing named {name}')
      elif re.fullmatch(r'[A-Z][a-z]+[A-Z]\w*|[A-Z][a-z]+', name) or span.endswith(')'):
        if name not in defined and not (target.parent / f'{name}.py').exists():
          problems.append(f'{path}: no class or function {name}')
  return problems


def test_module_table_names_what_exists():
  problems = module_table_problems(_doc_text('README.md'))
  assert not problems, '; '.join(problems)


def test_module_table_mistakes_are_found():
  text = (
      '| module | contents |\n|---|---|\n'
      '| `tfsmooth/smoothing.py` | `SmoothedModel`; `*_rowz` variants |\n'
      '| `tfsmooth/experiment.py` | `Runner`: one workdir |\n'
      '| `tfsmooth/nowhere.py` | x |\n'
  )
  assert module_table_problems(text) == [
      'tfsmooth/smoothing.py: nothing named *_rowz',
      'tfsmooth/experiment.py: no class or function Runner',
      'tfsmooth/nowhere.py does not exist',
  ]
