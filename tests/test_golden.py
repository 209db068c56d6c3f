"""Golden outputs: the code and the shipped models must give what a known-good commit gave.

The goldens in tests/golden/ were recorded by tests/golden/record.py (see its docstring for how
to re-record them, only ever from a known-good commit):

  * every shipped SavedModel under saved_models/: its signature_defs are pinned, and each of
    its signatures, called with the stored inputs, returns the stored outputs;
  * tiny models of every kind (MADE, RealNVP, PixelCNN++; plain and two-step; Gaussian and
    Laplace kernels), rebuilt from their stored configs with the stored weights and exported
    with `export.export(model, export_dir, iw_samples=K)`: the export has the stored
    signatures, and each returns the stored outputs.

8-bit image outputs (marked 'quantized') must be equal on the 8-bit grid; the other outputs
within rtol 1e-5 (atol 1e-5).
"""

import json
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from tests.golden import record
from tfsmooth import experiment
from tfsmooth import export

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = ATOL = 1e-5

with open(os.path.join(GOLDEN, 'manifest.json')) as _f:
  MANIFEST = json.load(_f)
with open(os.path.join(GOLDEN, 'signature_defs.json')) as _f:
  SIGNATURE_DEFS = json.load(_f)
# The shipped versions checked (record.CHECKED_AS, and the classifier, record.PINNED_ONLY). The
# four tfsmooth models' goldens were recorded from rings/1, olympics/1, fashion_mnist_smoothed/2
# and fashion_mnist_baseline/2 (manifest 'recorded_from'), which left the tree when their weights
# were re-exported as the checked versions: these must give the old ones' outputs and
# signature_defs.
SHIPPED_PATHS = {
    name: os.path.join('saved_models', where)
    for name, where in {**record.CHECKED_AS, **record.PINNED_ONLY}.items()
}


def assert_outputs(version_dir, golden, modes, label):
  """Calls the signatures named in `modes` with the golden inputs; compares with the goldens."""
  loaded = tf.saved_model.load(version_dir)
  missing = sorted(set(modes) - set(loaded.signatures))
  assert not missing, f'{label} lacks the signatures {missing}'
  for name, outputs in sorted(modes.items()):
    prefix = f'in.{name}.'
    args = {k[len(prefix) :]: tf.constant(golden[k]) for k in golden.files if k.startswith(prefix)}
    result = loaded.signatures[name](**args)
    assert sorted(result) == sorted(outputs), f'{label}: {name} outputs {sorted(result)}'
    for key, mode in outputs.items():
      actual, expected = result[key].numpy(), golden[f'out.{name}.{key}']
      what = f'{label}: {name}.{key}'
      assert actual.shape == expected.shape, f'{what}: shape {actual.shape} != {expected.shape}'
      assert actual.dtype == expected.dtype, f'{what}: dtype {actual.dtype} != {expected.dtype}'
      if mode == 'quantized':
        levels = lambda x: np.round((x.astype(np.float64) + 1.0) * 127.5).astype(np.int64)
        different = np.flatnonzero(levels(actual) != levels(expected))
        assert not different.size, (
            f'{what}: {different.size} of {actual.size} 8-bit values differ '
            f'(first at flat index {different[0] if different.size else None})'
        )
      else:
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.mark.parametrize('name', sorted(SIGNATURE_DEFS))
def test_shipped_signature_defs(name):
  version_dir = os.path.join(REPO, SHIPPED_PATHS[name])
  assert record.signature_pins(version_dir) == SIGNATURE_DEFS[name]['signatures']
  assert record.shared_functions(version_dir) == SIGNATURE_DEFS[name]['shared_functions']


def test_every_shipped_model_is_covered():
  shipped = {
      os.path.join(base, version)
      for base in os.listdir(os.path.join(REPO, 'saved_models'))
      if os.path.isdir(os.path.join(REPO, 'saved_models', base))
      for version in os.listdir(os.path.join(REPO, 'saved_models', base))
      if version.isdigit()
  }
  pinned = {os.path.relpath(p, 'saved_models') for p in SHIPPED_PATHS.values()}
  assert pinned == shipped, (
      f'saved_models/ holds versions without goldens: {sorted(shipped - pinned)}, and lacks '
      f'pinned ones: {sorted(pinned - shipped)}. Add a new version to '
      'tests/golden/record.py (CHECKED_AS, or PINNED_ONLY for a pin without calls) and record '
      'its goldens.'
  )
  assert set(SIGNATURE_DEFS) == set(SHIPPED_PATHS)
  assert set(MANIFEST['shipped']) == set(SHIPPED_PATHS) - {'fashion_mnist_classifier'}
  assert all(SHIPPED_PATHS[name] == entry['path'] for name, entry in MANIFEST['shipped'].items())


@pytest.mark.parametrize('name', sorted(MANIFEST['shipped']))
def test_shipped_outputs(name):
  entry = MANIFEST['shipped'][name]
  golden = np.load(os.path.join(GOLDEN, f'shipped_{name}.npz'))
  assert_outputs(os.path.join(REPO, entry['path']), golden, entry['outputs'], name)


def _set_weights(model, entry, golden):
  parts = {'prior': model.prior, 'conditional': model.conditional} if entry['smoothed'] else {}
  parts = parts or {'model': model}
  for part, layer in parts.items():
    recorded = entry['weights'][part]
    shapes = [list(v.shape) for v in layer.weights]
    assert shapes == [shape for _, shape in recorded], (
        f'{part}: the weights changed; now {[v.path for v in layer.weights]} of shapes {shapes}, '
        f'recorded {recorded}'
    )
    layer.set_weights([golden[f'weights.{part}.{i:03d}'] for i in range(len(recorded))])


@pytest.mark.parametrize('name', sorted(MANIFEST['fresh']))
def test_fresh_export(name, tmp_path):
  entry = MANIFEST['fresh'][name]
  golden = np.load(os.path.join(GOLDEN, f'fresh_{name}.npz'))
  model = experiment.build_model(ml_collections.ConfigDict(entry['config']))
  model.build_variables()
  _set_weights(model, entry, golden)
  version_dir = export.export(model, str(tmp_path / 'm'), iw_samples=entry['iw_samples'])
  assert_outputs(version_dir, golden, entry['outputs'], name)
  assert record.signature_pins(version_dir) == entry['signatures']
  assert record.shared_functions(version_dir) == entry['shared_functions']
