import numpy as np
import pytest

from tfsmooth import errors
from tfsmooth.configs import fashion_mnist_classifier
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks


@pytest.fixture
def tiny_config(monkeypatch):
  rng = np.random.default_rng(0)

  def fake_data(split, **source):
    del split, source
    return (
        rng.uniform(-1, 1, (24, 28, 28, 1)).astype(np.float32),
        rng.integers(0, 10, 24).astype(np.int32),
    )

  monkeypatch.setattr(classifier, 'load_labelled', fake_data)
  config = fashion_mnist_classifier.get_config()
  config.model.filters, config.model.features = (4,), 6
  config.data.validation_examples = 8
  config.train.update(steps=2, eval_every=1, log_every=1, batch_size=8)
  return config


def test_trained_classifier_exports_a_savedmodel_that_loads_as_a_feature_network(
    tiny_config, tmp_path
):
  lines = []
  network, metrics = classifier.train(tiny_config, log=lines.append)
  assert metrics['training_steps'] == 2 and metrics['feature_dimension'] == 6
  assert any(line.startswith('step 2/2  validation') for line in lines)
  classifier.export(network, str(tmp_path), dict(name='tiny', **metrics))
  loaded = feature_networks.load_classifier(str(tmp_path))
  x = np.random.default_rng(1).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
  expected, outputs = network(x), loaded(x)
  assert loaded.name == 'tiny' and loaded.info['training_steps'] == 2
  for key in ('features', 'logits'):
    np.testing.assert_allclose(outputs[key], expected[key], rtol=1e-5, atol=1e-6)


def test_classifier_config_mistakes_are_user_errors(tiny_config):
  tiny_config.train.steps = 3
  tiny_config.train.eval_every = 2
  with pytest.raises(errors.UserError, match='multiple of'):
    classifier.train(tiny_config)
  tiny_config.train.steps = 2
  tiny_config.data.validation_examples = 24
  with pytest.raises(errors.UserError, match='validation_examples'):
    classifier.train(tiny_config)
