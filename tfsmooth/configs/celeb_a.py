"""CelebA (centre-crop 140, resize 32) PixelCNN++ pair (paper section 4.3, App. C): the
paper's sigma 0.3, 160 filters.

  python launch/train.py --config=tfsmooth/configs/celeb_a.py --workdir=runs/celeb_a
  python launch/train.py --config=tfsmooth/configs/celeb_a.py:baseline \
      --workdir=runs/celeb_a_baseline

The other settings are in tfsmooth/configs/images.py, which says which of them the paper
states (sigma and Adam's 2e-4) and where the rest come from. The baseline has 226 filters: one
network with about the pair's total parameter count, as the paper's comparison asks.
"""

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  return images.get_config(
      'celeb_a',
      variant or 'smoothed',
      sigma=0.3,
      nr_filters=160,
      baseline_filters=226,
      paper_label='the paper reports no bpd for CelebA',
  )
