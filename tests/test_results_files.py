"""Recorded results hold repository-relative paths only (no machine paths), without TensorFlow.

Every text file under benchmarks/results/ is read: JSON files value by value (keys too), Markdown
and other text files line by line. A path that names the machine that wrote it (/work/..., /tmp/...,
/home/...) means nobody else can follow it: record `runs/<name>`, not `/work/runs/<name>`.
The module imports no TensorFlow (`pytest --noconftest tests/test_results_files.py` runs it in
under a second).
"""

import json
import pathlib
import re

import pytest

RESULTS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks' / 'results'
TEXT_SUFFIXES = ('.json', '.md', '.txt', '.csv')

# Roots of machine paths, wherever they appear in text (not after a word character or a dot, so
# `runs/tmp/x` and `../home` are not matched).
_MACHINE_ROOT = re.compile(
    r'(?<![\w.~-])/(?:work|tmp|root|home|Users|usr|var|opt|mnt|private|scratch|data|gpfs|nfs)/'
)
# Inside a JSON string: an absolute path of two or more segments at the start, or after a space,
# '=', ',', ':' or a quote (a command line's program or --flag=/path value).
_ABSOLUTE_PATH = re.compile(r"""(?:^|[\s=,:'"(])(/[\w.~-]+/[^\s'",)]*)""")


def machine_paths(text):
  """The machine paths in a free text (a Markdown line, a JSON string)."""
  found = [m.group(0) for m in _MACHINE_ROOT.finditer(text)]
  return found + [m.group(1) for m in _ABSOLUTE_PATH.finditer(text)]


def _strings(value):
  """Every string in a parsed JSON document: keys and values, depth first."""
  if isinstance(value, str):
    yield value
  elif isinstance(value, dict):
    for key, item in value.items():
      yield key
      yield from _strings(item)
  elif isinstance(value, list):
    for item in value:
      yield from _strings(item)


def _text_files():
  return sorted(p for p in RESULTS.rglob('*') if p.is_file() and p.suffix in TEXT_SUFFIXES)


def test_results_directory_has_records():
  assert any(p.suffix == '.json' for p in _text_files()), f'no JSON records under {RESULTS}'


@pytest.mark.parametrize(
    'text',
    [
        '/work/runs/kernel_study',
        '/tmp/ssbench/sampling_speed_32x32x3.json',
        'python benchmarks/sampling_speed.py --output=/tmp/x/out.json',
        'python /home/me/tfsmooth/benchmarks/table1.py',
        'written to /root/results',
        '/srv/runs/rings',
    ],
)
def test_machine_paths_are_found(text):
  assert machine_paths(text)


@pytest.mark.parametrize(
    'text',
    [
        'runs/rings_seed0',
        'benchmarks/results/fashion_mnist_fid_floor/nearest_pixel.png',
        'python benchmarks/denoising_1d.py --workdir=runs/denoising_1d --steps=20000',
        'nats / point',
        '-log P(x) / (784 ln 2)',
        'runs/tmp/x',
        'ratio 1/2',
        'saved_models/rings/1',
    ],
)
def test_relative_paths_and_prose_pass(text):
  assert not machine_paths(text)


@pytest.mark.parametrize('path', _text_files(), ids=lambda p: str(p.relative_to(RESULTS)))
def test_no_machine_paths_in_results(path):
  text = path.read_text(encoding='utf-8')
  if path.suffix == '.json':
    found = [(s, machine_paths(s)) for s in _strings(json.loads(text))]
  else:
    found = [(line, machine_paths(line)) for line in text.splitlines()]
  bad = [f'{paths} in {s[:120]!r}' for s, paths in found if paths]
  assert not bad, (
      f'{path.relative_to(RESULTS.parents[1])} holds machine paths (record them relative to the '
      'repository root, e.g. runs/<name>): ' + '; '.join(bad[:5])
  )
