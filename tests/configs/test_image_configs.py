"""The paper's image configs build, and their parameter counts are the paper's scale."""

import pytest

from tfsmooth import experiment
from tfsmooth.configs import celeb_a
from tfsmooth.configs import cifar10
from tfsmooth.configs import fashion_mnist
from tfsmooth.configs import mnist


def _counts(module):
  counts = {}
  for variant in ('smoothed', 'baseline'):
    model = experiment.build_model(experiment.settle(module.get_config(variant)))
    model.build_variables()
    counts[variant] = model.num_params
  return counts


def test_settings_follow_the_paper():
  for module, sigma, filters in ((mnist, 0.5, 40), (cifar10, 0.3, 160), (celeb_a, 0.3, 160)):
    config = module.get_config()
    assert config.smoothing.sigma == sigma and config.model.nr_filters == filters
    assert config.model.nr_resnet == 5 and config.model.nr_logistic_mix == 10
    assert config.train.learning_rate == 2e-4 and config.train.lr_decay == 0.999995
    assert config.model.likelihood == 'logistic'
    assert config.conditional_model.likelihood == 'discretized_logistic'
    assert module.get_config('baseline').model.likelihood == 'discretized_logistic'
  assert cifar10.get_config('baseline').reference.paper_bpd['baseline'] == 2.92
  assert fashion_mnist.get_config('baseline').train.jit_compile is False
  with pytest.raises(ValueError, match='variant'):
    mnist.get_config('other')


def test_mnist_pair_and_baseline_sizes():
  counts = _counts(mnist)
  assert 6.0e6 < counts['smoothed'] < 7.5e6  # two 40-filter PixelCNN++ networks, 3.4M each
  assert abs(counts['baseline'] / counts['smoothed'] - 1) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize('module', [cifar10, celeb_a])
def test_rgb_pair_and_baseline_sizes(module):
  counts = _counts(module)
  # PixelCNN++ (160 filters) has ~53.7M parameters; the pair twice that.
  assert 1.0e8 < counts['smoothed'] < 1.15e8
  assert abs(counts['baseline'] / counts['smoothed'] - 1) < 0.02
