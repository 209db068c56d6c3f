"""Table 1, rings: smoothed 3-mixture MADE pair (sigma 0.3) or the MADE baseline.

  python launch/train.py --config=tfsmooth/configs/rings.py --workdir=runs/rings
  python launch/train.py --config=tfsmooth/configs/rings.py:baseline \
      --config.model.num_mixtures=6 --workdir=runs/rings_made6
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  config = synthetic.get_config(
      'rings', variant or 'smoothed', num_mixtures=3, sigma=0.3, paper_label='Table 1, rings',
      paper_nll={'smoothed_3': 2.71, 'baseline_3': 3.26, 'baseline_6': 2.81}, steps=100_000)
  config.train.final_lr_fraction = 0.05  # lr 1e-3 -> 5e-5 over the run, however long
  return config
