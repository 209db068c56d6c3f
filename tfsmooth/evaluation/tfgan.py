"""TF-GAN's `classifier_metrics` module, loaded without the `tensorflow_gan` package `__init__`.

tensorflow-gan 2.1.0's package `__init__` imports `tf.estimator`, which TensorFlow >= 2.16 no
longer has, so `import tensorflow_gan` fails. Its module
`tensorflow_gan.python.eval.classifier_metrics` (and the `eval_utils` it imports) needs only
tensorflow and tensorflow_probability. `classifier_metrics()` registers the three parent
packages in `sys.modules` as bare modules whose `__path__` points at their folders (so their
`__init__` files never run) and imports the module through them. The bare parents stay
registered: after this call `import tensorflow_gan` gives the bare package, not the broken one.
"""

import functools
import importlib
import importlib.util
import os
import sys
import types

_PARENTS = ('tensorflow_gan', 'tensorflow_gan.python', 'tensorflow_gan.python.eval')


@functools.cache
def classifier_metrics():
  """The module `tensorflow_gan.python.eval.classifier_metrics`."""
  spec = importlib.util.find_spec(_PARENTS[0])  # finds the package without running __init__
  if spec is None:
    raise ImportError('tensorflow-gan is not installed: pip install tensorflow-gan')
  root = spec.submodule_search_locations[0]
  for name in _PARENTS:
    if name not in sys.modules:
      package = types.ModuleType(name)
      package.__path__ = [os.path.join(root, *name.split('.')[1:])]
      sys.modules[name] = package
  return importlib.import_module(_PARENTS[-1] + '.classifier_metrics')
