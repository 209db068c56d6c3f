"""The records under benchmarks/results/ and the figures RESULTS.md takes from them, without
TensorFlow.

Recorded results hold repository-relative paths only: every text file under benchmarks/results/
is read, JSON files value by value (keys too), Markdown and other text files line by line. A
path that names the machine that wrote it (/work/..., /tmp/..., /home/...) means nobody else can
follow it: record `runs/<name>`, not `/work/runs/<name>`.

The headline figures of RESULTS.md are their records' values: `HEADLINES` lists, per figure, the
section and line (and table column) of RESULTS.md that states it and the record and key it comes
from, and the figure must be the record's value at the stated rounding (a difference or a ratio
of records, a mean, a median or a sum where the text says so). A figure changed in the text, or a record rewritten,
fails here until the other follows. The shipped models' sizes are checked against the disk.

The module imports no TensorFlow (`pytest --noconftest tests/test_results_files.py` runs it in
under a second).
"""

import json
import pathlib
import re
import statistics
from typing import NamedTuple

import pytest

RESULTS = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks' / 'results'
TEXT_SUFFIXES = ('.json', '.md', '.txt', '.csv')

# Roots of machine paths, wherever they appear in text (not after a word character or a dot, so
# `runs/tmp/x` and `../home` are not matched).
_MACHINE_ROOT = re.compile(
    r'(?<![\w.~-])/(?:work|tmp|root|home|Users|usr|var|opt|mnt|private|scratch|data|gpfs|nfs)/'
)
# Inside a JSON string: an absolute path of two or more segments at the start, or after a space,
# '=', ',', ':' or a quote (a command line's program or --flag=/path value).
_ABSOLUTE_PATH = re.compile(r"""(?:^|[\s=,:'"(])(/[\w.~-]+/[^\s'",)]*)""")


def machine_paths(text):
  """The machine paths in a free text (a Markdown line, a JSON string)."""
  found = [m.group(0) for m in _MACHINE_ROOT.finditer(text)]
  return found + [m.group(1) for m in _ABSOLUTE_PATH.finditer(text)]


def _strings(value):
  """Every string in a parsed JSON document: keys and values, depth first."""
  if isinstance(value, str):
    yield value
  elif isinstance(value, dict):
    for key, item in value.items():
      yield key
      yield from _strings(item)
  elif isinstance(value, list):
    for item in value:
      yield from _strings(item)


def _text_files():
  return sorted(p for p in RESULTS.rglob('*') if p.is_file() and p.suffix in TEXT_SUFFIXES)


def test_results_directory_has_records():
  assert any(p.suffix == '.json' for p in _text_files()), f'no JSON records under {RESULTS}'


@pytest.mark.parametrize(
    'text',
    [
        '/work/runs/kernel_study',
        '/tmp/ssbench/sampling_speed_32x32x3.json',
        'python benchmarks/sampling_speed.py --output=/tmp/x/out.json',
        'python /home/me/tfsmooth/benchmarks/table1.py',
        'written to /root/results',
        '/srv/runs/rings',
    ],
)
def test_machine_paths_are_found(text):
  assert machine_paths(text)


@pytest.mark.parametrize(
    'text',
    [
        'runs/rings_seed0',
        'benchmarks/results/fashion_mnist_fid_floor/nearest_pixel.png',
        'python benchmarks/denoising_1d.py --workdir=runs/denoising_1d --steps=20000',
        'nats / point',
        '-log P(x) / (784 ln 2)',
        'runs/tmp/x',
        'ratio 1/2',
        'saved_models/rings/1',
    ],
)
def test_relative_paths_and_prose_pass(text):
  assert not machine_paths(text)


@pytest.mark.parametrize('path', _text_files(), ids=lambda p: str(p.relative_to(RESULTS)))
def test_no_machine_paths_in_results(path):
  text = path.read_text(encoding='utf-8')
  if path.suffix == '.json':
    found = [(s, machine_paths(s)) for s in _strings(json.loads(text))]
  else:
    found = [(line, machine_paths(line)) for line in text.splitlines()]
  bad = [f'{paths} in {s[:120]!r}' for s, paths in found if paths]
  assert not bad, (
      f'{path.relative_to(RESULTS.parents[1])} holds machine paths (record them relative to the '
      'repository root, e.g. runs/<name>): ' + '; '.join(bad[:5])
  )


# ---------------------------------------------------------------------------------------------
# The headline figures of RESULTS.md come from the records they cite.

ROOT = RESULTS.parents[1]


class Figure(NamedTuple):
  """A number of RESULTS.md and the record value it states.

  `section`: the start of a heading's text; `line`: a substring that picks the line in that
  section (the `index`-th of the lines holding it; one starting with '|' is a table row's first
  cells and matches only at the start of a line, so '| 1 |' is not a later cell's 1); `column`: a table header, when the number
  is in that cell of the line's table row (None: anywhere in the line); `record`: a file under
  benchmarks/results/; `key`: the path to the value in it (list indices, dict keys, a dict to
  select the list items with those fields, '*' for every item); `reduce`: 'mean', 'median' or
  'sum' of the values selected, or 'count' of them (the seeds a mean is over); `minus`: (record,
  key) of a value subtracted first; `over`: (record, key) of a value the result is divided by
  (a ratio such as '3.6x'); the number is format(value * scale, fmt) as a whole token of the
  text.
  """

  section: str
  line: str
  record: str
  key: tuple
  fmt: str
  column: str | None = None
  index: int | None = None
  reduce: str | None = None
  minus: tuple | None = None
  over: tuple | None = None
  scale: float = 1.0


LIMIT = {
    d: ('test_split_true_nll.json', ('values', d, 'test_true_nll'))
    for d in ('rings', 'olympics', 'checkerboard', 'modes6_1d', 'two_gaussians_1d')
}


def _rings_default():
  out = []
  for seed in range(3):
    row = f'| {seed} |'
    for column, key, fmt in (
        ('IW-100, EMA', 'ema_iw', '.4f'),
        ('IW-100, raw', 'raw_iw', '.4f'),
        ('ELBO, EMA', 'ema_elbo', '.4f'),
        ('best step', 'best_step', ',.0f'),
        ('training (s), shared machine', 'train_seconds', ',.0f'),
    ):
      out.append(Figure('Rings: the default', row, 'rings_default.json', (seed, key), fmt, column))
      out.append(Figure('The same model on 100k', row, 'ema_rings.json', (seed, key), fmt, column))
    out.append(
        Figure(
            'Rings: the default',
            row,
            'rings_default.json',
            (seed, 'ema_iw'),
            '.3f',
            'excess (IW-100, EMA)',
            minus=LIMIT['rings'],
        )
    )
    out.append(
        Figure(
            'The same model on 100k', row, 'ema_rings.json', (seed, 'raw_elbo'), '.4f', 'ELBO, raw'
        )
    )
    out.append(
        Figure(
            'The same model on 100k',
            row,
            'ema_rings.json',
            (seed, 'ema_iw'),
            '.3f',
            'excess (IW-100, EMA)',
            minus=LIMIT['rings'],
        )
    )
  return out


def _table1():
  out = []
  seeded = {
      '| rings | smoothed 3 / 3 (the paper': ('main_job/metrics.json', 'rings'),
      '| rings | smoothed 3 / 6 |': ('rings_cond6/metrics.json', 'rings'),
      '| olympics | smoothed 3 / 4 |': ('olympics_cond4/metrics.json', 'olympics'),
      '| olympics | smoothed 3 / 6 |': ('olympics_cond6/metrics.json', 'olympics'),
  }
  for row, (record, dataset) in seeded.items():
    for key, fmt, column in (
        ('nll_iw', '.3f', 'test NLL (bound)'),
        ('nll_elbo', '.3f', 'test NLL (bound)'),
        ('num_params', ',.0f', 'params'),
        ('steps', ',.0f', 'steps (best)'),
        ('best_step', ',.0f', 'steps (best)'),
        ('train_seconds', ',.0f', 'training (s)'),
    ):
      out.append(Figure('Table 1', row, record, (key,), fmt, column))
    out.append(Figure('Table 1', row, *LIMIT[dataset], '.4f', 'limit'))
    out.append(Figure('Table 1', row, record, ('nll_iw',), '.3f', 'excess', minus=LIMIT[dataset]))
  unseeded = {
      '| rings | MADE (3) |': dict(dataset='rings', variant='baseline', mixtures=3),
      '| rings | MADE (6) |': dict(dataset='rings', variant='baseline', mixtures=6),
      '| rings | smoothed 3 / 3 |': dict(dataset='rings', variant='smoothed', mixtures=3),
      '| olympics | MADE (3) |': dict(dataset='olympics', variant='baseline', mixtures=3),
      '| olympics | MADE (6) |': dict(dataset='olympics', variant='baseline', mixtures=6),
      '| olympics | smoothed 3 / 3 |': dict(dataset='olympics', variant='smoothed', mixtures=3),
  }
  for row, select in unseeded.items():
    keys = ('nll_iw', 'nll_elbo') if select['variant'] == 'smoothed' else ('nll',)
    for key in keys:
      out.append(Figure('Table 1', row, 'table1.json', (select, key), '.3f', 'test NLL (bound)'))
    out.append(Figure('Table 1', row, 'table1.json', (select, 'num_params'), ',.0f', 'params'))
    out.append(
        Figure('Table 1', row, 'table1.json', (select, 'train_seconds'), ',.0f', 'training (s)')
    )
  return out


