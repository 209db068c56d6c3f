"""Low-dimensional data sets with exact densities, and a user's own points from a file.

Synthetic data sets (every one has an exact log density, so its entropy is the floor on NLL):

  rings:            4 concentric noisy circles, radii 0.75, 1.5, 2.25, 3.0, noise 0.08
  olympics:         5 noisy circles of radius 1, centres (-2.2, .5) (0, .5) (2.2, .5)
                    (-1.1, -.5) (1.1, -.5), noise 0.02
  checkerboard:     x1 = 4 U - 2,  x2 = U' - 2 B + (floor(x1) mod 2),  x = 2 (x1, x2),
                    U, U' ~ U[0, 1), B ~ {0, 1}: uniform on the 8 squares [2i, 2i+2) x [2j, 2j+2)
                    with -2 <= i, j <= 1 and i + j even, so p = 1/32 there and 0 elsewhere
  modes6_1d:        equal mixture of N(c, 0.1^2),  c in {-5, -3, -1, 1, 3, 5}
  modes10_1d:       equal mixture of N(c, 0.05^2), c in {-4.5, -3.5, ..., 4.5}
  two_gaussians_1d: 0.5 N(-0.3, 0.1^2) + 0.5 N(0.3, 0.1^2)

A noisy circle (centre c, radius r, noise s) is c + r (cos t, sin t) + s e, t ~ U[0, 2 pi),
e ~ N(0, I). Integrating out t, with d = |x - c| and i0e(z) = exp(-z) I0(z):

  log p(x) = -(d - r)^2 / (2 s^2) + log i0e(d r / s^2) - log(2 pi s^2).

Circle mixtures have equal weights: log p = logsumexp_k log p_k - log K.

Splits: `load_splits` draws 10,000 train / 1,000 validation / 5,000 test points from a
synthetic set with seeds 0 / 1 / 2 (`SPLIT_SEEDS`). A `FileDataset` instead shuffles the
file's rows once (seed `FILE_SHUFFLE_SEED`) and partitions them 10:1:5, with at least one
row in validation and in test. A file of fewer than `MIN_FILE_POINTS` (100) points is refused
when it is read, with the counts its splits would get: a test NLL on a handful of points
measures nothing.

Integer-valued points (every coordinate of every point an integer: a lattice, counts, pixel
levels) draw a warning: a continuous density fitted to discrete points can pile its mass onto
them and is unbounded below, so the test NLL can go negative and means nothing. The config key
`data.dequantize` (default False; `--config.data.dequantize=True`) dequantises them: uniform
noise u ~ U[0, 1)^D is added to every point of the train, validation and test splits, with
fixed seeds (`DEQUANTIZE_SEEDS`, one per split): a point k lands in its cube [k, k + 1). The NLL
of the noisy points then bounds the discrete data's: log P(k) >= E_u log p(k + u) (Jensen, as
P(k) is the mass of p on the unit cube [k, k + 1)), i.e. the test NLL is an upper bound on
-log P(k) in nats per point. `FileDataset.points` keeps the file's values.
"""

import io
import os

from absl import logging
import numpy as np
from scipy import special
import tensorflow as tf

from tfsmooth import errors

SPLIT_SIZES = {'train': 10_000, 'validation': 1_000, 'test': 5_000}
SPLIT_SEEDS = {'train': 0, 'validation': 1, 'test': 2}
FILE_SHUFFLE_SEED = 0
MIN_FILE_POINTS = 100
DEQUANTIZE_SEEDS = {'train': 3, 'validation': 4, 'test': 5}
ENTROPY_SEED = 2021
FILE_EXTENSIONS = ('.npy', '.npz', '.csv')
_FILE_FLAGS = '--config.data.name=file --config.data.path=/path/to/points.npy'


