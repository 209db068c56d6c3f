"""App. B.1: 0.5 N(-0.3, 0.1^2) + 0.5 N(0.3, 0.1^2) with sigma 0.3 (or 0.1).

Single-step denoising (Tweedie) vs p(x | x~) with 1 or 2 logistics:

  python launch/train.py --config=tfsmooth/configs/two_gaussians_1d.py \
      --config.conditional_model.num_mixtures=1 --workdir=runs/two_gaussians_s0.3_k1
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  return synthetic.get_1d_config(
      'two_gaussians_1d',
      variant,
      sigma=0.3,
      loc_init_range=0.5,
      paper_label='App. B.1 (figures only)',
  )
