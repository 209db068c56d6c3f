"""Shared settings of the image experiments (paper section 4.3, App. C); one file per data set.

Variants, chosen by the config string (`--config=tfsmooth/configs/cifar10.py:baseline`):
  smoothed (default): p(x~) PixelCNN++ with the continuous logistic head on x~ = x + N(0, sigma^2),
                      and p(x | x~) (x~ stacked above x) with the discretized head on 8-bit x;
  baseline:           one PixelCNN++ with the discretized head on x, with `baseline_filters`
                      filters so that its parameter count matches the pair's.
The paper (App. C.1) states sigma (0.5 for MNIST, 0.3 for CIFAR-10 and CelebA) and Adam at
2e-4, and uses PixelCNN++'s "default architecture" for both stages without giving its sizes.
The other defaults are those of the PixelCNN++ code (openai/pixel-cnn train.py): 5 gated
resnets per resolution, 160 filters (cifar10.py, celeb_a.py), 10 logistic mixtures, dropout
0.5, per-step learning-rate decay 0.999995. Global batch 64 and 500k steps are ours (that code
trains 12 images per GPU on 8 GPUs); sized for accelerators (`--config.train.strategy=mirrored`
or `tpu`).
Every field can be overridden by flag, e.g. `--config.smoothing.sigma=0.4`, or
`--config.smoothing.sigma_heuristic=True` for the paper's heuristic (App. C.1).
"""

import ml_collections

from tfsmooth.configs import synthetic


def get_config(
    dataset,
    variant='smoothed',
    sigma=0.3,
    nr_filters=160,
    baseline_filters=226,
    nr_resnet=5,
    nr_logistic_mix=10,
    dropout=0.5,
    batch_size=64,
    learning_rate=2e-4,
    lr_decay=0.999995,
    steps=500_000,
    paper_bpd=None,
    paper_label='',
):
  """The ConfigDict for one image experiment."""
  if variant not in ('smoothed', 'baseline', 'noise_conditional'):
    raise ValueError(
        f'Unknown variant {variant!r}: use :smoothed, :baseline or :noise_conditional.'
    )
  smoothed = variant != 'baseline'
  config = ml_collections.ConfigDict()
  config.data = ml_collections.ConfigDict(
      dict(
          name=dataset,
          source='auto',
          data_dir='',
          idx_dir='',
          train_split='train[:-1000]',
          validation_split='train[-1000:]',
          validation_examples=256,
          test_split='test',
          test_examples=0,  # 0: the whole test split
          labels=False,  # class labels: both stages conditioned on the class
          label_drop_rate=0.1,  # share of training labels dropped to the null class
          image_size=0,  # 0: the data set's own size
          channels=0,  # 0: the data set's own channels
      )
  )
  config.smoothing = synthetic.smoothing_group(smoothed, float(sigma))
  config.smoothing.sigma_heuristic = False
  config.model = ml_collections.ConfigDict(
      dict(
          name='pixelcnn',
          likelihood='logistic' if smoothed else 'discretized_logistic',
          nr_resnet=nr_resnet,
          nr_filters=nr_filters if smoothed else baseline_filters,
          nr_logistic_mix=nr_logistic_mix,
          dropout=dropout,
      )
  )
  config.conditional_model = ml_collections.ConfigDict(config.model.to_dict())
  config.conditional_model.likelihood = 'discretized_logistic'
  config.train = ml_collections.ConfigDict(
      dict(
          steps=steps,
          batch_size=batch_size,
          learning_rate=learning_rate,
          lr_decay=lr_decay,
          grad_clip_norm=ml_collections.config_dict.placeholder(float),
          seed=0,
          log_every=100,
          eval_every=2000,
          checkpoint_every=1000,
          keep_checkpoints=2,
          jit_compile=False,
          strategy='default',
          tpu_address='',
          ema_decay=0.0,
          precision='float32',
          steps_per_loop=1,
      )
  )
  config.eval = ml_collections.ConfigDict(
      dict(iw_samples=4, validation_samples=2, batch_size=64, num_samples=16, seed=0)
  )
  config.reference = ml_collections.ConfigDict(
      dict(paper_bpd=dict(paper_bpd or {}), paper_label=paper_label)
  )
  if variant == 'noise_conditional':
    # One pair for sigma in [0.05, 1]: sigma_min stays above what the continuous head of
    # p(x~ | sigma) can score against 8-bit data (x~ near the 256 levels, 2/255 apart, has a
    # density that grows without bound as sigma -> 0; 0.05 is over 6 level spacings).
    synthetic.make_noise_conditional(config, 0.05, 1.0, condition_dim=nr_filters)
  return config
