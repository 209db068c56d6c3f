"""The README's main job timed on two trees in one session: --base (a commit from before the
file I/O went through tf.io.gfile and evaluation through the model interface on every replica;
default f69e632) against this working tree, alternating --repeats times, each run from scratch
in its own temporary workdir with the same flags. Reported: wall seconds of each
`python launch/train.py --config=tfsmooth/configs/rings.py` run and the ratio of medians, this
tree / base, and each run split by its own log lines into start-up and training (up to
'Evaluating on the test split'), and the test evaluation with its plots (the rest). Both trees differ in more than gfile (the base draws
its test bounds with batch seeds, this tree with per-row seeds), so the ratio bounds what the
change costs together.

  python benchmarks/main_job_wall_time.py --output=benchmarks/results/main_job_wall_time.json
"""

import datetime
import os
import re
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


_LOG_TIME = re.compile(r'^[IWE]\d{4} (\d\d:\d\d:\d\d\.\d+) .*Evaluating on the test split')


def _seconds_to(log, started):
  """Seconds from `started` (a datetime) to the absl log line that starts the test evaluation."""
  for line in log.splitlines():
    match = _LOG_TIME.match(line)
    if match:
      clock = datetime.datetime.strptime(match.group(1), '%H:%M:%S.%f').time()
      at = datetime.datetime.combine(started.date(), clock)
      return (at - started).total_seconds() % 86400
  raise RuntimeError('The run logged no "Evaluating on the test split" line.')


def run_seconds(tree, workdir):
  """{'total', 'training', 'test_and_plots'}: wall seconds of the main job run from `tree`."""
  argv = [
      sys.executable,
      os.path.join(tree, 'launch', 'train.py'),
      '--config=' + os.path.join(tree, 'tfsmooth', 'configs', 'rings.py'),
      f'--workdir={workdir}',
      *_FLAGS.value,
  ]
  env = dict(os.environ, PYTHONPATH=tree, TF_CPP_MIN_LOG_LEVEL='2')
  started = datetime.datetime.now()
  start = time.perf_counter()
  done = subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True, text=True)
  total = time.perf_counter() - start
  training = _seconds_to(done.stderr, started)
  return {'total': total, 'training': training, 'test_and_plots': total - training}


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
          print(name, {k: round(v, 1) for k, v in seconds[name][-1].items()}, flush=True)
    finally:
      subprocess.run(['git', 'worktree', 'remove', '--force', base_tree], check=True)
  medians = {
      name: {part: statistics.median(run[part] for run in runs) for part in runs[0]}
      for name, runs in seconds.items()
  }
  base, this = medians.values()
  ratios = {part: this[part] / base[part] for part in base}
  record = {
      'command': common.command(),
      'seconds': seconds,
      'median_seconds': medians,
      'ratio_this_over_base': ratios['total'],
      'ratio_by_part': ratios,
      'load_average_at_end': os.getloadavg(),
      'note': 'Wall seconds of whole launch/train.py runs on a shared 2-core machine; compare '
      'the ratio, not the seconds.',
  }
  common.write_json(_OUTPUT.value, record)
  print(record, flush=True)


if __name__ == '__main__':
  app.run(main)