def _decomposition():
  rows = {
      "| rings | paper's setting 3 / 3": 'main_job',
      '| rings | 3 / 6 ': 'rings_cond6',
      '| olympics | 3 / 4 ': 'olympics_cond4',
      '| olympics | 3 / 6 ': 'olympics_cond6',
      '| checkerboard | RealNVP pair': 'checkerboard_realnvp',
      '| rings | unseeded 3 / 3 (': 'rings_smoothed3',
      '| olympics | unseeded 3 / 3 (': 'olympics_smoothed3',
      '| olympics | unseeded 3 / 3, sigma 0.2': 'olympics_sigma0.2',
  }
  out = []
  for row, name in rows.items():
    record = f'decomposition/{name}.json'
    for key in ('prior_nll', 'true_prior_nll', 'conditional_nll', 'true_conditional_nll'):
      out.append(Figure('Where a smoothed pair', row, record, (key,), '.3f'))
    out.append(
        Figure(
            'Where a smoothed pair',
            row,
            record,
            ('conditional_nll',),
            '.3f',
            minus=(record, ('true_conditional_nll',)),
        )
    )
  return out


def _figure12():
  out = []
  for label, variant, mixtures in (
      ('| MADE (5) |', 'baseline', 5),
      ('| MADE (6) |', 'baseline', 6),
      ('| MADE (7) |', 'baseline', 7),
      ('| smoothed (2) |', 'smoothed', 2),
      ('| smoothed (3) |', 'smoothed', 3),
      ('| smoothed (4) |', 'smoothed', 4),
  ):
    select = dict(variant=variant, mixtures=mixtures)
    keys = ('nll_iw', 'nll_elbo') if variant == 'smoothed' else ('nll',)
    for key in keys:
      out.append(
          Figure(
              'Figure 12',
              label,
              'figure12_olympics_100k/figure12.json',
              (select, key),
              '.3f',
              'test NLL (bound)',
              index=0,
          )
      )
    out.append(
        Figure(
            'Figure 12',
            label,
            'figure12_olympics_100k/figure12.json',
            (select, 'num_params'),
            ',.0f',
            'params',
            index=0,
        )
    )
  return out


def _realnvp():
  out = []
  for row, run in (
      ('| checkerboard | plain RealNVP |', 'checkerboard_plain'),
      ('| checkerboard | smoothed pair |', 'checkerboard_smoothed'),
      ('| olympics | plain RealNVP |', 'olympics_plain'),
      ('| olympics | smoothed pair |', 'olympics_smoothed'),
  ):
    record = f'realnvp/{run}/metrics.json'
    keys = ('nll_iw', 'nll_elbo') if 'smoothed' in run else ('nll',)
    for key in keys:
      out.append(Figure('RealNVP', row, record, (key,), '.3f', 'test NLL', index=0))
    out.append(Figure('RealNVP', row, record, ('num_params',), ',.0f', 'params', index=0))
    out.append(Figure('RealNVP', row, record, ('best_step',), ',.0f', 'steps (best)', index=0))
  return out


def _denoising():
  out = []
  methods = {
      '| none (the noisy x~) |': 'noisy input x~',
      '| single-step, exact score': 'single-step, exact score',
      '| single-step, learned p(x~) |': 'single-step, learned p(x~)',
      '| draw from p_theta(x \\| x~), 1 logistic |': 'p(x|x~), 1 logistic',
      '| draw from p_theta(x \\| x~), 2 logistics |': 'p(x|x~), 2 logistics',
      '| draw from the exact p(x \\| x~) |': 'exact posterior draw',
  }
  for row, method in methods.items():
    for sigma in ('0.3', '0.1'):
      for key in ('gap_fraction', 'wasserstein'):
        out.append(
            Figure(
                '1-D denoising',
                row,
                'denoising_1d.json',
                ('sigmas', sigma, 'methods', method, key),
                '.3f',
            )
        )
  for sigma in ('0.3', '0.1'):
    for k, name in (('1', '1 logistic'), ('2', '2 logistics')):
      row = f'| {sigma} | {name} |'
      base = ('sigmas', sigma)
      for key in (
          base + ('conditional_kl', k),
          base + ('posterior_at_x0', 'kl_true_to_model', k),
          base + ('runs', k, 'nll_elbo'),
          base + ('runs', k, 'nll_iw'),
      ):
        out.append(Figure('1-D denoising', row, 'denoising_1d.json', key, '.3f'))
      out.append(
          Figure(
              '1-D denoising',
              row,
              'denoising_1d.json',
              base + ('runs', k, 'nll_iw'),
              '.3f',
              'excess (IW-100)',
              minus=LIMIT['two_gaussians_1d'],
          )
      )
  return out


def _kernel_study():
  out = [Figure('Kernel study', '| MoL(8) |', 'kernel_study.json', ('baselines', 2, 'nll'), '.3f')]
  for kernel, column in (('gaussian', 'Gaussian'), ('laplace', 'Laplace'), ('uniform', 'Uniform')):
    for sigma, row in ((0.5, '| 0.5 | 2 |'), (0.1, '| 0.1 | 1 |'), (2.0, '| 2.0 | 1 |')):
      for key in ('nll_elbo', 'nll_iw', 'nll_quadrature'):
        out.append(
            Figure(
                'Kernel study',
                row,
                'kernel_study.json',
                ('smoothed_runs', dict(kernel=kernel, sigma=sigma, narrow_init=None), key),
                '.3f',
                column,
                reduce='mean',
            )
        )
  return out


