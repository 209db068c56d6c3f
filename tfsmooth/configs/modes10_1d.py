"""Ten 1-D modes (paper figure 3). Smoothed pair with 2 logistics each, or the mixture baseline.

In 1-D, p(x~) is a plain mixture of logistics (a MADE without hidden layers: the first
dimension sees no inputs) and p(x | x~) a MADE over [x~, x]: together the paper's single
MADE over the stacked pair. The kernel study sweeps --config.smoothing.kernel (gaussian,
laplace, uniform) and --config.smoothing.sigma; the baseline is a mixture of logistics:

  python launch/train.py --config=tfsmooth/configs/modes10_1d.py --workdir=runs/modes10
  python launch/train.py --config=tfsmooth/configs/modes10_1d.py:baseline \
      --config.model.num_mixtures=8 --workdir=runs/modes10_mol8
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  config = synthetic.get_config('modes10_1d', variant or 'smoothed', num_mixtures=2, sigma=0.5,
                                steps=20_000, paper_label='Section 4.1 (figure 4; no table)')
  for model in (config.model, config.conditional_model):
    model.loc_init_range = 5.0
  config.model.hidden_sizes = ()
  config.conditional_model.hidden_sizes = (64, 64)
  return config
