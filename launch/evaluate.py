"""bpd, FID / KID / Inception score and nearest neighbours of a trained image model.

  python launch/evaluate.py --workdir=runs/fmnist_baseline --single_step_sigmas=0.1,0.3
  python launch/evaluate.py --workdir=runs/fmnist_smoothed
  python launch/evaluate.py --saved_model=exports/fmnist_smoothed/1 --out_dir=eval/fmnist_smoothed
  python launch/evaluate.py --workdir=runs/cifar10_smoothed --feature_network=inception \
      --inception_path=/data/tfgan_inception_v3
  python launch/evaluate.py --workdir=runs/fmnist_labels
  python launch/evaluate.py --workdir=runs/fmnist_nc --sigma=0.3

Takes a run (--workdir; its best, EMA when kept, weights) or an exported version directory
(--saved_model; its signatures only) and writes into --out_dir (default: the workdir, or
<workdir>/eval_raw_weights with --weights=raw; for --saved_model=.../<model>/<version>,
eval/<model>/<version>) eval.json (bpd, and per sampler FID / KID / IS with the feature network
it names; per class for a class-labelled run; at --sigma for a noise-conditional one), sample
and nearest-neighbour grids, and the samples (eval_samples.npz, reused by a rerun). What each
holds: tfsmooth/programs/sample_eval.py; the flag checks: tfsmooth/programs/evaluating.py.
"""

from absl import flags

from tfsmooth.programs import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'A trained image run (launch/train.py --workdir).')
_SAVED_MODEL = flags.DEFINE_string(
    'saved_model', None, 'An exported version directory (launch/export.py), e.g. exports/fmnist/1.'
)
_OUT_DIR = flags.DEFINE_string(
    'out_dir',
    '',
    'Where eval.json, the PNGs and the samples go '
    '(default: --workdir; for --saved_model=.../<model>/<version>, eval/<model>/<version>).',
)
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 5000, 'Samples per sampler.', lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer(
    'batch_size',
    100,
    'Samples per sampling batch (every batch has its own seed) and images per feature batch.',
    lower_bound=1,
)
_WEIGHTS = flags.DEFINE_enum(
    'weights',
    'ema',
    ['ema', 'raw'],
    'With --workdir: the best '
    "checkpoint's EMA averages (when the run kept them) or its raw "
    'weights (results then go to <workdir>/eval_raw_weights).',
)
_SEED = flags.DEFINE_integer('seed', 0, 'Base of the named sampling seeds.')
_NUM_REFERENCE = flags.DEFINE_integer(
    'num_reference',
    0,
    'Test images that FID / KID / IS compare against (0: the whole test split).',
    lower_bound=0,
)
_BPD_EXAMPLES = flags.DEFINE_integer(
    'bpd_examples',
    0,
    "Test images for bpd (0: the run's test set, config.data.test_examples).",
    lower_bound=0,
)
_IW_SAMPLES = flags.DEFINE_integer(
    'iw_samples',
    0,
    'Draws K per image of the bpd bounds of a '
    "smoothed model (0: the run's eval.iw_samples; a "
    "SavedModel's K is fixed at export).",
    lower_bound=0,
)
_FEATURE_NETWORK = flags.DEFINE_enum(
    'feature_network',
    'classifier',
    ['classifier', 'inception'],
    'Network of FID / KID / IS and feature neighbours.',
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
_SIGMAS = flags.DEFINE_list(
    'single_step_sigmas',
    [],
    'Paper App. C.6 (baseline runs): sigmas '
    'of single-step denoising x + sigma^2 grad log p(x) applied to the '
    "baseline's samples, e.g. 0.1,0.3.",
)
_NUM_NEIGHBOURS = flags.DEFINE_integer(
    'num_neighbours',
    8,
    'Samples per sampler shown with their nearest training images.',
    lower_bound=1,
)
_STRATEGY = flags.DEFINE_string(
    'strategy',
    '',
    'tf.distribute strategy of the sampling and the bounds (default, mirrored, multi_worker, '
    "tpu; '': the run's train.strategy, or default for --saved_model). Every replica draws its "
    'share of the rows; under several workers only the chief writes files.',
)
_SIGMA = flags.DEFINE_float(
    'sigma',
    None,
    'A noise-conditional run (config :noise_conditional): the noise level every sampler and the '
    'bpd bounds are scored at, within its trained range (default: its reference level, '
    'smoothing.sigma); results go to <out_dir>/eval_sigma<sigma>. The annealed sampler walks '
    'its own ladder. Not --single_step_sigmas.',
)
_SPLITS = flags.DEFINE_integer(
    'splits', None, 'Splits of the Inception score (default: 10).', lower_bound=1
)

flags.mark_flags_as_mutual_exclusive(['workdir', 'saved_model'], required=True)


def main():
  # Imported here, once cli.run_main has quieted TensorFlow's start-up.
  from tfsmooth.programs import evaluating  # pylint: disable=g-import-not-at-top

  path = evaluating.evaluate(
      _WORKDIR.value,
      _SAVED_MODEL.value,
      _OUT_DIR.value,
      weights=_WEIGHTS.value,
      strategy=_STRATEGY.value,
      feature_network=_FEATURE_NETWORK.value,
      classifier_dir=_CLASSIFIER_DIR.value,
      inception_path=_INCEPTION_PATH.value,
      single_step_sigmas=_SIGMAS.value,
      num_samples=_NUM_SAMPLES.value,
      num_reference=_NUM_REFERENCE.value,
      splits=_SPLITS.value,
      sigma=_SIGMA.value,
      batch_size=_BATCH_SIZE.value,
      seed=_SEED.value,
      bpd_examples=_BPD_EXAMPLES.value,
      iw_samples=_IW_SAMPLES.value or None,
      num_neighbours=_NUM_NEIGHBOURS.value,
      log=lambda line: print(line, flush=True),
  )
  print(f'wrote {path}', flush=True)


if __name__ == '__main__':
  cli.run_main(
      main,
      {
          'workdir': cli.READ,
          'saved_model': cli.READ,
          'out_dir': cli.WRITE,
          'classifier_dir': cli.READ,
          'inception_path': cli.READ,
      },
  )
