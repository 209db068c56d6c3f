"""The test suite's time as the README runs it, on a clean clone: what RESULTS.md's "Test suite
time" records.

  python benchmarks/suite_time.py --output=benchmarks/results/suite_time.json

A fresh `git clone --no-hardlinks` of this repository checked out at --commit (default HEAD), so
neither uncommitted edits nor untracked files nor the runs/ of the working tree play a part (or
--checkout=DIR, used as it is, its uncommitted changes listed in the record). There it runs the
pytest part of the README's test command, read from the README.md of that checkout (the one
```sh block with `python -m pytest`: what `.ci/run` runs), with `--durations=N` appended unless
the command has one and --pytest_args after it (to select a few tests when testing this
driver). The environment is this interpreter's with CI=true, as CI services set it (`.ci/run`
does not set it; under it the tests that need the Fashion-MNIST IDX files fail without them
instead of skipping) and PYTHONPATH led by the checkout, so that pytest and its xdist workers
import the checkout's tfsmooth rather than the one this virtualenv has installed in editable
mode. The README line's `pip install`, `pyink --check` and `ruff check` and `.ci/run`'s fresh
virtualenv are not timed.

Recorded: the README's command and the one run, the commit, wall seconds, the user and system
CPU seconds of pytest and every descendant process it waited for (getrusage(RUSAGE_CHILDREN)
around the run: xdist workers and the tests' fresh TensorFlow processes), pytest's counts from
its summary line, the slowest tests (--durations), the CPUs and the load average before and
after, whether the Fashion-MNIST IDX files were there, and pytest's exit status. The record is
written whatever the outcome; the driver then exits with 1 if the suite failed. The pytest
output is copied to stdout as it runs.
"""

import ast
import importlib.metadata
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import common  # noqa: E402  (benchmarks/ is on sys.path)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from tfsmooth import errors  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

_COMMIT = flags.DEFINE_string('commit', 'HEAD', 'Commit of --repo to clone and run.')
_REPO = flags.DEFINE_string('repo', common.ROOT, 'Repository to clone (default this one).')
_CHECKOUT = flags.DEFINE_string(
    'checkout', None, 'Run in this directory as it is instead of a fresh clone of --commit.'
)
_DURATIONS = flags.DEFINE_integer(
    'durations', 15, 'Append --durations=N (the N slowest tests) unless the command has one; 0: no.'
)
_PYTEST_ARGS = flags.DEFINE_string(
    'pytest_args', '', 'Arguments appended to the command (shell-quoted), e.g. a test selection.'
)
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/suite_time.json', 'JSON path.')

COUNT_NAMES = ('passed', 'failed', 'skipped', 'deselected', 'errors', 'xfailed', 'xpassed')
_ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')
_SUMMARY = re.compile(r'(?:\d+ \w+|no tests ran)(?:, \d+ \w+)* in (\d+(?:\.\d+)?)s')
_DURATION = re.compile(r'^(\d+(?:\.\d+)?)s (setup|call|teardown) +(\S.*?)\s*$')


def fenced_shell_blocks(text):
  """The bodies of the ```sh (or bash, shell) blocks of a Markdown text."""
  blocks, lang, body = [], None, []
  for line in text.splitlines():
    if not line.strip().startswith('```'):
      body.append(line)
    elif lang is None:
      lang, body = line.strip()[3:].strip(), []
    else:
      if lang in ('sh', 'bash', 'shell'):
        blocks.append('\n'.join(body))
      lang = None
  return blocks


def simple_commands(script):
  """(environment assignments, argv) of each simple command of a shell script, split at `&&`,
  `||`, `;`, `|` and `&` with quotes and line continuations resolved."""
  commands = []
  for line in script.replace('\\\n', ' ').splitlines():
    lexer = shlex.shlex(line, posix=True, punctuation_chars=';&|')
    lexer.whitespace_split = True
    lexer.commenters = '#'
    words = []
    for token in [*lexer, ';']:
      if token and set(token) <= set(';&|'):
        if words:
          env = {}
          while words and _ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition('=')
            env[name] = value
          if words:
            commands.append((env, words))
        words = []
      else:
        words.append(token)
  return commands


