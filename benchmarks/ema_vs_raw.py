"""EMA against raw weights on finished runs: each run's best checkpoint (selected on the EMA
validation figure) scored on the test split with both weight sets, in the task's unit (nats for
points, bpd for images): exact for a plain model, ELBO and IW-K bounds for a smoothed pair.

  python benchmarks/ema_vs_raw.py --output=benchmarks/results/ema_rings.json \
      runs/ema_rings_seed0 runs/ema_rings_seed1 runs/ema_rings_seed2
  python benchmarks/ema_vs_raw.py --output=benchmarks/results/ema_fashion_mnist.json \
      runs/fmnist_baseline runs/fmnist_smoothed

Reads each workdir's metrics.json for the true NLL of its test points (the limit of a test
NLL, `test_true_nll`; computed for records made before metrics held it), the entropy, training
time and best step; gaps are to the true NLL of the same points.
"""

import json

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import common  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth.train import checkpoints  # noqa: E402

_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/ema_vs_raw.json', 'JSON path.')


def _figures(run, prefix):
  record = run.likelihood(run.model, 'test', run.config.eval.iw_samples)  # likelihood.NLL
  if record.exact:
    return {f'{prefix}_exact': record.nll}
  return {f'{prefix}_elbo': record.nll_elbo, f'{prefix}_iw': record.nll}


def evaluate(workdir):
  run = experiment.Run.load(workdir)  # EMA weights when the run kept them
  recorded = run.read_metrics()
  result = dict(
      workdir=common.relative(workdir),
      seed=run.config.train.seed,
      unit=run.task.unit,
      ema_decay=run.config.train.ema_decay,
      iw_samples=None if run.model.exact_likelihood else run.config.eval.iw_samples,
      entropy=recorded.get('entropy'),
      test_true_nll=recorded.get('test_true_nll', run.task.reference().get('test_true_nll')),
      best_step=recorded.get('best_step'),
      train_seconds=recorded.get('train_seconds'),
  )
  result.update(_figures(run, 'ema'))
  checkpoints.restore_best(run.model, workdir, ema=False)
  result.update(_figures(run, 'raw'))
  if result['test_true_nll'] is not None and 'ema_iw' in result:
    result['ema_iw_gap'] = result['ema_iw'] - result['test_true_nll']
    result['raw_iw_gap'] = result['raw_iw'] - result['test_true_nll']
  return {key: float(v) if hasattr(v, 'dtype') else v for key, v in result.items()}


def main(argv):
  results = []
  for workdir in argv[1:]:
    results.append(evaluate(workdir))
    print(json.dumps(results[-1]), flush=True)
  common.write_json(_OUTPUT.value, results)


if __name__ == '__main__':
  app.run(main)
