"""Trains the feature classifier behind "domain" FID / KID / IS (and the class accuracy of a
class-labelled model's samples) on any labelled image set, and exports it.

  python launch/train_classifier.py --config=tfsmooth/configs/fashion_mnist_classifier.py \
      --workdir=runs/fmnist_classifier --export_dir=saved_models/fashion_mnist_classifier
  python launch/train_classifier.py --config=tfsmooth/configs/image_classifier.py \
      --config.data.path=/path/to/images --workdir=runs/my_classifier \
      --export_dir=classifiers/my_images
  python launch/train_classifier.py --config=tfsmooth/configs/image_classifier.py:cifar10 \
      --workdir=runs/cifar10_classifier --export_dir=classifiers/cifar10

The data block is the image configs' (data.name a TFDS image set, or 'images' with data.path:
a folder with one subfolder per class, or an .npz with x and y); the input shape and the
classes come from the data. Writes config.json, metrics.json and the Keras weights into
--workdir, and into --export_dir the SavedModel (version directory 1/, signature
serving_default: float32 `images` [None, H, W, C] in [-1, 1] -> `logits` [None, K],
`features` [None, F]) beside classifier.json (test accuracy, training steps, feature
dimension, the data it learnt: `identity`, `event_shape`, `class_names`, and this command).
launch/evaluate.py --classifier_dir=<export_dir> takes it for a run of the same data (same
identity and image shape) and refuses it for any other.
"""

import os
import shlex
import sys

from absl import flags
from ml_collections import config_flags

from tfsmooth.programs import cli

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


def main():
  # Imported here, once cli.run_main has quieted TensorFlow's start-up.
  from tfsmooth.programs import classifier_training  # pylint: disable=g-import-not-at-top

  path, metrics = classifier_training.train_and_export(
      _CONFIG.value,
      _WORKDIR.value,
      _EXPORT_DIR.value,
      overwrite=_OVERWRITE.value,
      command='python ' + shlex.join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
      log=lambda line: print(line, flush=True),
  )
  print(f'exported {path} (test accuracy {metrics["test_accuracy"]:.4f})', flush=True)


if __name__ == '__main__':
  cli.run_main(main, {'workdir': cli.WRITE, 'export_dir': cli.WRITE}, verbosity=None)
