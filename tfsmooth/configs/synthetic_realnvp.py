"""RealNVP versions of the 2-D experiments (paper section 5), built on `synthetic.get_config`.

Variants, chosen by the config string:
  smoothed (default): p(x~) and p(x|x~) RealNVPs (x~ fed to every coupling of p(x|x~)),
                      each `num_couplings` couplings of `pair_hidden` widths, Gaussian q;
  baseline:           one RealNVP on the raw data with the same couplings and depth, its
                      hidden width chosen by `realnvp.width_for_params` so that its parameter
                      count matches the smoothed pair's.
Adam's learning rate decays exponentially, per step, to `final_lr_fraction` of its start at
`steps` (also after `--config.train.steps=N`).
"""

import ml_collections

from tfsmooth.configs import synthetic
from tfsmooth.models import realnvp

DIM = 2


def pair_params(num_couplings, pair_hidden):
  """Parameters of the smoothed pair p(x~) + p(x | x~) on 2-D data."""
  return realnvp.count_params(DIM, num_couplings, pair_hidden) + realnvp.count_params(
      DIM, num_couplings, pair_hidden, conditional=True
  )


def baseline_hidden(num_couplings, pair_hidden):
  """Hidden widths of the plain flow whose size matches the smoothed pair."""
  width = realnvp.width_for_params(
      pair_params(num_couplings, pair_hidden), DIM, num_couplings, len(pair_hidden)
  )
  return (width,) * len(pair_hidden)


def get_config(
    dataset,
    variant,
    sigma,
    steps,
    num_couplings,
    pair_hidden,
    learning_rate=1e-3,
    final_lr_fraction=0.1,
    max_log_scale=3.0,
    paper_nll=None,
    paper_label='',
):
  """The ConfigDict of one RealNVP experiment; `config.model` describes p(x) or p(x~)."""
  config = synthetic.get_config(
      dataset,
      variant or 'smoothed',
      sigma=sigma,
      steps=steps,
      paper_nll=paper_nll,
      paper_label=paper_label,
  )
  hidden = (
      tuple(pair_hidden)
      if config.smoothing.enabled
      else baseline_hidden(num_couplings, pair_hidden)
  )
  config.model = ml_collections.ConfigDict(
      dict(
          name='realnvp',
          num_couplings=num_couplings,
          hidden_sizes=hidden,
          activation='relu',
          max_log_scale=max_log_scale,
      )
  )
  config.conditional_model = ml_collections.ConfigDict(config.model.to_dict())
  config.train.learning_rate = learning_rate
  config.train.final_lr_fraction = final_lr_fraction
  return config