def validate_points(x, dim=None, dtype=np.float32, source='points'):
  """Returns x as a `dtype` array after checking it is [N, D], numeric, finite, D == dim."""
  x = np.asarray(x)
  if x.dtype.kind not in 'iuf':
    raise errors.UserError(f'{source} must be numeric, got dtype {x.dtype}.')
  if x.ndim == 1:
    raise errors.UserError(
        f'{source} has shape {x.shape}: expected a 2-D array [N, D] of N '
        'points. For 1-D data reshape to [N, 1] (x[:, None]).'
    )
  if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
    raise errors.UserError(
        f'{source} has shape {x.shape}: expected a 2-D array [N, D] of N >= 1 '
        'points with D >= 1 coordinates.'
    )
  if dim is not None and x.shape[1] != dim:
    raise errors.UserError(
        f'{source} has D={x.shape[1]} coordinates per point, but D={dim} is '
        f'expected. Use points of dimension {dim}, or a data set / model built '
        f'for D={x.shape[1]} (check --config.data.name and --config.data.path).'
    )
  with np.errstate(over='ignore'):
    x = x.astype(dtype)
  bad = ~np.isfinite(x).all(axis=1)
  if bad.any():
    raise errors.UserError(
        f'{source}: {bad.sum()} of {len(x)} rows contain NaN or inf (or '
        f'values too large for {np.dtype(dtype).name}); the first is row '
        f'{np.argmax(bad)} (0-based). Drop or fix those rows.'
    )
  return x


def _round_down_float32(x):
  """Casts to float32 rounding toward -inf: x in [a, b) stays there if a is a float32."""
  y = x.astype(np.float32)
  return np.where(y > x, np.nextafter(y, np.float32(-np.inf)), y)


class Dataset:
  """A data set of points in R^D: `name`, `dim`, seeded `sample`, and, if `has_density`,
  the exact `log_prob` and a Monte-Carlo `entropy`. Labelled sets (`num_classes` not None: a
  mixture's component, a user's .npz `y`) also give `labelled_splits`."""

  has_density = True
  num_classes = None

  def __init__(self, name, dim):
    self.name = name
    self.dim = dim

  def sample(self, n, seed):
    """n points, float32 [n, D], from `np.random.default_rng(seed)`."""
    return _round_down_float32(self._sample(np.random.default_rng(seed), int(n)))

  def log_prob(self, x):
    """Exact log density (float64 [n]) of the points x [n, D]."""
    return self._log_prob(validate_points(x, self.dim, np.float64, f'{self.name} log_prob input'))

  def entropy(self, num_samples=2_000_000, seed=ENTROPY_SEED, chunk_size=100_000):
    """(estimate, standard error) of the entropy -E log p(x) in nats, over fresh samples."""
    rng = np.random.default_rng(seed)
    total = total_sq = 0.0
    for start in range(0, num_samples, chunk_size):
      nll = -self.log_prob(self._sample(rng, min(chunk_size, num_samples - start)))
      total += nll.sum()
      total_sq += np.square(nll).sum()
    mean = total / num_samples
    return mean, np.sqrt(max(total_sq / num_samples - mean**2, 0.0) / num_samples)

  def gaussian_smoothed(self, sigma):
    """The data set of x~ = x + sigma e, e ~ N(0, I), with its exact density.

    Every synthetic set overrides this with its closed form; points without a density (a
    `FileDataset`) have no smoothed density either.
    """
    raise errors.UserError(
        f'{self.name} has no known density, so neither has its '
        'Gaussian-smoothed version: use a synthetic data set.'
    )

  def splits(self):
    """{'train', 'validation', 'test'}: float32 arrays of `SPLIT_SIZES` draws, `SPLIT_SEEDS`."""
    return {split: self.sample(size, SPLIT_SEEDS[split]) for split, size in SPLIT_SIZES.items()}

  def labelled_splits(self):
    """{'train', 'validation', 'test'}: (points, int32 labels), the points those of `splits`."""
    if self.num_classes is None:
      raise errors.UserError(
          f'{self.name} has no class labels: set --config.data.labels=False (labels come with '
          "the mixtures rings, olympics, modes6_1d, modes10_1d, two_gaussians_1d and a user's "
          '.npz points with a y array).'
      )
    out = {}
    for split, size in SPLIT_SIZES.items():
      points, labels = self._sample_labelled(np.random.default_rng(SPLIT_SEEDS[split]), size)
      out[split] = (_round_down_float32(points), labels.astype(np.int32))
    return out

  def _sample(self, rng, n):
    return self._sample_labelled(rng, n)[0]

  def log_prob_given_label(self, x, labels):
    """Exact log p(x | y) (float64 [n]) of labelled sets: the density of component y."""
    raise errors.UserError(f'{self.name} has no class-conditional density.')


