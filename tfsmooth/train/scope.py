"""Where a model is built for training: the configured precision and the strategy's scope.

`model_scope(config.train, strategy)` is where `trainer.train` builds the model, its optimizer
and averages; `experiment.Run.create` builds its model there too, before training, exactly as
the trainer would, and `check_built_in_scope` refuses a model built elsewhere.
"""

import contextlib

import keras
import tensorflow as tf

from tfsmooth import errors

PRECISIONS = ('float32', 'mixed_bfloat16')


@contextlib.contextmanager
def model_scope(config, strategy=None):
  """Where `train` builds the model, its optimizer and averages, for building a model before
  training exactly as `train` would: under `config.precision` (the Keras dtype policy; the
  process's own is restored afterwards) and inside `strategy.scope()` (default: the current
  strategy). `config` is `config.train`.

      with scope.model_scope(config.train, strategy):
        model = build_model(config)
        model.build_variables()
      trainer.train(lambda: model, examples_fn, config.train, workdir, strategy)
  """
  precision = config.get('precision', 'float32')
  if precision not in PRECISIONS:
    raise errors.UserError(
        f'Unknown train.precision {precision!r}; choose one of {", ".join(PRECISIONS)}.'
    )
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(precision)
  try:
    with (strategy or tf.distribute.get_strategy()).scope():
      yield
  finally:
    keras.config.set_dtype_policy(previous)


def check_built_in_scope(model, config, strategy):
  """A model that `model_fn` built beforehand must have been built in `model_scope(config,
  strategy)`: its variables in the strategy's scope, its dtype policy the config's precision."""
  outside = [
      getattr(v, 'path', v.name)
      for v in model.variables
      if not strategy.extended.variable_created_in_scope(
          v.value if isinstance(v, keras.Variable) else v
      )
  ]
  policy = getattr(model, 'dtype_policy', None)
  precision = config.get('precision', 'float32')
  wrong = []
  if outside:
    names = ', '.join(outside[:3]) + (', ...' if len(outside) > 3 else '')
    wrong.append(f"its variables {names} outside the strategy's scope")
  if policy is not None and policy.name != precision:
    wrong.append(f'its dtype policy {policy.name} where train.precision is {precision}')
  if wrong:
    raise ValueError(
        f'model_fn returned a model not built in trainer.model_scope(config, strategy) '
        f'({"; ".join(wrong)}): build it inside that block.'
    )