def _noise_conditional():
  """The noise-conditional section: its tables, the floors and limits in their headers, and the
  bullets' figures (ratios included); the chosen annealing settings are left to the record."""
  section = 'One model for every noise level'
  record = 'noise_conditional.json'
  rings, modes = ('datasets', 'rings'), ('datasets', 'modes6_1d')
  budget = rings + ('same_budget',)
  out = [
      Figure(section, '**Rings, the same budget**', record, budget + ('fixed', 'steps'), ',.0f'),
      Figure(
          section, '**Rings, the same budget**', record, budget + ('fixed', 'batch_size'), ',.0f'
      ),
      Figure(
          section,
          '**Rings, the same budget**',
          record,
          budget + ('noise_conditional', 'steps'),
          ',.0f',
      ),
      Figure(
          section,
          '**Rings, the same budget**',
          record,
          budget + ('noise_conditional', 'batch_size'),
          ',.0f',
      ),
      Figure(
          section,
          "beside the kernel study's Gaussian pairs",
          record,
          modes + ('kernel_study', 'steps'),
          ',.0f',
      ),
      Figure(section, 'Bounds on the', record, budget + ('fixed', 'iw_samples'), '.0f'),
      Figure(section, '| pair | params |', record, rings + ('test_true_nll',), '.3f'),
  ]
  for row, run in (
      ('| fixed, sigma 0.3 |', 'fixed'),
      ('| noise-conditional, at 0.3 |', 'noise_conditional'),
  ):
    for key, fmt, column in (
        ((run, 'num_params'), ',.0f', 'params'),
        ((run, 'nll_iw'), '.3f', '-IW-100'),
        ((run, 'nll_elbo'), '.3f', '-ELBO'),
        (('iw_gap_to_limit', run), '.3f', 'gap to the limit 2.612'),
        ((run, 'train_seconds'), ',.0f', 'training'),
    ):
      out.append(Figure(section, row, record, budget + key, fmt, column))
  # The rings table comes first; the modes6_1d table repeats its rows 0.1 and 1 (index 1 there).
  rings_sigmas = (0.1, 0.3, 0.6, 1.0)
  for sigma in rings_sigmas:
    row = f'| {sigma:g} |'
    for key, column in (
        (('noise_conditional', dict(sigma=sigma), 'nll_iw'), 'noise-cond. -IW'),
        (('noise_conditional', dict(sigma=sigma), 'nll_elbo'), 'noise-cond. -ELBO'),
        (('fixed', dict(sigma=sigma), 'nll_iw'), 'fixed pair -IW'),
        (('fixed', dict(sigma=sigma), 'nll_elbo'), 'fixed pair -ELBO'),
    ):
      out.append(
          Figure(section, row, record, rings + ('bounds_vs_sigma',) + key, '.3f', column, index=0)
      )
  study = modes + ('kernel_study', 'gaussian_seed_means')
  for sigma in (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0):
    row, index = f'| {sigma:g} |', (1 if sigma in rings_sigmas else None)
    for key, column in (('nll_iw', 'noise-cond. -IW'), ('nll_elbo', 'noise-cond. -ELBO')):
      out.append(
          Figure(
              section,
              row,
              record,
              modes + ('bounds_vs_sigma', 'noise_conditional', dict(sigma=sigma), key),
              '.3f',
              column,
              index=index,
          )
      )
    # The kernel study's seed means as this record holds them, and as its own record's runs give.
    runs = ('smoothed_runs', dict(kernel='gaussian', sigma=sigma, narrow_init=None))
    for key, column in (
        ('nll_iw', 'kernel study -IW'),
        ('nll_elbo', 'kernel study -ELBO'),
        ('nll_quadrature', 'kernel study exact'),
    ):
      out.append(
          Figure(section, row, record, study + (dict(sigma=sigma), key), '.3f', column, index)
      )
      out.append(
          Figure(
              section,
              row,
              'kernel_study.json',
              runs + (key,),
              '.3f',
              column,
              index,
              reduce='mean',
          )
      )
    out.append(
        Figure(
            section,
            row,
            'kernel_study.json',
            runs + ('seed',),
            '.0f',
            'seeds',
            index,
            reduce='count',
        )
    )
  out += [
      Figure(section, 'the noise-conditional pair has', record, modes + ('test_true_nll',), '.3f'),
      Figure(
          section,
          'the noise-conditional pair has',
          record,
          modes + ('noise_conditional', 'num_params'),
          ',.0f',
      ),
      Figure(
          section,
          'the 4 embedding units weigh',
          record,
          modes + ('kernel_study', 'num_params'),
          ',.0f',
      ),
      Figure(
          section,
          'the 4 embedding units weigh',
          record,
          modes + ('param_ratio_noise_conditional_to_kernel_study_pair',),
          '.2f',
      ),
  ]
  samples = {
      '| fixed pair: x~ ~ p(x~), sigma 0.3 |': [(rings, 'fixed_pair_sigma0.3', 'smoothed')],
      '| fixed pair: single step |': [(rings, 'fixed_pair_sigma0.3', 'single_step')],
      '| fixed pair: two-step |': [(rings, 'fixed_pair_sigma0.3', 'two_step')],
  }
  for row, method in (
      ('| noise-cond.: x~ at the reference sigma |', 'smoothed'),
      ('| noise-cond.: single step |', 'single_step'),
      ('| noise-cond.: two-step |', 'two_step'),
      ('| noise-cond.: annealed', 'annealed'),
  ):
    samples[row] = [
        (rings, 'noise_conditional_sigma0.3', method),
        (modes, 'noise_conditional_sigma0.5', method),
    ]
  header = '| sampler | rings ED'
  columns = {
      rings: ('rings ED (floor 0.00209)', 'rings KS (floor 0.015)'),
      modes: ('modes6 ED (floor 0.00127)', 'modes6 KS (floor 0.013)'),
  }
  for dataset in (rings, modes):
    out.append(Figure(section, header, record, dataset + ('samples', 'energy_floor'), '.5f'))
    out.append(Figure(section, header, record, dataset + ('samples', 'ks_floor'), '.3f'))
    out.append(
        Figure(
            section,
            '**Samplers judged by the truth**',
            record,
            dataset + ('samples', 'num_samples'),
            ',.0f',
        )
    )
  for row, cells in samples.items():
    for dataset, pair, method in cells:
      ed, ks = columns[dataset]
      key = dataset + ('samples', pair, method)
      out.append(Figure(section, row, record, key + ('energy_distance',), '.5f', ed))
      out.append(Figure(section, row, record, key + ('ks',), '.3f', ks))
  # The bullets.
  nc_rings = rings + ('bounds_vs_sigma', 'noise_conditional')
  fixed_rings = rings + ('bounds_vs_sigma', 'fixed')
  nc_modes = modes + ('bounds_vs_sigma', 'noise_conditional')
  cost = ('training_cost',)
  line = 'its gap to the limit'
  out += [
      Figure(section, line, record, budget + ('noise_conditional', 'nll_iw'), '.3f'),
      Figure(section, line, record, budget + ('fixed', 'nll_iw'), '.3f'),
      Figure(
          section,
          line,
          record,
          budget + ('iw_gap_to_limit', 'noise_conditional'),
          '.1f',
          over=(record, budget + ('iw_gap_to_limit', 'fixed')),
      ),
      Figure(section, 'at 0.1 the two tie', record, nc_rings + (dict(sigma=0.1), 'nll_iw'), '.3f'),
      Figure(
          section, 'at 0.1 the two tie', record, fixed_rings + (dict(sigma=0.1), 'nll_iw'), '.3f'
      ),
      Figure(
          section,
          'range of sigma has less capacity',
          record,
          rings + ('sigma_range', 1),
          '.0f',
          over=(record, rings + ('sigma_range', 0)),
      ),
      Figure(
          section,
          'One training costs a quarter',
          record,
          rings + cost + ('noise_conditional_train_seconds',),
          ',.0f',
      ),
      Figure(
          section,
          'for the four fixed pairs',
          record,
          rings + cost + ('fixed_train_seconds_total',),
          ',.0f',
      ),
      Figure(
          section,
          'for the four fixed pairs',
          record,
          rings + cost + ('ratio_fixed_total_to_noise_conditional',),
          '.1f',
      ),
      Figure(
          section,
          'for the four fixed pairs',
          record,
          modes + cost + ('noise_conditional_train_seconds',),
          ',.0f',
      ),
      Figure(
          section,
          'for the four fixed pairs',
          record,
          modes + cost + ('kernel_study_train_seconds_one_seed',),
          ',.0f',
      ),
      # ... which are the kernel study's own record's seconds of its eight seed-0 Gaussian pairs.
      Figure(
          section,
          'for the four fixed pairs',
          'kernel_study.json',
          ('smoothed_runs', dict(kernel='gaussian', seed=0, narrow_init=None), 'train_seconds'),
          ',.0f',
          reduce='sum',
      ),
      Figure(
          section,
          'Gaussian pairs of one seed',
          record,
          modes + cost + ('ratio_one_seed_to_noise_conditional',),
          '.1f',
      ),
  ]
  line = '*exact* NLL'
  for key, sigma in ((nc_modes, 0.75), (nc_modes, 2.0), (study, 0.75), (study, 2.0)):
    name = 'nll_iw' if key == nc_modes else 'nll_quadrature'
    out.append(Figure(section, line, record, key + (dict(sigma=sigma), name), '.2f'))
  for sigma in (0.2, 0.35):
    out.append(
        Figure(
            section,
            'it trails by',
            record,
            nc_modes + (dict(sigma=sigma), 'nll_iw'),
            '.2f',
            minus=(record, study + (dict(sigma=sigma), 'nll_iw')),
        )
    )
  out += [
      Figure(
          section,
          'Part of this may be its',
          record,
          modes + ('noise_conditional', 'num_params'),
          '.0f',
          minus=(record, modes + ('kernel_study', 'num_params')),
          over=(record, modes + ('kernel_study', 'num_params')),
          scale=100,
      ),
  ]
  for line, pair in (
      ('test energy distances of', 'annealed'),
      ('On rings the chosen step size', 'two_step'),
  ):
    for dataset, run in (
        (rings, 'noise_conditional_sigma0.3'),
        (modes, 'noise_conditional_sigma0.5'),
    ):
      out.append(
          Figure(section, line, record, dataset + ('samples', run, pair, 'energy_distance'), '.4f')
      )
  out.append(
      Figure(
          section,
          'two-step on rings, p = ',
          record,
          rings + ('samples', 'fixed_pair_sigma0.3', 'two_step', 'ks_pvalue'),
          '.2f',
      )
  )
  return out


