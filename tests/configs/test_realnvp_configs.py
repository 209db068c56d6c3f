"""Tests for the RealNVP configs of paper section 5: variants, equal sizes, a short run."""

import json

import pytest

from tfsmooth import experiment
from tfsmooth import tasks
from tfsmooth.configs import checkerboard_realnvp
from tfsmooth.configs import olympics_realnvp

CONFIGS = {'checkerboard': checkerboard_realnvp, 'olympics': olympics_realnvp}
PAPER = {'checkerboard': (3.64, 3.72), 'olympics': (1.32, 1.80)}


def _num_params(config):
  model = experiment.build_model(experiment.settle(config))
  model.build_variables()
  return model.num_params


@pytest.mark.parametrize('dataset', sorted(CONFIGS))
def test_plain_flow_matches_the_smoothed_pair_in_size(dataset):
  module = CONFIGS[dataset]
  smoothed, plain = module.get_config(), module.get_config('baseline')
  assert smoothed.data.name == plain.data.name == dataset
  assert smoothed.smoothing.enabled and not plain.smoothing.enabled
  assert smoothed.model.name == smoothed.conditional_model.name == plain.model.name == 'realnvp'
  assert smoothed.model.num_couplings == plain.model.num_couplings
  pair, single = _num_params(smoothed), _num_params(plain)
  assert abs(single - pair) / pair < 0.02
  paper = (tasks.paper_figure(smoothed, 'paper_nll'), tasks.paper_figure(plain, 'paper_nll'))
  assert paper == PAPER[dataset]


def test_unknown_variant_is_refused():
  with pytest.raises(ValueError, match='baseline'):
    checkerboard_realnvp.get_config('plain')


def test_short_smoothed_run_writes_metrics(tmp_path):
  config = checkerboard_realnvp.get_config()
  config.model.update(num_couplings=2, hidden_sizes=(8,))
  config.conditional_model.update(num_couplings=2, hidden_sizes=(8,))
  config.train.update(steps=10, jit_compile=False, log_every=5, eval_every=5)
  config.eval.update(iw_samples=4, validation_samples=2, num_plot_samples=200, density_iw_samples=2)
  metrics = experiment.Run.create(config, tmp_path).train()
  saved = json.loads((tmp_path / 'metrics.json').read_text())
  assert saved['steps'] == 10 and saved['paper_nll'] == 3.64
  assert saved['num_params'] == metrics['num_params'] == 168  # 2 x (2*8 + 9*2) + 2 x (4*8 + 9*2)
  assert saved['nll_iw'] <= saved['nll_elbo']
  for name in ('samples.png', 'density.png'):
    assert (tmp_path / name).stat().st_size > 10_000
