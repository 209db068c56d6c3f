"""Training speed against `train.steps_per_loop`: the rings default config (MADE pair, XLA;
--batch_size, default the config's) trained --steps steps with each value of --loops, in
turn, --repeats times, in this one process. steps_per_loop = 1 returns to Python after every
step (the loop before the option existed); larger values run that many steps per call of the
compiled loop.

Reported per value: steps/s (steps / training seconds, tracing and XLA compilation included,
no evaluation), the median over repeats, and `ratio` = its median steps/s / that of 1.

  python benchmarks/steps_per_loop.py --output=benchmarks/results/steps_per_loop.json
  python benchmarks/steps_per_loop.py --batch_size=256 \
      --output=benchmarks/results/steps_per_loop_batch256.json
"""

import json
import os
import statistics
import tempfile

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import common  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth.configs import rings  # noqa: E402
from tfsmooth.train import trainer  # noqa: E402

_STEPS = flags.DEFINE_integer('steps', 6000, 'Training steps per measurement.')
_LOOPS = flags.DEFINE_list('loops', ['1', '10', '100', '1000'], 'steps_per_loop values.')
_REPEATS = flags.DEFINE_integer('repeats', 2, 'Measurements per value.')
_BATCH = flags.DEFINE_integer('batch_size', 0, "Global batch size (0: the config's).")
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/steps_per_loop.json', 'JSON path.')


def steps_per_second(steps_per_loop):
  config = rings.get_config()
  config.train.update(steps=_STEPS.value, steps_per_loop=steps_per_loop)
  if _BATCH.value:
    config.train.batch_size = _BATCH.value
  with tempfile.TemporaryDirectory() as workdir:
    run = experiment.Run.create(config, workdir)
    result = trainer.train(
        run.build_model, run.task.train_examples(config.train.seed), run.config.train, workdir
    )
  return _STEPS.value / result.train_seconds


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  loops = [int(n) for n in _LOOPS.value]
  measured = {n: [] for n in loops}
  for _ in range(_REPEATS.value):
    for n in loops:
      measured[n].append(steps_per_second(n))
      print(f'steps_per_loop {n}: {measured[n][-1]:.1f} steps/s', flush=True)
  base = statistics.median(measured[loops[0]])
  results = {
      str(n): {
          'steps_per_sec': values,
          'median': statistics.median(values),
          'ratio': statistics.median(values) / base,
      }
      for n, values in measured.items()
  }
  results['settings'] = dict(
      config='tfsmooth/configs/rings.py',
      steps=_STEPS.value,
      batch_size=_BATCH.value or rings.get_config().train.batch_size,
      repeats=_REPEATS.value,
      cpu_count=os.cpu_count(),
      load_average_after=os.getloadavg(),
  )
  common.write_json(_OUTPUT.value, results)
  print(json.dumps({n: round(r['ratio'], 2) for n, r in results.items() if n != 'settings'}))


if __name__ == '__main__':
  app.run(main)
