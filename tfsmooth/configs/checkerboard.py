"""Checkerboard (uniform on 8 squares, entropy log 32): smoothed MADE pair or MADE baseline.

python launch/train.py --config=tfsmooth/configs/checkerboard.py --workdir=runs/checkerboard
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  return synthetic.get_config(
      'checkerboard',
      variant or 'smoothed',
      num_mixtures=3,
      sigma=0.3,
      paper_label='checkerboard (paper: RealNVP only, section 5)',
  )
