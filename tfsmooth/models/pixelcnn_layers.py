"""Layer primitives of PixelCNN++ (Salimans et al., 2017) as Keras 3 layers.

Pixels are ordered in raster order (rows top to bottom, columns left to right). Causality
comes from where the convolutions look, not from masks:

  * a down-shifted convolution (kernel kh x kw, input zero-padded by kh - 1 rows on top and
    (kw - 1) / 2 columns on each side) makes output (i, j) see input rows <= i only;
  * a down-right-shifted convolution (kernel kh x kw, padded kh - 1 rows on top and kw - 1
    columns on the left) makes output (i, j) see rows <= i and, within them, columns <= j;
  * `down_shift` / `right_shift` move a feature map one row down / one column right, so the
    first layer sees strictly earlier pixels;
  * the transposed (upsampling) versions keep the same geometry: full transposed convolution,
    then the crop that undoes the padding above.

Convolutions are weight-normalised (Salimans & Kingma, 2016): W = g V / ||V|| per output
channel. g starts at `init_scale`, so with unit-variance inputs an output starts with variance
about init_scale^2: the data-independent counterpart of PixelCNN++'s data-dependent init.

Gated resnet block (with optional auxiliary input a, projected by a 1x1 "network in network",
and optional per-image context vector h, e.g. a class embedding, projected linearly: the
conditional PixelCNN of van den Oord et al. 2016, as openai/pixel-cnn's gated_resnet(h=...)):

  c = conv1(concat_elu(x)) [+ nin(concat_elu(a))]           (the hidden map)
  [u, v] = conv2(dropout(concat_elu(c))) [+ W h];  out = x + u * sigmoid(v)
"""

import keras
import tensorflow as tf


def concat_elu(x):
  """elu([x, -x]) along channels: keeps both signs, doubles the channels."""
  return tf.nn.elu(tf.concat([x, -x], axis=-1))


def gate(x, h):
  """x + u * sigmoid(v) for [u, v] = h split along channels: a gated resnet's output."""
  value, gate_logit = tf.split(h, 2, axis=-1)
  return x + value * tf.sigmoid(gate_logit)


def down_shift(x):
  """Shifts a [B, H, W, C] map one row down (zeros enter at the top)."""
  return tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


def right_shift(x):
  """Shifts a [B, H, W, C] map one column right (zeros enter on the left)."""
  return tf.pad(x, [[0, 0], [0, 0], [1, 0], [0, 0]])[:, :, :-1]


class Conv2D(keras.layers.Layer):
  """Weight-normalised 'valid' 2-D convolution, or its full transpose, plus a bias.

  Args:
    filters: output channels.
    kernel_size: (kh, kw).
    strides: stride (the same along both axes).
    transpose: a transposed convolution of output size [H s + kh - 1, W s + kw - 1].
    init_scale: initial g, the norm of each output channel's weights.
  """

  def __init__(
      self, filters, kernel_size=(1, 1), strides=1, transpose=False, init_scale=1.0, **kwargs
  ):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = tuple(int(k) for k in kernel_size)
    self.strides = int(strides)
    self.transpose = bool(transpose)
    self.init_scale = float(init_scale)

  def build(self, input_shape):
    kh, kw = self.kernel_size
    channels = int(input_shape[-1])
    shape = (kh, kw, self.filters, channels) if self.transpose else (kh, kw, channels, self.filters)
    self.v = self.add_weight(
        shape=shape, initializer=keras.initializers.RandomNormal(stddev=0.05), name='v'
    )
    self.g = self.add_weight(
        shape=(self.filters,), initializer=keras.initializers.Constant(self.init_scale), name='g'
    )
    self.b = self.add_weight(shape=(self.filters,), initializer='zeros', name='b')

  def kernel(self):
    """g V / ||V||, the norm taken per output channel."""
    if self.transpose:
      norm = tf.sqrt(tf.reduce_sum(tf.square(self.v), axis=(0, 1, 3), keepdims=True))
      return self.v * (tf.reshape(self.g, (1, 1, -1, 1)) / norm)
    return self.v * (self.g / tf.sqrt(tf.reduce_sum(tf.square(self.v), axis=(0, 1, 2))))

  def call(self, x):
    return self.convolve(x, self.kernel())

  def convolve(self, x, kernel):
    """The convolution of x with a given `kernel` (e.g. `kernel()` computed once), plus bias."""
    if self.transpose:
      out_shape = [
          tf.shape(x)[0],
          x.shape[1] * self.strides + self.kernel_size[0] - 1,
          x.shape[2] * self.strides + self.kernel_size[1] - 1,
          self.filters,
      ]
      y = tf.nn.conv2d_transpose(x, kernel, out_shape, self.strides, padding='VALID')
    else:
      y = tf.nn.conv2d(x, kernel, self.strides, padding='VALID')
    return y + self.b


