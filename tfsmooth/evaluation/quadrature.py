"""Integrals of 1-D densities by numerical quadrature: a pair's exact likelihood, a KL divergence.

A smoothed pair models x through x~: p(x) = int p(x~) p(x | x~) dx~. In one dimension
`log_prob` computes that integral by the trapezoid rule on a grid that follows each x,
x~_j = x + sigma u_j, u_j evenly spaced over [-w, w] (sigma: the kernel's standard deviation),
so h = sigma (u_2 - u_1) and the weights are c_j = h (h / 2 at both ends):

  log p(x) ~ logsumexp_j [log p(x~_j) + log p(x | x~_j) + log c_j].

Mass of p(x~) p(x | x~) farther than w sigma from x is dropped, which can only lower the
result: the window must hold the posterior p(x~ | x), which for a pair trained on smoothed data
lies near q(x~ | x), within a few sigma of x.

`kl_divergence` is KL(p || q) = int p log(p / q) dx of two densities tabulated on an even grid.
"""

import numpy as np
import tensorflow as tf

NUM_POINTS = 401
HALF_WIDTH = 10.0


def log_prob(model, x, num_points=NUM_POINTS, half_width=HALF_WIDTH, chunk=2000):
  """log p(x) of a 1-D pair (`model.prior`, `model.conditional_model`, `model.kernel.sigma`) by
  quadrature over x~ (see the module docstring), float64 [N] for points x [N, 1];
  `chunk` points at a time."""
  u = np.linspace(-half_width, half_width, num_points)
  step = model.kernel.sigma * (u[1] - u[0])
  log_weights = np.log(np.full(num_points, step))
  log_weights[[0, -1]] -= np.log(2.0)
  offsets = tf.constant(model.kernel.sigma * u, tf.float32)

  @tf.function
  def log_joint(points):
    x_tilde = points + offsets[None, :]  # [n, M]
    flat_tilde = tf.reshape(x_tilde, (-1, 1))
    flat_x = tf.reshape(tf.broadcast_to(points, tf.shape(x_tilde)), (-1, 1))
    values = model.prior.log_prob(flat_tilde) + model.conditional_model.log_prob(flat_x, flat_tilde)
    return tf.reshape(values, tf.shape(x_tilde))

  x = np.asarray(x, np.float32).reshape(-1, 1)
  out = [
      log_joint(tf.constant(x[i : i + chunk])).numpy().astype(np.float64)
      for i in range(0, len(x), chunk)
  ]
  joint = np.concatenate(out) + log_weights
  top = joint.max(axis=1, keepdims=True)
  return (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))[:, 0]


def kl_divergence(p, q, grid, floor=1e-12):
  """KL(p || q) of densities p, q tabulated on the even `grid`: the sum of p log(p / q) times the
  grid step over the points where p > `floor` (q floored at 1e-300, so a q that underflows
  gives a large finite KL)."""
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  inside = p > floor
  terms = p[inside] * (np.log(p[inside]) - np.log(np.maximum(q[inside], 1e-300)))
  return float(np.sum(terms) * (grid[1] - grid[0]))