def _noise_conditional_olympics():
  """The olympics part of the noise-conditional section: the same-budget table, the samplers'
  energy distances and the bullets, from its own record (a later invocation of the driver)."""
  section = 'One model for every noise level'
  record = 'noise_conditional_olympics.json'
  olympics = ('datasets', 'olympics')
  budget = olympics + ('same_budget',)
  out = [Figure(section, '| pair (sigma 0.3, 100,000 steps', *LIMIT['olympics'], '.3f')]
  for row, run in (
      ('| olympics: fixed, sigma 0.3 |', 'fixed'),
      ('| olympics: noise-conditional, at 0.3 |', 'noise_conditional'),
  ):
    for key, fmt, column in (
        ('num_params', ',.0f', 'params'),
        ('nll_iw', '.3f', '-IW-100'),
        ('nll_elbo', '.3f', '-ELBO'),
        ('train_seconds', '.0f', 'training'),
    ):
      out.append(Figure(section, row, record, budget + (run, key), fmt, column))
    out.append(
        Figure(
            section,
            row,
            record,
            budget + ('iw_gap_to_limit', run),
            '.3f',
            'gap to the limit 0.921',
        )
    )
  samples = olympics + ('samples',)
  out.append(
      Figure(section, '| sampler (5,000 draws) |', record, samples + ('energy_floor',), '.5f')
  )
  for row, key in (
      ('| olympics: fixed pair: x~ ~ p(x~), sigma 0.3', ('fixed_pair_sigma0.3', 'smoothed')),
      ('| olympics: fixed pair: single step', ('fixed_pair_sigma0.3', 'single_step')),
      ('| olympics: fixed pair: two-step', ('fixed_pair_sigma0.3', 'two_step')),
      (
          '| olympics: noise-cond.: x~ at the reference sigma',
          ('noise_conditional_sigma0.3', 'smoothed'),
      ),
      ('| olympics: noise-cond.: single step', ('noise_conditional_sigma0.3', 'single_step')),
      ('| olympics: noise-cond.: two-step', ('noise_conditional_sigma0.3', 'two_step')),
      ('| olympics: noise-cond.: annealed (5 levels', ('noise_conditional_sigma0.3', 'annealed')),
  ):
    out.append(Figure(section, row, record, samples + key + ('energy_distance',), '.5f'))
  annealed = samples + ('noise_conditional_sigma0.3', 'annealed', 'annealing')
  chosen = olympics + ('annealing_grid', 'chosen')
  out += [
      Figure(
          section,
          '| olympics: noise-cond.: annealed (5 levels',
          record,
          annealed + ('levels',),
          '.0f',
      ),
      Figure(
          section,
          '| olympics: noise-cond.: annealed (5 levels',
          record,
          annealed + ('steps',),
          '.0f',
      ),
      Figure(
          section,
          '| olympics: noise-cond.: annealed (5 levels',
          record,
          chosen + ('step_size',),
          '.1f',
      ),
      Figure(
          section,
          'the fixed pair (both best at step',
          record,
          budget + ('fixed', 'best_step'),
          ',.0f',
      ),
      Figure(
          section,
          'the fixed pair (both best at step',
          record,
          budget + ('noise_conditional', 'best_step'),
          ',.0f',
      ),
  ]
  iw = lambda run: (record, budget + (run, 'nll_iw'))  # noqa: E731
  rings = ('noise_conditional.json', ('datasets', 'rings', 'same_budget'))
  sweep = lambda sigma: olympics + ('bounds_vs_sigma', 'noise_conditional', {'sigma': sigma}, 'nll_iw')  # noqa: E731,E501
  out += [
      Figure(section, '**On olympics the two tie', *iw('noise_conditional'), '.3f'),
      Figure(section, '**On olympics the two tie', *iw('fixed'), '.3f'),
      Figure(
          section,
          'where the fixed pair led by',
          rings[0],
          rings[1] + ('noise_conditional', 'nll_iw'),
          '.3f',
          minus=(rings[0], rings[1] + ('fixed', 'nll_iw')),
      ),
      Figure(
          section,
          'Both stay about 0.24 above',
          record,
          budget + ('iw_gap_to_limit', 'noise_conditional'),
          '.2f',
      ),
      Figure(section, 'at 0.18 (1.131;', record, sweep(0.1805), '.3f'),
      Figure(section, 'at 0.18 (1.131;', record, sweep(0.05), '.3f'),
      Figure(section, 'at 0.18 (1.131;', record, sweep(1.0), '.3f'),
      Figure(
          section,
          "truth's floor (0.00133",
          record,
          samples + ('noise_conditional_sigma0.3', 'two_step', 'energy_distance'),
          '.5f',
      ),
      Figure(section, "truth's floor (0.00133", record, samples + ('energy_floor',), '.5f'),
      Figure(
          section,
          'near it (0.00148)',
          record,
          samples + ('fixed_pair_sigma0.3', 'two_step', 'energy_distance'),
          '.5f',
      ),
      Figure(
          section,
          'near it (0.00148)',
          record,
          samples + ('noise_conditional_sigma0.3', 'annealed', 'energy_distance'),
          '.5f',
      ),
      Figure(
          section,
          'undenoised x~ (0.00350)',
          record,
          samples + ('noise_conditional_sigma0.3', 'smoothed', 'energy_distance'),
          '.5f',
      ),
  ]
  return out


def _fashion_mnist():
  record = 'fashion_mnist_eval.json'
  out = [
      Figure(
          'Fashion-MNIST: likelihood',
          '| baseline PixelCNN++ |',
          record,
          ('models', 'baseline', 'bpd', 'bpd'),
          '.3f',
          'test bpd (1,000 images)',
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          '| baseline PixelCNN++ |',
          record,
          ('models', 'baseline', 'num_params'),
          ',.0f',
          'params',
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          '| pair: x~ ~ p(x~)',
          record,
          ('models', 'smoothed', 'bpd', 'bpd_iw'),
          '.3f',
          'test bpd (1,000 images)',
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          '| pair: x~ ~ p(x~)',
          record,
          ('models', 'smoothed', 'bpd', 'bpd_elbo'),
          '.3f',
          'test bpd (1,000 images)',
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          '| pair: x~ ~ p(x~)',
          record,
          ('models', 'smoothed', 'num_params'),
          ',.0f',
          'params',
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          'met**, 39.8% lower',
          record,
          ('two_step_fid_reduction',),
          '.1f',
          scale=100,
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          'Cost (recorded in the JSON)',
          record,
          ('models', 'baseline', 'train_seconds'),
          ',.0f',
      ),
      Figure(
          'Fashion-MNIST: likelihood',
          'Cost (recorded in the JSON)',
          record,
          ('models', 'smoothed', 'train_seconds'),
          ',.0f',
      ),
  ]
  for index, row in enumerate(
      ['| baseline PixelCNN++ |', '| pair: x~ ~ p(x~)', '| pair: single-step', '| pair: two-step']
  ):
    for key, fmt, column in (
        ('fid', '.2f', 'domain FID'),
        ('kid', '.4f', 'domain KID ± std'),
        ('kid_std', '.4f', 'domain KID ± std'),
        ('inception_score', '.2f', 'domain IS'),
        ('inception_score_std', '.2f', 'domain IS'),
    ):
      out.append(
          Figure('Fashion-MNIST: likelihood', row, record, ('rows', index, key), fmt, column)
      )
  for index, sigma in enumerate(('0.01', '0.05', '0.1')):
    for key, fmt, column in (('fid', '.2f', 'domain FID'), ('kid', '.4f', 'domain KID')):
      out.append(
          Figure(
              'Fashion-MNIST: likelihood',
              f'| {sigma} |',
              record,
              ('single_step_ablation', index, key),
              fmt,
              column,
          )
      )
  floor = 'fashion_mnist_fid_floor.json'
  for row in ('train_5000', 'train_10000', 'train_50000', 'noise_0.1', 'noise_0.3'):
    for key, fmt, column in (
        ('fid', '.3f', 'domain FID'),
        ('kid', '.4f', 'domain KID ± std'),
        ('inception_score', '.2f', 'domain IS'),
    ):
      label = f'| {row} |' if row.startswith('train') else f'| noise N(0, {row[6:]}²) |'
      out.append(Figure('Domain FID', label, floor, ('rows', row, key), fmt, column))
  return out


# The Fashion-MNIST classes in label order (the per-class table's rows).
FASHION_MNIST_CLASSES = (
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
)


