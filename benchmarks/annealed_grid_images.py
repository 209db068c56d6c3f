"""The annealed sampler's setting of an image noise-conditional pair, chosen on the validation split.

Issue 25 asks that the annealed sampler's ladder length, Langevin steps per level, step size and
ending be chosen by measurement on the validation split, never the test split. For points
benchmarks/noise_conditional.py does it by energy distance; for images this driver does it by
domain FID. For the run in --workdir (a noise-conditional image pair, e.g.
`tfsmooth/configs/fashion_mnist.py:noise_conditional`; its --weights, raw by default, as its
test evaluation was made) it draws --num_samples annealed samples for every setting of a grid and
scores each against the run's VALIDATION split (config data.validation_split, all of it, or its
first --num_reference images; data.validation_examples, the cap of the bpd validation during
training, does not apply): FID, KID +- its standard error and IS through the feature network
(`sample_eval.load_network`: by default the shipped Fashion-MNIST classifier, "domain" figures).
The chosen setting is the one of lowest validation FID; the record puts it beside the configured
one (config.json's smoothing.annealed_*), with the --config flags that would adopt it.

Beside the grid, on the same reference and at the same sample count:
  * the peer: the pair's two-step sampler at its reference level smoothing.sigma (or --sigma),
    so the grid's figures compare with something;
  * the floor: the first --num_samples training images (no model can beat its own data; FID
    is biased upwards at finite counts, so at 1,000 vs 1,000 every figure here is higher than
    at launch/evaluate.py's 5,000 vs 10,000, and compares only with the others of this record).

Every setting draws sample j from row j of the 'samples' seed stream with base --seed (default
the run's eval.seed + 1: not the rows launch/evaluate.py scores on the test split), so the
settings differ by their setting, not by their luck. Draws go in batches of --batch_size with a
progress line (batch i/n, samples/s, ETA) through `sample_eval.draw_samples`, stored as 8-bit
images after every batch under --samples_dir/<setting>/ (default <workdir>/annealed_grid_<weights>):
an interrupted run resumes, and a rerun rescores the stored samples without drawing anew.

The default grid (7 settings, each at most 51 score evaluations an image, within issue 25's cap
of about 50): step sizes 0.1, 0.5 (configured), 1.0 x ladders 10x5 (configured: 10 levels, 5
Langevin steps each), 25x2 (more levels, fewer steps each: the same 50 evaluations) x ending
two_step; and 0.5/10x5/single_step, the configured ladder with the other ending (x~ + sigma_min^2
score: one evaluation more, no second autoregressive draw). Why these: the step size is the axis
that mattered most on points (rings chose 1.0, modes6_1d 0.1, the configured 0.5 lay between:
benchmarks/results/noise_conditional.json), so it spans that range; ladders of equal cost
compare how the budget is spread (5x10 was never best on rings); on points two_step beat
single_step at every setting, so one single_step setting checks that on images.

Cost (about 9 ms per score evaluation and 30 ms per autoregressive draw per image here): a
two_step setting 50 x 9 + 2 x 30 = 510 ms an image, the single_step one 51 x 9 + 30 = 489 ms;
the peer 2 x 30 = 60 ms. At 1,000 samples: 7 settings about 3,550 s, the peer about 60 s, the
features of 1,000 validation and 1,000 training images seconds: about an hour in all.

  python benchmarks/annealed_grid_images.py --workdir=runs/fmnist_noise_conditional

Writes --output (JSON) and beside it the same name with .png: a few samples of the peer and of
every setting, one row each, titled with their validation FID.
"""

