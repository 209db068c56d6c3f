"""Trains the feature classifier of "domain" FID / KID / IS (and of the class accuracy of a
labelled model's samples) on any labelled image set and exports it: what
launch/train_classifier.py does.

The workdir gets config.json, metrics.json and the Keras weights; the export directory the
SavedModel (version directory `feature_networks.CLASSIFIER_VERSION`) beside classifier.json
(test accuracy, training steps, feature dimension, the data it was trained on: `identity`,
`event_shape` and `class_names`, by which a run finds its classifier, and the command that made
it). The network and its training are `tfsmooth.evaluation.classifier`.
"""

import os

import tensorflow as tf

from tfsmooth import errors
from tfsmooth import records
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks


def train_and_export(config, workdir, export_dir, overwrite=False, command='', log=print):
  """Trains the classifier of `config`, records it in `workdir` and exports it under
  `export_dir`, refusing to replace an existing export unless `overwrite`; returns (the version
  directory, the metrics). `command` is recorded in classifier.json."""
  version_dir = os.path.join(export_dir, feature_networks.CLASSIFIER_VERSION)
  if tf.io.gfile.exists(version_dir) and not overwrite:
    raise errors.UserError(
        f'{version_dir} already exists; pass --overwrite to replace it, or '
        'choose another --export_dir.'
    )
  tf.io.gfile.makedirs(workdir)
  records.write_text(os.path.join(workdir, 'config.json'), config.to_json_best_effort(indent=2))
  network, metrics = classifier.train(config, log=log)
  network.save_weights(os.path.join(workdir, 'classifier.weights.h5'))
  records.write_json(os.path.join(workdir, 'metrics.json'), metrics)
  info = dict(
      name=classifier.network_name(config.data),
      **metrics,
      command=command,
      config=config.to_dict(),
  )
  if tf.io.gfile.exists(version_dir):
    tf.io.gfile.rmtree(version_dir)
  return classifier.export(network, export_dir, info), metrics