def _fashion_mnist_labels():
  """The class-labelled Fashion-MNIST section: the setup's recorded figures, the main table
  (the unlabelled pair's row from its own record), every cell of the per-class table (the
  sample counts against the label draw's counts and each sampler's per-class counts), and the
  bullets' figures and ratios. The labelled pair's parameter count is in the EMA record only
  (the raw-weight evaluation does not record it; the weights differ, the network does not)."""
  section = 'Fashion-MNIST: a class-labelled pair'
  record = 'fashion_mnist_labels/eval_raw_weights.json'
  ema = 'fashion_mnist_labels/metrics_ema.json'
  unlabelled = 'fashion_mnist_eval.json'
  two_step = ('samplers', 'two_step')
  out = [
      Figure(section, 'filters, sigma 0.5, 3,000 steps', ema, ('sigma',), '.1f'),
      Figure(section, 'filters, sigma 0.5, 3,000 steps', ema, ('steps',), ',.0f'),
      Figure(section, 'raw weights at step', record, ('source', 'step'), ',.0f'),
      Figure(section, 'raw weights at step', record, ('bpd', 'num_examples'), ',.0f'),
      Figure(section, 'samples per sampler in', record, ('bpd', 'iw_samples'), '.0f'),
      Figure(section, 'samples per sampler in', record, two_step + ('num_samples',), ',.0f'),
      Figure(section, 'samples per sampler in', record, two_step + ('num_reference',), ',.0f'),
      Figure(
          section,
          '(`fashion_mnist_classifier`,',
          record,
          ('feature_network', 'test_accuracy'),
          '.1f',
          scale=100,
      ),
      Figure(section, 'beside other jobs: its', ema, ('train_seconds',), ',.0f'),
  ]
  # The main table.
  row = '| unlabelled pair, two-step (above) |'
  for key, fmt, column in (
      (('models', 'smoothed', 'num_params'), ',.0f', 'params'),
      (('models', 'smoothed', 'bpd', 'bpd_iw'), '.3f', 'test bpd (1,000 images)'),
      (('rows', 3, 'fid'), '.2f', 'domain FID'),
      (('rows', 3, 'kid'), '.4f', 'domain KID ± std'),
      (('rows', 3, 'kid_std'), '.4f', 'domain KID ± std'),
      (('rows', 3, 'inception_score'), '.2f', 'domain IS'),
      (('rows', 3, 'inception_score_std'), '.2f', 'domain IS'),
  ):
    out.append(Figure(section, row, unlabelled, key, fmt, column))
  bpd_column = 'test bpd (1,000 images)'
  out.append(Figure(section, '| labelled pair: x~', ema, ('num_params',), ',.0f', 'params'))
  for key in ('bpd_iw', 'bpd_elbo', 'bpd_null_iw', 'bpd_null_elbo'):
    out.append(Figure(section, '| labelled pair: x~', record, ('bpd', key), '.3f', bpd_column))
  for row, sampler in (
      ('| labelled pair: x~', 'smoothed'),
      ('| labelled pair: single step |', 'single_step'),
      ('| labelled pair: two-step |', 'two_step'),
  ):
    for key, fmt, column in (
        ('fid', '.2f', 'domain FID'),
        ('kid', '.4f', 'domain KID ± std'),
        ('kid_std', '.4f', 'domain KID ± std'),
        ('inception_score', '.2f', 'domain IS'),
        ('inception_score_std', '.2f', 'domain IS'),
        ('class_accuracy', '.3f', 'class accuracy'),
    ):
      out.append(Figure(section, row, record, ('samplers', sampler, key), fmt, column))
  # The per-class table.
  out.append(
      Figure(
          section,
          "class's 1,000 test images",
          record,
          two_step + ('by_class', FASHION_MNIST_CLASSES[0], 'num_reference'),
          ',.0f',
      )
  )
  for index, name in enumerate(FASHION_MNIST_CLASSES):
    row = f'| {name} |'
    out.append(Figure(section, row, record, ('labels', 'sample_counts', index), ',.0f', 'samples'))
    out.append(
        Figure(
            section,
            row,
            record,
            ('labels', 'test_image_accuracy', 'by_class', name),
            '.3f',
            'classifier on test images',
        )
    )
    for sampler, label in (('two_step', 'two-step'), ('single_step', 'single-step')):
      by_class = ('samplers', sampler, 'by_class', name)
      out += [
          Figure(section, row, record, by_class + ('num_samples',), ',.0f', 'samples'),
          Figure(section, row, record, by_class + ('kid',), '.2f', f'{label} KID'),
          Figure(section, row, record, by_class + ('accuracy',), '.3f', f'{label} accuracy'),
      ]
  # The bullets.
  fid = (unlabelled, ('rows', 3, 'fid'))
  params = (unlabelled, ('models', 'smoothed', 'num_params'))
  line = '**Labels help the samples**'
  out += [
      Figure(section, line, record, two_step + ('fid',), '.2f'),
      Figure(section, line, *fid, '.2f'),
      Figure(section, line, *fid, '.0f', minus=(record, two_step + ('fid',)), over=fid, scale=100),
      Figure(section, 'lower), KID', record, two_step + ('kid',), '.2f'),
      Figure(section, 'lower), KID', unlabelled, ('rows', 3, 'kid'), '.2f'),
      Figure(section, 'lower), KID', record, two_step + ('inception_score',), '.2f'),
      Figure(section, 'lower), KID', unlabelled, ('rows', 3, 'inception_score'), '.2f'),
      Figure(
          section,
          'lower), KID',
          ema,
          ('num_params',),
          '.1f',
          minus=params,
          over=params,
          scale=100,
      ),
  ]
  line = '**The class follows the label**'
  out += [
      Figure(section, line, record, two_step + ('class_accuracy',), '.0f', scale=100),
      Figure(
          section, line, record, ('samplers', 'single_step', 'class_accuracy'), '.0f', scale=100
      ),
      Figure(
          section,
          'itself right on',
          record,
          ('labels', 'test_image_accuracy', 'overall'),
          '.0f',
          scale=100,
      ),
      Figure(
          section,
          'images; Shirt (',
          record,
          two_step + ('by_class', 'Shirt', 'accuracy'),
          '.0f',
          scale=100,
      ),
      # 575 of Shirt's 1,000 test images: 57.5% exactly, which a float rounds to 57 at '.0f'.
      Figure(
          section,
          'images; Shirt (',
          record,
          ('labels', 'test_image_accuracy', 'by_class', 'Shirt'),
          '.1f',
          scale=100,
      ),
  ]
  null_iw = (record, ('bpd', 'bpd_null_iw'))
  unlabelled_iw = (unlabelled, ('models', 'smoothed', 'bpd', 'bpd_iw'))
  out += [
      Figure(section, '**Likelihood**', record, ('bpd', 'bpd_iw'), '.3f'),
      Figure(section, 'without a label (the null class', *unlabelled_iw, '.3f'),
      Figure(section, 'without a label (the null class', *null_iw, '.3f'),
      # The difference of the records (0.0045), not of the rounded 3.003 and 2.998.
      Figure(
          section,
          'without a label (the null class',
          *null_iw,
          '.3f',
          minus=unlabelled_iw,
      ),
      Figure(section, "weights (the run's own metrics)", ema, ('bpd_iw',), '.3f'),
      Figure(section, "weights (the run's own metrics)", ema, ('bpd_null_iw',), '.3f'),
      Figure(section, 'with all three samplers', record, ('sampling', 'seconds'), ',.0f'),
      Figure(section, 'with all three samplers', record, ('sampling', 'drawn'), ',.0f'),
  ]
  return out


