"""Paper section 5, olympics: smoothed RealNVP pair (sigma 0.3) or a plain RealNVP of equal size.

The paper's Olympics data is not published; ours is defined in tfsmooth/data/synthetic.py.

  python launch/train.py --config=tfsmooth/configs/olympics_realnvp.py \
      --workdir=runs/realnvp_olympics_smoothed
  python launch/train.py --config=tfsmooth/configs/olympics_realnvp.py:baseline \
      --workdir=runs/realnvp_olympics_plain

Sizes and schedule as in checkerboard_realnvp.py.
"""

from tfsmooth.configs import synthetic_realnvp


def get_config(variant='smoothed'):
  return synthetic_realnvp.get_config(
      'olympics',
      variant,
      sigma=0.3,
      steps=60_000,
      num_couplings=8,
      pair_hidden=(64, 64),
      paper_label='section 5, Olympics',
      paper_nll={'smoothed_realnvp': 1.32, 'baseline_realnvp': 1.80},
  )
