"""Builds density models from `config.model` by name; each model module has `from_config`."""

import importlib

from tfsmooth import errors

MODELS = {
    'made': 'tfsmooth.models.made',
    'pixelcnn': 'tfsmooth.models.pixelcnn',
    'realnvp': 'tfsmooth.models.realnvp',
}


def build(model_config, event_shape, conditional=False, conditions=None):
  """A `DensityModel` p(x) (or p(x | x~) if `conditional`) named by `model_config.name`, taking
  `conditions` ({keyword: `interface.Condition`}, e.g. class labels) where given."""
  name = model_config.get('name', 'made')
  if name not in MODELS:
    raise errors.UserError(
        f'Unknown model {name!r}; choose one of {", ".join(sorted(MODELS))} '
        '(--config.model.name=...).'
    )
  module = importlib.import_module(MODELS[name])
  if conditions:
    return module.from_config(model_config, tuple(event_shape), conditional, conditions)
  return module.from_config(model_config, tuple(event_shape), conditional)