def _fashion_mnist_noise_conditional():
  """The Fashion-MNIST noise-conditional section: its setup's figures, every cell of its table
  (the baseline's and fixed pair's rows from the same record, which copied them from
  fashion_mnist_eval.json), the bullets' ratios and costs, and the bounds across sigma from the
  run's own metrics (EMA weights)."""
  section = 'Fashion-MNIST: one noise-conditional pair'
  record = 'fashion_mnist_noise_conditional_eval.json'
  ema = 'fashion_mnist_noise_conditional/metrics_ema.json'
  nc = ('noise_conditional',)
  cost = nc + ('cost',)
  work = cost + ('work',)
  model = ('models', 'noise_conditional')
  fixed = ('models', 'smoothed')
  out = [
      Figure(section, 'drawn log-uniform on', ema, ('sigma_range', 0), '.2f'),
      Figure(section, 'checkpoint, at the fixed pair', ema, ('sigma',), '.1f'),
      Figure(section, 'checkpoint, at the fixed pair', record, model + ('num_params',), ',.0f'),
      Figure(section, '1,151,352 (+6.1%)', record, fixed + ('num_params',), ',.0f'),
      Figure(
          section,
          '1,151,352 (+6.1%)',
          record,
          model + ('num_params',),
          '.1f',
          minus=(record, fixed + ('num_params',)),
          over=(record, fixed + ('num_params',)),
          scale=100,
      ),
      Figure(section, 'Raw weights at step', record, model + ('steps',), ',.0f'),
      Figure(section, 'annealed sampler uses the config', record, work + ('levels',), '.0f'),
      Figure(section, 'annealed sampler uses the config', record, work + ('steps',), '.0f'),
      Figure(section, 'annealed sampler uses the config', record, work + ('sigma_max',), '.0f'),
      Figure(section, '0.05, step size 0.5', record, work + ('sigma_min',), '.2f'),
      Figure(section, '0.05, step size 0.5', record, work + ('step_size',), '.1f'),
      Figure(section, '0.05, step size 0.5', record, work + ('score_evaluations',), '.0f'),
      Figure(section, 'training seconds beside other', record, model + ('train_seconds',), ',.0f'),
      Figure(section, 'training seconds beside other', record, fixed + ('train_seconds',), ',.0f'),
  ]
  # The table: every cell of every row from the record's rows.
  rows = {  # row label: (index in the record's rows, its model)
      '| baseline PixelCNN++ |': (0, 'baseline'),
      '| fixed pair: two-step': (3, 'smoothed'),
      '| noise-conditional pair at sigma=0.5: x~': (4, 'noise_conditional'),
      '| noise-conditional pair at sigma=0.5: single-step': (5, 'noise_conditional'),
      '| noise-conditional pair at sigma=0.5: two-step': (6, 'noise_conditional'),
      '| noise-conditional pair: annealed': (7, 'noise_conditional'),
  }
  for row, (index, name) in rows.items():
    for key, fmt, column in (
        ('fid', '.2f', 'domain FID'),
        ('kid', '.4f', 'KID'),
        ('kid_std', '.4f', 'KID'),
        ('inception_score', '.2f', 'IS'),
        ('inception_score_std', '.2f', 'IS'),
    ):
      out.append(Figure(section, row, record, ('rows', index, key), fmt, column))
    out.append(Figure(section, row, record, ('models', name, 'num_params'), ',.0f', 'params'))
    bpd = ('models', name, 'bpd')
    for key in ('bpd',) if name == 'baseline' else ('bpd_iw', 'bpd_elbo'):
      out.append(Figure(section, row, record, bpd + (key,), '.3f', 'test bpd'))
  # The bullets.
  fid = lambda index: (record, ('rows', index, 'fid'))  # noqa: E731
  out += [
      Figure(section, '**The goal is not met.**', *fid(7), '.2f'),
      Figure(section, '**The goal is not met.**', record, nc + ('annealed_fid_ratio',), '.2f'),
      Figure(section, 'goal was at most', *fid(3), '.2f'),
      Figure(section, 'goal was at most', record, nc + ('fixed_two_step_fid',), '.2f'),
      Figure(section, 'goal was at most', record, nc + ('target_annealed_fid_ratio',), '.1f'),
      Figure(section, 'better, 29.46', *fid(6), '.2f'),
      Figure(section, 'better, 29.46', record, nc + ('two_step_fid_ratio',), '.2f'),
      Figure(section, 'better, 29.46', *fid(5), '.2f'),
      Figure(section, '22.74) and its undenoised', *fid(2), '.2f'),
      Figure(section, '22.74) and its undenoised', *fid(4), '.2f'),
      Figure(section, '22.74) and its undenoised', *fid(1), '.2f'),
      Figure(section, '**Likelihood at the fixed', record, model + ('bpd', 'bpd_iw'), '.3f'),
      Figure(section, '**Likelihood at the fixed', record, fixed + ('bpd', 'bpd_iw'), '.3f'),
      Figure(
          section,
          '0.021 more',
          record,
          model + ('bpd', 'bpd_iw'),
          '.3f',
          minus=(record, fixed + ('bpd', 'bpd_iw')),
      ),
      Figure(section, 'images): <=', ema, ('bpd_iw@sigma=0.05',), '.3f'),
      Figure(section, 'images): <=', ema, ('bpd_iw@sigma=0.1357',), '.3f'),
      Figure(section, 'images): <=', ema, ('bpd_iw@sigma=0.3684',), '.3f'),
      Figure(section, 'images): <=', ema, ('bpd_iw',), '.3f'),
      Figure(section, '2.984 at 0.5, 2.985 at 1', ema, ('bpd_iw@sigma=1',), '.3f'),
      Figure(section, '**Cost per image**', record, cost + ('annealed_seconds_per_image',), '.3f'),
      Figure(section, '**Cost per image**', record, cost + ('two_step_seconds_per_image',), '.3f'),
      Figure(section, '(8.3x)', record, cost + ('annealed_over_two_step',), '.1f'),
      # 50 score evaluations: the annealed seconds less the two-step's (the autoregressive
      # draws), per evaluation, in milliseconds.
      Figure(
          section,
          'evaluations take about',
          record,
          cost + ('annealed_seconds_per_image',),
          '.0f',
          minus=(record, cost + ('two_step_seconds_per_image',)),
          over=(record, work + ('score_evaluations',)),
          scale=1000,
      ),
  ]
  # The validation grid of the annealed setting (its own record).
  grid = 'fashion_mnist_annealed_grid.json'
  rows = {
      '| step 0.1, 10 levels x 5 |': ('grid', {'step_size': 0.1, 'levels': 10}),
      '| step 0.5, 10 levels x 5 (the configured': ('grid', {'step_size': 0.5, 'levels': 10}),
      '| step 1.0, 10 levels x 5 |': ('grid', {'step_size': 1.0, 'levels': 10}),
      '| step 0.5, 25 levels x 2 (chosen) |': ('grid', {'step_size': 0.5, 'levels': 25}),
      '| peer: two-step at sigma 0.5 |': ('peer',),
      '| floor: 500 training images |': ('floor',),
  }
  for row, where in rows.items():
    for key, fmt, column in (
        ('fid', '.2f', 'validation FID'),
        ('kid', '.4f', 'KID'),
        ('inception_score', '.2f', 'IS'),
    ):
      out.append(Figure(section, row, grid, where + (key,), fmt, column))
  out += [
      Figure(section, '(at 7c72152; 500 samples a setting', grid, ('num_samples',), '.0f'),
      Figure(
          section,
          '(at 7c72152; 500 samples a setting',
          grid,
          ('reference', 'num_reference'),
          ',.0f',
      ),
      Figure(
          section,
          'the chosen one is 10% below',
          grid,
          ('chosen_fid',),
          '.0f',
          minus=(grid, ('grid', {'step_size': 0.5, 'levels': 10}, 'fid')),
          over=(grid, ('grid', {'step_size': 0.5, 'levels': 10}, 'fid')),
          scale=-100,
      ),
      Figure(
          section,
          'configured one and still',
          grid,
          ('chosen_fid',),
          '.2f',
          over=(grid, ('peer', 'fid')),
      ),
  ]
  return out


