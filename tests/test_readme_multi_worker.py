"""The README's two-worker instructions, run as written: two launch/train.py processes on
127.0.0.1 with MultiWorkerMirroredStrategy train and evaluate one run; the chief writes it."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKDIR = os.path.join(ROOT, 'runs', 'rings_2workers')


def readme_block():
  """The shell block that follows the sentence naming this test in README.md."""
  with open(os.path.join(ROOT, 'README.md')) as f:
    text = f.read()
  after = text[text.index('tests/test_readme_multi_worker.py') :]
  return re.search(r'```sh\n(.*?)```', after, re.S).group(1)


@pytest.mark.slow
def test_two_workers_as_the_readme_says():
  block = readme_block()
  assert 'multi_worker' in block and 'runs/rings_2workers' in block
  shutil.rmtree(WORKDIR, ignore_errors=True)
  done = subprocess.run(
      ['bash', '-c', 'set -e\n' + block],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=1800,
      env=dict(
          os.environ,
          TF_CPP_MIN_LOG_LEVEL='2',
          PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
      ),
  )
  assert done.returncode == 0, done.stderr[-3000:]
  with open(os.path.join(WORKDIR, 'metrics.json')) as f:
    metrics = json.load(f)
  assert metrics['steps'] == 2000 and metrics['nll_iw'] < 3.5
  assert os.path.exists(os.path.join(WORKDIR, 'samples.png'))
  assert not [name for name in os.listdir(WORKDIR) if name.startswith('scratch')]
