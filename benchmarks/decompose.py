"""Where a trained Gaussian-smoothed pair loses likelihood: p(x~) and p(x | x~) against the truth.

For a finished smoothed run of launch/train.py on a synthetic data set (each has a closed-form
smoothed density: rings, olympics, checkerboard, the 1-D mixtures), splits the test -ELBO into
its two model terms and compares each with the true one
(`tfsmooth.evaluation.likelihood.decompose`):

  nll_elbo - true_nll = (prior_nll - true_prior_nll) + (conditional_nll - true_conditional_nll)

Writes --output (default <workdir>/decomposition.json) and prints one line per term.

  python benchmarks/decompose.py --workdir=runs/rings
  python benchmarks/decompose.py --workdir=runs/rings_cond6 \
      --output=benchmarks/results/decomposition/rings_cond6.json
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import common  # noqa: E402
from tfsmooth import errors  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth import seeds  # noqa: E402
from tfsmooth.evaluation import likelihood  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

_WORKDIR = flags.DEFINE_string('workdir', None, 'A smoothed launch/train.py run.', required=True)
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 16, 'Noise draws x~ per test point.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the noise draws.')
_OUTPUT = flags.DEFINE_string(
    'output', '', 'Where the JSON record goes (default: <workdir>/decomposition.json).'
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  run = experiment.Run.load(_WORKDIR.value)
  if run.model.exact_likelihood:
    raise errors.UserError(f'{_WORKDIR.value} holds a baseline run: its NLL is exact already.')
  test = run.task.split('test')
  row_seeds = seeds.rows(_SEED.value, 'test', 0, len(test))
  terms = likelihood.decompose(run.model, run.task.dataset, test, row_seeds, _NUM_SAMPLES.value)
  terms.update(
      dataset=run.config.data.name,
      sigma=run.config.smoothing.sigma,
      num_samples=_NUM_SAMPLES.value,
      test_points=len(test),
  )
  common.write_json(_OUTPUT.value or os.path.join(_WORKDIR.value, 'decomposition.json'), terms)
  for label, model_key, true_key in (
      ('p(x~)', 'prior_nll', 'true_prior_nll'),
      ('p(x | x~)', 'conditional_nll', 'true_conditional_nll'),
      ('-ELBO', 'nll_elbo', 'true_nll'),
  ):
    print(
        f'{label:9s} model {terms[model_key]:.4f}  true {terms[true_key]:.4f}  '
        f'excess {terms[model_key] - terms[true_key]:.4f} nats/point'
    )


if __name__ == '__main__':
  app.run(cli.reported(main))