import dataclasses
import os
import time
import types

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402
from tfsmooth import errors  # noqa: E402
from tfsmooth.evaluation import plots  # noqa: E402
from tfsmooth.evaluation import sample_quality  # noqa: E402
from tfsmooth.programs import cli  # noqa: E402
from tfsmooth.programs import evaluating  # noqa: E402
from tfsmooth.programs import sample_eval  # noqa: E402

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'A trained noise-conditional image run (launch/train.py --workdir).'
)
_WEIGHTS = flags.DEFINE_enum(
    'weights',
    'raw',
    ['raw', 'ema'],
    "The best checkpoint's raw weights or its EMA averages (when the run kept them).",
)
_NUM_SAMPLES = flags.DEFINE_integer(
    'num_samples', 1000, 'Samples per setting (and of the peer and the floor).', lower_bound=1
)
_NUM_REFERENCE = flags.DEFINE_integer(
    'num_reference',
    0,
    'Validation images that FID / KID / IS compare against (0: the whole validation split).',
    lower_bound=0,
)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 100, 'Samples per draw.', lower_bound=1)
_SEED = flags.DEFINE_integer(
    'seed',
    None,
    "Base of the 'samples' seed stream (default: the run's eval.seed + 1, not the rows "
    'launch/evaluate.py scores on the test split).',
)
_SIGMA = flags.DEFINE_float(
    'sigma', None, "The peer two-step sampler's noise level (default: the run's smoothing.sigma)."
)
_GRID_STEP_SIZES = flags.DEFINE_list(
    'grid_step_sizes',
    ['0.1', '0.5', '1.0'],
    "Annealed sampler's step sizes (relative to the level's variance) tried on validation.",
)
_GRID_LADDERS = flags.DEFINE_list(
    'grid_ladders',
    ['10x5', '25x2'],
    "Annealed sampler's ladders tried on validation: <levels>x<Langevin steps per level>.",
)
_GRID_ENDS = flags.DEFINE_list(
    'grid_ends', ['two_step'], "Annealed sampler's endings tried on validation."
)
_GRID_EXTRA = flags.DEFINE_list(
    'grid_extra',
    ['0.5/10x5/single_step'],
    'Settings tried besides the product of the three flags above: '
    '<step size>/<levels>x<steps>/<ending>.',
)
_FEATURE_NETWORK = flags.DEFINE_enum(
    'feature_network',
    'classifier',
    ['classifier', 'inception'],
    'Network of FID / KID / IS (as launch/evaluate.py takes it).',
)
_CLASSIFIER_DIR = flags.DEFINE_string(
    'classifier_dir',
    '',
    "Classifier export directory of launch/train_classifier.py, trained on the run's data "
    '(default: the shipped Fashion-MNIST classifier).',
)
_INCEPTION_PATH = flags.DEFINE_string(
    'inception_path', '', 'Inception-v3 TF-Hub module or SavedModel directory (unpacked).'
)
_SPLITS = flags.DEFINE_integer(
    'splits', sample_quality.SPLITS, 'Splits of the Inception score.', lower_bound=1
)
_SAMPLES_DIR = flags.DEFINE_string(
    'samples_dir',
    '',
    'Where the samples are stored, one directory per setting (default: '
    '<workdir>/annealed_grid_<weights>).',
)
_PNG_SAMPLES = flags.DEFINE_integer('png_samples', 10, 'Samples per row of the PNG.', lower_bound=1)
_OUTPUT = flags.DEFINE_string(
    'output',
    'benchmarks/results/fashion_mnist_annealed_grid.json',
    'JSON path; the PNG goes beside it (.png).',
)
flags.mark_flag_as_required('workdir')

SETTING_KEYS = ('levels', 'steps', 'step_size', 'end')


class _Sampling:
  """`model` offering only `samplers`, with the annealed sampler's `plan` in force whenever its
  draw runs or is traced (the plan is read when the sampler is traced). A fresh one per setting:
  `sample_eval.draw_samples` keeps the traced draw on the model it is given (`tasks.draw_rows`),
  so each setting gets its own trace, and the model's own annealing is left as it was."""

  def __init__(self, model, samplers, plan=None):
    self._model, self.plan = model, plan
    self.samplers = tuple(samplers)

  def __getattr__(self, name):  # conditions, facts, ...: the model's
    return getattr(self._model, name)

  def draw(self, seeds, samplers=None, **conditions):
    configured = self._model.annealing
    self._model.annealing = self.plan or configured
    try:
      return self._model.draw(seeds, samplers or self.samplers, **conditions)
    finally:
      self._model.annealing = configured


def setting_name(plan):
  return f'{plan.step_size:g}/{plan.levels}x{plan.steps}/{plan.end}'


def settings(configured):
  """The grid flags' settings (`common.annealing_grid`) then --grid_extra's, without repeats."""
  grid = common.annealing_grid(
      configured, _GRID_STEP_SIZES.value, _GRID_LADDERS.value, _GRID_ENDS.value
  )
  for text in _GRID_EXTRA.value:
    parts = text.split('/')
    if len(parts) != 3:
      raise errors.UserError(
          f'--grid_extra={text!r}: write each setting as <step size>/<levels>x<steps>/<ending>, '
          'e.g. 0.5/10x5/single_step.'
      )
    grid.append(common.annealing_setting(configured, *parts))
  unique = []
  for plan in grid:
    if plan not in unique:
      unique.append(plan)
  return unique