def readme_test_command(readme_text):
  """(environment assignments, argv) of the README's `python -m pytest` command: the one in its
  ```sh blocks (inline spans such as `python -m pytest -m slow` are examples, not the command)."""
  found = [
      (env, argv)
      for block in fenced_shell_blocks(readme_text)
      for env, argv in simple_commands(block)
      if re.fullmatch(r'python[0-9.]*', argv[0]) and argv[1:3] == ['-m', 'pytest']
  ]
  if len(found) != 1:
    raise errors.UserError(
        f'README.md has {len(found)} `python -m pytest` commands in its ```sh blocks; this '
        'driver times the one test command that .ci/run runs, so it needs exactly one. Check '
        'the README of the checkout (an old --commit may predate the command).'
    )
  return found[0]


def summary(output):
  """(counts, seconds, line): pytest's counts (COUNT_NAMES and warnings, 0 if absent) from its
  last summary line ('2 passed, 1 skipped in 3.1s'), the seconds it reports, and that line;
  ({}, None, None) without one."""
  for line in reversed(output.splitlines()):
    match = _SUMMARY.search(line.strip(' ='))
    if match:
      counts = dict.fromkeys((*COUNT_NAMES, 'warnings'), 0)
      for number, name in re.findall(r'(\d+) (\w+)', match.group(0)[: match.start(1)]):
        name = {'error': 'errors', 'warning': 'warnings'}.get(name, name)
        counts[name] = int(number)
      return counts, float(match.group(1)), line.strip()
  return {}, None, None


def slowest(output):
  """[{'seconds', 'phase', 'test'}] of pytest's --durations report, slowest first."""
  rows = []
  for line in output.splitlines():
    match = _DURATION.match(line.strip())
    if match:
      rows.append({'seconds': float(match[1]), 'phase': match[2], 'test': match[3]})
  return sorted(rows, key=lambda r: -r['seconds'])


def _git(*args, cwd=None):
  done = subprocess.run(['git', *args], cwd=cwd, check=True, capture_output=True, text=True)
  return done.stdout.strip()


def _resolve(repo, commit):
  try:
    return _git('rev-parse', '--verify', '--quiet', f'{commit}^{{commit}}', cwd=repo)
  except subprocess.CalledProcessError:
    raise errors.UserError(
        f'--commit={commit} names no commit of {repo}; pass a commit id, tag or branch of it.'
    ) from None


def clone(repo, commit, directory):
  """A fresh clone of `repo` in `directory` (no hard links to its objects), detached at
  `commit`; returns the full commit id."""
  sha = _resolve(repo, commit)
  subprocess.run(
      ['git', 'clone', '--quiet', '--no-hardlinks', '--no-checkout', repo, directory], check=True
  )
  subprocess.run(['git', 'checkout', '--quiet', '--detach', sha], cwd=directory, check=True)
  return sha


def idx_files(checkout):
  """{'directory', 'present', 'files'}: the checkout's `images.FASHION_MNIST_IDX_DIR` (read from
  its source: importing it loads TensorFlow) and the files in it."""
  path = os.path.join(checkout, 'tfsmooth', 'data', 'images.py')
  directory = None
  if os.path.exists(path):
    with open(path) as f:
      for node in ast.parse(f.read()).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, 'id', None) == 'FASHION_MNIST_IDX_DIR' for t in node.targets
        ):
          directory = ast.literal_eval(node.value)
  present = bool(directory) and os.path.isdir(directory)
  return {  # named, not given as a path: records hold no machine paths
      'directory': 'tfsmooth.data.images.FASHION_MNIST_IDX_DIR',
      'present': present,
      'files': sorted(os.listdir(directory)) if present else [],
  }


def _imported_tfsmooth(checkout, env):
  """Where `import tfsmooth` resolves in the run's environment (found, not executed)."""
  done = subprocess.run(
      [
          sys.executable,
          '-c',
          'import importlib.util; print(importlib.util.find_spec("tfsmooth").origin)',
      ],
      cwd=checkout,
      env=env,
      check=True,
      capture_output=True,
      text=True,
  )
  return done.stdout.strip()


