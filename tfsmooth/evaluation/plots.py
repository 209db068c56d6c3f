"""PNG figures: sample scatter panels, learned densities (heat maps in 2-D, curves in 1-D) and
image grids."""

import io
import os

import matplotlib

matplotlib.use('Agg')
from matplotlib import figure  # noqa: E402
from matplotlib.backends import backend_agg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tfsmooth import writes  # noqa: E402
from tfsmooth.data import images  # noqa: E402


def plot_limits(points, margin=0.1):
  """A square box around `points` [N, 2] (or an interval for [N, 1]) with a relative margin."""
  low, high = np.percentile(points, 0.1, axis=0), np.percentile(points, 99.9, axis=0)
  centre, half = (low + high) / 2, np.max(high - low) / 2 * (1 + margin)
  return float(np.min(centre - half)), float(np.max(centre + half))


def points_panel(ax, points, limits, title, size=0.5, bins=200, fontsize=9):
  """A scatter of points [N, D >= 2] (their first two coordinates) or a histogram of [N, 1] on
  the square `limits`."""
  if points.shape[1] == 1:
    ax.hist(points[:, 0], bins=bins, range=limits, density=True, color='tab:blue')
  else:
    ax.scatter(points[:, 0], points[:, 1], s=size, alpha=0.5, color='tab:blue')
    ax.set_ylim(*limits)
    ax.set_aspect('equal')
  ax.set_xlim(*limits)
  ax.set_title(title, fontsize=fontsize)


def sample_panels(panels, path, limits, max_points=5000):
  """One `points_panel` per entry of `panels` {title: points [N, D]}, written to `path`."""
  fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
  for ax, (title, points) in zip(axes[0], panels.items()):
    points_panel(ax, np.asarray(points)[:max_points], limits, title)
  save_figure(fig, path)


def points_picture(points, limits, title):
  """uint8 [H, W, 3]: a small `points_panel` (a TensorBoard image), rendered in memory."""
  fig = figure.Figure(figsize=(2.4, 2.4), dpi=80)
  ax = fig.subplots()
  points_panel(ax, np.asarray(points), limits, title, size=2, bins=50, fontsize=8)
  ax.tick_params(labelsize=6)
  fig.tight_layout()
  canvas = backend_agg.FigureCanvasAgg(fig)
  canvas.draw()
  return np.array(canvas.buffer_rgba())[..., :3]


def density_panels(panels, path, limits, dim=2, resolution=200):
  """Densities exp(log_prob_fn(grid)) for each {title: log_prob_fn}: heat maps (D = 2) or
  curves on one axis (D = 1). `log_prob_fn` maps an [M, D] float32 array to [M] log densities.
  """
  axis = np.linspace(*limits, resolution, dtype=np.float32)
  if dim == 1:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for title, log_prob_fn in panels.items():
      ax.plot(axis, np.exp(log_prob_fn(axis[:, None])), label=title, lw=1)
    ax.set_xlim(*limits)
    ax.legend(fontsize=8)
  else:
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, log_prob_fn) in zip(axes[0], panels.items()):
      density = np.exp(log_prob_fn(grid)).reshape(resolution, resolution)
      ax.imshow(density, origin='lower', extent=(*limits, *limits), cmap='magma')
      ax.set_title(title, fontsize=9)
      ax.set_xticks([])
      ax.set_yticks([])
  save_figure(fig, path)


def write_png(path, render):
  """Writes the PNG that `render(buffer)` produces to `path` (a local path or a URL; the
  folder is created): rendered in memory, then written whole through `tf.io.gfile`
  (`writes.write_file`: a storage that refuses the write raises `writes.WriteFailed` naming the
  plot, and neither half a PNG nor a temporary is left)."""
  buffer = io.BytesIO()
  render(buffer)
  writes.write_file(
      path, buffer.getvalue(), what=f'the plot {os.path.basename(path)}', make_folder=True
  )


def save_figure(fig, path):
  """Lays out `fig`, writes it to `path` as PNG and closes it (also when the write fails)."""
  try:
    fig.tight_layout()
    write_png(path, lambda buffer: fig.savefig(buffer, format='png', dpi=110))
  finally:
    plt.close(fig)


def image_grid(rows, pad=2, min_height=96):
  """uint8 [H', W', C] grid of `rows`, a list of [N, H, W, C] image batches in [-1, 1], one
  per grid row, on white.

  Images are enlarged by the largest integer factor that keeps them at most `min_height` pixels
  high (nearest neighbour: pixels stay visible as pixels), so 28x28 grids are legible.
  """
  scale = max(1, min_height // rows[0].shape[1])
  rows = [np.repeat(np.repeat(images.to_uint8(r), scale, axis=1), scale, axis=2) for r in rows]
  height, width, channels = rows[0].shape[1:]
  columns = max(len(r) for r in rows)
  grid = np.full(
      (len(rows) * (height + pad) + pad, columns * (width + pad) + pad, channels), 255, np.uint8
  )
  for i, row in enumerate(rows):
    for j, image in enumerate(row):
      top, left = pad + i * (height + pad), pad + j * (width + pad)
      grid[top : top + height, left : left + width] = image
  return grid


def save_image_grid(rows, path, **kwargs):
  """Writes `image_grid(rows, **kwargs)` to `path` as PNG; returns the grid."""
  grid = image_grid(rows, **kwargs)
  image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  write_png(path, lambda buffer: image.save(buffer, format='png'))
  return grid


def chunks(x, per_row):
  """[N, ...] -> list of [per_row, ...] rows."""
  return [x[i : i + per_row] for i in range(0, len(x), per_row)]
