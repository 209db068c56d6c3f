"""Trains the Fashion-MNIST classifier behind "domain" FID / KID / IS and exports it.

  python launch/train_classifier.py --config=tfsmooth/configs/fashion_mnist_classifier.py \
      --workdir=runs/fmnist_classifier --export_dir=saved_models/fashion_mnist_classifier

Writes config.json, metrics.json and the Keras weights into --workdir, and into --export_dir
the SavedModel (version directory 1/, signature serving_default: float32 `images`
[None, 28, 28, 1] in [-1, 1] -> `logits` [None, 10], `features` [None, F]) beside
classifier.json (test accuracy, training steps, feature dimension and this command).
"""

import os
import shlex
import sys

from tfsmooth import logs

logs.quiet()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import tensorflow as tf  # noqa: E402

from tfsmooth import errors  # noqa: E402
from tfsmooth import records  # noqa: E402
from tfsmooth.evaluation import classifier  # noqa: E402
from tfsmooth.evaluation import feature_networks  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Classifier config file.', lock_config=True
)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for config.json, metrics.json and the trained weights.'
)
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir',
    None,
    'SavedModel base directory; the model goes into its version directory 1/.',
)
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace an existing export.')
flags.mark_flags_as_required(['config', 'workdir', 'export_dir'])


@errors.reported
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  version_dir = os.path.join(_EXPORT_DIR.value, feature_networks.CLASSIFIER_VERSION)
  if tf.io.gfile.exists(version_dir) and not _OVERWRITE.value:
    raise errors.UserError(
        f'{version_dir} already exists; pass --overwrite to replace it, or '
        'choose another --export_dir.'
    )
  tf.io.gfile.makedirs(_WORKDIR.value)
  records.write_text(
      os.path.join(_WORKDIR.value, 'config.json'), _CONFIG.value.to_json_best_effort(indent=2)
  )
  network, metrics = classifier.train(_CONFIG.value, log=lambda line: print(line, flush=True))
  network.save_weights(os.path.join(_WORKDIR.value, 'classifier.weights.h5'))
  records.write_json(os.path.join(_WORKDIR.value, 'metrics.json'), metrics)
  command = 'python ' + shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:])
  info = dict(
      name=feature_networks.CLASSIFIER_NAME,
      **metrics,
      command=command,
      config=_CONFIG.value.to_dict(),
  )
  if tf.io.gfile.exists(version_dir):
    tf.io.gfile.rmtree(version_dir)
  path = classifier.export(network, _EXPORT_DIR.value, info)
  print(f'exported {path} (test accuracy {metrics["test_accuracy"]:.4f})', flush=True)


if __name__ == '__main__':
  errors.run_main(main, {'workdir': errors.WRITE, 'export_dir': errors.WRITE})
