"""Paper Table 2 at small scale: Fashion-MNIST baseline PixelCNN++ against the smoothed pair.

Collects what `launch/evaluate.py` wrote for the two runs (eval.json with the training record
it copies, the grids) into one JSON beside the paper's CIFAR-10 figures and the domain floor
(training images scored against the test split, benchmarks/results/fashion_mnist_fid_floor.json),
and prints the table as Markdown. With the raw weights of both runs:

  python launch/evaluate.py --workdir=runs/fmnist_baseline --weights=raw \
      --single_step_sigmas=0.01,0.05,0.1
  python launch/evaluate.py --workdir=runs/fmnist_smoothed --weights=raw
  python benchmarks/fashion_mnist_table2.py \
      --baseline=runs/fmnist_baseline/eval_raw_weights \
      --smoothed=runs/fmnist_smoothed/eval_raw_weights \
      --output=benchmarks/results/fashion_mnist_eval.json

The figures (sample grids and nearest-neighbour grids) are copied next to the JSON, into
--output without its extension. Target (issue 10): the two-step domain FID at least 30% below
the baseline's.
"""

import json
import os
import shutil

from absl import app
from absl import flags

import common

_BASELINE = flags.DEFINE_string(
    'baseline',
    'runs/fmnist_baseline',
    "The baseline's evaluation directory (launch/evaluate.py output: eval.json, grids).",
)
_SMOOTHED = flags.DEFINE_string(
    'smoothed', 'runs/fmnist_smoothed', "The pair's evaluation directory."
)
_FLOOR = flags.DEFINE_string(
    'floor',
    'benchmarks/results/fashion_mnist_fid_floor.json',
    'benchmarks/fashion_mnist_fid_floor.py output.',
)
_OUTPUT = flags.DEFINE_string('output', 'benchmarks/results/fashion_mnist_eval.json', 'JSON path.')

# Paper Table 2 (unconditional CIFAR-10, Inception-v3 features, 50k samples).
PAPER_CIFAR10 = {
    'PixelCNN++': dict(inception_score=5.30, fid=54.25, kid=0.046, bpd=2.92),
    'single-step': dict(inception_score=7.50, fid=57.53, kid=0.052, bpd=None),
    'two-step': dict(inception_score=7.84, fid=29.83, kid=0.022, bpd='<= 3.53'),
}
TARGET_FID_REDUCTION = 0.30
ROWS = (  # (workdir flag, sampler, label, paper row)
    ('baseline', 'samples', 'baseline PixelCNN++', 'PixelCNN++'),
    ('smoothed', 'smoothed', 'pair: x~ ~ p(x~), not denoised', None),
    ('smoothed', 'single_step', 'pair: single-step x~ + sigma^2 grad log p(x~)', 'single-step'),
    ('smoothed', 'two_step', 'pair: two-step x ~ p(x \\| x~)', 'two-step'),
)
SCORES = (
    'fid',
    'kid',
    'kid_std',
    'inception_score',
    'inception_score_std',
    'num_samples',
    'num_reference',
    'feature_network',
)


def _read(directory):
  path = os.path.join(directory, 'eval.json')
  if not os.path.exists(path):
    raise SystemExit(
        f'{path} is missing: run launch/train.py and launch/evaluate.py first '
        "(commands in this script's docstring)."
    )
  with open(path) as f:
    return json.load(f)


def _bpd(evaluation):
  bpd = evaluation['bpd']
  if 'bpd' in bpd:
    return dict(bpd=bpd['bpd'], kind='exact')
  return dict(
      bpd_elbo=bpd['bpd_elbo'],
      bpd_iw=bpd['bpd_iw'],
      iw_samples=bpd['iw_samples'],
      kind='upper bounds',
  )


def _model(directory):
  evaluation = _read(directory)
  metrics = evaluation['recorded_metrics']
  return (
      dict(
          eval_dir=common.relative(directory),
          weights=evaluation['source'].get('weights'),
          checkpoint=evaluation['source'].get('checkpoint'),
          steps=metrics.get('steps'),
          num_params=metrics.get('num_params'),
          train_seconds=metrics.get('train_seconds'),
          bpd=dict(_bpd(evaluation), num_examples=evaluation['bpd']['num_examples']),
          sampling_seconds=evaluation['sampling']['seconds'],
      ),
      evaluation,
  )


def _copy_figures(evaluation, directory, sampler, figure_dir, model):
  copied = []
  entry = evaluation['samplers'][sampler]
  for name in entry.get('plots', entry.get('figures', ())):  # 'figures' in older eval.json
    target = f'{model}_{name}'
    shutil.copyfile(os.path.join(directory, name), os.path.join(figure_dir, target))
    copied.append(target)
  return copied


def _cell(value, digits):
  return '-' if value is None else value if isinstance(value, str) else f'{value:.{digits}f}'


