"""EMA against raw weights on finished low-dimensional runs: test ELBO and IW-K NLL of each run's
best checkpoint (selected on the EMA validation bound) with both weight sets.

  python benchmarks/ema_rings.py --output=benchmarks/results/ema_rings.json \
      runs/ema_rings_seed0 runs/ema_rings_seed1 runs/ema_rings_seed2

Reads each workdir's metrics.json for the entropy, training time and best step.
"""

import json
import os

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from tfsmooth import experiment  # noqa: E402
from tfsmooth.train import trainer  # noqa: E402

_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/ema_rings.json', 'JSON path.')


def evaluate(workdir):
  run = experiment.Run.load(workdir)  # EMA weights when the run kept them
  k = run.config.eval.iw_samples
  with open(os.path.join(workdir, 'metrics.json')) as f:
    recorded = json.load(f)
  result = dict(workdir=workdir, seed=run.config.train.seed,
                ema_decay=run.config.train.ema_decay, iw_samples=k,
                entropy=recorded.get('entropy'), best_step=recorded.get('best_step'),
                train_seconds=recorded.get('train_seconds'))
  result['ema_elbo'], result['ema_iw'] = run.nll(run.model, 'test', k, 'test')
  trainer.restore_best(run.model, workdir, ema=False)
  result['raw_elbo'], result['raw_iw'] = run.nll(run.model, 'test', k, 'test')
  if result['entropy'] is not None:
    result['ema_iw_gap'] = result['ema_iw'] - result['entropy']
    result['raw_iw_gap'] = result['raw_iw'] - result['entropy']
  return {key: float(v) if hasattr(v, 'dtype') else v for key, v in result.items()}


def main(argv):
  results = []
  for workdir in argv[1:]:
    results.append(evaluate(workdir))
    print(json.dumps(results[-1]), flush=True)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