def draw_and_score(source, model, name, directory, sigma, seed, network, reference):
  """The figures of --num_samples draws of `model` (a `_Sampling`) against `reference`, the
  first --png_samples of them (float, [-1, 1]), drawn or reused from `directory`."""
  tf.io.gfile.makedirs(directory)
  plan = model.plan
  drawing = types.SimpleNamespace(
      model=model,
      task=source.task,
      config=source.config,
      description=dict(
          source.description,
          samplers=list(model.samplers),
          annealing=None if plan is None else dataclasses.asdict(plan),
      ),
  )
  samples, _, sampling = sample_eval.draw_samples(
      drawing,
      directory,
      _NUM_SAMPLES.value,
      _BATCH_SIZE.value,
      seed,
      log=lambda line: print(f'{name}: {line}', flush=True),
      sigma=sigma,
  )
  sampling.update(file=common.relative(os.path.join(directory, sample_eval.SAMPLES_FILE)))
  if sampling.get('timed_images'):
    sampling['seconds_per_image'] = {
        k: v / sampling['timed_images'] for k, v in sampling['seconds_by_draw'].items()
    }
  x = sample_eval.to_float(samples[model.samplers[0]])
  began = time.perf_counter()
  activations = sample_quality.activations(network, x, _BATCH_SIZE.value)
  figures = sample_quality.scores(activations, reference, network.name, _SPLITS.value)
  figures.update(sampling=sampling, scoring_seconds=time.perf_counter() - began)
  print(
      f'{name}: FID {figures["fid"]:.2f}, KID {figures["kid"]:.4f}, IS '
      f'{figures["inception_score"]:.2f} ({figures["num_samples"]} samples vs '
      f'{figures["num_reference"]} validation images)',
      flush=True,
  )
  return figures, x[: _PNG_SAMPLES.value]


