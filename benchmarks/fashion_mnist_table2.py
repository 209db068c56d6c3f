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

Issue 25 adds the noise-conditional pair (one model for every sigma, trained at the same
budget) scored at the fixed pair's sigma: --noise_conditional=<its eval directory> adds its
rows (x~, single step, two-step at that sigma, and the annealed sampler, which walks its own
ladder of levels), its bpd bounds at that sigma, the ratio of its annealed and two-step FID to
the fixed pair's two-step FID against the goal (annealed at most 0.8x), and the annealed
sampler's cost per image against the two-step's where eval.json times them apart
(`noise_conditional_cost`). The two runs' eval directories are not kept (runs/ is not in git),
so --recorded takes the baseline's and the fixed pair's rows from this driver's earlier
record instead; the table goes to another file, and that record stays as it is:

  python launch/evaluate.py --workdir=runs/fmnist_noise_conditional --weights=raw --sigma=0.5
  python benchmarks/fashion_mnist_table2.py \
      --recorded=benchmarks/results/fashion_mnist_eval.json \
      --noise_conditional=runs/fmnist_noise_conditional/eval_raw_weights/eval_sigma0.5 \
      --output=benchmarks/results/fashion_mnist_noise_conditional_eval.json

The pair's parameter count, steps and training seconds come from eval.json's training record,
or, where that describes other weights (the raw weights of a run that keeps EMA averages
record none), from the run's metrics.json (they do not depend on the weights); the annealed
ladder from the run's config.json.
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
_NOISE_CONDITIONAL = flags.DEFINE_string(
    'noise_conditional',
    '',
    "The noise-conditional pair's evaluation directory (launch/evaluate.py --sigma output, "
    'e.g. runs/fmnist_noise_conditional/eval_raw_weights/eval_sigma0.5): adds its rows, its FID '
    "ratios to the fixed pair's two-step FID and the annealed sampler's cost. Empty: none.",
)
_RECORDED = flags.DEFINE_string(
    'recorded',
    '',
    "An earlier record of this driver: the baseline's and the fixed pair's rows, C.6 ablation "
    'and floor are taken from it instead of from --baseline, --smoothed and --floor. Empty: '
    'read those.',
)

