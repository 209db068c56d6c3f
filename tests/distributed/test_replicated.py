"""Evaluation on every replica: likelihood bounds and samples do not depend on the replica
count (per-row seeds), under MirroredStrategy on 2 logical CPUs and a 2-process
MultiWorkerMirroredStrategy on 127.0.0.1, for plain models and pairs; batches that do not
divide across the replicas are padded and trimmed."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.distributed import tiny_models
from tests.train import tiny
from tfsmooth.data import images
from tfsmooth.evaluation import replicated
from tfsmooth.train import strategy as strategy_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _assert_same(result, reference, kind):
  assert set(result) == set(reference)
  for key, value in reference.items():
    if kind == 'pixelcnn' and key == 'samples':  # the discretised head: the same 8-bit values
      np.testing.assert_array_equal(images.to_uint8(result[key]), images.to_uint8(value))
    else:
      np.testing.assert_allclose(result[key], value, rtol=1e-4, atol=1e-5, err_msg=key)


class _References(dict):
  """One device's results per kind, computed when first asked for."""

  def __missing__(self, kind):
    self[kind] = tiny_models.evaluate(tiny_models.build(kind))
    return self[kind]


@pytest.fixture(scope='module')
def references():
  return _References()


# The PixelCNN++ pair is the slowest case (~75 s); plain PixelCNN++ and the MADE pair cover
# images and pairs by default.
MIRRORED_KINDS = [
    pytest.param(kind, marks=pytest.mark.slow) if kind == 'pixelcnn_pair' else kind
    for kind in tiny_models.KINDS
]


@pytest.mark.parametrize('kind', MIRRORED_KINDS)
def test_mirrored_two_replicas_equal_one_device(kind, references):
  mirrored = strategy_lib.get_strategy('mirrored')
  assert mirrored.num_replicas_in_sync == 2
  model = tiny_models.build(kind, mirrored)
  _assert_same(tiny_models.evaluate(model, mirrored), references[kind], kind)
  # The batch size changes nothing either (rows 0-4 in batches of 3 or of 5).
  _assert_same(tiny_models.evaluate(model, mirrored, batch_size=5), references[kind], kind)


def test_padding_keeps_rows_and_order():
  mirrored = strategy_lib.get_strategy('mirrored')
  rows = np.arange(7, dtype=np.float32)[:, None]
  out = replicated.map_batches(lambda x: {'double': 2 * x}, (rows,), 3, mirrored)
  np.testing.assert_array_equal(out['double'], 2 * rows)


@pytest.mark.parametrize(
    'kind',
    [
        'made_pair',
        # 30 s; the mirrored PixelCNN++ equality above runs by default (suite budget)
        pytest.param('pixelcnn', marks=pytest.mark.slow),
    ],
)
def test_two_workers_equal_one_device(kind, references, tmp_path):
  cluster = {'worker': [f'127.0.0.1:{p}' for p in tiny.free_ports(2)]}
  workers = []
  for i in range(2):
    env = dict(
        os.environ,
        PYTHONPATH=ROOT,
        TF_CPP_MIN_LOG_LEVEL='2',
        TF_CONFIG=json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': i}}),
    )
    workers.append(
        subprocess.Popen(
            [sys.executable, '-m', 'tests.distributed.driver', kind, str(tmp_path / f'{i}.npz')],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
  for w in workers:
    _, err = w.communicate(timeout=300)
    assert w.returncode == 0, err[-3000:]
  for i in range(2):
    _assert_same(dict(np.load(tmp_path / f'{i}.npz')), references[kind], kind)
