"""Fast PixelCNN++ sampling with cached activations (Ramachandran et al., 2017).

The naive sampler runs the whole network once per pixel. This one computes every activation
once, at the first step at which its inputs are known, and keeps, per convolution, a window
of the two input rows it reads (its zero padding included):

  * the u stream (down-shifted convs: output row r reads input rows r - 1, r) advances a row
    at a time, at the start of each image row, from row windows [B, 2, W + pad, C];
  * the ul stream (down-right-shifted convs: output (r, c) reads inputs r - 1 .. r,
    c - 1 .. c) advances a pixel at a time, writing each input into the current row of a pixel
    window [2, W + pad, B, C] (which becomes the previous row when the next row starts);
  * resolution level l (H / 2^l x W / 2^l) advances at image rows (u) and pixels (ul) whose
    coordinates are divisible by 2^l; its stride-2 conv reads the level l - 1 window, which
    then holds rows 2r - 1, 2r (columns 2c - 1, 2c);
  * transposed convs write ahead: level l row r (pixel (r, c)) gives level l - 1 rows 2r,
    2r + 1 (and columns 2c, 2c + 1), kept until the finer level reads them;
  * where the network shifts (u_in and ul_in_above down, ul_in_left right), the first row
    (column) gets zeros, not the convolution's bias.

A contextual network's per-image vector h (class labels) enters every gated resnet as one
projection per block, computed once per image and added before the gate at every row and pixel.

With known rows (x~ stacked above x, or the top of an image to complete) the network runs once
on them; every window starts from the rows the loop would have left in it, and only the unknown
pixels are generated. Output pixel (i, j) is the naive network's, up to float rounding.
"""

import tensorflow as tf

from tfsmooth.models import pixelcnn_layers as layers

LEVELS = 3


def _row(maps, r):
  """Row r (clipped to the map) of maps [B, H, W, C]; zeros for r < 0, the padding above."""
  row = tf.gather(maps, tf.clip_by_value(r, 0, maps.shape[1] - 1), axis=1)
  return row * tf.cast(r >= 0, row.dtype)


def _push(window, row, padding):
  """Row window [prev, cur] -> [cur, row], row [B, W, C] zero-padded by (left, right)."""
  return tf.stack([window[:, 1], tf.pad(row, [[0, 0], padding, [0, 0]])], axis=1)


def _put(window, column, value):
  """Writes value [B, C] at `column` of a pixel window's current row."""
  return tf.tensor_scatter_nd_update(window, tf.reshape(tf.stack([1, column]), (1, 2)), value[None])


def _shift(window):
  """A pixel window's current row becomes its previous one; the new current row is
  overwritten, column by column, before it is read."""
  return tf.stack([window[1], window[1]])