# Paper Table 2 (unconditional CIFAR-10, Inception-v3 features, 50k samples).
PAPER_CIFAR10 = {
    'PixelCNN++': dict(inception_score=5.30, fid=54.25, kid=0.046, bpd=2.92),
    'single-step': dict(inception_score=7.50, fid=57.53, kid=0.052, bpd=None),
    'two-step': dict(inception_score=7.84, fid=29.83, kid=0.022, bpd='<= 3.53'),
}
TARGET_FID_REDUCTION = 0.30
# Issue 25's goal: the noise-conditional pair's annealed FID at most this times the fixed pair's
# (two-step) FID, both at the shipped pair's budget.
TARGET_ANNEALED_FID_RATIO = 0.8
ROWS = (  # (workdir flag, sampler, label, paper row)
    ('baseline', 'samples', 'baseline PixelCNN++', 'PixelCNN++'),
    ('smoothed', 'smoothed', 'pair: x~ ~ p(x~), not denoised', None),
    ('smoothed', 'single_step', 'pair: single-step x~ + sigma^2 grad log p(x~)', 'single-step'),
    ('smoothed', 'two_step', 'pair: two-step x ~ p(x \\| x~)', 'two-step'),
)
NC_ROWS = (  # (sampler, label) of the noise-conditional pair; {sigma}: its eval's level
    ('smoothed', 'noise-conditional pair at sigma={sigma}: x~ ~ p(x~ \\| sigma), not denoised'),
    (
        'single_step',
        'noise-conditional pair at sigma={sigma}: single-step x~ + sigma^2 grad log p(x~ \\| sigma)',
    ),
    ('two_step', 'noise-conditional pair at sigma={sigma}: two-step x ~ p(x \\| x~, sigma)'),
    ('annealed', 'noise-conditional pair: annealed {ladder}'),
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


def _json_in(directory, name):
  """The JSON file `name` in `directory`, or None where there is none."""
  path = os.path.join(directory, name)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _annealing(config, trained_range):
  """The annealed sampler's ladder from the run's config.json (smoothing.annealed_*), with
  what it and the two-step sampler compute per image (tfsmooth/smoothing.py, `Annealing`)."""
  smoothing = config['smoothing']
  plan = {k: smoothing[f'annealed_{k}'] for k in ('levels', 'steps', 'step_size', 'end')}
  low, high = trained_range
  score_evaluations = plan['levels'] * plan['steps'] + (plan['end'] == 'single_step')
  end = (
      'x ~ p(x | x~, sigma_min)'
      if plan['end'] == 'two_step'
      else 'the single step x~ + sigma_min^2 grad log p(x~ | sigma_min)'
  )
  return dict(
      plan,
      sigma_max=high,
      sigma_min=low,
      score_evaluations=score_evaluations,
      annealed_work=(
          'an autoregressive draw of x~ ~ p(x~ | sigma_max), then '
          f'{plan["levels"]} levels x {plan["steps"]} Langevin steps, each one score '
          "evaluation grad log p(x~ | sigma) (a pass of p(x~)'s network and its gradient), "
          f'then {end}'
      ),
      two_step_work='autoregressive draws of x~ ~ p(x~ | sigma) and x ~ p(x | x~, sigma)',
  )


def _noise_conditional_model(directory):
  """The noise-conditional pair's model entry (as `_model`'s), its eval.json, its level and
  the annealed ladder (None where the run's config.json is not at hand)."""
  evaluation = _read(directory)
  level = evaluation.get('noise_level')
  if level is None or 'annealed' not in evaluation['samplers']:
    raise SystemExit(
        f'{os.path.join(directory, "eval.json")} is no noise-conditional pair\'s evaluation '
        '(it has no noise_level block or no annealed sampler): pass --noise_conditional the '
        'directory launch/evaluate.py --sigma wrote for a run of '
        'tfsmooth/configs/fashion_mnist.py:noise_conditional.'
    )
  source = evaluation['source']
  workdir = source.get('workdir')
  metrics, metrics_source = evaluation['recorded_metrics'], 'eval.json recorded_metrics'
  if not metrics.get('num_params') and workdir:
    # A run that keeps EMA averages records its test metrics of those: scored with its raw
    # weights, eval.json carries no training record, but params, steps and training seconds
    # are the run's whatever the weights.
    metrics = _json_in(workdir, 'metrics.json') or {}
    metrics_source = common.relative(os.path.join(workdir, 'metrics.json'))
  config = _json_in(workdir, 'config.json') if workdir else None
  model = dict(
      eval_dir=common.relative(directory),
      weights=source.get('weights'),
      checkpoint=source.get('checkpoint'),
      steps=metrics.get('steps', source.get('step')),
      num_params=metrics.get('num_params'),
      train_seconds=metrics.get('train_seconds'),
      run_record=metrics_source if metrics else None,
      bpd=dict(
          _bpd(evaluation),
          num_examples=evaluation['bpd']['num_examples'],
          sigma=evaluation['bpd'].get('sigma', level['sigma']),
      ),
      sampling_seconds=evaluation['sampling']['seconds'],
  )
  annealing = None if config is None else _annealing(config, level['trained_range'])
  return model, evaluation, level, annealing


def noise_conditional_cost(evaluation, annealing):
  """The annealed sampler's cost per image against the two-step's, from eval.json's sampling
  record: where `sampling.seconds_by_draw` ({comma-joined samplers drawn together: seconds})
  times the annealed draw apart from the two-step's, seconds per drawn image and their ratio;
  else None and why. launch/evaluate.py draws every sampler of a batch in one call and records
  one `sampling.seconds` for all of them, which no division separates. `annealing`: what the
  two compute per image, from the run's config (or None)."""
  sampling = evaluation['sampling']
  samplers = [name for name in evaluation['samplers'] if not name.startswith('samples_')]
  cost = dict(
      sampling_seconds=sampling['seconds'],
      drawn=sampling['drawn'],
      reused=sampling['reused'],
      samplers=samplers,
      separable=False,
      annealed_seconds_per_image=None,
      two_step_seconds_per_image=None,
      annealed_over_two_step=None,
      work=annealing,
  )
  by_draw = sampling.get('seconds_by_draw')
  group = {name: key for key in by_draw or {} for name in key.split(',')}
  if not by_draw:
    cost['why'] = (
        f'eval.json records one sampling.seconds ({sampling["seconds"]} s) for the '
        f'{sampling["drawn"]} draws of {", ".join(samplers)} together: '
        'sample_eval.draw_samples draws every sampler of a batch in one call '
        "(tasks.draw_rows), so the annealed sampler's cost per image is not separable from "
        "the two-step's. Needed: draw_samples drawing the annealed sampler in a call of its own "
        '(model.draw takes samplers=) and recording sampling.seconds_by_draw, e.g. '
        '{"annealed": s, "smoothed,single_step,two_step": s}, which this driver reads.'
    )
  elif 'annealed' not in group or 'two_step' not in group:
    cost['why'] = (
        f'sampling.seconds_by_draw times {", ".join(by_draw)}: not both the annealed and the '
        'two-step sampler.'
    )
  elif group['annealed'] == group['two_step']:
    cost['why'] = (
        f'sampling.seconds_by_draw times the annealed and the two-step sampler in one draw '
        f'({group["annealed"]}): not separable.'
    )
  elif not sampling['drawn']:
    cost['why'] = (
        f'every sample was reused from {sampling.get("file", "eval_samples.npz")}: nothing was '
        'drawn, so nothing was timed (a fresh --out_dir draws them anew).'
    )
  else:
    images = sampling.get('timed_images', sampling['drawn'])  # batches after the first
    annealed = by_draw[group['annealed']] / images
    two_step = by_draw[group['two_step']] / images
    cost.update(
        separable=True,
        seconds_by_draw=by_draw,
        annealed_seconds_per_image=annealed,
        two_step_seconds_per_image=two_step,
        annealed_over_two_step=annealed / two_step,
        two_step_draw=group['two_step'].split(','),
        why=(
            f'seconds of each draw over the {images} images timed (draw_samples leaves out '
            'the first batch, which traces the samplers); the two-step figure is that of the draw it shares with '
            f'{", ".join(n for n in group["two_step"].split(",") if n != "two_step")} (one x~ '
            'per row for all of them)'
        ),
    )
  return cost


def _add_noise_conditional(result, directory, figure_dir):
  """Adds the noise-conditional pair of `directory` to `result`: its model, its rows after
  the fixed pair's, and result['noise_conditional'] (level, FID ratios to the fixed pair's
  two-step FID against TARGET_ANNEALED_FID_RATIO, cost)."""
  model, evaluation, level, annealing = _noise_conditional_model(directory)
  fixed = next(r for r in result['rows'] if r['model'] == 'smoothed' and r['sampler'] == 'two_step')
  two_step = evaluation['samplers']['two_step']
  network = two_step['feature_network']
  if (network, two_step['num_samples'], two_step['num_reference']) != (
      fixed['feature_network'],
      fixed['num_samples'],
      fixed['num_reference'],
  ):
    raise SystemExit(
        f'The noise-conditional pair was scored in {network} features with '
        f'{two_step["num_samples"]} samples against {two_step["num_reference"]} test images, '
        f'the fixed pair in {fixed["feature_network"]} features with {fixed["num_samples"]} '
        f'against {fixed["num_reference"]}: FID depends on all three, so the ratios would not '
        'compare. Evaluate it as the fixed pair was (launch/evaluate.py defaults: 5,000 '
        'samples, the whole test split, the classifier).'
    )
  result['models']['noise_conditional'] = model
  ladder = (
      'Langevin from sigma_max to sigma_min'
      if annealing is None
      else (
          f'{annealing["levels"]} levels x {annealing["steps"]} Langevin steps from sigma '
          f'{annealing["sigma_max"]:g} to {annealing["sigma_min"]:g}, then '
          f'{annealing["end"].replace("_", "-")}'
      )
  )
  rows = {}
  for sampler, label in NC_ROWS:
    entry = evaluation['samplers'][sampler]
    rows[sampler] = dict(
        model='noise_conditional',
        sampler=sampler,
        label=label.format(sigma=f'{level["sigma"]:g}', ladder=ladder),
        paper_row=None,
        noise_level=entry.get('noise_level'),
        **{k: entry[k] for k in SCORES},
        figures=_copy_figures(evaluation, directory, sampler, figure_dir, 'noise_conditional'),
    )
    result['rows'].append(rows[sampler])
  fixed_params = result['models']['smoothed']['num_params']
  annealed_ratio = rows['annealed']['fid'] / fixed['fid']
  result['noise_conditional'] = dict(
      eval_dir=model['eval_dir'],
      sigma=level['sigma'],
      trained_range=level['trained_range'],
      fixed_two_step_fid=fixed['fid'],
      annealed_fid_ratio=annealed_ratio,
      two_step_fid_ratio=rows['two_step']['fid'] / fixed['fid'],
      target_annealed_fid_ratio=TARGET_ANNEALED_FID_RATIO,
      target_met=annealed_ratio <= TARGET_ANNEALED_FID_RATIO,
      steps=dict(noise_conditional=model['steps'], fixed=result['models']['smoothed']['steps']),
      params_ratio=(
          None if not (model['num_params'] and fixed_params) else model['num_params'] / fixed_params
      ),
      cost=noise_conditional_cost(evaluation, annealing),
  )
  result['noise_conditional']['summary'] = noise_conditional_lines(result)


def noise_conditional_lines(result):
  """What the noise-conditional pair's record says in words: the goal, the ratios, the cost."""
  nc = result['noise_conditional']
  fid = {
      row['sampler']: row['fid'] for row in result['rows'] if row['model'] == 'noise_conditional'
  }
  goal = (
      f'noise-conditional annealed FID {fid["annealed"]:.2f} = {nc["annealed_fid_ratio"]:.3f}x '
      f'the fixed pair\'s two-step {nc["fixed_two_step_fid"]:.2f} (goal at most '
      f'{nc["target_annealed_fid_ratio"]:g}x: {"met" if nc["target_met"] else "not met"}); '
      f'its two-step at sigma={nc["sigma"]:g}: {fid["two_step"]:.2f} = '
      f'{nc["two_step_fid_ratio"]:.3f}x'
  )
  lines = [goal]
  cost = nc['cost']
  if cost['separable']:
    lines.append(
        f'annealed sampler {cost["annealed_seconds_per_image"]:.3f} s per image against the '
        f'two-step\'s {cost["two_step_seconds_per_image"]:.3f} s '
        f'({cost["annealed_over_two_step"]:.1f}x; {cost["why"]})'
    )
  else:
    lines.append(f'annealed sampler\'s cost per image: not measured: {cost["why"]}')
  if cost['work']:
    lines.append(
        f'per image, annealed: {cost["work"]["annealed_work"]}; two-step: '
        f'{cost["work"]["two_step_work"]}'
    )
  return lines


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
    if 'sigma' in bpd:  # a noise-conditional pair's bounds, at the level it was scored at
      bpd_text += f' at sigma={bpd["sigma"]:g}'
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


def _collect(figure_dir):
  """The record of the baseline and the fixed pair from their eval directories (--baseline,
  --smoothed) and the floor (--floor), their figures copied into `figure_dir`."""
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
  return dict(
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


def _from_record(path):
  """The baseline's and the fixed pair's part of an earlier record of this driver (`path`),
  as it was (their figures stay in its figure directory, named in 'recorded_from')."""
  if os.path.abspath(path) == os.path.abspath(_OUTPUT.value):
    raise SystemExit(
        f'--output is --recorded ({path}): this would rewrite the record it reads. Write the '
        'table to another file, e.g. '
        '--output=benchmarks/results/fashion_mnist_noise_conditional_eval.json.'
    )
  with open(path) as f:
    record = json.load(f)
  result = {
      k: v for k, v in record.items() if k not in ('markdown', 'noise_conditional', 'recorded_from')
  }
  result['models'] = {k: v for k, v in record['models'].items() if k in ('baseline', 'smoothed')}
  result['rows'] = [row for row in record['rows'] if row['model'] in ('baseline', 'smoothed')]
  result['recorded_from'] = dict(
      record=common.relative(path),
      figure_dir=common.relative(os.path.splitext(path)[0]),
      rows='the baseline and the fixed pair: models, rows, single_step_ablation, floor',
  )
  return result


def main(argv):
  del argv
  figure_dir = os.path.splitext(_OUTPUT.value)[0]
  os.makedirs(figure_dir, exist_ok=True)
  result = _from_record(_RECORDED.value) if _RECORDED.value else _collect(figure_dir)
  if _NOISE_CONDITIONAL.value:
    _add_noise_conditional(result, _NOISE_CONDITIONAL.value, figure_dir)
  result['markdown'] = markdown(result)
  common.write_json(_OUTPUT.value, result)
  print(result['markdown'])
  for entry in result['single_step_ablation']:
    print(
        f'C.6: baseline samples + single-step sigma={entry["sigma"]}: FID {entry["fid"]:.2f}, '
        f'KID {entry["kid"]:.4f}, IS {entry["inception_score"]:.2f}'
    )
  print(
      f"two-step FID {result['two_step_fid_reduction']:.1%} below the baseline's (target "
      f'{TARGET_FID_REDUCTION:.0%}, paper CIFAR-10 {result["paper_fid_reduction"]:.1%})'
  )
  if 'noise_conditional' in result:
    print('\n'.join(result['noise_conditional']['summary']))


if __name__ == '__main__':
  app.run(main)
