"""App. B.1: 0.5 N(-0.3, 0.1^2) + 0.5 N(0.3, 0.1^2) with sigma 0.3 (or 0.1).

Single-step denoising (Tweedie) vs p(x | x~) with 1 or 2 logistics:

  python launch/train.py --config=tfsmooth/configs/two_gaussians_1d.py \
      --config.conditional_model.num_mixtures=1 --workdir=runs/two_gaussians_s0.3_k1
"""

from tfsmooth.configs import synthetic


def get_config(variant='smoothed'):
  config = synthetic.get_config('two_gaussians_1d', variant or 'smoothed', num_mixtures=2,
                                sigma=0.3, steps=20_000, paper_label='App. B.1 (figures only)')
  for model in (config.model, config.conditional_model):
    model.loc_init_range = 0.5
  config.model.hidden_sizes = ()
  config.conditional_model.hidden_sizes = (64, 64)
  return config
