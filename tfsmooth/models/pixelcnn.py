"""PixelCNN++ (Salimans et al., 2017) for p(x~) and the stacked p(x | x~) of Meng et al. (2021).

For an H x W x C image in raster order,

  p(x) = prod_ij p(x_ij | x_<ij),    p(x_ij | x_<ij) = sum_k pi_k prod_c f(x_ijc; mu_kc, s_kc),
  mu_kc = m_kc + sum_{c' < c} a_kcc' x_ijc',

with (pi, m, log s, a) read off the network output at pixel ij: a = tanh(.) is PixelCNN++'s
channel coupling (green's mean linear in red, blue's in red and green), log s is floored at -7.
The pixel head f is one of:

  * `LogisticMixture`: the logistic density, for smoothed, unbounded x~;
  * `DiscretizedLogisticMixture`: the logistic mass of the 8-bit bin of x in [-1, 1] (centres
    k / 127.5 - 1, half-width 1/255); the bins at -1 and 1 reach to -inf and +inf, and a bin
    whose mass is below 1e-5 gets density-at-centre times bin width instead.

Conditional p(x | x~) (paper App. C.1): the network reads [x~; x] stacked along height
(2H x W), so every pixel of x comes after all of x~; only the bottom half is scored.

Sampling draws all randomness up front from the seed, per pixel K uniforms (Gumbel-max choice
of the component) and C uniforms (logistic inverse CDFs, channel by channel), so pixel ij is a
function of x_<ij and its own noise only. Two samplers give the same draws: 'cached' (the
default, `pixelcnn_cached`: every activation computed once) and 'naive' (the reference: the
whole network once per pixel, inside one `tf.while_loop`).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfsmooth.models import base
from tfsmooth.models import context
from tfsmooth.models import pixelcnn_cached
from tfsmooth.models import pixelcnn_layers as layers

tfd = tfp.distributions

MIN_LOG_SCALE = -7.0
BIN_HALF_WIDTH = 1.0 / 255.0
MIN_BIN_MASS = 1e-5


def num_outputs(num_channels, num_mixtures):
  """Network outputs per pixel: per component 1 logit, C means, C log-scales, C(C-1)/2 couplings."""
  return num_mixtures * (1 + 2 * num_channels + num_channels * (num_channels - 1) // 2)


def _coupling(coeff, values, c):
  """sum_{c' < c} a_cc' x_c' with a_cc' = coeff(index of the pair (c, c')), x_c' = values[c']."""
  return sum(coeff(c * (c - 1) // 2 + i) * values[i] for i in range(c))


class LogisticMixture(tfd.Distribution):
  """A K-component logistic mixture over one pixel's C channels, with channel coupling.

  PixelCNN++'s pixel head [1] with the logistic density in place of the 8-bit bins: the head of
  p(x~) for smoothed, unbounded x~ in Meng et al. [2]. Batch shape: the leading dimensions of
  the parameters; event shape [C].

  #### Mathematical Details

    p(x) = sum_k pi_k prod_c Logistic(x_c; mu_kc, s_kc),    pi = softmax(logits),
    mu_kc = m_kc + sum_{c' < c} a_kcc' x_c',    s_kc = exp(max(log_scales_kc, -7)),

  where Logistic(x; mu, s) = sigmoid'((x - mu) / s) / s: channel c's mean is linear in the
  channels before it (green in red, blue in red and green). `sample` picks the component by
  Gumbel-max and draws the channels in order by inverse CDFs, K + C uniforms per pixel
  (`sample_from_uniform`).

  Args:
    logits: [..., K] mixture logits.
    locs: [..., C, K] means m before coupling.
    log_scales: [..., C, K] log s (floored at `MIN_LOG_SCALE` when used).
    coeffs: [..., C(C-1)/2, K] couplings a for channel pairs (1, 0), (2, 0), (2, 1), ...

  #### Examples

  One channel: a plain mixture of logistics.

  >>> from tfsmooth.models import pixelcnn
  >>> tfd = tfp.distributions
  >>> logits, locs, log_scales = [0.3, -0.2], [[-1.0, 1.0]], [[-0.5, 0.0]]
  >>> head = pixelcnn.LogisticMixture(logits, locs, log_scales, tf.zeros([0, 2]))
  >>> head.batch_shape, head.event_shape
  (TensorShape([]), TensorShape([1]))
  >>> same = tfd.MixtureSameFamily(
  ...     tfd.Categorical(logits=logits), tfd.Logistic(locs[0], tf.exp(log_scales[0])))
  >>> x = tf.constant([[0.2], [-1.5]])
  >>> bool(np.allclose(head.log_prob(x), same.log_prob(x[:, 0])))
  True
  >>> head.sample(3, seed=(1, 2)).shape
  TensorShape([3, 1])

  Two channels, one component: the second channel's mean moves with the first (a = 0.5).

  >>> head = pixelcnn.LogisticMixture([0.0], [[0.1], [-0.2]], [[0.0], [-1.0]], [[0.5]])
  >>> by_hand = (tfd.Logistic(0.1, 1.0).log_prob(0.4)
  ...            + tfd.Logistic(-0.2 + 0.5 * 0.4, tf.exp(-1.0)).log_prob(0.3))
  >>> bool(np.allclose(head.log_prob([0.4, 0.3]), by_hand))
  True

  #### References

  [1]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
       PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. ICLR 2017.
       https://arxiv.org/abs/1701.05517
  [2]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  """

  def __init__(
      self, logits, locs, log_scales, coeffs, validate_args=False, allow_nan_stats=True, name=None
  ):
    parameters = dict(locals())
    with tf.name_scope(name or type(self).__name__) as name:
      self._logits = tf.convert_to_tensor(logits, name='logits')
      dtype = self._logits.dtype
      self._locs = tf.convert_to_tensor(locs, dtype, name='locs')
      self._log_scales = tf.convert_to_tensor(log_scales, dtype, name='log_scales')
      self._coeffs = tf.convert_to_tensor(coeffs, dtype, name='coeffs')
      super().__init__(
          dtype=dtype,
          reparameterization_type=tfd.NOT_REPARAMETERIZED,
          validate_args=validate_args,
          allow_nan_stats=allow_nan_stats,
          parameters=parameters,
          name=name,
      )

  @classmethod
  def _parameter_properties(cls, dtype, num_classes=None):
    return dict(
        logits=tfp.util.ParameterProperties(event_ndims=1),
        locs=tfp.util.ParameterProperties(event_ndims=2),
        log_scales=tfp.util.ParameterProperties(event_ndims=2),
        coeffs=tfp.util.ParameterProperties(event_ndims=2),
    )

  @classmethod
  def from_network_output(cls, params, num_channels):
    """Splits [..., num_outputs(C, K)] network outputs into the head's parameters."""
    c = num_channels
    k = params.shape[-1] // num_outputs(c, 1)
    rest = tf.reshape(
        params[..., k:],  # static sizes, so that unknown batch sizes trace
        tf.concat([tf.shape(params)[:-1], [params.shape[-1] // k - 1, k]], 0),
    )
    return cls(
        params[..., :k], rest[..., :c, :], rest[..., c : 2 * c, :], tf.tanh(rest[..., 2 * c :, :])
    )

  logits = property(lambda self: self._logits)
  locs = property(lambda self: self._locs)
  log_scales = property(lambda self: self._log_scales)
  coeffs = property(lambda self: self._coeffs)

  @property
  def num_channels(self):
    return int(self._locs.shape[-2])

  @property
  def num_mixtures(self):
    return int(self._logits.shape[-1])

  @property
  def noise_depth(self):
    """Uniforms consumed per pixel by `sample_from_uniform`: K + C."""
    return self.num_mixtures + self.num_channels

  def _event_shape(self):
    return tf.TensorShape([self.num_channels])

  def _event_shape_tensor(self):
    return tf.constant([self.num_channels], tf.int32)

  def _channel_log_prob(self, x, locs, log_scales):
    """log f(x; mu, s) of one channel, x [..., 1] and mu, log s [..., K]: the logistic density."""
    z = (x - locs) * tf.exp(-log_scales)
    return -z - log_scales - 2.0 * tf.nn.softplus(-z)

  def _quantize(self, x):
    return x

  def _log_prob(self, x):
    x = tf.convert_to_tensor(x, self.dtype)
    columns = [x[..., c, None] for c in range(self.num_channels)]
    log_scales = tf.maximum(self._log_scales, MIN_LOG_SCALE)
    coeff = lambda i: self._coeffs[..., i, :]  # noqa: E731
    per_component = sum(
        self._channel_log_prob(
            columns[c], self._locs[..., c, :] + _coupling(coeff, columns, c), log_scales[..., c, :]
        )
        for c in range(self.num_channels)
    )
    return tf.reduce_logsumexp(tf.nn.log_softmax(self._logits) + per_component, axis=-1)

  def sample_from_uniform(self, u):
    """The sample determined by noise u [..., K + C] of U(0, 1) draws: [..., C].

    The component is argmax_k(logit_k - log(-log u_k)); then channel by channel,
    x_c = quantize(mu_kc(x_<c) + s_kc logit(u_{K+c})).
    """
    k, c = self.num_mixtures, self.num_channels
    u = tf.convert_to_tensor(u, self.dtype)
    choice = tf.one_hot(
        tf.argmax(self._logits - tf.math.log(-tf.math.log(u[..., :k])), axis=-1),
        k,
        dtype=self.dtype,
    )
    pick = lambda p: tf.reduce_sum(p * choice[..., None, :], axis=-1)  # noqa: E731
    locs, scales = pick(self._locs), tf.exp(pick(tf.maximum(self._log_scales, MIN_LOG_SCALE)))
    coeffs = pick(self._coeffs)
    values = []
    for j in range(c):
      noise = u[..., k + j]
      mean = locs[..., j] + _coupling(lambda i: coeffs[..., i], values, j)
      logistic = tf.math.log(noise) - tf.math.log1p(-noise)
      values.append(self._quantize(mean + scales[..., j] * logistic))
    return tf.stack(values, axis=-1)

  def _sample_n(self, n, seed=None):
    shape = tf.concat([[n], self.batch_shape_tensor(), [self.noise_depth]], 0)
    return self.sample_from_uniform(_uniform(shape, seed, self.dtype))


class DiscretizedLogisticMixture(LogisticMixture):
  """`LogisticMixture` discretised to 8-bit values x in {k / 127.5 - 1 : k = 0..255}.

  PixelCNN++'s likelihood [1] for 8-bit images rescaled to [-1, 1]: the head of a baseline and
  of p(x | x~) in Meng et al. [2].

  #### Mathematical Details

  `LogisticMixture` with each channel's density replaced by the mass of its bin,

    P(x_c | mu, s) = sigmoid((x_c - mu + h) / s) - sigmoid((x_c - mu - h) / s),   h = 1/255,

  with the edge bins at -1 and 1 open to -inf and +inf, so the 256 bins' masses sum to 1; a bin
  whose mass is below 1e-5 gets the density at its centre times 2h instead (a stable log).
  Samples are clipped to [-1, 1] and rounded to the grid.

  #### Examples

  >>> from tfsmooth.models import pixelcnn
  >>> head = pixelcnn.DiscretizedLogisticMixture(
  ...     [0.3, -0.2], [[-0.5, 0.4]], [[-2.0, -3.0]], tf.zeros([0, 2]))
  >>> grid = tf.reshape(tf.range(256, dtype=tf.float32) / 127.5 - 1.0, [256, 1])
  >>> round(float(tf.reduce_sum(tf.exp(head.log_prob(grid)))), 5)
  1.0
  >>> levels = (head.sample(100, seed=(1, 2)) + 1.0) * 127.5
  >>> bool(np.allclose(levels, np.round(levels), atol=1e-3))
  True

  #### References

  [1]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
       PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. ICLR 2017.
       https://arxiv.org/abs/1701.05517
  [2]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  """

  def _channel_log_prob(self, x, locs, log_scales):
    centered = x - locs
    inv_scale = tf.exp(-log_scales)
    plus_in = inv_scale * (centered + BIN_HALF_WIDTH)
    min_in = inv_scale * (centered - BIN_HALF_WIDTH)
    log_cdf_plus = plus_in - tf.nn.softplus(plus_in)
    log_one_minus_cdf_min = -tf.nn.softplus(min_in)
    cdf_delta = tf.sigmoid(plus_in) - tf.sigmoid(min_in)
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * tf.nn.softplus(mid_in)
    log_bin = tf.where(
        cdf_delta > MIN_BIN_MASS,
        tf.math.log(tf.maximum(cdf_delta, 1e-12)),
        log_pdf_mid + np.log(2.0 * BIN_HALF_WIDTH),
    )
    return tf.where(x < -0.999, log_cdf_plus, tf.where(x > 0.999, log_one_minus_cdf_min, log_bin))

  def _quantize(self, x):
    # Times 1/127.5 rather than divided by 127.5: Grappler rewrites the division in graphs,
    # which would make eager and tf.function samples differ in the last bit.
    return tf.round((tf.clip_by_value(x, -1.0, 1.0) + 1.0) * 127.5) * (1.0 / 127.5) - 1.0


HEADS = {'logistic': LogisticMixture, 'discretized_logistic': DiscretizedLogisticMixture}
SAMPLERS = ('cached', 'naive')


def _check_sampler(sampler):
  if sampler not in SAMPLERS:
    raise ValueError(f'Unknown PixelCNN sampler {sampler!r}; choose one of {", ".join(SAMPLERS)}.')


def _uniform(shape, seed, dtype):
  """U(tiny, 1) draws from a stateless seed (anything `tfp.random.sanitize_seed` accepts)."""
  return tf.random.stateless_uniform(
      shape,
      tfp.random.sanitize_seed(seed),
      minval=np.finfo(dtype.as_numpy_dtype).tiny,
      maxval=1.0,
      dtype=dtype,
  )


class PixelCNNNetwork(keras.layers.Layer):
  """The PixelCNN++ network [B, H, W, C] -> [B, H, W, outputs]; output ij sees only x_<ij.

  Two streams, u (pixels above) and ul (above and to the left), go up through resolutions
  H, H/2, H/4 (`nr_resnet` gated resnets each, stride-2 shifted convs between), then back down
  (transposed convs between) with a skip connection from every up-pass output; a 1x1 conv
  (network in network) on elu(ul) gives the outputs. H and W must be divisible by 4.
  """

  def __init__(self, outputs, nr_resnet=5, nr_filters=160, dropout=0.5, contextual=False, **kwargs):
    super().__init__(**kwargs)
    f, down, down_right = nr_filters, layers.DownShiftedConv2D, layers.DownRightShiftedConv2D
    self.nr_resnet = int(nr_resnet)
    self.contextual = bool(contextual)
    self.u_in = down(f, (2, 3), name='u_in')
    self.ul_in_above = down(f, (1, 3), name='ul_in_above')
    self.ul_in_left = down_right(f, (2, 1), name='ul_in_left')

    def blocks(conv, stage, count, auxiliary):
      return [
          layers.GatedResnet(f, conv, dropout, auxiliary, contextual, name=f'{stage}_{i}')
          for i in range(count)
      ]

    self.up_u = blocks(down, 'up_u', 3 * nr_resnet, False)
    self.up_ul = blocks(down_right, 'up_ul', 3 * nr_resnet, True)
    self.u_downsample = [down(f, strides=2, name=f'u_downsample_{i}') for i in range(2)]
    self.ul_downsample = [down_right(f, strides=2, name=f'ul_downsample_{i}') for i in range(2)]
    self.down_u = blocks(down, 'down_u', 3 * nr_resnet + 2, True)
    self.down_ul = blocks(down_right, 'down_ul', 3 * nr_resnet + 2, True)
    self.u_upsample = [
        layers.DownShiftedConv2DTranspose(f, name=f'u_upsample_{i}') for i in range(2)
    ]
    self.ul_upsample = [
        layers.DownRightShiftedConv2DTranspose(f, name=f'ul_upsample_{i}') for i in range(2)
    ]
    self.out = layers.Conv2D(outputs, name='nin_out')

  def call(self, x, context=None, training=None, return_activations=False):
    """The outputs; with return_activations, (outputs, maps) where maps holds what the cached
    sampler starts from: 'x' (the input with its ones channel), for every gated resnet its
    (input, hidden map) and for every down- / upsampling conv its input / output, by name.
    `context`: h [B, E] of a contextual network (class labels), one per image."""
    maps = {}  # filled only when asked for, so that inference frees each map after use

    def block(layer, h, a=None):
      out, hidden = layer(h, a, context, training=training, return_hidden=True)
      if return_activations:
        maps[layer.name] = (h, hidden)
      return out

    x = tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)  # tells image from zero padding
    maps['x'] = x
    us = [layers.down_shift(self.u_in(x))]
    uls = [layers.down_shift(self.ul_in_above(x)) + layers.right_shift(self.ul_in_left(x))]
    for scale in range(3):
      if scale:
        for down, stack in (
            (self.u_downsample[scale - 1], us),
            (self.ul_downsample[scale - 1], uls),
        ):
          if return_activations:
            maps[down.name] = stack[-1]
          stack.append(down(stack[-1]))
      for i in range(scale * self.nr_resnet, (scale + 1) * self.nr_resnet):
        us.append(block(self.up_u[i], us[-1]))
        uls.append(block(self.up_ul[i], uls[-1], us[-1]))
    u, ul = us.pop(), uls.pop()
    index = 0
    for scale in range(3):
      if scale:
        u, ul = self.u_upsample[scale - 1](u), self.ul_upsample[scale - 1](ul)
        maps[self.u_upsample[scale - 1].name], maps[self.ul_upsample[scale - 1].name] = u, ul
      for _ in range(self.nr_resnet + (scale > 0)):
        u = block(self.down_u[index], u, us.pop())
        ul = block(self.down_ul[index], ul, tf.concat([u, uls.pop()], axis=-1))
        index += 1
    out = tf.cast(self.out(tf.nn.elu(ul)), tf.float32)  # float32 under mixed precision
    return (out, maps) if return_activations else out


class PixelCNNDistribution(tfd.Distribution):
  """p(x), or p(x | x~) with x~ stacked above x, over [H, W, C] images.

  The TFP distribution of a causal network's outputs under a pixel head ([1], [2]): `log_prob`
  takes one pass of the network, `sample` and `complete` draw pixel by pixel in raster order
  from per-pixel uniforms that the seed fixes up front.

  #### Mathematical Details

  With the head f (`LogisticMixture` or `DiscretizedLogisticMixture`) and the network's outputs
  theta_ij at pixel ij,

    log p(x) = sum_ij log f(x_ij; theta_ij(x_<ij)),
    log p(x | x~) = sum_ij log f(x_ij; theta_{H+i, j}([x~; x]_<(H+i, j))),

  the second reading the 2H x W image [x~; x] and scoring only its bottom half, so every pixel
  of x is conditioned on all of x~ (Meng et al. [2], App. C.1; a conditioning image as the
  first rows of the context, like the conditioning of [3]).

  Args:
    network: callable [B, H', W, C] -> [B, H', W, num_outputs(C, K)], causal in raster order
      (H' = H, or 2H with conditioning).
    head: the pixel head class, `LogisticMixture` or `DiscretizedLogisticMixture`.
    event_shape: (H, W, C).
    num_mixtures: K.
    conditioning: None, or x~ of shape [N, H, W, C]: then batch shape [N].
    context: None, or the conditions' vector h of a contextual network: [E] (one for every
      image) or [N, E] (one per image: then batch shape [N]).
    training: passed to the network (dropout); None inherits the Keras call context.
      Sampling always runs the network with training=False.
    sampler: 'cached' (a `PixelCNNNetwork` sampled with cached activations) or 'naive' (any
      causal network, run whole once per pixel); both give the same draws.

  #### Examples

  p(x | x~) of a tiny PixelCNN++: one distribution per smoothed image.

  >>> from tfsmooth.models import pixelcnn
  >>> model = pixelcnn.PixelCNN(
  ...     (4, 4, 1), conditional=True, nr_resnet=1, nr_filters=4, nr_logistic_mix=2)
  >>> model.build_variables()
  >>> x = tf.round(tf.random.stateless_uniform([2, 4, 4, 1], (0, 1), 0, 255)) / 127.5 - 1.0
  >>> dist = model.distribution(conditioning=x + 0.1)
  >>> dist.batch_shape, dist.event_shape
  (TensorShape([2]), TensorShape([4, 4, 1]))
  >>> dist.log_prob(x).shape
  TensorShape([2])

  `complete` keeps the rows it is given and draws the rest:

  >>> completed = dist.complete(x, 2, seed=(1, 2))
  >>> bool(np.array_equal(completed[:, :2], x[:, :2]))
  True

  #### References

  [1]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
       PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. ICLR 2017.
       https://arxiv.org/abs/1701.05517
  [2]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  [3]: Aaron van den Oord, Nal Kalchbrenner, Oriol Vinyals, Lasse Espeholt, Alex Graves, Koray
       Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
       https://arxiv.org/abs/1606.05328
  """

  def __init__(
      self,
      network,
      head,
      event_shape,
      num_mixtures,
      conditioning=None,
      training=None,
      sampler='cached',
      context=None,
      validate_args=False,
      name='PixelCNNDistribution',
  ):
    _check_sampler(sampler)
    parameters = dict(locals())
    with tf.name_scope(name) as name:
      self._network = network
      self._head = head
      self._image_shape = tuple(int(d) for d in event_shape)
      self._num_mixtures = int(num_mixtures)
      self._conditioning = (
          None
          if conditioning is None
          else tf.convert_to_tensor(conditioning, tf.float32, name='conditioning')
      )
      self._context = None if context is None else tf.convert_to_tensor(context, tf.float32)
      self._training = training
      self._sampler = sampler
      super().__init__(
          dtype=tf.float32,
          reparameterization_type=tfd.NOT_REPARAMETERIZED,
          validate_args=validate_args,
          allow_nan_stats=True,
          parameters=parameters,
          name=name,
      )

  @property
  def conditioning(self):
    return self._conditioning

  @property
  def noise_depth(self):
    """Uniforms per pixel used by `sample_from_uniform`: K + C."""
    return self._num_mixtures + self._image_shape[-1]

  def _batch_source(self):
    """The parameter that gives the batch shape: conditioning, else a per-image context."""
    if self._conditioning is not None:
      return self._conditioning
    if self._context is not None and self._context.shape.rank == 2:
      return self._context
    return None

  def _batch_shape(self):
    source = self._batch_source()
    return tf.TensorShape([] if source is None else source.shape[:1])

  def _batch_shape_tensor(self):
    source = self._batch_source()
    return tf.constant([], tf.int32) if source is None else tf.shape(source)[:1]

  def _event_shape(self):
    return tf.TensorShape(self._image_shape)

  def _event_shape_tensor(self):
    return tf.constant(self._image_shape, tf.int32)

  def pixel_distributions(self, x, conditioning=None, training=None, context=None):
    """The heads p(x_ij | x_<ij[, x~][, h]) for flat x [B, H, W, C] (context h [B, E]): batch
    shape [B, H, W]."""
    net_in = x if conditioning is None else tf.concat([conditioning, x], axis=1)
    kwargs = {} if context is None else {'context': context}
    if training is not None:
      kwargs['training'] = training
    params = self._network(net_in, **kwargs)
    return self._head.from_network_output(params[:, -self._image_shape[0] :], self._image_shape[-1])

  def _flat(self, x, depth):
    """x [..., H, W, depth] -> (x as [B, H, W, depth], conditioning and context broadcast
    likewise, [...])."""
    leading = tf.shape(x)[:-3]
    flat = tf.reshape(x, (-1,) + self._image_shape[:2] + (depth,))
    c = h = None
    if self._conditioning is not None:
      c = tf.broadcast_to(self._conditioning, tf.concat([leading, self._image_shape], 0))
      c = tf.reshape(c, (-1,) + self._image_shape)
    if self._context is not None:
      dim = self._context.shape[-1]
      h = tf.reshape(tf.broadcast_to(self._context, tf.concat([leading, [dim]], 0)), (-1, dim))
    return flat, c, h, leading

  def _log_prob(self, x):
    x, c, h, leading = self._flat(tf.convert_to_tensor(x, self.dtype), self._image_shape[-1])
    log_probs = self.pixel_distributions(x, c, self._training, h).log_prob(x)
    return tf.reshape(tf.reduce_sum(log_probs, axis=(1, 2)), leading)

  def sample_from_uniform(self, u):
    """The sample determined by noise u [..., H, W, K + C] (leading dims: sample, batch).

    Pixel by pixel in raster order, x_ij = head_ij(x_<ij).sample_from_uniform(u_ij), in a
    `tf.while_loop`.
    """
    u = tf.convert_to_tensor(u, self.dtype)
    return self.complete_from_uniform(tf.zeros_like(u[..., : self._image_shape[-1]]), 0, u)

  @tf.autograph.experimental.do_not_convert
  def complete_from_uniform(self, x_known, num_known_rows, u):
    """x_known's top `num_known_rows` rows, the rest drawn by noise u [..., H, W, K + C].

    x_ij = x_known_ij for i < num_known_rows; then in raster order from the first unknown
    pixel, x_ij = head_ij(x_<ij).sample_from_uniform(u_ij). x_known [..., H, W, C] has the
    leading dims of u; its unknown rows are ignored. num_known_rows is one count, or one per
    image of a batch (x_known [N, H, W, C], counts [N]).
    """
    height, width, channels = self._image_shape
    u, c, h, leading = self._flat(tf.convert_to_tensor(u, self.dtype), self.noise_depth)
    x = tf.reshape(tf.convert_to_tensor(x_known, self.dtype), (-1, height, width, channels))
    pixel = tf.reshape(tf.range(height * width), (height, width, 1))
    rows = tf.convert_to_tensor(num_known_rows, tf.int32)
    known = pixel < tf.reshape(rows * width, [-1, 1, 1, 1])  # [N or 1, H, W, 1]
    x = tf.where(known, x, tf.zeros_like(x))
    if self._sampler == 'cached':
      sampler = pixelcnn_cached.CachedSampler(self._network, self._head, channels)
      x = (
          sampler.complete(x, rows, u, h)
          if c is None
          else sampler.complete(tf.concat([c, x], axis=1), rows + height, u, h)
      )
      return tf.reshape(x, tf.concat([leading, self._image_shape], 0))

    def step(i, x):
      candidates = self.pixel_distributions(x, c, False, h).sample_from_uniform(u)
      return i + 1, tf.where(tf.equal(pixel, i) & ~known, candidates, x)

    _, x = tf.while_loop(lambda i, _: i < height * width, step, (tf.reduce_min(rows) * width, x))
    return tf.reshape(x, tf.concat([leading, self._image_shape], 0))

  def complete(self, x_known, num_known_rows, seed):
    """Completes images x_known [N, H, W, C] below their top `num_known_rows` rows (seeded)."""
    x_known = tf.convert_to_tensor(x_known, self.dtype)
    shape = tf.concat([tf.shape(x_known)[:-1], [self.noise_depth]], 0)
    return self.complete_from_uniform(x_known, num_known_rows, _uniform(shape, seed, self.dtype))

  def _sample_n(self, n, seed=None):
    shape = tf.concat(
        [[n], self.batch_shape_tensor(), self._image_shape[:2], [self.noise_depth]], 0
    )
    return self.sample_from_uniform(_uniform(shape, seed, self.dtype))


class PixelCNN(base.DensityModel):
  """PixelCNN++ density p(x), or p(x | x~) with x~ stacked above x, over H x W x C images.

  The PixelCNN++ network [1] (`PixelCNNNetwork`: gated resnets over two causal streams at three
  resolutions) under a logistic-mixture pixel head, as a `DensityModel` whose `distribution` is
  a `PixelCNNDistribution`. Meng et al. [2] use it for p(x~) (continuous `logistic` head) and
  for p(x | x~) (`discretized_logistic`, with x~ stacked above x).

  #### Mathematical Details

    p(x) = prod_ij sum_k pi_k(x_<ij) prod_c f(x_ijc; mu_kc(x_<ij, x_ij,<c), s_kc(x_<ij)),

  pixels ij in raster order, f the logistic density or the mass of the 8-bit bin of x_ijc
  (`LogisticMixture`, `DiscretizedLogisticMixture`). Conditional (`conditional=True`): the
  network reads [x~; x] (2H x W) and only x is scored, so p(x | x~) = prod_ij p(x_ij | x_<ij, x~).

  Args:
    event_shape: (H, W, C) with H and W divisible by 4.
    conditional: model p(x | x~) (the network sees 2H x W images).
    likelihood: 'logistic' (continuous, for smoothed x~) or 'discretized_logistic' (8-bit x
      rescaled to [-1, 1]).
    nr_resnet: gated resnet blocks per resolution.
    nr_filters: channels of every hidden layer.
    nr_logistic_mix: K mixture components per pixel.
    dropout: dropout rate inside the resnet blocks (when training).
    sampler: 'cached' (fast) or 'naive' (reference), see `PixelCNNDistribution`.

  #### Examples

  A tiny PixelCNN++ of 8-bit 4 x 4 grey images in [-1, 1]:

  >>> from tfsmooth.models import pixelcnn
  >>> model = pixelcnn.PixelCNN((4, 4, 1), nr_resnet=1, nr_filters=4, nr_logistic_mix=2)
  >>> model.build_variables()
  >>> x = tf.round(tf.random.stateless_uniform([2, 4, 4, 1], (0, 1), 0, 255)) / 127.5 - 1.0
  >>> model.log_prob(x).shape
  TensorShape([2])

  Its draws are 8-bit images, row i of `sample_rows` from seeds[i] alone:

  >>> from tfsmooth import seeds
  >>> drawn = model.sample_rows(seeds.rows(0, 'samples', 0, 3))
  >>> drawn.shape
  TensorShape([3, 4, 4, 1])
  >>> levels = (drawn + 1.0) * 127.5
  >>> bool(np.allclose(levels, np.round(levels), atol=1e-3))
  True

  #### References

  [1]: Tim Salimans, Andrej Karpathy, Xi Chen, Diederik P. Kingma. PixelCNN++: Improving the
       PixelCNN with Discretized Logistic Mixture Likelihood and Other Modifications. ICLR 2017.
       https://arxiv.org/abs/1701.05517
  [2]: Chenlin Meng, Jiaming Song, Yang Song, Shengjia Zhao, Stefano Ermon. Improved
       Autoregressive Modeling with Distribution Smoothing. ICLR 2021.
       https://arxiv.org/abs/2103.15089
  [3]: Aaron van den Oord, Nal Kalchbrenner, Oriol Vinyals, Lasse Espeholt, Alex Graves, Koray
       Kavukcuoglu. Conditional Image Generation with PixelCNN Decoders. NeurIPS 2016.
       https://arxiv.org/abs/1606.05328
  """

  def __init__(
      self,
      event_shape,
      conditional=False,
      likelihood='discretized_logistic',
      nr_resnet=5,
      nr_filters=160,
      nr_logistic_mix=10,
      dropout=0.5,
      sampler='cached',
      conditions=None,
      condition_dim=None,
      **kwargs,
  ):
    super().__init__(event_shape, conditional=conditional, **kwargs)
    if len(self.event_shape) != 3 or self.event_shape[0] % 4 or self.event_shape[1] % 4:
      raise ValueError(
          f'PixelCNN++ models [H, W, C] images with H and W divisible by 4; got '
          f'event shape {self.event_shape}.'
      )
    if likelihood not in HEADS:
      raise ValueError(
          f'Unknown PixelCNN++ likelihood {likelihood!r}; choose one of {", ".join(HEADS)}.'
      )
    _check_sampler(sampler)
    self.head = likelihood  # the pixel head: a name in HEADS
    self.sampler = sampler
    self.nr_logistic_mix = int(nr_logistic_mix)
    # Conditions (class labels): their vector h enters every gated resnet before its gate.
    self.conditions = dict(conditions or {})
    self.embed = context.embedding(self.conditions, condition_dim or nr_filters)
    self.network = PixelCNNNetwork(
        num_outputs(self.event_shape[-1], self.nr_logistic_mix),
        nr_resnet,
        nr_filters,
        dropout,
        contextual=self.embed is not None,
        name='network',
    )

  def distribution(self, conditioning=None, training=None, **conditions):
    """`PixelCNNDistribution`; `training` switches dropout (None: from the Keras call context);
    conditions [N] (labels) make its batch shape [N]."""
    return PixelCNNDistribution(
        self.network,
        HEADS[self.head],
        self.event_shape,
        self.nr_logistic_mix,
        conditioning,
        training,
        self.sampler,
        context=self.condition_vector(conditions),
    )

  def complete(self, x_known, num_known_rows, seed, conditioning=None, **conditions):
    """Samples the rows below the top `num_known_rows` of x_known [N, H, W, C], keeping those.

    The bottom rows are drawn from p(x_bottom | x_top) (or p(x_bottom | x_top, x~) with
    conditioning=x~ [N, H, W, C]), pixel by pixel in raster order; known rows come back as given.
    """
    x_known = self.check_events(x_known, 'x_known')
    if isinstance(num_known_rows, int) and not 0 <= num_known_rows <= self.event_shape[0]:
      raise ValueError(
          f'num_known_rows must be in [0, {self.event_shape[0]}] (the image '
          f'height); got {num_known_rows}.'
      )
    return self.distribution(self._check_conditioning(conditioning), **conditions).complete(
        x_known, num_known_rows, seed
    )

  def _row_noise(self, seeds):
    """Noise u [N, H, W, K + C] whose row i is what `sample(1, seeds[i])` would draw."""
    shape = (1,) + self.event_shape[:2] + (self.nr_logistic_mix + self.event_shape[-1],)
    return base.map_rows(
        lambda s: _uniform(shape, s, tf.float32)[0],
        seeds,
        fn_output_signature=tf.TensorSpec(shape[1:], tf.float32),
    )

  def sample_rows(self, seeds, conditioning=None, **conditions):
    """`DensityModel.sample_rows` (row i from seeds[i] alone) in one batched pass."""
    rows = self._row_inputs(seeds, conditioning, conditions)
    return self.distribution(rows.get('conditioning'), **rows['conditions']).sample_from_uniform(
        self._row_noise(seeds)
    )

  def complete_rows(self, x_known, num_known_rows, seeds, conditioning=None, **conditions):
    """`DensityModel.complete_rows` (row i from seeds[i] alone) in one batched pass."""
    x_known = self.check_events(x_known, 'x_known')
    rows = self._row_inputs(x_known, conditioning, conditions)
    return self.distribution(rows.get('conditioning'), **rows['conditions']).complete_from_uniform(
        x_known, num_known_rows, self._row_noise(seeds)
    )


def from_config(config, event_shape, conditional, conditions=None):
  """A `PixelCNN` from `config.{likelihood, nr_resnet, nr_filters, nr_logistic_mix, dropout}`.

  `likelihood` defaults to 'discretized_logistic' for p(x | x~) and to 'logistic' for an
  unconditional model (p(x~)); a baseline on raw 8-bit data must set 'discretized_logistic'.
  """
  default_likelihood = 'discretized_logistic' if conditional else 'logistic'
  return PixelCNN(
      event_shape,
      conditional=conditional,
      likelihood=config.get('likelihood', None) or default_likelihood,
      nr_resnet=config.get('nr_resnet', 5),
      nr_filters=config.get('nr_filters', 160),
      nr_logistic_mix=config.get('nr_logistic_mix', 10),
      dropout=config.get('dropout', 0.5),
      conditions=conditions,
      condition_dim=config.get('condition_dim', None),
      name='pixelcnn_conditional' if conditional else 'pixelcnn',
  )
