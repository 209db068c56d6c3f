"""MADE with a K-component logistic mixture per dimension (Germain et al., 2015).

For x in R^D under an ordering pi, the density is autoregressive,

  p(x) = prod_d sum_k w_dk(x_<d) Logistic(x_d; mu_dk(x_<d), s_dk(x_<d)),

where (log w, mu, s) for dimension d come from one masked network in which an output
of degree m(d) sees only inputs of smaller degree. Hidden unit degrees cycle through
1..D-1; a masked direct input-to-output connection is added (it lets p(x | x~) start
close to the identity map).

Conditional p(x | c) (`conditional=True`): the network reads the stacked vector [c, x]
and scores only the x half: the paper's p(x | x~). The inputs c get degree 0 and hidden
degrees cycle through 0..D-1, so every hidden unit sees all of c (not only a prefix of it,
as a plain MADE over [c, x] would allow) and every x_d sees c.

With no hidden layers and D = 1 the network is only its output bias: a plain mixture
of logistics, the paper's 1-D baseline (`mixture_of_logistics`).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth.models import base
from tfsmooth.models import context

tfd = tfp.distributions

ORDERINGS = ('natural', 'reversed', 'random')
MIN_SCALE = 1e-3


def input_degrees(event_size, ordering='natural', seed=0):
  """Degrees 1..D of the inputs under an ordering (dimension with degree 1 comes first)."""
  if ordering == 'natural':
    return np.arange(1, event_size + 1)
  if ordering == 'reversed':
    return np.arange(event_size, 0, -1)
  if ordering == 'random':
    return np.random.default_rng(seed).permutation(event_size) + 1
  raise errors.UserError(
      f'Unknown MADE ordering {ordering!r}; choose one of {", ".join(ORDERINGS)}.'
  )


def masks(in_degrees, hidden_sizes, out_degrees, min_hidden_degree=1):
  """Masks [in, out] for each hidden layer, the output layer and the direct connection.

  Hidden degrees cycle through min_hidden_degree..max(in_degrees)-1; a hidden unit of degree
  m sees inputs of degree <= m; an output of degree m sees hidden units and inputs of
  degree < m.
  """
  max_degree = max(int(np.max(in_degrees)), min_hidden_degree + 1)
  layer_masks, previous = [], in_degrees
  for units in hidden_sizes:
    degrees = np.arange(units) % (max_degree - min_hidden_degree) + min_hidden_degree
    layer_masks.append((degrees[None, :] >= previous[:, None]).astype(np.float32))
    previous = degrees
  output_mask = (out_degrees[None, :] > previous[:, None]).astype(np.float32)
  direct_mask = (out_degrees[None, :] > in_degrees[:, None]).astype(np.float32)
  return layer_masks, output_mask, direct_mask


class MaskedDense(keras.layers.Layer):
  """y = x @ (W * mask) + b: a dense layer with a fixed 0/1 connectivity mask."""

  def __init__(self, mask, activation=None, use_bias=True, bias_initializer='zeros', **kwargs):
    super().__init__(**kwargs)
    self.mask = np.asarray(mask, np.float32)
    self.activation = keras.activations.get(activation)
    self.use_bias = use_bias
    self.bias_initializer = keras.initializers.get(bias_initializer)

  def build(self, input_shape):
    fan_in, units = self.mask.shape
    self.kernel = self.add_weight(
        shape=(fan_in, units), initializer='glorot_uniform', name='kernel'
    )
    self.bias = (
        self.add_weight(shape=(units,), initializer=self.bias_initializer, name='bias')
        if self.use_bias
        else None
    )

  def call(self, x, extra=None):
    """activation(x @ (W * mask) + b [+ extra]): `extra` an unmasked term (a label's
    projection) added before the activation."""
    y = keras.ops.matmul(x, self.kernel * keras.ops.cast(self.mask, self.compute_dtype))
    if self.bias is not None:
      y = y + self.bias
    if extra is not None:
      y = y + keras.ops.cast(extra, y.dtype)
    return self.activation(y)


class MADE(base.DensityModel):
  """p(x) or p(x | c) over R^D with a MADE-parameterised logistic mixture per dimension.

  A masked autoencoder [1] gives, in one pass, the parameters of every dimension's conditional
  given the dimensions before it in the ordering; the density (`distribution`) is a
  `tfd.Autoregressive` over that network: `log_prob` takes one pass, `sample` D passes. Meng
  et al. [2] use it for p(x~) and, reading [x~, x], for p(x | x~) on low-dimensional data.

  #### Mathematical Details

  Under an ordering pi (the dimension of degree 1 first), with x_<d the dimensions before d,

    p(x) = prod_d sum_k w_dk(x_<d) Logistic(x_d; mu_dk(x_<d), s_dk(x_<d)),
    Logistic(x; mu, s) = exp(-(x - mu) / s) / (s (1 + exp(-(x - mu) / s))^2),

  where (log w_d, mu_d, s_d) are the network outputs of degree d (w = softmax, s = softplus +
  1e-3), which the masks connect only to inputs of smaller degree. Conditional
  (`conditional=True`): the network reads [c, x] with the inputs c at degree 0, so every factor
  sees all of c: p(x | c) = prod_d p(x_d | x_<d, c).

  Args:
    event_size: D.
    hidden_sizes: widths of the masked hidden layers.
    num_mixtures: K logistic components per dimension.
    ordering: 'natural', 'reversed' or 'random' (seeded by `ordering_seed`).
    conditional: model p(x | c) with c in R^D read before x.
    activation: hidden activation.
    loc_init_range: output-bias initialisation of the component means, U(-r, r), so
      components start apart.
    ordering_seed: seed of the 'random' ordering and of the means' initial biases.

  #### Examples

  A 3-component mixture per dimension over 2-D points:

  >>> from tfsmooth.models import made
  >>> model = made.MADE(2, hidden_sizes=(8,), num_mixtures=3)
  >>> model.build_variables()
  >>> x = tf.constant([[0.5, -1.0], [2.0, 0.0]])
  >>> model.log_prob(x).shape
  TensorShape([2])
  >>> model.sample(4, seed=(1, 2)).shape
  TensorShape([4, 2])

  The masks at work: the first dimension's mixture depends on nothing, so moving x_2 leaves
  it as it was, while the second dimension's follows x_1:

  >>> _, locs, _ = model.mixture_params(x)
  >>> _, second_moved, _ = model.mixture_params(x + [0.0, 5.0])
  >>> _, first_moved, _ = model.mixture_params(x + [5.0, 0.0])
  >>> bool(np.array_equal(locs[:, 0], second_moved[:, 0]))
  True
  >>> bool(np.array_equal(locs[:, 1], first_moved[:, 1]))
  False

  p(x | x~), the second stage of a smoothed pair: one distribution per row of x~:

  >>> conditional = made.MADE(2, hidden_sizes=(8,), conditional=True)
  >>> conditional.build_variables()
  >>> x_tilde = x + 0.3
  >>> conditional.log_prob(x, conditioning=x_tilde).shape
  TensorShape([2])
  >>> conditional.distribution(x_tilde).sample(seed=(3, 4)).shape
  TensorShape([2, 2])

  #### References

  [1]: Mathieu Germain, Karol Gregor, Iain Murray, Hugo Larochelle. MADE: Masked Autoencoder
       for Distribution Estimation. ICML 2015. https://arxiv.org/abs/1502.03509
  [2]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  """

  def __init__(
      self,
      event_size,
      hidden_sizes=(256, 256),
      num_mixtures=3,
      ordering='natural',
      conditional=False,
      activation='relu',
      loc_init_range=2.0,
      ordering_seed=0,
      conditions=None,
      condition_dim=32,
      **kwargs,
  ):
    super().__init__((event_size,), conditional=conditional, **kwargs)
    if num_mixtures < 1:
      raise errors.UserError(f'num_mixtures must be >= 1, got {num_mixtures}.')
    self.num_mixtures = int(num_mixtures)
    degrees = input_degrees(event_size, ordering, ordering_seed)
    in_degrees = np.concatenate([np.zeros(event_size, int), degrees]) if conditional else degrees
    out_degrees = np.repeat(degrees, 3 * num_mixtures)
    hidden_masks, output_mask, direct_mask = masks(
        in_degrees, tuple(hidden_sizes), out_degrees, min_hidden_degree=0 if conditional else 1
    )
    self.hidden = [
        MaskedDense(m, activation=activation, name=f'hidden_{i}')
        for i, m in enumerate(hidden_masks)
    ]
    bias = np.zeros((event_size, 3, num_mixtures), np.float32)
    bias[:, 1] = np.random.default_rng(ordering_seed).uniform(
        -loc_init_range, loc_init_range, (event_size, num_mixtures)
    )
    self.out = MaskedDense(
        output_mask, bias_initializer=keras.initializers.Constant(bias.ravel()), name='output'
    )
    self.direct = MaskedDense(direct_mask, use_bias=False, name='direct')
    # Conditions (class labels): h added to every hidden pre-activation and to the outputs.
    self.conditions = dict(conditions or {})
    self.embed = context.embedding(self.conditions, condition_dim)
    if self.embed is not None:
      self.condition_projections = [
          keras.layers.Dense(m.shape[1], use_bias=False, name=f'condition_{i}')
          for i, m in enumerate(hidden_masks + [output_mask])
      ]

  def mixture_params(self, inputs, h=None):
    """Network outputs for the scored dims: logits, locs, scales, each [..., D, K], float32
    (under a mixed-precision policy the network computes in bfloat16, the mixture in float32).
    `h` is the conditions' vector (`DensityModel.condition_vector`), None without conditions."""
    projections = [None] * (len(self.hidden) + 1)
    if h is not None:
      projections = [project(h) for project in self.condition_projections]
    hidden = inputs
    for layer, extra in zip(self.hidden, projections):
      hidden = layer(hidden, extra)
    raw = self.out(hidden, projections[-1]) + self.direct(inputs)
    raw = keras.ops.cast(raw, 'float32')
    raw = keras.ops.reshape(
        raw, tuple(keras.ops.shape(raw)[:-1]) + (self.event_shape[0], 3, self.num_mixtures)
    )
    logits, locs, raw_scales = raw[..., 0, :], raw[..., 1, :], raw[..., 2, :]
    return logits, locs, tf.nn.softplus(raw_scales) + MIN_SCALE

  def _per_dimension(self, inputs, h=None):
    logits, locs, scales = self.mixture_params(inputs, h)
    mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Logistic(locs, scales))
    return tfd.Independent(mixture, reinterpreted_batch_ndims=1)

  def distribution(self, conditioning=None, **conditions):
    """tfd.Autoregressive over the MADE: log_prob in one pass, sampling in D passes. Given
    conditions [N] (labels), its batch shape is [N]."""
    h = self.condition_vector(conditions)
    if conditioning is None:
      fn = lambda x: self._per_dimension(x, h)  # noqa: E731
      if h is None:
        sample0 = tf.zeros(self.event_shape)
      else:
        sample0 = tf.zeros(tf.concat([tf.shape(h)[:-1], self.event_shape], 0))
    else:
      c = tf.convert_to_tensor(conditioning, tf.float32)

      def fn(x):
        return self._per_dimension(tf.concat([tf.broadcast_to(c, tf.shape(x)), x], axis=-1), h)

      sample0 = tf.zeros_like(c)
    return tfd.Autoregressive(fn, sample0=sample0, num_steps=self.event_shape[0])


def mixture_of_logistics(event_size=1, num_mixtures=3, loc_init_range=2.0):
  """The paper's 1-D baseline: a MADE with no hidden layers is a plain logistic mixture."""
  return MADE(
      event_size,
      hidden_sizes=(),
      num_mixtures=num_mixtures,
      loc_init_range=loc_init_range,
      name='mixture_of_logistics',
  )


def from_config(config, event_shape, conditional, conditions=None):
  """Builds a MADE from `config.{hidden_sizes, num_mixtures, ordering, loc_init_range,
  condition_dim}` and the model's `conditions` (class labels), if any."""
  if len(event_shape) != 1:
    raise errors.UserError(
        f'MADE models flat vectors; got event shape {event_shape}. '
        'Use the pixelcnn model for images.'
    )
  return MADE(
      event_shape[0],
      hidden_sizes=tuple(config.get('hidden_sizes', (256, 256))),
      num_mixtures=config.get('num_mixtures', 3),
      ordering=config.get('ordering', 'natural'),
      conditional=conditional,
      loc_init_range=config.get('loc_init_range', 2.0),
      conditions=conditions,
      condition_dim=config.get('condition_dim', 32),
      name='made_conditional' if conditional else 'made',
  )