def _pm(entry, key, digits):
  """'value ± std' of entry[key], the std '-' where there is none (KID over one block: at
  most sample_quality.KID_BLOCK_SIZE samples)."""
  return f'{entry[key]:.{digits}f} ± {_cell(entry[key + "_std"], digits)}'


def markdown(result):
  lines = [
      (
          '| samples | params | steps | test bpd | domain FID | KID | IS | paper CIFAR-10 '
          '(IS / FID / KID / bpd) |'
      ),
      '|---|---|---|---|---|---|---|---|',
  ]
  for row in result['rows']:
    model = result['models'][row['model']]
    bpd = model['bpd']
    bpd_text = (
        f'{bpd["bpd"]:.3f}'
        if 'bpd' in bpd
        else f'<= {bpd["bpd_iw"]:.3f} (IW-{bpd["iw_samples"]}), ELBO {bpd["bpd_elbo"]:.3f}'
    )
    paper = result['paper_cifar10'].get(row['paper_row'] or '', {})
    paper_text = (
        ' / '.join(
            _cell(paper.get(k), 3 if k == 'kid' else 2)
            for k in ('inception_score', 'fid', 'kid', 'bpd')
        )
        if paper
        else '-'
    )
    params = '-' if model['num_params'] is None else f'{model["num_params"]:,}'
    lines.append(
        f'| {row["label"]} | {params} | {_cell(model["steps"], 0)} | {bpd_text} | '
        f'**{row["fid"]:.2f}** | {_pm(row, "kid", 4)} | {_pm(row, "inception_score", 2)} | '
        f'{paper_text} |'
    )
  floor = result['floor']
  lines.append(
      f'| floor: {floor["num_samples"]} training images | - | - | - | '
      f'{floor["fid"]:.2f} | {_pm(floor, "kid", 4)} | {_pm(floor, "inception_score", 2)} | - |'
  )
  return '\n'.join(lines)


def main(argv):
  del argv
  figure_dir = os.path.splitext(_OUTPUT.value)[0]
  os.makedirs(figure_dir, exist_ok=True)
  models, evaluations = {}, {}
  for name, directory in (('baseline', _BASELINE.value), ('smoothed', _SMOOTHED.value)):
    models[name], evaluations[name] = _model(directory)
  rows = []
  for model, sampler, label, paper_row in ROWS:
    entry = evaluations[model]['samplers'][sampler]
    rows.append(
        dict(
            model=model,
            sampler=sampler,
            label=label,
            paper_row=paper_row,
            **{k: entry[k] for k in SCORES},
            figures=_copy_figures(
                evaluations[model], models[model]['eval_dir'], sampler, figure_dir, model
            ),
        )
    )
  ablation = []  # paper App. C.6: single-step denoising of the unsmoothed baseline
  for sampler, entry in sorted(evaluations['baseline']['samplers'].items()):
    if sampler.startswith('samples_single_step_'):
      ablation.append(
          dict(
              sigma=entry['sigma'],
              **{k: entry[k] for k in SCORES},
              figures=_copy_figures(
                  evaluations['baseline'], _BASELINE.value, sampler, figure_dir, 'baseline'
              ),
          )
      )
  with open(_FLOOR.value) as f:
    floor_record = json.load(f)
  size = min(
      int(key.split('_')[1])
      for key in floor_record['rows']
      if key.startswith('train_')
      if int(key.split('_')[1]) >= rows[0]['num_samples']
  )
  floor = dict(floor_record['rows'][f'train_{size}'], source=common.relative(_FLOOR.value))
  fid = {row['sampler']: row['fid'] for row in rows}
  reduction = 1 - fid['two_step'] / fid['samples']
  result = dict(
      dataset='fashion_mnist',
      models=models,
      rows=rows,
      single_step_ablation=ablation,
      floor=floor,
      paper_cifar10=PAPER_CIFAR10,
      two_step_fid_reduction=reduction,
      paper_fid_reduction=1
      - (PAPER_CIFAR10['two-step']['fid'] / PAPER_CIFAR10['PixelCNN++']['fid']),
      target_fid_reduction=TARGET_FID_REDUCTION,
      target_met=reduction >= TARGET_FID_REDUCTION,
      feature_network=evaluations['baseline']['feature_network'],
  )
  result['markdown'] = markdown(result)
  common.write_json(_OUTPUT.value, result)
  print(result['markdown'])
  for entry in ablation:
    print(
        f'C.6: baseline samples + single-step sigma={entry["sigma"]}: FID {entry["fid"]:.2f}, '
        f'KID {entry["kid"]:.4f}, IS {entry["inception_score"]:.2f}'
    )
  print(
      f"two-step FID {reduction:.1%} below the baseline's (target "
      f'{TARGET_FID_REDUCTION:.0%}, paper CIFAR-10 {result["paper_fid_reduction"]:.1%})'
  )


if __name__ == '__main__':
  app.run(main)