class CachedSampler:
  """Samples a `PixelCNNNetwork` pixel by pixel, computing each activation once.

  Args:
    network: the (built) `PixelCNNNetwork`.
    head: the pixel head class (`from_network_output`, `sample_from_uniform`).
    channels: C, the image channels.
  """

  def __init__(self, network, head, channels):
    self._net = network
    self._head = head
    self._channels = channels
    self._projections = {}
    r = network.nr_resnet
    down_start = {2: 0, 1: r, 0: 2 * r + 1}
    self._up = {
        level: (
            network.up_u[level * r : (level + 1) * r],
            network.up_ul[level * r : (level + 1) * r],
        )
        for level in range(LEVELS)
    }
    self._down = {
        level: (
            network.down_u[down_start[level] : down_start[level] + r + (level < 2)],
            network.down_ul[down_start[level] : down_start[level] + r + (level < 2)],
        )
        for level in range(LEVELS)
    }

  def _convs(self):
    """Every convolution of the network."""
    net = self._net
    blocks = net.up_u + net.up_ul + net.down_u + net.down_ul
    return (
        [net.u_in, net.ul_in_above, net.ul_in_left, net.out]
        + net.u_downsample
        + net.ul_downsample
        + net.u_upsample
        + net.ul_upsample
        + [conv for b in blocks for conv in (b.conv1, b.conv2, b.nin) if conv is not None]
    )

  def _windows(self, level):
    """(key, conv reading it, source map in the network's activations, is pixel window)."""
    net = self._net
    for stream, pixel in ((0, False), (1, True)):
      for block in self._up[level][stream] + self._down[level][stream]:
        yield block.name + '.in', block.conv1, (block.name, 0), pixel
        yield block.name + '.hidden', block.conv2, (block.name, 1), pixel
      if level < LEVELS - 1:
        down = (net.u_downsample, net.ul_downsample)[stream][level]
        yield down.name, down, (down.name, None), pixel

  def _upsampled(self, level):
    """The transposed convs that write level `level` ahead: (u one, ul one)."""
    return self._net.u_upsample[1 - level], self._net.ul_upsample[1 - level]

  def _start(self, x, start, context):
    """The cache before net row `start` of x [B, H', W, C] (rows < start known)."""
    net = self._net
    batch, width = tf.shape(x)[0], x.shape[2]
    known = tf.get_static_value(start) != 0
    maps = None
    if known:
      maps = net(x, context=context, training=False, return_activations=True)[1]

    def rows(name, index, level, r, channels):
      """Rows r (list) of a recorded map at `level`, [B, len(r), W_l, C]."""
      if maps is None:
        return tf.zeros([batch, len(r), width >> level, channels])
      source = maps[name] if index is None else maps[name][index]
      return tf.stack([_row(source, i) for i in r], axis=1)

    f = net.u_in.filters
    x1 = rows('x', None, 0, [start - 2, start - 1], self._channels + 1)
    s = {
        'x1': tf.transpose(tf.pad(x1, [[0, 0], [0, 0], [1, 1], [0, 0]]), (1, 2, 0, 3)),
        'above': tf.zeros([batch, width, f]),
    }
    for level in range(LEVELS):
      last = (start + (1 << level) - 1) // (1 << level) - 1  # last level row before start
      for key, conv, (name, index), pixel in self._windows(level):
        cur = tf.pad(
            rows(name, index, level, [last], f), [[0, 0], [0, 0], conv.column_padding, [0, 0]]
        )
        window = tf.concat([cur, cur], axis=1)
        s[key] = tf.transpose(window, (1, 2, 0, 3)) if pixel else window
      for block in self._up[level][0] + self._down[level][0]:
        s[block.name + '.out'] = tf.zeros([batch, width >> level, f])
      if level < LEVELS - 1:
        pair = 2 * ((last + 1) // 2)  # the level row the loop reads next, and its sibling
        u_up, ul_up = self._upsampled(level)
        s[u_up.name] = rows(u_up.name, None, level, [pair, pair + 1], f)
        s[ul_up.name] = tf.transpose(
            rows(ul_up.name, None, level, [pair, pair + 1], f), (1, 2, 0, 3)
        )
    return s

  def _rows(self, kernels, level, r, s):
    """Level row r of the u stream (and, for even r, of the next level), pixel windows shifted."""
    net, s = self._net, dict(s)
    for key, _, _, pixel in self._windows(level):
      if pixel:
        s[key] = _shift(s[key])
    if level == 0:
      x1 = tf.transpose(s['x1'], (2, 0, 1, 3))  # image rows r - 2, r - 1
      first = tf.cast(r > 0, x1.dtype)
      u = net.u_in.convolve(x1, kernels[id(net.u_in)])[:, 0] * first
      s['above'] = net.ul_in_above.convolve(x1[:, 1:], kernels[id(net.ul_in_above)])[:, 0] * first
      s['x1'] = _shift(s['x1'])
    else:
      down = net.u_downsample[level - 1]
      u = down.convolve(s[down.name], kernels[id(down)])[:, 0]
    skips = [u]
    for block in self._up[level][0]:
      u = self._block_row(kernels, block, u, None, s)
      skips.append(u)
    if level < LEVELS - 1:
      down = net.u_downsample[level]
      s[down.name] = _push(s[down.name], u, down.column_padding)
      s = tf.cond(r % 2 == 0, lambda: self._rows(kernels, level + 1, r // 2, s), lambda: s)
      u = s[self._upsampled(level)[0].name][:, r % 2]
    for j, block in enumerate(self._down[level][0]):
      u = self._block_row(kernels, block, u, skips[-2 - j if level == 2 else -1 - j], s)
    if level > 0:
      up = self._upsampled(level - 1)[0]
      s[up.name] = up.convolve(u[:, None], kernels[id(up)])
    return s

  def _block_row(self, kernels, block, x, a, s):
    """A gated resnet's output row from input row x (and auxiliary row a); updates s."""
    padding = block.conv1.column_padding
    s[block.name + '.in'] = _push(s[block.name + '.in'], x, padding)
    c = block.conv1.convolve(layers.concat_elu(s[block.name + '.in']), kernels[id(block.conv1)])[
        :, 0
    ]
    if a is not None:
      c += self._nin(kernels, block.nin, a)
    s[block.name + '.hidden'] = _push(s[block.name + '.hidden'], c, padding)
    pre_gate = block.conv2.convolve(
        layers.concat_elu(s[block.name + '.hidden']), kernels[id(block.conv2)]
    )[:, 0]
    if block.name in self._projections:
      pre_gate += self._projections[block.name][:, None, :]
    out = layers.gate(x, pre_gate)
    s[block.name + '.out'] = out
    return out

  def _nin(self, kernels, layer, a):
    """A 1x1 conv of concat_elu(a), a [..., C]."""
    kernel = kernels[id(layer)]
    return tf.tensordot(layers.concat_elu(a), kernel[0, 0], 1) + layer.b

  def _pixel_conv(self, kernels, layer, window, column, elu=True):
    """A 2-row conv at one position: window columns [column, column + kw) -> [B, filters]."""
    kernel = kernels[id(layer)]
    patch = tf.slice(window, tf.stack([0, column, 0, 0]), [-1, layer.kernel_size[1], -1, -1])
    patch = layers.concat_elu(patch) if elu else patch
    patch = tf.reshape(tf.transpose(patch, (2, 0, 1, 3)), (tf.shape(patch)[2], -1))
    return tf.matmul(patch, tf.reshape(kernel, (-1, kernel.shape[-1]))) + layer.b

  def _block_pixel(self, kernels, block, x, a, s, column):
    """A gated resnet's output at `column` from input x [B, F] and auxiliary a; updates s."""
    write = column + block.conv1.column_padding[0]
    s[block.name + '.in'] = _put(s[block.name + '.in'], write, x)
    c = self._pixel_conv(kernels, block.conv1, s[block.name + '.in'], column)
    c += self._nin(kernels, block.nin, a)
    s[block.name + '.hidden'] = _put(s[block.name + '.hidden'], write, c)
    pre_gate = self._pixel_conv(kernels, block.conv2, s[block.name + '.hidden'], column)
    if block.name in self._projections:
      pre_gate += self._projections[block.name]
    return layers.gate(x, pre_gate)

  def _pixel(self, kernels, level, r, c, s):
    """Level pixel (r, c) of the ul stream (and, for even r, c, of the next level): (s, ul)."""
    net, s = self._net, dict(s)
    if level == 0:
      left = self._pixel_conv(kernels, net.ul_in_left, s['x1'], c, elu=False)
      ul = s['above'][:, c] + left * tf.cast(c > 0, left.dtype)
    else:
      down = net.ul_downsample[level - 1]
      ul = self._pixel_conv(kernels, down, s[down.name], 2 * c, elu=False)
    skips = [ul]
    for block, u_block in zip(self._up[level][1], self._up[level][0]):
      ul = self._block_pixel(kernels, block, ul, s[u_block.name + '.out'][:, c], s, c)
      skips.append(ul)
    if level < LEVELS - 1:
      down = net.ul_downsample[level]
      s[down.name] = _put(s[down.name], c + down.column_padding[0], ul)
      s = tf.cond(
          (r % 2 == 0) & (c % 2 == 0),
          lambda: self._pixel(kernels, level + 1, r // 2, c // 2, s)[0],
          lambda: s,
      )
      ul = s[self._upsampled(level)[1].name][r % 2, c]
    for j, (block, u_block) in enumerate(zip(self._down[level][1], self._down[level][0])):
      skip = skips[-2 - j if level == 2 else -1 - j]
      a = tf.concat([s[u_block.name + '.out'][:, c], skip], axis=-1)
      ul = self._block_pixel(kernels, block, ul, a, s, c)
    if level > 0:
      up = self._upsampled(level - 1)[1]
      square = up.convolve(ul[:, None, None], kernels[id(up)])  # [B, 2, 2, F]
      index = tf.stack([tf.repeat([0, 1], 2), tf.tile([2 * c, 2 * c + 1], [2])], axis=1)
      s[up.name] = tf.tensor_scatter_nd_update(
          s[up.name], index, tf.reshape(tf.transpose(square, (1, 2, 0, 3)), (4, -1, up.filters))
      )
    return s, ul

  @tf.autograph.experimental.do_not_convert
  def complete(self, x, start, u, context=None):
    """Net input x [B, H', W, C] with rows < start known (start a scalar or one per row, [B]);
    the last H rows drawn from noise u [B, H, W, K + C] in raster order, a row's known pixels
    kept; `context` h [B, E] of a contextual network. Returns those rows, [B, H, W, C]."""
    net, channels = self._net, self._channels
    height, width = u.shape[1], x.shape[2]
    offset = x.shape[1] - height
    kernels = {id(conv): conv.kernel() for conv in self._convs()}
    blocks = net.up_u + net.up_ul + net.down_u + net.down_ul
    self._projections = (  # each block's projection of h, [B, 2F]: the same at every pixel
        {} if context is None else {b.name: b.context_projection(context) for b in blocks}
    )
    start = tf.convert_to_tensor(start, tf.int32)
    static = tf.get_static_value(start)  # a constant start (0: plain sampling) stays static,
    first = tf.reduce_min(start) if static is None else int(static.min())  # so no net pass
    known_until = tf.broadcast_to(start, tf.shape(x)[:1])[:, None] * width
    state = self._start(x, first, context)
    state['x'] = tf.transpose(tf.reshape(x[:, offset:], (-1, height * width, channels)), (1, 0, 2))
    ones = tf.ones_like(u[:, 0, 0, :1])

    def step(i, s):
      p, q = i // width, i % width
      s = tf.cond(tf.equal(q, 0), lambda: self._rows(kernels, 0, p, s), lambda: s)
      s, ul = self._pixel(kernels, 0, p, q, s)
      params = tf.matmul(tf.nn.elu(ul), kernels[id(net.out)][0, 0]) + net.out.b
      pixel = self._head.from_network_output(params, channels).sample_from_uniform(
          u[:, p - offset, q]
      )
      pixel = tf.where(i < known_until, s['x'][i - offset * width], pixel)
      s['x1'] = _put(s['x1'], q + 1, tf.concat([pixel, ones], axis=-1))
      s['x'] = tf.tensor_scatter_nd_update(s['x'], [[i - offset * width]], pixel[None])
      return i + 1, s

    _, state = tf.while_loop(
        lambda i, _: i < (offset + height) * width, step, (first * width, state)
    )
    return tf.reshape(tf.transpose(state['x'], (1, 0, 2)), (-1, height, width, channels))
