"""The context models are conditioned on besides x~: class labels and noise levels, as per-row
`Condition`s and a learned vector h.

A `LabelCondition` takes an int label per row in [0, num_classes]; the value num_classes is
the null class, "no label", which is also what a row given none gets. Training replaces a share
`drop_rate` of the labels by the null class (per example, from the step's seed), so one model
learns p(x | y) and, through the null class, p(x): it answers with or without a label.
(Called class / label here, never "conditional": that word means p(x | x~) in tfsmooth.)

A `NoiseLevelCondition` takes a noise level sigma per row in [sigma_min, sigma_max] (the
reference level, `smoothing.sigma`, for a row given none): one noise-conditional pair models
p(x~ | sigma) and p(x | x~, sigma) for every level in the range (Li & Kluger 2022). Training
draws one level per example from the configured law, log-uniform on the range by default (every
octave of noise gets the same share of the examples) or uniform on a ladder of levels. The
loss is each example's -[log p(x~ | sigma) + log p(x | x~, sigma)] at its own level, averaged
with equal weights. It differs from that example's negative ELBO by the kernel's entropy, a
constant of the level, so its gradient is the ELBO's; and at every level the ELBO bounds the
same -log p(x), so the levels' terms are on one scale and none needs reweighting (unlike
denoising score matching, whose per-level losses scale as 1 / sigma^2 and are weighted by
sigma^2).

`ConditionEmbedding` maps a model's conditions {keyword: [N]} to one vector h [N, dim] (the sum
of one learned embedding per condition: a table for labels; for a noise level, fixed Fourier
features of log sigma through a small MLP, which varies smoothly with the level). A model adds a linear projection of h in every layer,
as conditional PixelCNN does (van den Oord et al. 2016; openai/pixel-cnn's
`gated_resnet(..., h=...)`): PixelCNN++ before the gate of every gated resnet, MADE to the
pre-activation of every hidden layer and to its outputs (unmasked: every output may see the
label). A model without conditions builds none of this and keeps its variables exactly.
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.models import interface

LABELS = 'labels'
SIGMA = 'sigma'
LAWS = ('log_uniform', 'ladder')
FOURIER_FEATURES = 16  # frequencies 1..16 of log sigma, in units of the range's log-width


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


@dataclasses.dataclass(frozen=True)
class NoiseLevelCondition(interface.Condition):
  """Noise levels sigma [N] in [low, high], the reference level the default (module docstring).

  Attributes (besides `interface.Condition`'s):
    law: 'log_uniform' (training levels log-uniform on [low, high]) or 'ladder' (uniform on
      `ladder`).
    ladder: the levels of the 'ladder' law, and those at which a run reports its bounds.
  """

  law: str = 'log_uniform'
  ladder: tuple = ()

  def for_training(self, values, seed):
    """A level per example from the law (the given values are the defaults: data carry none)."""
    if seed is None:
      return values
    if self.law == 'ladder':
      ladder = tf.constant(self.ladder, tf.float32)
      index = tf.random.stateless_uniform(
          tf.shape(values), seed, 0, len(self.ladder), dtype=tf.int32
      )
      return tf.gather(ladder, index)
    u = tf.random.stateless_uniform(tf.shape(values), seed)
    low, high = math.log(self.low), math.log(self.high)
    return tf.exp(low + u * (high - low))


def noise_levels(sigma, sigma_min, sigma_max, law='log_uniform', ladder=(), report_levels=4):
  """The `NoiseLevelCondition` of a noise-conditional pair on [sigma_min, sigma_max] whose
  reference level is `sigma`; `ladder` (the 'ladder' law's levels) defaults to `report_levels`
  levels spaced evenly in log between the bounds."""
  sigma, low, high = float(sigma), float(sigma_min), float(sigma_max)
  if not 0 < low < high or not low <= sigma <= high or not math.isfinite(high):
    raise errors.UserError(
        f'Noise levels need 0 < sigma_min < sigma_max with the reference sigma between them; got '
        f'sigma_min={low}, sigma={sigma}, sigma_max={high}. Set --config.smoothing.sigma_min, '
        '--config.smoothing.sigma and --config.smoothing.sigma_max accordingly.'
    )
  if law not in LAWS:
    raise errors.UserError(
        f'Unknown noise-level law {law!r} (--config.smoothing.sigma_law); choose one of '
        f'{", ".join(LAWS)}.'
    )
  ladder = tuple(float(v) for v in ladder) or tuple(
      float(v) for v in np.geomspace(low, high, max(2, int(report_levels)))
  )
  if any(not low <= v <= high for v in ladder):
    raise errors.UserError(
        f'The noise-level ladder {list(ladder)} must lie in [sigma_min, sigma_max] = [{low}, '
        f'{high}] (--config.smoothing.sigma_ladder).'
    )
  return NoiseLevelCondition(
      keyword=SIGMA,
      input_name='sigma',
      dtype=tf.float32,
      low=low,
      high=high,
      default=sigma,
      what=f'noise levels (standard deviations of the smoothing kernel) in [{low:g}, {high:g}]',
      sweep=ladder,
      law=law,
      ladder=ladder,
  )


class FourierEmbedding(keras.layers.Layer):
  """A noise level sigma [N] -> [N, dim]: sin and cos of k pi t (k = 1..FOURIER_FEATURES),
  t = log sigma mapped from [log low, log high] to [0, 1], through Dense(dim, swish) and
  Dense(dim)."""

  def __init__(self, low, high, dim, **kwargs):
    super().__init__(**kwargs)
    self.log_low, self.log_width = math.log(low), math.log(high) - math.log(low)
    self.hidden = keras.layers.Dense(dim, activation='swish', name='hidden')
    self.out = keras.layers.Dense(dim, name='out')

  def call(self, sigma):
    sigma = tf.cast(sigma, tf.float32)
    t = (tf.math.log(tf.reshape(sigma, [-1, 1])) - self.log_low) / self.log_width
    angles = t * (math.pi * tf.range(1, FOURIER_FEATURES + 1, dtype=tf.float32))
    h = self.out(self.hidden(tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)))
    return tf.reshape(h, tf.concat([tf.shape(sigma), [h.shape[-1]]], 0))


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
      if isinstance(condition, LabelCondition):
        self.tables[keyword] = keras.layers.Embedding(
            condition.num_classes + 1,
            self.dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
            name=f'{keyword}_embedding',
        )
      elif isinstance(condition, NoiseLevelCondition):
        self.tables[keyword] = FourierEmbedding(
            condition.low, condition.high, self.dim, name=f'{keyword}_embedding'
        )
      else:
        raise TypeError(f'No embedding for the condition {keyword!r} ({type(condition).__name__}).')

  def call(self, conditions):
    return tf.add_n([self.tables[k](conditions[k]) for k in self.keywords])


def embedding(conditions, dim, name='conditions'):
  """A `ConditionEmbedding` of `conditions`, or None for a model without conditions."""
  return ConditionEmbedding(conditions, dim, name=name) if conditions else None