class NoisyCircles(Dataset):
  """Equal mixture of noisy circles with the given centres [K, 2] and radii [K]."""

  def __init__(self, name, centres, radii, noise):
    super().__init__(name, 2)
    self.centres = np.asarray(centres, np.float64)
    self.radii = np.broadcast_to(np.asarray(radii, np.float64), len(self.centres))
    self.noise = float(noise)
    self.num_classes = len(self.centres)  # a point's label: the circle it was drawn from

  def _sample_labelled(self, rng, n):
    k = rng.integers(len(self.centres), size=n)
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    circle = self.radii[k, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return self.centres[k] + circle + self.noise * rng.standard_normal((n, 2)), k

  def _circle_log_probs(self, x):
    """log p(x | circle k), float64 [n, K]."""
    d = np.linalg.norm(x[:, None, :] - self.centres, axis=-1)
    s2 = self.noise**2
    return (
        -np.square(d - self.radii) / (2 * s2)
        + np.log(special.i0e(d * self.radii / s2))
        - np.log(2 * np.pi * s2)
    )

  def _log_prob(self, x):
    return special.logsumexp(self._circle_log_probs(x), axis=1) - np.log(len(self.centres))

  def log_prob_given_label(self, x, labels):
    x = validate_points(x, self.dim, np.float64, f'{self.name} log_prob input')
    return np.take_along_axis(self._circle_log_probs(x), np.asarray(labels)[:, None], 1)[:, 0]

  def gaussian_smoothed(self, sigma):
    """Noisy circles with noise sqrt(noise^2 + sigma^2): Gaussian noise adds in variance."""
    return NoisyCircles(
        f'{self.name}_smoothed', self.centres, self.radii, np.hypot(self.noise, sigma)
    )


class GaussianMixture1D(Dataset):
  """Equal-weight mixture of N(mean_k, scale^2) in one dimension."""

  def __init__(self, name, means, scale):
    super().__init__(name, 1)
    self.means = np.asarray(means, np.float64)
    self.scale = float(scale)
    self.num_classes = len(self.means)  # a point's label: its component

  def _sample_labelled(self, rng, n):
    k = rng.integers(len(self.means), size=n)
    return (self.means[k] + self.scale * rng.standard_normal(n))[:, None], k

  def _component_log_probs(self, x):
    z = (x - self.means) / self.scale
    return -0.5 * np.square(z) - np.log(self.scale * np.sqrt(2 * np.pi))

  def _log_prob(self, x):
    return special.logsumexp(self._component_log_probs(x), axis=1) - np.log(len(self.means))

  def log_prob_given_label(self, x, labels):
    x = validate_points(x, self.dim, np.float64, f'{self.name} log_prob input')
    return np.take_along_axis(self._component_log_probs(x), np.asarray(labels)[:, None], 1)[:, 0]

  def gaussian_smoothed(self, sigma):
    """The mixture with scale sqrt(scale^2 + sigma^2)."""
    return GaussianMixture1D(f'{self.name}_smoothed', self.means, np.hypot(self.scale, sigma))


class Checkerboard(Dataset):
  """Uniform on the 8 black squares of a 4 x 4 board of 2 x 2 squares on [-4, 4)^2."""

  def __init__(self, name='checkerboard'):
    super().__init__(name, 2)

  def _sample(self, rng, n):
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - 2 * rng.integers(2, size=n) + np.floor(x1) % 2
    return 2 * np.stack([x1, x2], axis=1)

  def _log_prob(self, x):
    cell = np.floor(x / 2)
    inside = np.all((cell >= -2) & (cell <= 1), axis=1) & (cell.sum(axis=1) % 2 == 0)
    return np.where(inside, -np.log(32.0), -np.inf)

  def gaussian_smoothed(self, sigma):
    return SmoothedCheckerboard(sigma, f'{self.name}_smoothed')


class SmoothedCheckerboard(Checkerboard):
  """The checkerboard plus N(0, sigma^2 I) noise. With the black squares [a, a + 2) x [b, b + 2),

  p(x~) = 1/32 sum_squares [Phi((a + 2 - x~1) / sigma) - Phi((a - x~1) / sigma)]
                           [Phi((b + 2 - x~2) / sigma) - Phi((b - x~2) / sigma)].
  """

  CORNERS = 2.0 * np.array([(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0])

  def __init__(self, sigma, name='checkerboard_smoothed'):
    super().__init__(name)
    self.sigma = float(sigma)

  def _sample(self, rng, n):
    return super()._sample(rng, n) + self.sigma * rng.standard_normal((n, 2))

  def _log_prob(self, x):
    low = (self.CORNERS - x[:, None, :]) / self.sigma  # [n, 8 squares, 2]
    high = low + 2.0 / self.sigma
    # Phi(high) - Phi(low), taken on the side where it does not cancel to 0 in float64.
    mass = np.where(
        low > 0, special.ndtr(-low) - special.ndtr(-high), special.ndtr(high) - special.ndtr(low)
    )
    return np.log(np.prod(mass, axis=2).sum(axis=1) / 32.0)

  def gaussian_smoothed(self, sigma):
    return SmoothedCheckerboard(np.hypot(self.sigma, sigma), self.name)


class FileDataset(Dataset):
  """A user's own points: an N x D array from .npy, .npz (one array, or `key`) or .csv
  (comma-separated, optional header row); an empty key means none. No density is known.

  `dequantize` adds U[0, 1) noise to the split points (see the module docstring); `points`
  keeps the file's values either way. With `labels`, an .npz file's `y` array (ints 0..K-1,
  one per point) gives the points' classes.
  """

  has_density = False

  def __init__(self, path, key=None, dequantize=False, labels=False):
    self.path = os.fspath(path)
    if labels and key is None:
      key = 'x'
    points = _read_array(self.path, key or None)
    self.points = validate_points(points, source=f'points in {self.path}')
    self.labels = _read_labels(self.path, len(self.points)) if labels else None
    self.num_classes = None if self.labels is None else int(self.labels.max()) + 1
    self.dequantize = bool(dequantize)
    super().__init__('file', self.points.shape[1])
    n = len(self.points)
    if n < MIN_FILE_POINTS:
      counts = ' / '.join(str(size) for size in _split_sizes(n).values())
      enough = ' / '.join(str(size) for size in _split_sizes(MIN_FILE_POINTS).values())
      raise errors.UserError(
          f'{self.path} has {n} points, too few to split: train / validation / test would get '
          f'{counts} points, and a test NLL on so few measures nothing. Use a file of at least '
          f'{MIN_FILE_POINTS} points (they get {enough}).'
      )
    integer = bool(np.all(self.points == np.round(self.points)))
    if integer and not self.dequantize:
      _warn_once(
          self.path,
          f'Every coordinate of every point in {self.path} is an integer. A continuous '
          'density fitted to discrete points is unbounded below (it can pile its mass onto '
          'the integers), so the test NLL can go negative and then means nothing. Set '
          '--config.data.dequantize=True to add uniform noise U[0, 1) to every coordinate: '
          "the NLL is then an upper bound on the discrete data's -log P(k).",
      )
    elif self.dequantize and not integer:
      _warn_once(
          self.path,
          f'data.dequantize adds U[0, 1) noise to the points of {self.path}, but they are not '
          "all integers: the NLL is that of the noisy points, no bound for the file's. Set "
          '--config.data.dequantize=False for continuous data.',
      )

  def _sample(self, rng, n):
    rows = self.points[rng.integers(len(self.points), size=n)]
    return rows + rng.random(rows.shape) if self.dequantize else rows

  def log_prob(self, x):
    raise errors.UserError(
        f'The points in {self.path} have no known density, so log_prob and '
        'entropy are unavailable (has_density=False); they exist for the '
        'synthetic data sets.'
    )

  def splits(self):
    """Shuffled rows (seed `FILE_SHUFFLE_SEED`) split 10:1:5, >= 1 row in validation and test;
    with `dequantize`, plus U[0, 1) noise (seeds `DEQUANTIZE_SEEDS`)."""
    splits = self._split(self.points)
    if self.dequantize:
      splits = {
          name: _dequantized(points, DEQUANTIZE_SEEDS[name]) for name, points in splits.items()
      }
    return splits

  def labelled_splits(self):
    if self.labels is None:
      return super().labelled_splits()
    labels = self._split(self.labels)
    return {name: (points, labels[name]) for name, points in self.splits().items()}

  def _split(self, values):
    """`values` (one per point) in the shuffled order, cut into the three splits."""
    sizes = _split_sizes(len(self.points))
    rows = values[np.random.default_rng(FILE_SHUFFLE_SEED).permutation(len(self.points))]
    num_val, num_test = sizes['validation'], sizes['test']
    return {
        'train': rows[num_val + num_test :],
        'validation': rows[:num_val],
        'test': rows[num_val : num_val + num_test],
    }


def _split_sizes(n):
  """{'train', 'validation', 'test'}: row counts of a file of n points, split 10:1:5."""
  num_val, num_test = max(1, round(n / 16)), max(1, round(5 * n / 16))
  return {'train': max(0, n - num_val - num_test), 'validation': num_val, 'test': num_test}


def _dequantized(points, seed):
  """points + U[0, 1) noise, float32, each coordinate kept in [x, x + 1) (rounded toward x)."""
  noise = np.random.default_rng(seed).random(points.shape)
  return np.maximum(_round_down_float32(points.astype(np.float64) + noise), points)


_WARNED = set()


def _warn_once(path, message):
  """`message` as an absl warning, once per process and path (every run loads the data twice)."""
  if (path, message) not in _WARNED:
    _WARNED.add((path, message))
    logging.warning('%s', ' '.join(message.split()))


def _read_array(path, key):
  ext = os.path.splitext(path)[1].lower()
  if ext not in FILE_EXTENSIONS:
    raise errors.UserError(
        f'Cannot read points from {path}: unsupported extension {ext!r}; '
        f'supported: {", ".join(FILE_EXTENSIONS)}.'
    )
  if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
    raise FileNotFoundError(f'Data file not found: {path} (set by --config.data.path).')
  if key is not None and ext != '.npz':
    raise errors.UserError(f'An array key ({key!r}) only applies to .npz files, not {path}.')
  if ext == '.npy':
    return _load_numpy(path)
  if ext == '.npz':
    with _load_numpy(path) as arrays:
      if key is None and len(arrays.files) == 1:
        key = arrays.files[0]
      if key not in arrays.files:
        raise errors.UserError(
            f'{path} holds the arrays {arrays.files}; choose one with key=... '
            f'(--config.data.key){"" if key is None else f", not {key!r}"}.'
        )
      return arrays[key]
  header = 1 if _csv_has_header(path) else 0
  try:
    return np.loadtxt(_text(path), delimiter=',', skiprows=header, ndmin=2)
  except ValueError as e:
    raise errors.UserError(f'Cannot read {path} as comma-separated numbers: {e}') from e


def _read_labels(path, count):
  """The int32 labels [count] of an .npz's `y` array, checked (ints 0..K-1, one per point)."""
  if os.path.splitext(path)[1].lower() != '.npz':
    raise errors.UserError(
        f'Class labels of points come from an .npz file holding x [N, D] and y [N]; {path} is '
        'no .npz. Save with np.savez(path, x=points, y=labels), or set '
        '--config.data.labels=False.'
    )
  with _load_numpy(path) as arrays:
    if 'y' not in arrays.files:
      raise errors.UserError(
          f'{path} holds the arrays {arrays.files} but no y: with --config.data.labels=True the '
          'labels are the array y (ints 0..K-1, one per point). Save it with np.savez(path, '
          'x=points, y=labels), or set --config.data.labels=False.'
      )
    labels = arrays['y']
  if labels.ndim != 1 or labels.dtype.kind not in 'iu' or len(labels) != count:
    raise errors.UserError(
        f'The labels y in {path} must be integers, one per point: shape [{count}]; got '
        f'{labels.dtype} of shape {labels.shape}.'
    )
  if labels.min() < 0:
    raise errors.UserError(f'The labels y in {path} must be >= 0 (classes 0..K-1).')
  return labels.astype(np.int32)


def _read_bytes(path):
  """The contents of the file `path` (a local path or a URL: read through tf.io.gfile)."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    return f.read()


def _text(path):
  """The file `path` as a text stream, decoded as UTF-8 without a byte-order mark."""
  return io.TextIOWrapper(io.BytesIO(_read_bytes(path)), encoding='utf-8-sig')


def _load_numpy(path):
  data = _read_bytes(path)
  if not data:
    raise errors.UserError(f'{path} is empty (0 bytes); save your N x D points with np.save.')
  try:
    return np.load(io.BytesIO(data), allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise errors.UserError(
        f'Cannot read {path} as a NumPy file ({e}); save your N x D points '
        'with np.save (or np.savez), or use a .csv file.'
    ) from e


def _csv_has_header(path):
  with _text(path) as f:
    fields = f.readline().split(',')
  try:
    np.asarray(fields, np.float64)
  except ValueError:
    return True
  return False


DATASETS = {
    d.name: d
    for d in (
        NoisyCircles('rings', np.zeros((4, 2)), [0.75, 1.5, 2.25, 3.0], noise=0.08),
        NoisyCircles(
            'olympics',
            [[-2.2, 0.5], [0.0, 0.5], [2.2, 0.5], [-1.1, -0.5], [1.1, -0.5]],
            1.0,
            noise=0.02,
        ),
        Checkerboard(),
        GaussianMixture1D('modes6_1d', [-5, -3, -1, 1, 3, 5], 0.1),
        GaussianMixture1D('modes10_1d', np.arange(-4.5, 5), 0.05),
        GaussianMixture1D('two_gaussians_1d', [-0.3, 0.3], 0.1),
    )
}


def get_dataset(name, path=None, key=None, dequantize=False, labels=False):
  """The synthetic data set `name`, or `name='file'` with `path` (and `key` for .npz); only
  `file` may `dequantize` (the built-in sets are continuous); `labels` reads a file's y."""
  if name == 'file':
    if not path:
      raise errors.UserError(
          f'Data set "file" needs the path of your points: {_FILE_FLAGS} '
          '(.npy, .npz or .csv holding an N x D array).'
      )
    return FileDataset(path, key, dequantize, labels)
  if name not in DATASETS:
    raise errors.UserError(
        f'Unknown data set {name!r}; valid names: {", ".join(DATASETS)}, file. '
        f'For your own points use {_FILE_FLAGS} (.npy, .npz or .csv, N x D).'
    )
  if path:
    raise errors.UserError(f'A path ({path}) is only read with data set "file", not {name!r}.')
  if dequantize:
    raise errors.UserError(
        f'data.dequantize only applies to your own integer-valued points (data set "file"); '
        f'{name!r} is continuous: set --config.data.dequantize=False.'
    )
  return DATASETS[name]


def load_splits(dataset):
  """{'train', 'validation', 'test'}: float32 [N, D] arrays of a data set (object or name)."""
  if isinstance(dataset, str):
    dataset = get_dataset(dataset)
  return dataset.splits()
