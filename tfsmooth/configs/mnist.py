"""MNIST PixelCNN++ pair (paper section 4.3, App. C): the paper's sigma 0.5; 40 filters (ours).

  python launch/train.py --config=tfsmooth/configs/mnist.py --workdir=runs/mnist
  python launch/train.py --config=tfsmooth/configs/mnist.py:baseline --workdir=runs/mnist_baseline

The other settings are in tfsmooth/configs/images.py, which says which of them the paper
states (sigma and Adam's 2e-4) and where the rest come from. The baseline has 57 filters: one
network with about the pair's total parameter count.
"""

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  return images.get_config(
      'mnist',
      variant or 'smoothed',
      sigma=0.5,
      nr_filters=40,
      baseline_filters=57,
      paper_label='the paper reports no bpd for MNIST',
  )