def _speed():
  out = []
  for row, name in (
      ('| `tfd.PixelCNN`, 32 filters', 'tfp_pixelcnn'),
      ('| ours, 32 filters', 'ours_32'),
      ('| `fashion_mnist.py:baseline`', 'baseline'),
      ('| `fashion_mnist.py:smoothed` pair', 'smoothed_pair'),
  ):
    for key, fmt, column in (
        ('num_params', ',.0f', 'params'),
        ('step_seconds', '.3f', 'step (s)'),
        ('step_ratio_to_tfp', '.2f', None),
        ('sample_seconds', '.1f', 'sample 4 (s)'),
        ('sample_ratio_to_tfp', '.2f', None),
    ):
      out.append(
          Figure('Speed: a PixelCNN++ step', row, 'pixelcnn_speed.json', (name, key), fmt, column)
      )
  for row, name in (
      ('| `tfd.PixelCNN`, no XLA |', 'tfp_no_xla'),
      ('| ours, no XLA |', 'ours_no_xla'),
      ('| `tfd.PixelCNN`, XLA', 'tfp_xla'),
      ('| ours, XLA', 'ours_xla'),
  ):
    for key, fmt, column in (
        ('num_params', ',.0f', 'params'),
        ('examples_per_sec', '.2f', 'examples/s'),
        ('step_seconds', '.3f', 'step (s)'),
        ('first_call_seconds', '.1f', 'first call (s)'),
        ('peak_rss_mb', ',.0f', 'peak RSS (MB)'),
    ):
      out.append(
          Figure(
              'Speed: training throughput', row, 'train_throughput.json', (name, key), fmt, column
          )
      )
  out += [
      Figure(
          'Speed: training throughput',
          '**Without XLA: ',
          'train_throughput_no_xla_repeats.json',
          ('ratio', 'no_xla'),
          '.2f',
      ),
      Figure(
          'Speed: training throughput',
          'the single run in the table gives',
          'train_throughput.json',
          ('ratio', 'no_xla'),
          '.2f',
      ),
      Figure(
          'Speed: training throughput',
          '**With XLA: ',
          'train_throughput.json',
          ('ratio', 'xla'),
          '.0f',
      ),
  ]
  for loops in ('1', '10', '100', '1000'):
    for record in ('steps_per_loop.json', 'steps_per_loop_batch256.json'):
      out.append(Figure('Speed: steps per call', f'| {loops} |', record, (loops, 'median'), '.1f'))
      out.append(Figure('Speed: steps per call', f'| {loops} |', record, (loops, 'ratio'), '.2f'))
  for row, name in (('| 1 device |', '1 device'), ('| 2 logical CPUs |', '2 logical CPUs')):
    out.append(
        Figure(
            'Speed: evaluation',
            row,
            'eval_throughput.json',
            ('median', name, 'bounds_points_per_s'),
            ',.0f',
            'bounds, points/s',
        )
    )
    out.append(
        Figure(
            'Speed: evaluation',
            row,
            'eval_throughput.json',
            ('median', name, 'samples_per_s'),
            ',.0f',
        )
    )
  for key in ('bounds_points_per_s', 'samples_per_s'):
    out.append(
        Figure(
            'Speed: evaluation',
            '| 2 logical CPUs |',
            'eval_throughput.json',
            ('ratio_2_over_1', key),
            '.2f',
        )
    )
  for row, part in (
      ('| whole run |', 'total'),
      ('| start-up and training', 'training'),
      ('| test bounds (IW-100', 'test_and_plots'),
  ):
    for tree in ('base f69e632', 'this tree'):
      for run in range(3):
        out.append(
            Figure(
                'Speed: the main job',
                row,
                'main_job_wall_time.json',
                ('seconds', tree, run, part),
                '.1f',
            )
        )
    out.append(
        Figure(
            'Speed: the main job',
            row,
            'main_job_wall_time.json',
            ('ratio_by_part', part),
            '.2f',
            'ratio of medians',
        )
    )
  return out


def _shipped():
  latency = 'export_latency.json'
  out = [
      Figure(
          'Shipped models',
          '| `rings/2`',
          'ema_rings.json',
          (0, 'ema_iw'),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `rings/2`',
          'ema_rings.json',
          (0, 'ema_elbo'),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `rings/2`',
          'ema_rings.json',
          (0, 'ema_iw'),
          '.3f',
          'excess',
          minus=LIMIT['rings'],
      ),
      Figure(
          'Shipped models',
          '| `olympics/2`',
          'olympics_cond6_50k/metrics.json',
          ('nll_iw',),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `olympics/2`',
          'olympics_cond6_50k/metrics.json',
          ('nll_elbo',),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `olympics/2`',
          'olympics_cond6_50k/metrics.json',
          ('nll_iw',),
          '.3f',
          'excess',
          minus=LIMIT['olympics'],
      ),
      Figure(
          'Shipped models',
          '| `olympics/2`',
          'olympics_cond6_50k/metrics.json',
          ('best_step',),
          ',.0f',
          'training',
      ),
      Figure(
          'Shipped models',
          '| `fashion_mnist_smoothed/3`',
          'fashion_mnist_eval.json',
          ('models', 'smoothed', 'bpd', 'bpd_iw'),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `fashion_mnist_smoothed/3`',
          'fashion_mnist_eval.json',
          ('models', 'smoothed', 'bpd', 'bpd_elbo'),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `fashion_mnist_smoothed/3`',
          'fashion_mnist_eval.json',
          ('rows', 3, 'fid'),
          '.2f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `fashion_mnist_baseline/3`',
          'fashion_mnist_eval.json',
          ('models', 'baseline', 'bpd', 'bpd'),
          '.3f',
          'test figure (bound)',
      ),
      Figure(
          'Shipped models',
          '| `fashion_mnist_baseline/3`',
          'fashion_mnist_eval.json',
          ('rows', 0, 'fid'),
          '.2f',
          'test figure (bound)',
      ),
  ]
  # The noise-conditional rings pair: the same-budget run of its study, scored at sigma 0.3 (the
  # range's upper end, 1, is left out: '1' is also the cell's '1,024').
  row, record = '| `rings_noise_conditional/1`', 'noise_conditional.json'
  run = ('datasets', 'rings', 'same_budget', 'noise_conditional')
  for key, fmt, column, scale in (
      (('sigma_range', 0), '.2f', 'training', 1.0),
      (('steps',), '.0f', 'training', 1e-3),
      (('batch_size',), ',.0f', 'training', 1.0),
      (('nll_iw',), '.3f', 'test figure (bound)', 1.0),
      (('nll_elbo',), '.3f', 'test figure (bound)', 1.0),
      (('sigma',), '.1f', 'test figure (bound)', 1.0),
  ):
    out.append(Figure('Shipped models', row, record, run + key, fmt, column, scale=scale))
  out += [
      Figure('Shipped models', row, *LIMIT['rings'], '.4f', 'limit'),
      Figure(
          'Shipped models', row, record, run + ('nll_iw',), '.3f', 'excess', minus=LIMIT['rings']
      ),
      Figure(
          'Shipped models',
          row,
          record,
          ('datasets', 'rings', 'same_budget', 'iw_gap_to_limit', 'noise_conditional'),
          '.3f',
          'excess',
      ),
  ]
  # The class-labelled Fashion-MNIST pair: its raw-weight evaluation (config figures from the
  # run's own metrics, which the evaluation does not repeat).
  row, record = '| `fashion_mnist_labels/1`', 'fashion_mnist_labels/eval_raw_weights.json'
  ema = 'fashion_mnist_labels/metrics_ema.json'
  out += [
      Figure('Shipped models', row, ema, ('sigma',), '.1f', 'training'),
      Figure('Shipped models', row, ema, ('steps',), ',.0f', 'training'),
      Figure('Shipped models', row, record, ('source', 'step'), ',.0f', 'training'),
  ]
  for key, fmt in (
      (('bpd', 'bpd_iw'), '.3f'),
      (('bpd', 'iw_samples'), '.0f'),
      (('bpd', 'bpd_null_iw'), '.3f'),
      (('samplers', 'two_step', 'fid'), '.2f'),
  ):
    out.append(Figure('Shipped models', row, record, key, fmt, 'test figure (bound)'))
  # The noise-conditional Fashion-MNIST pair: its raw-weight evaluation at sigma 0.5.
  row, record = '| `fashion_mnist_noise_conditional/1`', 'fashion_mnist_noise_conditional_eval.json'
  for key, fmt, column in (
      (('noise_conditional', 'trained_range', 0), '.2f', 'training'),
      (('models', 'noise_conditional', 'steps'), ',.0f', 'training'),
      (('models', 'noise_conditional', 'bpd', 'bpd_iw'), '.3f', 'test figure (bound)'),
      (('models', 'noise_conditional', 'bpd', 'iw_samples'), '.0f', 'test figure (bound)'),
      (('noise_conditional', 'sigma'), '.1f', 'test figure (bound)'),
      (('rows', 6, 'fid'), '.2f', 'test figure (bound)'),
      (('rows', 7, 'fid'), '.2f', 'test figure (bound)'),
  ):
    out.append(Figure('Shipped models', row, record, key, fmt, column))
  rows = {
      '| rings (1,000 points) |': ('saved_models/rings/2', '.2f', '.2f'),
      '| olympics (1,000 points) |': ('saved_models/olympics/2', '.2f', '.2f'),
      '| Fashion-MNIST pair (4 images) |': ('saved_models/fashion_mnist_smoothed/3', '.2f', '.1f'),
      '| Fashion-MNIST baseline (4 images) |': (
          'saved_models/fashion_mnist_baseline/3',
          '.2f',
          '.1f',
      ),
  }
  for row, (model, size_fmt, time_fmt) in rows.items():
    for when in ('before', 'after'):
      entry = ('models', model, when)
      out.append(
          Figure(
              'Shipped models',
              row,
              latency,
              entry + ('saved_model_pb_bytes',),
              size_fmt,
              'saved_model.pb',
              scale=1e-6,
          )
      )
      out.append(
          Figure(
              'Shipped models',
              row,
              latency,
              entry + ('each_process', '*', 'load_seconds'),
              time_fmt,
              'load',
              reduce='median',
          )
      )
      for which in ('first_call_seconds', 'second_call_seconds'):
        out.append(
            Figure(
                'Shipped models',
                row,
                latency,
                entry + ('sample', which),
                time_fmt,
                '`sample` first / second call',
            )
        )
        if 'Fashion' in row:
          out.append(
              Figure(
                  'Shipped models',
                  row,
                  latency,
                  entry + ('inpaint', which),
                  time_fmt,
                  '`inpaint` first / second call',
              )
          )
  return out


