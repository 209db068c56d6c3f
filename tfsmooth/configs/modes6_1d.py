"""Section 4.1: six 1-D modes. Smoothed pair with 2 logistics each, or the mixture baseline.

The kernel study sweeps --config.smoothing.kernel (gaussian, laplace, uniform) and
--config.smoothing.sigma; the baseline is a mixture of logistics (see synthetic.get_1d_config):

  python launch/train.py --config=tfsmooth/configs/modes6_1d.py --workdir=runs/modes6
  python launch/train.py --config=tfsmooth/configs/modes6_1d.py:baseline \
      --config.model.num_mixtures=8 --workdir=runs/modes6_mol8
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  return synthetic.get_1d_config(
      'modes6_1d',
      variant,
      sigma=0.5,
      loc_init_range=5.0,
      paper_label='Section 4.1 (figure 4; no table)',
  )
