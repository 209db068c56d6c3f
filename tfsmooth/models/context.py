"""The context models are conditioned on besides x~: class labels, as per-row `Condition`s and a
learned vector h.

A `LabelCondition` takes an int label per row in [0, num_classes]; the value num_classes is
the null class, "no label", which is also what a row given none gets. Training replaces a share
`drop_rate` of the labels by the null class (per example, from the step's seed), so one model
learns p(x | y) and, through the null class, p(x): it answers with or without a label.
(Called class / label here, never "conditional": that word means p(x | x~) in tfsmooth.)

`ConditionEmbedding` maps a model's conditions {keyword: [N]} to one vector h [N, dim] (the sum
of one learned embedding per condition). A model adds a linear projection of h in every layer,
as conditional PixelCNN does (van den Oord et al. 2016; openai/pixel-cnn's
`gated_resnet(..., h=...)`): PixelCNN++ before the gate of every gated resnet, MADE to the
pre-activation of every hidden layer and to its outputs (unmasked: every output may see the
label). A model without conditions builds none of this and keeps its variables exactly.
"""

import dataclasses

import keras
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.models import interface

LABELS = 'labels'


@dataclasses.dataclass(frozen=True)
class LabelCondition(interface.Condition):
  """Class labels [N] in [0, num_classes], num_classes the null class (module docstring).

  Attributes (besides `interface.Condition`'s):
    num_classes: the classes of the data, K.
    drop_rate: share of training labels replaced by the null class.
  """

  num_classes: int = 0
  drop_rate: float = 0.0

  def for_training(self, values, seed):
    """Labels with a share `drop_rate` replaced by the null class, drawn from `seed`."""
    if not self.drop_rate or seed is None:
      return values
    keep = tf.random.stateless_uniform(tf.shape(values), seed) >= self.drop_rate
    return tf.where(keep, values, tf.cast(self.num_classes, values.dtype))


def labels(num_classes, names=(), drop_rate=0.1):
  """The `LabelCondition` of data with `num_classes` classes named `names` (sorted class
  names, or '0', '1', ... when the data has none)."""
  num_classes = int(num_classes)
  if num_classes < 2:
    raise errors.UserError(
        f'Class labels need at least 2 classes; the data has {num_classes}. Set '
        '--config.data.labels=False to model the images without labels.'
    )
  if not 0 <= drop_rate < 1:
    raise errors.UserError(
        f'The label drop rate must be in [0, 1) (the share of training labels replaced by the '
        f'null class), got {drop_rate}.'
    )
  names = tuple(str(n) for n in names) or tuple(str(i) for i in range(num_classes))
  return LabelCondition(
      keyword=LABELS,
      input_name='label',
      dtype=tf.int32,
      low=0,
      high=num_classes,
      default=num_classes,
      what=f'class labels 0..{num_classes - 1}, or {num_classes} for none (the null class)',
      names=names + ('(none)',),
      num_classes=num_classes,
      drop_rate=float(drop_rate),
  )


class ConditionEmbedding(keras.layers.Layer):
  """{keyword: [N]} -> h [N, dim]: the sum of one learned embedding per condition.

  Args:
    conditions: {keyword: `interface.Condition`} of the model.
    dim: the size of h.
  """

  def __init__(self, conditions, dim, **kwargs):
    super().__init__(**kwargs)
    self.dim = int(dim)
    self.keywords = tuple(sorted(conditions))
    self.tables = {}
    for keyword in self.keywords:
      condition = conditions[keyword]
      if not isinstance(condition, LabelCondition):
        raise TypeError(f'No embedding for the condition {keyword!r} ({type(condition).__name__}).')
      self.tables[keyword] = keras.layers.Embedding(
          condition.num_classes + 1,
          self.dim,
          embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
          name=f'{keyword}_embedding',
      )

  def call(self, conditions):
    return tf.add_n([self.tables[k](tf.cast(conditions[k], tf.int32)) for k in self.keywords])


def embedding(conditions, dim, name='conditions'):
  """A `ConditionEmbedding` of `conditions`, or None for a model without conditions."""
  return ConditionEmbedding(conditions, dim, name=name) if conditions else None