def _versions():
  out = {'python': sys.version.split()[0]}
  for name in ('pytest', 'pytest-xdist', 'tensorflow', 'keras', 'tensorflow-probability'):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def run_suite(checkout, env, argv):
  """(exit status, output, wall seconds, (user, sys) CPU seconds of the children): `argv` run in
  `checkout`, its output copied to stdout as it comes."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  process = subprocess.Popen(
      argv, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  lines = []
  for line in process.stdout:
    sys.stdout.write(line)
    sys.stdout.flush()
    lines.append(line)
  status = process.wait()
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)
  return status, ''.join(lines), wall, cpu


def measure(checkout, commit_label):
  """The record of the README's test command run in `checkout`."""
  with open(os.path.join(checkout, 'README.md'), encoding='utf-8') as f:
    readme_env, readme_argv = readme_test_command(f.read())
  argv = list(readme_argv)
  if _DURATIONS.value and not any(a.startswith('--durations') for a in argv):
    argv.append(f'--durations={_DURATIONS.value}')
  argv += shlex.split(_PYTEST_ARGS.value)
  env = dict(os.environ, CI='true', **readme_env)
  env['PYTHONPATH'] = os.pathsep.join(p for p in (checkout, env.get('PYTHONPATH')) if p)
  origin = _imported_tfsmooth(checkout, env)
  if not os.path.realpath(origin).startswith(os.path.realpath(checkout) + os.sep):
    raise RuntimeError(f'tfsmooth resolves to {origin}, not to the checkout {checkout}.')
  changes = _git('status', '--porcelain', '--untracked-files=all', cwd=checkout).splitlines()
  idx = idx_files(checkout)
  cpu_count = os.cpu_count()
  load_before = os.getloadavg()
  status, output, wall, (user, system) = run_suite(checkout, env, [sys.executable, *argv[1:]])
  load_after = os.getloadavg()
  counts, pytest_seconds, summary_line = summary(output)
  prefix = ''.join(f'{k}={shlex.quote(v)} ' for k, v in readme_env.items())
  return {
      'command': common.command(),
      'readme_command': prefix + shlex.join(readme_argv),
      'command_run': 'CI=true ' + prefix + shlex.join(argv),
      'commit': _git('rev-parse', 'HEAD', cwd=checkout),
      'checkout': commit_label,
      'checkout_changes': changes,
      'outcome': 'passed' if status == 0 else 'failed',
      'exit_status': status,
      'wall_seconds': wall,
      'user_cpu_seconds': user,
      'system_cpu_seconds': system,
      'pytest_seconds': pytest_seconds,
      'counts': counts,
      'summary_line': summary_line,
      'slowest': slowest(output),
      'cpu_count': cpu_count,
      'cpus_usable': len(os.sched_getaffinity(0)),
      'load_average_before': load_before,
      'load_average_after': load_after,
      'fashion_mnist_idx': idx,
      'environment': {
          'interpreter': common.relative(sys.executable),
          'versions': _versions(),
          'CI': 'true',
          'PYTHONPATH': 'the checkout first',
      },
      'note': "Wall and CPU seconds of the README test command's pytest part only, in "
      f"{commit_label}, run by this virtualenv: the README line's pip install, pyink and ruff "
      "and .ci/run's fresh virtualenv are not timed. CPU seconds are getrusage(RUSAGE_CHILDREN) "
      "over the run: pytest and every descendant it waited for (xdist workers, the tests' "
      'fresh processes). CI=true as CI services set it, so tests needing the Fashion-MNIST IDX '
      "files fail without them instead of skipping. Seconds are the machine's at the recorded "
      'load.',
  }


def main(argv):
  del argv
  if _CHECKOUT.value:
    if flags.FLAGS['commit'].present:
      raise errors.UserError(
          '--checkout runs a directory as it is, so --commit would be ignored; pass one of them.'
      )
    if not os.path.isfile(os.path.join(_CHECKOUT.value, 'README.md')):
      raise errors.UserError(
          f'--checkout={_CHECKOUT.value} has no README.md; pass the root of a checkout of this '
          'repository.'
      )
    record = measure(os.path.abspath(_CHECKOUT.value), f'--checkout={_CHECKOUT.value} as it is')
  else:
    scratch = tempfile.mkdtemp(prefix='suite_time_')
    try:
      checkout = os.path.join(scratch, 'repo')
      sha = clone(os.path.abspath(_REPO.value), _COMMIT.value, checkout)
      record = measure(checkout, f'a fresh clone at {sha[:12]} (--commit={_COMMIT.value})')
    finally:
      shutil.rmtree(scratch, ignore_errors=True)
  common.write_json(_OUTPUT.value, record)
  shown = {k: record[k] for k in ('command_run', 'outcome', 'counts', 'wall_seconds')}
  print(shown, flush=True)
  if record['exit_status'] != 0:
    print(
        f'pytest exited with status {record["exit_status"]}; the record says so.',
        file=sys.stderr,
        flush=True,
    )
    return 1
  return 0


if __name__ == '__main__':
  app.run(cli.reported(main))
