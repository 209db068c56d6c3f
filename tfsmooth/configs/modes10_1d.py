"""Ten 1-D modes (paper figure 3). Smoothed pair with 2 logistics each, or the mixture baseline.

The kernel study sweeps --config.smoothing.kernel (gaussian, laplace, uniform) and
--config.smoothing.sigma; the baseline is a mixture of logistics (see synthetic.get_1d_config):

  python launch/train.py --config=tfsmooth/configs/modes10_1d.py --workdir=runs/modes10
  python launch/train.py --config=tfsmooth/configs/modes10_1d.py:baseline \
      --config.model.num_mixtures=8 --workdir=runs/modes10_mol8
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  return synthetic.get_1d_config(
      'modes10_1d', variant, sigma=0.5, loc_init_range=5.0, paper_label='figure 3 (no table)'
  )