class DownShiftedConv2D(Conv2D):
  """Output (i, j) sees input rows <= i (columns j +- (kw - 1) / 2 at stride 1)."""

  def __init__(self, filters, kernel_size=(2, 3), strides=1, **kwargs):
    super().__init__(filters, kernel_size, strides, **kwargs)

  @property
  def column_padding(self):
    """Zero columns (left, right) of the input."""
    return ((self.kernel_size[1] - 1) // 2,) * 2

  def call(self, x):
    return super().call(
        tf.pad(x, [[0, 0], [self.kernel_size[0] - 1, 0], self.column_padding, [0, 0]])
    )


class DownRightShiftedConv2D(Conv2D):
  """Output (i, j) sees input rows <= i and columns <= j."""

  def __init__(self, filters, kernel_size=(2, 2), strides=1, **kwargs):
    super().__init__(filters, kernel_size, strides, **kwargs)

  @property
  def column_padding(self):
    """Zero columns (left, right) of the input."""
    return (self.kernel_size[1] - 1, 0)

  def call(self, x):
    return super().call(
        tf.pad(x, [[0, 0], [self.kernel_size[0] - 1, 0], self.column_padding, [0, 0]])
    )


class DownShiftedConv2DTranspose(Conv2D):
  """Upsampling counterpart of `DownShiftedConv2D`: [H, W] -> [H s, W s]."""

  def __init__(self, filters, kernel_size=(2, 3), strides=2, **kwargs):
    super().__init__(filters, kernel_size, strides, transpose=True, **kwargs)

  def convolve(self, x, kernel):
    height, width = x.shape[1] * self.strides, x.shape[2] * self.strides
    left = (self.kernel_size[1] - 1) // 2
    return super().convolve(x, kernel)[:, :height, left : left + width]


class DownRightShiftedConv2DTranspose(Conv2D):
  """Upsampling counterpart of `DownRightShiftedConv2D`: [H, W] -> [H s, W s]."""

  def __init__(self, filters, kernel_size=(2, 2), strides=2, **kwargs):
    super().__init__(filters, kernel_size, strides, transpose=True, **kwargs)

  def convolve(self, x, kernel):
    height, width = x.shape[1] * self.strides, x.shape[2] * self.strides
    return super().convolve(x, kernel)[:, :height, :width]


class GatedResnet(keras.layers.Layer):
  """x + gate(conv(concat_elu(x)) [+ nin(concat_elu(a))]): the PixelCNN++ residual block.

  Args:
    filters: channels of x (and of the output).
    conv: the shifted convolution class (`DownShiftedConv2D` or `DownRightShiftedConv2D`).
    dropout: dropout rate on the hidden activation (active when training).
    auxiliary: whether the block takes an auxiliary input a (a skip connection).
    contextual: whether the block takes a context vector h [B, E] (e.g. a class embedding),
      added through `context_projection` before the gate.
  """

  def __init__(self, filters, conv, dropout=0.0, auxiliary=False, contextual=False, **kwargs):
    super().__init__(**kwargs)
    self.conv1 = conv(filters, name='conv1')
    self.nin = Conv2D(filters, name='nin') if auxiliary else None
    self.dropout = keras.layers.Dropout(dropout) if dropout > 0 else None
    self.conv2 = conv(2 * filters, init_scale=0.1, name='conv2')
    self.context_projection = (
        keras.layers.Dense(
            2 * filters,
            use_bias=False,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.05),
            name='context',
        )
        if contextual
        else None
    )

  def call(self, x, a=None, context=None, training=None, return_hidden=False):
    """The block's output; with return_hidden, (output, hidden map c). `context`: h [B, E]."""
    c = self.conv1(concat_elu(x))
    if a is not None:
      c = c + self.nin(concat_elu(a))
    h = concat_elu(c)
    if self.dropout is not None:
      h = self.dropout(h, training=training)
    pre_gate = self.conv2(h)
    if context is not None:
      pre_gate = pre_gate + self.context_projection(context)[:, None, None, :]
    out = gate(x, pre_gate)
    return (out, c) if return_hidden else out
