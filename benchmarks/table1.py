"""Table 1 and Figure 12 of the paper on `rings` and `olympics`, with one command.

Table 1: MADE baselines with 3 and 6 logistics vs the smoothed pair with 3 (sigma 0.3).
Figure 12: smoothed pairs with 2, 3, 4 logistics vs MADE baselines with 5, 6, 7.
Every run is an `experiment.Run` of a config from `tfsmooth/configs/` (the same as
`launch/train.py`); finished runs (metrics.json of the configured steps) are read, not
retrained, and unfinished ones resume. Writes `<out>/<experiment>.json` (all metrics),
`<out>/<experiment>.md` (the table, with the paper's figures and the true entropy) and
`<out>/<experiment>/<dataset>_samples.png` (data and every model's samples side by side;
smoothed models' samples are two-step).

  python benchmarks/table1.py --experiment=table1 --workdir=runs/table1
  python benchmarks/table1.py --experiment=figure12 --workdir=runs/figure12
"""

import importlib
import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
from tfsmooth import experiment  # noqa: E402
from tfsmooth import tasks  # noqa: E402
from tfsmooth.data import synthetic  # noqa: E402
from tfsmooth.evaluation import plots  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402

EXPERIMENTS = {
    'table1': [('baseline', 3), ('baseline', 6), ('smoothed', 3)],
    # Runs shared with table1 last, so that finished table1 workdirs can be copied in.
    'figure12': [
        ('baseline', 5),
        ('baseline', 7),
        ('smoothed', 2),
        ('smoothed', 4),
        ('baseline', 6),
        ('smoothed', 3),
    ],
}
_EXPERIMENT = flags.DEFINE_enum('experiment', 'table1', list(EXPERIMENTS), 'Which set of runs.')
_DATASETS = flags.DEFINE_list('datasets', ['rings', 'olympics'], 'Data sets (config names).')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/table1', "Root of the runs' workdirs.")
_OUT = flags.DEFINE_string('out', 'benchmarks/results', 'Where the JSON, table and PNGs go.')
_OVERRIDES = flags.DEFINE_string(
    'overrides',
    '{}',
    'JSON dict of flattened config overrides applied to every run, e.g. {"train.steps": 20000}.',
)


def run_config(dataset, variant, num_mixtures, overrides):
  config = importlib.import_module(f'tfsmooth.configs.{dataset}').get_config(variant)
  config.model.num_mixtures = config.conditional_model.num_mixtures = num_mixtures
  config.update_from_flattened_dict(overrides)
  return config


def label(variant, num_mixtures):
  return f'{"Smoothed" if variant == "smoothed" else "MADE"} ({num_mixtures})'


def samples_of(workdir, n=3000):
  """Samples from the best checkpoint: the model's own (last) sampler, two-step for pairs."""
  run = experiment.Run.load(workdir)
  sampler = run.model.samplers[-1]
  return tasks.draw_rows(run.model, run.row_seeds('samples', n), [sampler])[sampler]


def markdown(rows, runs):
  header = (
      '| data set | model | test NLL (nats) | bound | paper | true entropy | params | steps '
      '| train s |\n|---|---|---|---|---|---|---|---|---|'
  )
  lines = [header]
  for (dataset, variant, k), m in zip(runs, rows):
    if m['smoothed']:
      nll, bound = f'{m["nll_iw"]:.3f} (ELBO {m["nll_elbo"]:.3f})', f'IW-{m["iw_samples"]}'
    else:
      nll, bound = f'{m["nll"]:.3f}', 'exact'
    paper = '-' if m.get('paper_nll') is None else f'{m["paper_nll"]:.2f}'
    lines.append(
        f'| {dataset} | {label(variant, k)} | {nll} | {bound} | {paper} | '
        f'{m["entropy"]:.3f} | {m["num_params"]:,} | {m["steps"]:,} | '
        f'{m["train_seconds"]:.0f} |'
    )
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  overrides = json.loads(_OVERRIDES.value)
  name = _EXPERIMENT.value
  runs = [(d, v, k) for d in _DATASETS.value for v, k in EXPERIMENTS[name]]
  rows, samples = [], {}
  for dataset, variant, k in runs:
    config = run_config(dataset, variant, k, overrides)
    workdir = os.path.join(_WORKDIR.value, f'{dataset}_{variant}{k}')
    run, metrics = common.run_or_load(config, workdir)
    logging.info('%s', run.summary_line(metrics))
    rows.append(metrics)
    samples[(dataset, variant, k)] = samples_of(workdir)
  out = os.path.join(_OUT.value, name)
  os.makedirs(out, exist_ok=True)
  common.write_json(
      out + '.json', [dict(m, variant=v, mixtures=k) for (_, v, k), m in zip(runs, rows)]
  )
  with open(out + '.md', 'w') as f:
    f.write(markdown(rows, runs))
  for dataset in _DATASETS.value:
    data = synthetic.load_splits(dataset)['test'][:3000]
    panels = [('data', data)] + [
        (label(v, k), samples[(d, v, k)]) for d, v, k in runs if d == dataset
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.8))
    limits = (np.min(data) - 0.3, np.max(data) + 0.3)
    for ax, (title, points) in zip(axes, panels):
      ax.scatter(points[:, 0], points[:, 1], s=0.3, alpha=0.5)
      ax.set(xlim=limits, ylim=limits, aspect='equal', xticks=[], yticks=[])
      ax.set_title(title, fontsize=9)
    plots.save_figure(fig, os.path.join(out, f'{dataset}_samples.png'))
  print(markdown(rows, runs))


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  app.run(cli.reported(main))