def _limits():
  return [
      Figure('Results', 'not with the population entropy: rings', *LIMIT[d], '.4f')
      for d in ('rings', 'olympics')
  ]


def _image_pipeline():
  section, record = 'Speed: your images', 'image_pipeline.json'
  out = []
  for row, name in (
      ('| folder, kept in memory |', 'folder_cached'),
      ('| folder, decoded in the pipeline |', 'folder_streamed'),
      ('| array (.npy) |', 'array'),
  ):
    for key, fmt, column, scale in (
        ('from_config_seconds', '.1f' if name != 'array' else '.2f', 'up-front check (s)', 1.0),
        ('pipeline_images_per_sec', ',.0f', 'pipeline images/s', 1.0),
        ('ratio', '.0f', None, 1.0),
        ('fed_overhead', '.1f', None, 100.0),
    ):
      out.append(Figure(section, row, record, (name, key), fmt, column, scale=scale))
  out += [
      Figure(section, '1 resnet, ', record, ('consumption', 'num_params'), ',.0f'),
      Figure(section, 'The step consumes', record, ('consumption', 'images_per_sec'), '.1f'),
      Figure(section, 'The step consumes', record, ('consumption', 'step_seconds'), '.2f'),
      Figure(section, 'bottleneck: even decoding', record, ('folder_streamed', 'ratio'), '.0f'),
      Figure(
          section, 'costs about', record, ('consumption', 'step_seconds'), '.0f', scale=1000 / 60
      ),
      Figure(section, 'load average', record, ('settings', 'load_average_after', 0), '.1f'),
  ]
  return out


def _suite_time():
  section = 'Test suite time'
  out = []
  for row, record in (('| 061d05a', 'suite_time_061d05a.json'), ('| c31d594', 'suite_time.json')):
    out += [
        Figure(section, row, record, ('counts', 'passed'), ',.0f', 'tests'),
        Figure(section, row, record, ('user_cpu_seconds',), ',.0f', 'CPU (user)'),
        Figure(section, row, record, ('load_average_before', 0), '.2f'),
        Figure(section, row, record, ('load_average_after', 0), '.2f'),
    ]
  for index, line in enumerate(('REST bodies', 'REST bodies', 'REST bodies', 'baseline run (')):
    out.append(Figure(section, line, 'suite_time.json', ('slowest', index, 'seconds'), '.0f'))
  out.append(
      Figure(
          section,
          'CPU 1.8x the wall',
          'suite_time.json',
          ('user_cpu_seconds',),
          '.1f',
          over=('suite_time.json', ('pytest_seconds',)),
      )
  )
  return out


HEADLINES = (
    _limits()
    + _rings_default()
    + _table1()
    + _decomposition()
    + _figure12()
    + _realnvp()
    + _kernel_study()
    + _denoising()
    + _noise_conditional()
    + _noise_conditional_olympics()
    + _fashion_mnist()
    + _fashion_mnist_labels()
    + _fashion_mnist_noise_conditional()
    + _speed()
    + _image_pipeline()
    + _suite_time()
    + _shipped()
)


def _sections(text):
  """{heading text: [lines]} of a Markdown text, headings outside ``` blocks."""
  sections, current, fenced = {}, None, False
  for line in text.splitlines():
    if line.startswith('```'):
      fenced = not fenced
    if not fenced and re.match(r'#+ ', line):
      current = sections.setdefault(line.lstrip('#').strip(), [])
      continue
    if current is not None:
      current.append(line)
  return sections


def _select(value, key):
  """The value at `key` in a parsed record (see `Figure`); a list where '*' or a selector
  matched several items."""
  if not key:
    return value
  part, rest = key[0], key[1:]
  if part == '*':
    return [_select(item, rest) for item in value]
  if isinstance(part, dict):
    items = [item for item in value if all(item.get(k) == v for k, v in part.items())]
    assert items, f'no item with {part}'
    return _select(items[0], rest) if len(items) == 1 else [_select(i, rest) for i in items]
  return _select(value[part], rest)


def _record_value(record, key, reduce=None):
  value = _select(json.loads((RESULTS / record).read_text()), key)
  if reduce:
    values = value if isinstance(value, list) else [value]
    value = {'mean': statistics.mean, 'median': statistics.median, 'sum': sum, 'count': len}[
        reduce
    ](values)
  assert isinstance(value, (int, float)), f'{record} {key}: {value!r} is not a number'
  return value


def _table_cell(lines, row, column):
  """The cell under header `column` of the table row lines[row]."""
  start = row
  while start > 0 and lines[start - 1].startswith('|'):
    start -= 1
  split = lambda line: [c.strip() for c in re.split(r'(?<!\\)\|', line)[1:-1]]  # noqa: E731
  header = split(lines[start])
  if header.count(column) != 1:
    return None
  return split(lines[row])[header.index(column)]


def figure_problem(text, figure):
  """Why `figure` is not in `text` as its record states it (None if it is)."""
  sections = [(h, lines) for h, lines in _sections(text).items() if h.startswith(figure.section)]
  if len(sections) != 1:
    return f'{len(sections)} sections start with {figure.section!r}'
  lines = sections[0][1]
  if figure.line.startswith('|'):
    rows = [i for i, line in enumerate(lines) if line.startswith(figure.line)]
  else:
    rows = [i for i, line in enumerate(lines) if figure.line in line]
  if figure.index is None and len(rows) != 1:
    return f'{len(rows)} lines of {figure.section!r} hold {figure.line!r}'
  if not rows:
    return f'no line of {figure.section!r} holds {figure.line!r}'
  row = rows[figure.index or 0]
  where = _table_cell(lines, row, figure.column) if figure.column else lines[row]
  if where is None:
    return f'the table of {figure.line!r} has no single column {figure.column!r}'
  value = _record_value(figure.record, figure.key, figure.reduce)
  if figure.minus:
    value -= _record_value(*figure.minus)
  if figure.over:
    value /= _record_value(*figure.over)
  expected = format(value * figure.scale, figure.fmt)
  plain = where.replace('**', '')
  if not re.search(r'(?<![\d.,])' + re.escape(expected) + r'(?![\d])', plain):
    return f'{figure.record} {figure.key} is {expected}, not in {where!r}'
  return None


@pytest.mark.parametrize(
    'figure', HEADLINES, ids=[f'{f.section[:12]}|{f.line[:30]}|{f.key}' for f in HEADLINES]
)
def test_headline_figure_is_its_records(figure):
  problem = figure_problem((ROOT / 'RESULTS.md').read_text(encoding='utf-8'), figure)
  assert problem is None, problem


def test_headline_mistakes_are_found():
  text = '# Results\n\n## A\n\n| seed | IW |\n|---|---|\n| 0 | 2.6570 |\n| 1 | 2.6552 |\n'
  figure = Figure('A', '| 0 |', 'rings_default.json', (0, 'ema_iw'), '.4f', 'IW')
  assert '2.6571' in figure_problem(text, figure)
  assert figure_problem(text.replace('2.6570', '2.6571'), figure) is None
  assert 'no single column' in figure_problem(text, figure._replace(column='ELBO'))
  assert '0 lines' in figure_problem(text, figure._replace(line='| 7 |'))
  # A row label is the row's first cell, not a later cell holding the same text.
  assert figure_problem(text.replace('2.6570', '2.6571') + '| 9 | 0 |\n', figure) is None


def _bytes(directory):
  return sum(p.stat().st_size for p in directory.rglob('*') if p.is_file())


@pytest.mark.parametrize(
    'model',
    [
        'rings/2',
        'olympics/2',
        'fashion_mnist_smoothed/3',
        'fashion_mnist_baseline/3',
        'rings_noise_conditional/1',
        'fashion_mnist_labels/1',
        'fashion_mnist_noise_conditional/1',
    ],
)
def test_shipped_model_size_is_on_disk(model):
  """The shipped-models table gives each version's size as it is on disk (2 digits, MB)."""
  lines = _sections((ROOT / 'RESULTS.md').read_text(encoding='utf-8'))
  lines = next(v for k, v in lines.items() if k.startswith('Shipped models'))
  row = next(i for i, line in enumerate(lines) if line.startswith(f'| `{model}`'))
  megabytes = _bytes(ROOT / 'saved_models' / model) / 1e6
  expected = f'{megabytes:.2g}' if megabytes >= 10 else f'{megabytes:.1f}'
  assert _table_cell(lines, row, 'size on disk') == f'{expected} MB'
