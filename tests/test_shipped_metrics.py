"""Every shipped model's tfsmooth.json metrics describe the weights it holds: recomputed with the
export itself (its log_prob signature) on a slice of the test split, they agree with the
recorded figures within the noise of a slice.

The slice is the first n of the N recorded test rows, scored with the rows' own seeds (stream
'test' of eval.seed, as the evaluation draws them), so each row's value, the bound's Monte
Carlo draws included, is the one the recorded mean averaged. A slice mean then differs from the
recorded mean only by which rows it holds: its standard error is sd / sqrt(n) * sqrt(1 - n / N)
(sd the rows' spread on the slice, the bound's MC noise included in it). A record made with
other draws of the same weights moves by the MC noise of a mean over N rows, at most
sd / sqrt(N), which is added. The tolerance is 4 times their sum. What that resolves (sd
about 0.9 per row everywhere): rings and olympics, 1000 of 5000 points, about 0.15 nats; the
exact Fashion-MNIST baseline, all N = 1000 recorded test images (so only the other-draws term
remains), about 0.11 bpd, below the 0.23 bpd between its EMA and raw weights
that its version-2 record confused; the Fashion-MNIST pair, 64 images, about 0.5 bpd: a gross
mismatch only (its EMA and raw bounds differ by 0.03 bpd, beyond any slice a test affords).
"""

import json
import math
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import seeds as seeds_lib
from tfsmooth import tasks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAVED_MODELS = os.path.join(REPO, 'saved_models')
# Rows scored: the exact image model's whole recorded split (one network pass per image), a
# slice elsewhere (a pair's K-draw bound costs 2K passes per image).
SLICE = {'points': 1000, 'images': 1000, 'image_bounds': 64}
BATCH = {'points': 1000, 'images': 32, 'image_bounds': 32}
Z = 4.0


def shipped():
  """{base: newest version directory} of the shipped tfsmooth exports."""
  out = {}
  for base in sorted(os.listdir(SAVED_MODELS)):
    folder = os.path.join(SAVED_MODELS, base)
    versions = [int(v) for v in os.listdir(folder) if v.isdigit()] if os.path.isdir(folder) else []
    if versions:
      version_dir = os.path.join(folder, str(max(versions)))
      if os.path.exists(os.path.join(version_dir, 'assets.extra', 'tfsmooth.json')):
        out[base] = version_dir
  return out


@pytest.mark.parametrize('base', sorted(shipped()))
def test_recorded_metrics_match_the_exported_weights(base, request):
  version_dir = shipped()[base]
  with open(os.path.join(version_dir, 'assets.extra', 'tfsmooth.json')) as f:
    meta = json.load(f)
  metrics, config = meta['metrics'], ml_collections.ConfigDict(meta['config'])
  assert metrics.get('weights') == meta['weights'], 'the metrics do not describe these weights'
  assert meta.get('metrics_source'), 'the record does not say where its metrics come from'
  if config.data.name == 'fashion_mnist':
    request.getfixturevalue('fashion_mnist_idx')  # fails under CI without the files, else skips
  task = tasks.for_config(config)
  exact = meta['iw_samples'] is None
  kind = 'points' if len(meta['event_shape']) == 1 else 'images' if exact else 'image_bounds'
  recorded_rows = metrics[task.count_key]
  n = min(SLICE[kind], recorded_rows)
  x = task.split('test')[:n]
  row_seeds = seeds_lib.rows(config.eval.seed, 'test', 0, n).numpy()
  # A conditioned model's record scores the test rows given their conditions (class labels),
  # the others (a noise level) at their defaults: so does the signature here.
  given, conditioned = task.conditions('test'), {}
  for keyword, condition in (meta.get('conditions') or {}).items():
    default = np.full(n, condition['default'], condition['dtype'])
    conditioned[condition['input']] = given[keyword][:n] if keyword in given else default
  signature = tf.saved_model.load(version_dir).signatures['log_prob']
  if exact:
    keys = {task.unit: 'log_prob'}
  else:
    assert metrics['iw_samples'] == meta['iw_samples'], 'the metrics used another K'
    keys = {f'{task.unit}_iw': 'log_prob', f'{task.unit}_elbo': 'elbo'}
  outputs = {out: [] for out in keys.values()}
  for start in range(0, n, BATCH[kind]):
    args = {'x': tf.constant(x[start : start + BATCH[kind]])}
    args.update({k: tf.constant(v[start : start + BATCH[kind]]) for k, v in conditioned.items()})
    if not exact:
      args['seed'] = tf.constant(row_seeds[start : start + BATCH[kind]])
    for out, value in signature(**args).items():
      outputs[out].append(value.numpy().astype(np.float64))
  for key, out in keys.items():
    rows = np.array([task.to_unit(-v) for v in np.concatenate(outputs[out])])
    sd = rows.std(ddof=1)
    tolerance = Z * (
        sd / math.sqrt(n) * math.sqrt(max(0.0, 1.0 - n / recorded_rows))
        + sd / math.sqrt(recorded_rows)
    )
    gap = abs(rows.mean() - metrics[key])
    assert gap <= tolerance, (
        f'{base}: {key} recorded {metrics[key]:.4f}, the export gives {rows.mean():.4f} on '
        f'{n} test rows (tolerance {tolerance:.4f})'
    )
