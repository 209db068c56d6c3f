"""tfsmooth/configs/my_images.py: a CPU-sized pair and a baseline of matched size on a user's
images, every data key overridable by flag, the path required."""

from absl import flags
import ml_collections
from ml_collections import config_flags
import pytest

from tfsmooth import errors
from tfsmooth import experiment
from tfsmooth.configs import my_images
from tfsmooth.data import image_sources


def _num_params(config):
  config = ml_collections.ConfigDict(config.to_dict())
  config.data.event_shape = [config.data.image_size] * 2 + [config.data.channels]
  model = experiment.build_model(config)
  model.build_variables()
  return model.num_params


def test_pair_and_baseline_have_matched_sizes():
  pair, baseline = (_num_params(my_images.get_config(v)) for v in ('smoothed', 'baseline'))
  assert abs(baseline / pair - 1) < 0.03
  config = my_images.get_config()
  assert config.smoothing.enabled and config.smoothing.sigma_heuristic
  assert config.data.name == 'images' and image_sources.is_image_config(config.data)
  assert (config.model.nr_filters, config.model.nr_resnet) == (32, 1)


def test_flags_reach_the_data_keys_and_an_empty_path_is_refused():
  argv = [
      'prog',
      '--config=tfsmooth/configs/my_images.py:baseline',
      '--config.data.path=/data/faces',
      '--config.data.image_size=32',
      '--config.data.channels=3',
      '--config.data.labels=True',
      '--config.data.skip_unreadable=True',
      '--config.data.split_seed=7',
      '--config.data.test_fraction=0.2',
      '--config.model.nr_filters=16',
      '--config.conditional_model.nr_filters=24',
  ]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'Config.', flag_values=values, sys_argv=argv)
  values(argv)
  config = values.config
  assert config.data.path == '/data/faces' and config.data.image_size == 32
  assert config.data.labels and config.data.skip_unreadable and config.data.split_seed == 7
  assert config.data.test_fraction == 0.2 and not config.smoothing.enabled
  assert (config.model.nr_filters, config.conditional_model.nr_filters) == (16, 24)
  with pytest.raises(errors.UserError, match='data.path, which is empty'):
    image_sources.from_config(my_images.get_config().data)
