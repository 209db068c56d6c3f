"""The public classes' docstrings in TFP's form (issue 23, item 4): every listed name has an
`#### Examples` section and `#### References` citing its papers, and every example of those
modules runs under doctest, as a user would run it: with only tf, np, tfp and keras imported
(not the module's own names), ELLIPSIS and NORMALIZE_WHITESPACE."""

import doctest
import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

# Public name -> the authors its References must cite (the method's papers, tfsmooth's own
# classes cite Meng et al. where the method is theirs).
PUBLIC = {
    'tfsmooth.kernels': {
        'SmoothingKernel': ('Meng',),
        'median_heuristic_sigma': ('Meng', 'Garreau', 'Saremi'),
    },
    'tfsmooth.models.made': {'MADE': ('Germain', 'Meng')},
    'tfsmooth.models.realnvp': {'RealNVP': ('Dinh', 'Meng')},
    'tfsmooth.models.pixelcnn': {
        'PixelCNN': ('Salimans', 'Meng', 'van den Oord'),
        'PixelCNNDistribution': ('Salimans', 'Meng', 'van den Oord'),
        'LogisticMixture': ('Salimans', 'Meng'),
        'DiscretizedLogisticMixture': ('Salimans', 'Meng'),
    },
    'tfsmooth.models.base': {'TrainableModel': ('Meng',), 'DensityModel': ()},
    'tfsmooth.smoothing': {'SmoothedModel': ('Meng', 'Burda')},
    'tfsmooth.standardized': {'Standardized': (), 'StandardizedPair': ()},
}
GLOBS = {'tf': tf, 'np': np, 'tfp': tfp, 'keras': keras}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples():
  """Every docstring with examples in the modules of PUBLIC, by its doctest name."""
  finder = doctest.DocTestFinder()
  found = []
  for name in PUBLIC:
    module = importlib.import_module(name)
    found += [t for t in finder.find(module, globs=GLOBS) if t.examples]
  return sorted(found, key=lambda t: t.name)


EXAMPLES = _examples()


@pytest.mark.parametrize(
    'module, name', [(m, n) for m, names in PUBLIC.items() for n in names], ids=lambda v: v
)
def test_every_public_name_has_examples_and_references(module, name):
  doc = getattr(importlib.import_module(module), name).__doc__
  assert '#### Examples' in doc, f'{module}.{name} has no #### Examples section'
  assert '>>>' in doc.split('#### Examples', 1)[1], f'{module}.{name}: its Examples run nothing'
  cited = PUBLIC[module][name]
  if cited:
    references = doc.split('#### References', 1)
    assert len(references) == 2, f'{module}.{name} has no #### References section'
    missing = [author for author in cited if author not in references[1]]
    assert not missing, f'{module}.{name} does not cite {missing}'
  assert any(t.name == f'{module}.{name}' for t in EXAMPLES)


@pytest.mark.parametrize('test', EXAMPLES, ids=lambda t: t.name)
def test_the_examples_run(test):
  report = []
  runner = doctest.DocTestRunner(optionflags=FLAGS)
  result = runner.run(test, out=report.append)
  assert result.failed == 0, ''.join(report)
