"""The package's import graph, read from the source with `ast` (imports at any depth, those
inside functions included): no circle, `errors` free of heavy dependencies, and the layers of
DESIGN.md pointing one way. Nothing is imported, so this runs in well under a second."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'tfsmooth'


def _module_name(path):
  relative = os.path.relpath(path, ROOT)[: -len('.py')].split(os.sep)
  if relative[-1] == '__init__':
    relative = relative[:-1]
  return '.'.join(relative)


def _modules():
  """{module name: its file} of every module of the package."""
  out = {}
  for directory, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(directory, name)
        out[_module_name(path)] = path
  return out


MODULES = _modules()


def _imported(module, path):
  """The names `module` imports anywhere in its file (absolute, relative ones resolved): for
  `from a.b import c`, both `a.b` and `a.b.c` (c may be a module or a name in a.b)."""
  tree = ast.parse(open(path, encoding='utf-8').read(), path)
  is_package = path.endswith('__init__.py')
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        parts = module.split('.')
        base = parts[: len(parts) - node.level + is_package]
        source = '.'.join(base + ([node.module] if node.module else []))
      else:
        source = node.module
      names.add(source)
      names.update(f'{source}.{alias.name}' for alias in node.names)
  return names


def _internal(name):
  """The package module `name` denotes (`a.b.C`, a class in module a.b, is a.b), or None."""
  while name and name not in MODULES:
    name = name.rpartition('.')[0]
  return name or None


def _graph():
  """{module: the package modules it imports}. Importing `a.b.c` runs the packages `a` and
  `a.b` too; those edges are left out (an __init__ that imports its own submodules would
  otherwise look like a circle with each of them)."""
  graph = {}
  for module, path in MODULES.items():
    edges = set()
    for name in _imported(module, path):
      target = _internal(name)
      if target and target != module:
        edges.add(target)
    graph[module] = edges
  return graph


GRAPH = _graph()


def _cycle(graph):
  """One import circle of `graph` as [a, b, ..., a], or None (depth-first search)."""
  state, stack = {}, []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for target in sorted(graph.get(node, ())):
      if state.get(target) == 'open':
        return stack[stack.index(target) :] + [target]
      if target not in state:
        found = visit(target)
        if found:
          return found
    stack.pop()
    state[node] = 'done'
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node)
      if found:
        return found
  return None


def test_graph_is_read_from_the_source():
  # Known edges, one of them through an import inside a function (cli checks paths lazily).
  assert 'tfsmooth.errors' in GRAPH['tfsmooth.paths']
  assert 'tfsmooth.paths' in GRAPH['tfsmooth.programs.cli']
  assert 'tfsmooth.experiment' in GRAPH['tfsmooth.programs.sample_eval']
  assert len(GRAPH) > 30


def test_cycle_finder_finds_a_planted_circle():
  graph = {k: set(v) for k, v in GRAPH.items()}
  graph['tfsmooth.errors'] = {'tfsmooth.paths'}
  assert _cycle(graph) == ['tfsmooth.errors', 'tfsmooth.paths', 'tfsmooth.errors']


def test_no_import_circle():
  cycle = _cycle(GRAPH)
  assert cycle is None, 'import circle: ' + ' -> '.join(cycle)


def test_errors_imports_only_the_standard_library():
  imported = _imported('tfsmooth.errors', MODULES['tfsmooth.errors'])
  heavy = {
      name
      for name in imported
      if name.split('.')[0] in ('absl', 'ml_collections', 'tensorflow', 'keras', PACKAGE)
  }
  assert not heavy, f'tfsmooth/errors.py imports {sorted(heavy)}'


# DESIGN.md, "Architecture": binaries; programs; experiment.Run; export, the trainer, the models
# and the two-stage model; metric and figure helpers, kernels, data. A lower layer never
# imports a higher one.
_LOWER = ('tfsmooth.models', 'tfsmooth.data', 'tfsmooth.evaluation', 'tfsmooth.train')
_HIGHER = ('tfsmooth.programs', 'tfsmooth.experiment')


def _within(module, packages):
  return any(module == p or module.startswith(p + '.') for p in packages)


@pytest.mark.parametrize(
    'lower, higher',
    [
        (_LOWER, _HIGHER),
        (('tfsmooth.export',), _HIGHER),
        (('tfsmooth.errors', 'tfsmooth.paths', 'tfsmooth.logs'), ('tfsmooth.programs',)),
    ],
)
def test_lower_layers_do_not_import_higher_ones(lower, higher):
  wrong = sorted(
      f'{module} imports {target}'
      for module, targets in GRAPH.items()
      if _within(module, lower)
      for target in targets
      if _within(target, higher)
  )
  assert not wrong, '; '.join(wrong)
