"""Fashion-MNIST PixelCNN++ on CPU: the smoothed pair or the baseline, same parameter count.

  python launch/train.py --config=tfsmooth/configs/fashion_mnist.py:baseline \
      --workdir=runs/fmnist_baseline
  python launch/train.py --config=tfsmooth/configs/fashion_mnist.py:smoothed \
      --workdir=runs/fmnist_smoothed

Small enough for a CPU: 1 gated resnet per resolution, no dropout, batch 32. The pair has two
32-filter networks, the baseline one 45-filter network of about the same parameter count.
sigma 0.5 as the paper's MNIST setting (data in [-1, 1]); the paper reports no Fashion-MNIST
figures. EMA weights (decay 0.999, a horizon of about 1000 of the 5000 steps) are kept beside
the raw ones and used for validation, evaluation, sampling and export. A rerun with a larger
--config.train.steps continues from the checkpoint. Measured bpd, FID and training times are in
RESULTS.md.
"""

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  config = images.get_config(
      'fashion_mnist',
      variant or 'smoothed',
      sigma=0.5,
      nr_filters=32,
      baseline_filters=45,
      nr_resnet=1,
      nr_logistic_mix=10,
      dropout=0.0,
      batch_size=32,
      learning_rate=1e-3,
      lr_decay=0.99995,
      steps=5000,
      paper_label='no Fashion-MNIST figures in the paper',
  )
  config.train.eval_every = 1000
  config.train.log_every = 50
  config.train.checkpoint_every = 250
  config.train.ema_decay = 0.999
  config.data.test_examples = 1000
  if variant == 'noise_conditional':
    # The annealed setting of lowest FID on the validation split (benchmarks/
    # annealed_grid_images.py, 4 settings of 50 score evaluations, 500 samples each: RESULTS.md,
    # "Fashion-MNIST: one noise-conditional pair"); the shipped export and its test figures used
    # the earlier hand-set 10 x 5.
    config.smoothing.update(
        annealed_levels=25, annealed_steps=2, annealed_step_size=0.5, annealed_end='two_step'
    )
  return config
