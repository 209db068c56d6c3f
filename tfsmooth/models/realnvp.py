"""RealNVP (Dinh et al., 2017): a stack of affine coupling layers over a standard normal.

The flow maps z ~ N(0, I_D) to x = f_L(...f_1(z)). Coupling l keeps a block of k = D // 2
coordinates (the first k for odd l, the last k for even l: alternating masks) and
transforms the other D - k coordinates elementwise,

  y_a = x_a,    y_b = x_b * exp(s(x_a, c)) + t(x_a, c),    log|det dy/dx| = sum_j s_j(x_a, c),

with (t, s) from one Keras MLP per coupling. The log-scale is soft-clipped,
s = B tanh(raw / B) with B = `max_log_scale`, and the output layer starts at zero, so
every coupling starts as the identity. Then

  log p(x) = log N(f^-1(x); 0, I) - sum_l log|det J_{f_l}|.

Conditional p(x | c) (`conditional=True`): every coupling network reads [x_a, c], so c
(in tfsmooth, the smoothed x~) enters all couplings; `distribution(c)` has batch shape [N]
and c is broadcast against any sample shape.

Size: a coupling network with widths h_1..h_n has sum (fan_in + 1) * fan_out weights,
fan_in = k (+ D if conditional) at the input and 2 (D - k) at the output; `count_params`
evaluates it and `width_for_params` picks the hidden width that matches a budget (e.g. a
plain flow as big as a smoothed pair p(x~) + p(x | x~)).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth import errors
from tfsmooth.models import base

tfb = tfp.bijectors
tfd = tfp.distributions


class CouplingNetwork(keras.layers.Layer):
  """MLP [x_a (, c)] -> (shift, log_scale), each [..., out_units]; zero-initialised output."""

  def __init__(self, hidden_sizes, out_units, activation='relu', max_log_scale=3.0, **kwargs):
    super().__init__(**kwargs)
    self.hidden = [
        keras.layers.Dense(units, activation=activation, name=f'hidden_{i}')
        for i, units in enumerate(hidden_sizes)
    ]
    self.out = keras.layers.Dense(2 * out_units, kernel_initializer='zeros', name='output')
    self.max_log_scale = float(max_log_scale)

  def call(self, inputs):
    h = inputs
    for layer in self.hidden:
      h = layer(h)
    shift, raw = tf.split(self.out(h), 2, axis=-1)
    bound = self.max_log_scale
    return shift, bound * tf.tanh(raw / bound)


class RealNVP(base.DensityModel):
  """p(x) or p(x | c) over R^D as a RealNVP flow with Keras 3 coupling networks.

  A normalizing flow of affine couplings [1]: `distribution` is the `tfd.TransformedDistribution`
  of N(0, I_D) by `bijector()`, a `tfb.Chain` of `tfb.RealNVP` couplings whose shift and
  log-scale come from Keras MLPs. Meng et al. [2] (section 5) fit it to smoothed data as p(x~)
  and, conditioned on x~, as p(x | x~).

  #### Mathematical Details

  Coupling l keeps a block x_a of D // 2 coordinates (alternately the first and the last) and
  maps the rest,

    y_a = x_a,    y_b = x_b * exp(s_l(x_a, c)) + t_l(x_a, c),    s_l = B tanh(raw / B),

  so with f = f_L o ... o f_1 and z = f^-1(x),

    log p(x) = log N(z; 0, I_D) - sum_l sum_j s_lj(.)   (the log-scales at each coupling's input).

  The coupling networks' output layers start at zero: an untrained flow is N(0, I_D).
  Conditional (`conditional=True`): every coupling network also reads c.

  Args:
    event_size: D >= 2.
    num_couplings: number of affine coupling layers (masks alternate first/last D // 2).
    hidden_sizes: widths of each coupling network's hidden layers.
    conditional: model p(x | c), c in R^D fed to every coupling network.
    activation: hidden activation.
    max_log_scale: bound B on each coupling's per-coordinate log-scale.

  #### Examples

  An untrained flow is the standard normal (every coupling starts as the identity):

  >>> from tfsmooth.models import realnvp
  >>> flow = realnvp.RealNVP(2, num_couplings=2, hidden_sizes=(8,))
  >>> flow.build_variables()
  >>> x = tf.constant([[0.5, -1.0], [2.0, 0.0]])
  >>> standard = tfp.distributions.MultivariateNormalDiag(tf.zeros(2))
  >>> bool(np.allclose(flow.log_prob(x), standard.log_prob(x)))
  True

  With any weights, log p(x) is the change of variables through the flow:

  >>> for v in flow.trainable_variables:
  ...   _ = v.assign(v + 0.1)
  >>> f = flow.bijector()
  >>> by_hand = standard.log_prob(f.inverse(x)) + f.inverse_log_det_jacobian(x, event_ndims=1)
  >>> bool(np.allclose(flow.log_prob(x), by_hand, atol=1e-5))
  True
  >>> flow.sample(3, seed=(1, 2)).shape
  TensorShape([3, 2])

  #### References

  [1]: Laurent Dinh, Jascha Sohl-Dickstein, Samy Bengio. Density estimation using Real NVP.
       ICLR 2017. https://arxiv.org/abs/1605.08803
  [2]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  """

  def __init__(
      self,
      event_size,
      num_couplings=8,
      hidden_sizes=(64, 64),
      conditional=False,
      activation='relu',
      max_log_scale=3.0,
      **kwargs,
  ):
    super().__init__((event_size,), conditional=conditional, **kwargs)
    if event_size < 2:
      raise errors.UserError(
          f'RealNVP couples halves of the event, so it needs D >= 2; got D = '
          f'{event_size}. Use the made model for 1-D data.'
      )
    if num_couplings < 1:
      raise errors.UserError(f'num_couplings must be >= 1, got {num_couplings}.')
    self.num_masked = event_size // 2
    self.couplings = [
        CouplingNetwork(
            tuple(hidden_sizes),
            event_size - self.num_masked,
            activation,
            max_log_scale,
            name=f'coupling_{i}',
        )
        for i in range(num_couplings)
    ]

  def bijector(self, conditioning=None):
    """The flow f: base space -> data space, a tfb.Chain of tfb.RealNVP couplings.

    A conditioning c of shape [N, D] is broadcast against the sample dims of the input.
    """
    c = self._check_conditioning(conditioning)

    def shift_and_log_scale_fn(network):
      def fn(x_a, output_units):
        del output_units  # Fixed by the network.
        inputs = x_a
        if c is not None:
          c_shape = tf.concat([tf.shape(x_a)[:-1], tf.shape(c)[-1:]], axis=0)
          inputs = tf.concat([x_a, tf.broadcast_to(c, c_shape)], axis=-1)
        # The network takes [B, F]: flatten any leading shape (none for one point [F], which
        # TFP's joint distributions pass when they trace static shapes), and restore it.
        leading = tf.shape(inputs)[:-1]
        flat = tf.reshape(inputs, [-1, inputs.shape[-1]])
        shift, log_scale = network(flat)
        restore = lambda t: tf.reshape(t, tf.concat([leading, tf.shape(t)[-1:]], 0))
        return restore(shift), restore(log_scale)

      return fn

    couplings = [
        tfb.RealNVP(
            num_masked=self.num_masked if i % 2 == 0 else -self.num_masked,
            shift_and_log_scale_fn=shift_and_log_scale_fn(network),
            name=f'coupling_{i}',
        )
        for i, network in enumerate(self.couplings)
    ]
    return tfb.Chain(couplings[::-1])  # Chain applies its last bijector first.

  def distribution(self, conditioning=None):
    """p(x) (batch shape []) or p(x | c) (batch shape [N]): the flow over N(0, I_D)."""
    c = self._check_conditioning(conditioning)
    loc = tf.zeros(self.event_shape) if c is None else tf.zeros_like(c)
    base_dist = tfd.Independent(tfd.Normal(loc, 1.0), reinterpreted_batch_ndims=1)
    return tfd.TransformedDistribution(base_dist, self.bijector(c))


def count_params(event_size, num_couplings, hidden_sizes, conditional=False):
  """Trainable scalars of `RealNVP(event_size, num_couplings, hidden_sizes, conditional)`."""
  num_masked = event_size // 2
  widths = (
      [num_masked + (event_size if conditional else 0)]
      + list(hidden_sizes)
      + [2 * (event_size - num_masked)]
  )
  return num_couplings * sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths, widths[1:]))


def width_for_params(num_params, event_size, num_couplings, num_hidden_layers, conditional=False):
  """Hidden width w whose flow (num_hidden_layers layers of w) has the count nearest num_params."""

  def count(width):
    return count_params(event_size, num_couplings, (width,) * num_hidden_layers, conditional)

  width = 1
  while count(width + 1) <= num_params:
    width += 1
  return min((width, width + 1), key=lambda w: abs(count(w) - num_params))


def from_config(config, event_shape, conditional, conditions=None):
  """Builds a RealNVP from `config`; keys (defaults):

  num_couplings (8): affine coupling layers, masks alternating halves;
  hidden_sizes ((64, 64)): hidden widths of each coupling network;
  activation ('relu'): hidden activation;
  max_log_scale (3.0): soft bound on each coupling's log-scale.
  """
  if len(event_shape) != 1:
    raise errors.UserError(f'RealNVP models flat vectors; got event shape {event_shape}.')
  if conditions:
    raise errors.UserError(
        f'RealNVP takes no conditions ({", ".join(conditions)}): class labels work with the '
        'made and pixelcnn models (--config.model.name).'
    )
  return RealNVP(
      event_shape[0],
      num_couplings=config.get('num_couplings', 8),
      hidden_sizes=tuple(config.get('hidden_sizes', (64, 64))),
      conditional=conditional,
      activation=config.get('activation', 'relu'),
      max_log_scale=config.get('max_log_scale', 3.0),
      name='realnvp_conditional' if conditional else 'realnvp',
  )
