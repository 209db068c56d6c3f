"""What the benchmarks share: timing, child processes, runs trained once, recorded results, the
annealed sampler's grids of settings.

Every benchmark runs as `python benchmarks/<name>.py`, which puts this directory on sys.path,
so `import common` finds this module. It imports TensorFlow, Keras and tfsmooth only inside
the helpers that use them: a benchmark may import it before it quiets TensorFlow's logs, and
one that needs no TensorFlow does not load it for a path helper.
"""

import dataclasses
import itertools
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def relative(path):
  """`path` as recorded in a result file: relative to the working directory if absolute."""
  return os.path.relpath(path) if os.path.isabs(path) else path


def relative_argv(argv):
  """A command line as recorded: the program and --flag=/path values relative if absolute."""
  out = []
  for arg in argv:
    name, sep, value = arg.partition('=')
    out.append(name + sep + relative(value) if sep and name.startswith('--') else relative(arg))
  return out


def command(argv=None):
  """This invocation as recorded: 'python ' and `argv` (default sys.argv), paths relative."""
  return 'python ' + shlex.join(relative_argv(sys.argv if argv is None else argv))


def write_json(path, value):
  """Writes a result file whole (`tfsmooth.records.write_json`), making its directory."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfsmooth import records  # pylint: disable=g-import-not-at-top

  if os.path.dirname(path):
    tf.io.gfile.makedirs(os.path.dirname(path))
  records.write_json(path, value)


def timed(fn, *args):
  """Seconds of one call of fn(*args), the tensors it returns read back (the work done)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
  return time.perf_counter() - start


def median_seconds(fn, *args, runs, warmup=1):
  """The median of `timed(fn, *args)` over `runs` calls, after `warmup` untimed calls."""
  for _ in range(warmup):
    timed(fn, *args)
  return statistics.median(timed(fn, *args) for _ in range(runs))


def num_params(variables):
  """The number of scalars in `variables`."""
  return sum(math.prod(int(d) for d in v.shape) for v in variables)


def forwarded_flags(names):
  """--name=value for the absl flags `names` as this process parsed them (lists comma-joined),
  to give a child process the same settings."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  values = ((name, flags.FLAGS[name].value) for name in names)
  return [f'--{name}={",".join(v) if isinstance(v, list) else v}' for name, v in values]


def spawn(script, args, env=None, timeout=None):
  """The JSON that `python script *args` prints on its last line, run in a fresh process.

  The child finds tfsmooth from the repository root (put first on its PYTHONPATH); `env`
  adds to or overrides this process's environment. A child that fails raises
  `subprocess.CalledProcessError` after its stderr is copied to ours; one that runs longer
  than `timeout` seconds raises `subprocess.TimeoutExpired`.
  """
  env = dict(os.environ, **(env or {}))
  env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
  try:
    done = subprocess.run(
        [sys.executable, os.path.abspath(script), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
  except subprocess.CalledProcessError as e:
    sys.stderr.write(e.stderr or '')
    raise
  return json.loads(done.stdout.strip().splitlines()[-1])


def run_or_load(config, workdir, wall_seconds=False):
  """(run, metrics) of the `experiment.Run` of `config` in `workdir`, in a fresh Keras session.

  A finished run (metrics.json of the configured train.steps) is read, not retrained; any other
  is trained, or resumed from its checkpoints. With `wall_seconds`, the metrics of a run trained
  here get 'wall_seconds': this call's seconds (train_seconds counts the training loop only).
  """
  import keras  # pylint: disable=g-import-not-at-top

  from tfsmooth import experiment  # pylint: disable=g-import-not-at-top

  keras.backend.clear_session()
  run = experiment.Run.create(config, workdir)
  metrics = run.read_metrics()
  if metrics.get('steps') == run.config.train.steps:
    return run, metrics
  start = time.perf_counter()
  metrics = run.train()
  if wall_seconds:
    metrics['wall_seconds'] = time.perf_counter() - start
  return run, metrics


def load_model(workdir):
  """The model of a finished run with its best checkpoint's weights, in a fresh Keras session."""
  import keras  # pylint: disable=g-import-not-at-top

  from tfsmooth import experiment  # pylint: disable=g-import-not-at-top

  keras.backend.clear_session()
  return experiment.Run.load(workdir).model


def annealing_setting(configured, step_size, ladder, end):
  """`configured` (a `smoothing.Annealing`) with the step size, ladder and ending of flag strings:
  a number ('0.5', relative to the level's variance), '<levels>x<Langevin steps per level>'
  ('10x5') and an ending ('two_step' or 'single_step', which `Annealing` checks)."""
  from tfsmooth import errors  # pylint: disable=g-import-not-at-top

  levels, _, steps = ladder.partition('x')
  try:
    values = dict(levels=int(levels), steps=int(steps), step_size=float(step_size))
  except ValueError:
    raise errors.UserError(
        f'The annealed setting of step size {step_size!r} and ladder {ladder!r} is not '
        'understood: write a step size as a number (e.g. 0.5) and a ladder as <levels>x<Langevin '
        'steps per level> (e.g. 10x5).'
    ) from None
  return dataclasses.replace(configured, end=end, **values)


def annealing_grid(configured, step_sizes, ladders, ends):
  """The annealed settings of a grid (`annealing_setting`): every (step size, ladder, ending) of
  the product of the flag lists `step_sizes`, `ladders` and `ends`, in that order."""
  return [
      annealing_setting(configured, step_size, ladder, end)
      for step_size, ladder, end in itertools.product(step_sizes, ladders, ends)
  ]
