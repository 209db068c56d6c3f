"""The README's main job timed on two trees in one session: --base (a commit from before the
file I/O went through tf.io.gfile and evaluation through the model interface on every replica;
default f69e632) against this working tree, alternating --repeats times, each run from scratch
in its own temporary workdir with the same flags. Reported: wall seconds of each
`python launch/train.py --config=tfsmooth/configs/rings.py` run (training, test bounds, plots)
and the ratio of medians, this tree / base. Both trees differ in more than gfile (the base draws
its test bounds with batch seeds, this tree with per-row seeds), so the ratio bounds what the
change costs together.

  python benchmarks/main_job_wall_time.py --output=benchmarks/results/main_job_wall_time.json
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import common  # noqa: E402  (benchmarks/ is on sys.path)

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

_BASE = flags.DEFINE_string('base', 'f69e632', 'Commit of the "before" tree.')
_REPEATS = flags.DEFINE_integer('repeats', 1, 'Alternating runs per tree.')
_FLAGS = flags.DEFINE_list('train_flags', [], 'Extra launch/train.py flags for both trees.')
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/main_job_wall_time.json', 'JSON path.')


def run_seconds(tree, workdir):
  """Wall seconds of the main job run from `tree` into `workdir`."""
  argv = [
      sys.executable,
      os.path.join(tree, 'launch', 'train.py'),
      '--config=' + os.path.join(tree, 'tfsmooth', 'configs', 'rings.py'),
      f'--workdir={workdir}',
      *_FLAGS.value,
  ]
  env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL='2')
  start = time.perf_counter()
  subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True)
  return time.perf_counter() - start


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as scratch:
    base_tree = os.path.join(scratch, 'base')
    subprocess.run(['git', 'worktree', 'add', '--detach', base_tree, _BASE.value], check=True)
    try:
      trees = {f'base {_BASE.value}': base_tree, 'this tree': common.ROOT}
      seconds = {name: [] for name in trees}
      for repeat in range(_REPEATS.value):
        for name, tree in trees.items():
          workdir = os.path.join(scratch, f'run_{len(seconds[name])}_{repeat}_{name[:4]}')
          seconds[name].append(run_seconds(tree, workdir))
          print(name, f'{seconds[name][-1]:.1f} s', flush=True)
    finally:
      subprocess.run(['git', 'worktree', 'remove', '--force', base_tree], check=True)
  medians = {name: statistics.median(values) for name, values in seconds.items()}
  base, this = medians.values()
  record = {
      'command': common.command(),
      'seconds': seconds,
      'median_seconds': medians,
      'ratio_this_over_base': this / base,
      'note': 'Wall seconds of whole launch/train.py runs on a shared 2-core machine; compare '
      'the ratio, not the seconds.',
  }
  common.write_json(_OUTPUT.value, record)
  print(record, flush=True)


if __name__ == '__main__':
  app.run(main)
