"""Paper section 5, checkerboard: smoothed RealNVP pair (sigma 0.3) or a plain RealNVP of equal size.

  python launch/train.py --config=tfsmooth/configs/checkerboard_realnvp.py \
      --workdir=runs/realnvp_checkerboard_smoothed
  python launch/train.py --config=tfsmooth/configs/checkerboard_realnvp.py:baseline \
      --workdir=runs/realnvp_checkerboard_plain

Both: 8 couplings; the pair has (64, 64) coupling networks (71,712 weights), the plain flow
(92, 92) (71,408); 60k steps of Adam 1e-3 decaying to 1e-4 (see synthetic_realnvp).
"""

from tfsmooth.configs import synthetic_realnvp


def get_config(variant='smoothed'):
  return synthetic_realnvp.get_config(
      'checkerboard',
      variant,
      sigma=0.3,
      steps=60_000,
      num_couplings=8,
      pair_hidden=(64, 64),
      paper_label='section 5, checkerboard',
      paper_nll={'smoothed_realnvp': 3.64, 'baseline_realnvp': 3.72},
  )
