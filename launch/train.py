"""Trains, evaluates and plots one experiment described by an ml_collections config.

  python launch/train.py --config=tfsmooth/configs/rings.py --workdir=runs/rings
  python launch/train.py --config=tfsmooth/configs/rings.py:baseline \
      --config.model.num_mixtures=6 --workdir=runs/rings_made6
  python launch/train.py --config=tfsmooth/configs/fashion_mnist.py:baseline \
      --workdir=runs/fmnist_baseline

A rerun with the same --workdir resumes from its last checkpoint; it may change train.steps
and evaluation settings, and is refused (the run's config.json kept) if anything that shapes
the model, the data or the smoothing differs.
"""

from absl import flags
from ml_collections import config_flags

from tfsmooth.programs import cli

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file.', lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    'workdir',
    None,
    'Directory for checkpoints, summaries, plots and metrics.json; rerunning with it resumes.',
)
flags.mark_flags_as_required(['config', 'workdir'])


def main():
  # Imported here, once cli.run_main has quieted TensorFlow's start-up.
  from tfsmooth import experiment  # pylint: disable=g-import-not-at-top

  run = experiment.Run.create(_CONFIG.value, _WORKDIR.value)
  metrics = run.train()
  print(run.summary_line(metrics), flush=True)


if __name__ == '__main__':
  cli.run_main(main, {'workdir': cli.WRITE})
