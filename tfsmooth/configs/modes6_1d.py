"""Section 4.1: six 1-D modes. Smoothed pair with 2 logistics each, or the mixture baseline.

The kernel study sweeps --config.smoothing.kernel (gaussian, laplace, uniform) and
--config.smoothing.sigma; the baseline is a mixture of logistics (see synthetic.get_1d_config):

  python launch/train.py --config=tfsmooth/configs/modes6_1d.py --workdir=runs/modes6
  python launch/train.py --config=tfsmooth/configs/modes6_1d.py:baseline \
      --config.model.num_mixtures=8 --workdir=runs/modes6_mol8
  python launch/train.py --config=tfsmooth/configs/modes6_1d.py:noise_conditional \
      --workdir=runs/modes6_nc   # one pair for sigma in [0.1, 2]: the kernel study in one run
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  variant = variant or 'smoothed'
  if variant not in ('smoothed', 'baseline', 'noise_conditional'):
    raise ValueError(
        f'Unknown variant {variant!r}: use :smoothed, :baseline or :noise_conditional.'
    )
  config = synthetic.get_1d_config(
      'modes6_1d',
      'baseline' if variant == 'baseline' else 'smoothed',
      sigma=0.5,
      loc_init_range=5.0,
      paper_label='Section 4.1 (figure 4; no table)',
  )
  if variant == 'noise_conditional':  # the kernel study's sigma range in one pair
    synthetic.make_noise_conditional(config, 0.1, 2.0)
    # The annealed sampler's setting chosen on the validation split (RESULTS.md, "One model
    # for every noise level").
    config.smoothing.update(
        annealed_levels=5, annealed_steps=10, annealed_step_size=0.1, annealed_end='two_step'
    )
  return config