def samples_png(rows, path):
  """One row of images per (title, images [n, H, W, C] in [-1, 1]), its title to its left."""
  strips = [plots.image_grid([images]) for _, images in rows]
  height, width = strips[0].shape[:2]
  label = 1.6  # inches of the titles' column
  fig, axes = plt.subplots(  # the strips at their own pixels (save_figure's 110 dpi)
      len(rows),
      2,
      figsize=(label + width / 110, len(rows) * (0.15 + height / 110)),
      gridspec_kw=dict(width_ratios=[label, width / 110]),
      squeeze=False,
  )
  for (left, right), (title, _), strip in zip(axes, rows, strips):
    left.axis('off')
    left.text(1.0, 0.5, title, ha='right', va='center', fontsize=8, transform=left.transAxes)
    right.imshow(strip[..., 0] if strip.shape[-1] == 1 else strip, cmap='gray', vmin=0, vmax=255)
    right.axis('off')
  plots.save_figure(fig, path)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  start = time.perf_counter()
  workdir, weights = _WORKDIR.value, _WEIGHTS.value
  evaluating.check_counts(_NUM_SAMPLES.value, _NUM_REFERENCE.value, _SPLITS.value)
  source = sample_eval.RunSource(workdir, ema=weights == 'ema')
  model, config = source.model, source.config
  if 'annealed' not in model.samplers:
    raise errors.UserError(
        f'{workdir} holds a model without the annealed sampler (its samplers: '
        f'{", ".join(model.samplers)}): pass the --workdir of a noise-conditional image run '
        '(launch/train.py --config=tfsmooth/configs/fashion_mnist.py:noise_conditional).'
    )
  configured = model.annealing
  grid = settings(configured)
  sigma = sample_eval.noise_level(model, _SIGMA.value, doing='draws')
  seed = config.eval.seed + 1 if _SEED.value is None else _SEED.value
  samples_dir = _SAMPLES_DIR.value or os.path.join(workdir, f'annealed_grid_{weights}')
  network = sample_eval.load_network(
      _FEATURE_NETWORK.value,
      _CLASSIFIER_DIR.value,
      _INCEPTION_PATH.value,
      config.data.name,
      source.task.source.identity,
      source.task.event_shape,
  )
  images, _ = source.task.source.split('validation', _NUM_REFERENCE.value or None)
  print(f'{network.name} activations of {len(images)} validation images', flush=True)
  reference = sample_quality.activations(network, images, _BATCH_SIZE.value)

  rows, pictures = [], []
  for index, plan in enumerate(grid):
    name = setting_name(plan)
    print(f'Setting {index + 1}/{len(grid)}: {name}', flush=True)
    figures, x = draw_and_score(
        source,
        _Sampling(model, ['annealed'], plan),
        name,
        os.path.join(samples_dir, name.replace('/', '_')),
        None,
        seed,
        network,
        reference,
    )
    rows.append(
        dict(
            dataclasses.asdict(plan),
            setting=name,
            score_evaluations=plan.score_evaluations,
            **figures,
        )
    )
    pictures.append(x)
  peer, peer_x = draw_and_score(
      source,
      _Sampling(model, ['two_step']),
      f'two_step at sigma {sigma:g}',
      os.path.join(samples_dir, f'two_step_sigma{sigma:g}'),
      sigma,
      seed,
      network,
      reference,
  )
  train = source.task.source.split('train', _NUM_SAMPLES.value)[0]
  floor = sample_quality.scores(
      sample_quality.activations(network, train, _BATCH_SIZE.value),
      reference,
      network.name,
      _SPLITS.value,
  )

  best = min(rows, key=lambda row: row['fid'])
  chosen = {k: best[k] for k in SETTING_KEYS}
  by_kid = min(rows, key=lambda row: row['kid'])
  record = {
      'command': common.command(),
      'what': (
          "the annealed sampler's setting of a noise-conditional image pair chosen by domain "
          'FID on the validation split (issue 25); the test split is not used'
      ),
      'workdir': common.relative(workdir),
      'dataset': config.data.name,
      'weights': source.run.weights,
      'step': source.run.step,
      'checkpoint': source.description['checkpoint'],
      'sigma_range': [config.smoothing.sigma_min, config.smoothing.sigma_max],
      'feature_network': dict(
          name=network.name,
          **{k: v for k, v in network.info.items() if k in ('test_accuracy', 'path', 'identity')},
      ),
      'reference': {
          'split': 'validation',
          'spec': config.data.validation_split,
          'num_reference': len(images),
          'reference_inception_score': floor['reference_inception_score'],
      },
      'num_samples': _NUM_SAMPLES.value,
      'batch_size': _BATCH_SIZE.value,
      'seed_rows': f"sample j from row j of the 'samples' stream, base {seed}, in every setting",
      'splits': _SPLITS.value,
      'configured': dict(
          dataclasses.asdict(configured),
          setting=setting_name(configured),
          score_evaluations=configured.score_evaluations,
          in_grid=any(row['setting'] == setting_name(configured) for row in rows),
      ),
      'chosen': chosen,
      'chosen_setting': best['setting'],
      'chosen_by': 'lowest validation FID among the grid',
      'chosen_fid': best['fid'],
      'lowest_kid_setting': by_kid['setting'],
      'adopt': ' '.join(f'--config.smoothing.annealed_{k}={v}' for k, v in chosen.items()),
      'grid': rows,
      'peer': dict(sampler='two_step', sigma=sigma, **peer),
      'floor': dict(
          images=f'the first {len(train)} images of the training split '
          f'({config.data.train_split})',
          **floor,
      ),
      'note': (
          'FID is biased upwards at finite counts: these figures compare with each other (same '
          'samples count, same reference), not with launch/evaluate.py test figures at other '
          'counts. KID is unbiased.'
      ),
  }
  png = os.path.splitext(_OUTPUT.value)[0] + '.png'
  record['png'] = common.relative(png)
  record['png_rows'] = [f'two_step at sigma {sigma:g}'] + [row['setting'] for row in rows]
  record['driver_seconds'] = time.perf_counter() - start
  common.write_json(_OUTPUT.value, record)
  samples_png(
      [(f'two_step, sigma {sigma:g}\nFID {peer["fid"]:.2f}', peer_x)]
      + [
          (
              f'{row["setting"]}\nFID {row["fid"]:.2f}'
              + ('\nchosen' if row is best else '')
              + ('\nconfigured' if row['setting'] == setting_name(configured) else ''),
              x,
          )
          for row, x in zip(rows, pictures)
      ],
      png,
  )
  print(
      f'validation ({len(images)} images), {_NUM_SAMPLES.value} samples each; floor (training '
      f'images) FID {floor["fid"]:.2f}; two_step at sigma {sigma:g} FID {peer["fid"]:.2f}'
  )
  for row in rows:
    kid_std = '-' if row['kid_std'] is None else f'{row["kid_std"]:.4f}'
    print(
        f'  {row["setting"]:<24} FID {row["fid"]:7.2f}  KID {row["kid"]:.4f} +- {kid_std}  '
        f'IS {row["inception_score"]:.2f}  ({row["score_evaluations"]} score evaluations)'
    )
  print(f'chosen: {best["setting"]} (configured {setting_name(configured)}); {record["adopt"]}')


if __name__ == '__main__':
  app.run(cli.reported(main))
