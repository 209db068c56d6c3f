"""Shared settings of the low-dimensional experiments (one file per data set imports this).

Variants, chosen by the config string (`--config=tfsmooth/configs/rings.py:baseline`):
  smoothed (default): p(x~) and p(x|x~) MADEs with `num_mixtures` components, Gaussian q;
  baseline:           one MADE on the raw data, wider so its parameter count is near the pair's.
Every field can be overridden by flag, e.g. `--config.smoothing.sigma=0.2`.
"""

import ml_collections

# MADE with hidden (h, h) on D=2 has h^2 + (4 + 6K) h + 18K weights: (360, 360) comes within 4%
# of the smoothed pair of two (256, 256) networks (RESULTS.md, Table 1: MADE(3) 137,574 and
# MADE(6) 144,108 against 142,992 for the pair with 3 logistics in both stages, 147,690 with 6
# in p(x | x~)).
PAIR_HIDDEN = (256, 256)
BASELINE_HIDDEN = (360, 360)


def get_config(
    dataset,
    variant='smoothed',
    num_mixtures=3,
    sigma=0.3,
    steps=60_000,
    paper_nll=None,
    paper_label='',
):
  """The ConfigDict for one low-dimensional experiment."""
  if variant not in ('smoothed', 'baseline'):
    raise ValueError(f'Unknown variant {variant!r}: use :smoothed or :baseline.')
  smoothed = variant == 'smoothed'
  config = ml_collections.ConfigDict()
  # name 'file' reads your points from `path` (.npy/.npz/.csv, N x D; `key` picks an .npz
  # array). `dequantize` (file data only) adds U[0, 1) noise to integer-valued points, whose
  # NLL then bounds the discrete data's (tfsmooth/data/synthetic.py); it shapes the data, so a
  # resumed run cannot change it. `standardize` (file data only) fits the model to the points
  # standardised per coordinate, where sigma and the initialisation assume unit scale, and
  # reports NLL, samples and denoised points in the file's units (tfsmooth/standardized.py);
  # the built-in sets keep their units, in which the paper's sigma is given.
  # `labels` (mixtures: the component; a file: an .npz's y) conditions both stages on the
  # class, a share `label_drop_rate` of training labels dropped to the null class so the
  # model also answers without one (tfsmooth/models/context.py).
  config.data = ml_collections.ConfigDict(
      dict(
          name=dataset,
          path='',
          key='',
          dequantize=False,
          standardize=True,
          labels=False,
          label_drop_rate=0.1,
      )
  )
  config.smoothing = smoothing_group(smoothed, sigma)
  config.model = ml_collections.ConfigDict(
      dict(
          name='made',
          hidden_sizes=PAIR_HIDDEN if smoothed else BASELINE_HIDDEN,
          num_mixtures=num_mixtures,
          ordering='natural',
          loc_init_range=2.0,
      )
  )
  config.conditional_model = ml_collections.ConfigDict(config.model.to_dict())
  config.train = ml_collections.ConfigDict(
      dict(
          steps=steps,
          batch_size=256,
          learning_rate=1e-3,
          lr_decay=1.0,
          final_lr_fraction=ml_collections.config_dict.placeholder(float),
          grad_clip_norm=ml_collections.config_dict.placeholder(float),
          seed=0,
          log_every=1000,
          eval_every=2000,
          checkpoint_every=2000,
          keep_checkpoints=2,
          jit_compile=True,
          strategy='default',
          tpu_address='',
          ema_decay=0.0,
          precision='float32',
          steps_per_loop=100,
      )
  )
  config.eval = ml_collections.ConfigDict(
      dict(
          iw_samples=100,
          validation_samples=16,
          num_plot_samples=5000,
          density_iw_samples=32,
          seed=0,
      )
  )
  # The paper's test NLL, keyed '<variant>_<num_mixtures>' or, for flows, '<variant>_<model>'.
  config.reference = ml_collections.ConfigDict(
      dict(paper_nll=dict(paper_nll or {}), paper_label=paper_label)
  )
  return config


def smoothing_group(enabled, sigma, kernel='gaussian'):
  """config.smoothing: the kernel and sigma, and the keys of a noise-conditional pair (one
  model for every sigma in [sigma_min, sigma_max], trained on levels drawn from sigma_law;
  sigma is then the reference level of validation and of rows given none) with its annealed
  sampler (annealed_*: levels, Langevin steps per level, their step size relative to the
  level's variance, ending 'two_step' or 'single_step'; tfsmooth/smoothing.py). The annealed_*
  keys may change on resume: they shape sampling, not training."""
  return ml_collections.ConfigDict(
      dict(
          enabled=enabled,
          kernel=kernel,
          sigma=sigma,
          noise_conditional=False,
          sigma_min=ml_collections.config_dict.placeholder(float),
          sigma_max=ml_collections.config_dict.placeholder(float),
          sigma_law='log_uniform',
          sigma_ladder=(),
          annealed_levels=10,
          annealed_steps=5,
          annealed_step_size=0.5,
          annealed_end='two_step',
      )
  )


def make_noise_conditional(config, sigma_min, sigma_max, condition_dim=4):
  """`config` (a smoothed pair's) as one noise-conditional pair for every sigma in
  [sigma_min, sigma_max]; both stages embed the level in `condition_dim` units (small, so the
  pair stays within a few percent of the fixed pair's parameters)."""
  config.smoothing.update(noise_conditional=True, sigma_min=sigma_min, sigma_max=sigma_max)
  config.model.condition_dim = condition_dim
  config.conditional_model.condition_dim = condition_dim
  return config


def get_1d_config(
    dataset, variant, sigma, loc_init_range, num_mixtures=2, steps=20_000, paper_label=''
):
  """A 1-D experiment: p(x~) a plain logistic mixture (a MADE without hidden layers: its only
  dimension sees no inputs) and p(x | x~) a MADE over [x~, x], together the paper's single
  MADE over the stacked pair; the baseline is a plain logistic mixture."""
  config = get_config(
      dataset,
      variant or 'smoothed',
      num_mixtures=num_mixtures,
      sigma=sigma,
      steps=steps,
      paper_label=paper_label,
  )
  for model in (config.model, config.conditional_model):
    model.loc_init_range = loc_init_range
  config.model.hidden_sizes = ()
  config.conditional_model.hidden_sizes = (64, 64)
  return config
