"""What launch/evaluate.py does with its flags: check them, settle their defaults, open the model
and the feature network, then `sample_eval.evaluate`.

The flag-level decisions live here as functions of plain values, so that a test calls them
without a process: the App. C.6 sigmas (`parse_sigmas`), the sample counts against the
Inception score's splits (`check_counts`), the tf.distribute strategy (`strategy_of`: the
run's own by default) and where the results go (`default_out_dir`: the run's workdir, or for an
export `eval/<model>/<version>` under the working directory, never the export itself; with
--sigma its subdirectory eval_sigma<sigma>, so that scores at several levels sit side by side).
The feature classifier is found by the model's data identity (`sample_eval.load_network`).
"""

import os

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth import paths
from tfsmooth.evaluation import sample_quality
from tfsmooth.programs import sample_eval
from tfsmooth.train import strategy as strategy_lib

# Results of an export go under this directory of the working directory: eval/<model>/<version>.
EXPORT_RESULTS = 'eval'


def parse_sigmas(values):
  """The --single_step_sigmas strings as positive floats."""
  try:
    sigmas = [float(v) for v in values]
  except ValueError as e:
    raise errors.UserError(
        f'--single_step_sigmas takes numbers, e.g. 0.1,0.3; got {",".join(values)}.'
    ) from e
  if any(not sigma > 0 for sigma in sigmas):
    raise errors.UserError(f'--single_step_sigmas must be positive, got {sigmas}.')
  return sigmas


def check_counts(num_samples, num_reference, splits):
  """Refuses fewer samples or reference images (0: the whole test split) than IS splits."""
  if num_samples < splits or 0 < num_reference < splits:
    raise errors.UserError(
        f'--num_samples={num_samples} and --num_reference={num_reference} must be at least '
        f'--splits={splits}: the Inception score needs a sample per split.'
    )


def strategy_of(name, workdir=None):
  """The strategy `name`; '' means the run's train.strategy, or 'default' for an export."""
  if not name and workdir:
    record = experiment.read_record(workdir)
    return strategy_lib.get_strategy(record.train.strategy, record.train.get('tpu_address', ''))
  return strategy_lib.get_strategy(name or 'default')


def default_out_dir(workdir=None, saved_model=None, ema=True, sigma=None):
  """Where results go without --out_dir: the run's workdir (<workdir>/eval_raw_weights for
  its raw weights), or for an export's version directory .../<model>/<version> the directory
  eval/<model>/<version> under the working directory (an export is TF Serving's, and may be
  shipped or read-only); with a noise level `sigma` (--sigma) its subdirectory
  eval_sigma<sigma>."""
  if workdir:
    out_dir = workdir if ema else os.path.join(workdir, 'eval_raw_weights')
  else:
    path = saved_model if paths.is_url(saved_model) else os.path.abspath(saved_model)
    out_dir = os.path.join(EXPORT_RESULTS, *path.rstrip('/').split('/')[-2:])
  return out_dir if sigma is None else os.path.join(out_dir, f'eval_sigma{sigma:g}')


def evaluate(
    workdir=None,
    saved_model=None,
    out_dir='',
    weights='ema',
    strategy='',
    feature_network='classifier',
    classifier_dir='',
    inception_path='',
    single_step_sigmas=(),
    num_samples=5000,
    num_reference=0,
    splits=None,
    sigma=None,
    log=print,
    **options,
):
  """Evaluates the run `workdir` or the export `saved_model` (exactly one) into `out_dir`
  (default: `default_out_dir`); returns the path of the eval.json written.

  `weights`: a run's 'ema' or 'raw' weights; `strategy`: see `strategy_of`; the feature network
  as `sample_eval.load_network` takes it; `single_step_sigmas`: the --single_step_sigmas
  strings; `splits` of the Inception score (None: sample_quality.SPLITS); `sigma`: the
  noise level of a noise-conditional run (--sigma; None: its reference level; refused by a run
  without noise levels, `sample_eval.noise_level`); `num_samples`,
  `num_reference` and `options` (batch_size, seed, bpd_examples, iw_samples, num_neighbours) as
  `sample_eval.evaluate` takes them.
  """
  if bool(workdir) == bool(saved_model):
    raise errors.UserError(
        'Pass exactly one of --workdir (a launch/train.py run) and --saved_model (a '
        'launch/export.py version directory, e.g. exports/fmnist/1); got '
        f'{"both" if workdir else "neither"}.'
    )
  ema = weights == 'ema'
  sigmas = parse_sigmas(single_step_sigmas)
  splits = splits or sample_quality.SPLITS
  check_counts(num_samples, num_reference, splits)
  distribution = strategy_of(strategy, workdir)
  source = sample_eval.open_source(workdir, saved_model, ema, distribution)
  sample_eval.check_ablation(source, sigmas)
  sample_eval.noise_level(source.model, sigma)  # refuses a --sigma the run cannot take
  write = distribution.extended.should_checkpoint
  if not out_dir:
    out_dir = default_out_dir(workdir, saved_model, ema, sigma)
    if write:
      paths.check_writable(out_dir, '--out_dir')
  network = sample_eval.load_network(
      feature_network,
      classifier_dir,
      inception_path,
      source.config.data.name,
      source.task.source.identity,
      source.task.event_shape,
  )
  sample_eval.evaluate(
      source,
      network,
      out_dir,
      num_samples=num_samples,
      num_reference=num_reference,
      single_step_sigmas=sigmas,
      splits=splits,
      sigma=sigma,
      strategy=distribution,
      write=write,
      log=log,
      **options,
  )
  return os.path.join(out_dir, sample_eval.EVAL_FILE)
