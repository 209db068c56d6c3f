"""CIFAR-10 PixelCNN++ pair (paper section 4.3, App. C): the paper's sigma 0.3, 160 filters.

  python launch/train.py --config=tfsmooth/configs/cifar10.py --workdir=runs/cifar10
  python launch/train.py --config=tfsmooth/configs/cifar10.py:baseline \
      --workdir=runs/cifar10_baseline

The other settings are in tfsmooth/configs/images.py, which says which of them the paper
states (sigma and Adam's 2e-4) and where the rest come from. The baseline has 226 filters: one
network with about the pair's total parameter count, as the paper's comparison asks.
"""

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  return images.get_config(
      'cifar10',
      variant or 'smoothed',
      sigma=0.3,
      nr_filters=160,
      baseline_filters=226,
      paper_bpd={'baseline': 2.92, 'smoothed': 3.53},
      paper_label='Table 2: PixelCNN++ 2.92 bpd; two-step <= 3.53 bpd',
  )
