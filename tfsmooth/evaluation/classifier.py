"""The project's Fashion-MNIST classifier, the feature network of "domain" FID / KID / IS.

`train` fits the CNN of `tfsmooth/configs/fashion_mnist_classifier.py` with Keras 3 on the
training split minus a held-out validation slice (its last images) and measures accuracy on
the test split; `export` writes it as a SavedModel for `feature_networks.load_classifier`.
"""

import os
import time

import keras
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import records
from tfsmooth.data import image_sources
from tfsmooth.data import images
from tfsmooth.evaluation import feature_networks

DATASET = 'fashion_mnist'
NUM_CLASSES = 10
LABEL_FILES = {'train': 'train-labels-idx1-ubyte.gz', 'test': 't10k-labels-idx1-ubyte.gz'}


def load_labelled(split, data_dir='', source='auto', idx_dir=''):
  """(images [N, 28, 28, 1] float32 in [-1, 1], labels [N] int32) of a Fashion-MNIST split in
  TFDS's syntax ('train', 'test', 'train[:90%]', ...).

  Read through `image_sources` with labels on: images and labels from the same source in the
  same order, TFDS if prepared, else the IDX image and label files, as `source` says.
  """
  data = dict(name=DATASET, data_dir=data_dir, source=source, idx_dir=idx_dir, labels=True)
  return image_sources.from_config(data).read(split)


def build(filters, features):
  """Keras model: images [B, 28, 28, 1] -> {'features': [B, features], 'logits': [B, 10]}."""
  inputs = keras.Input(images.image_shape(DATASET), name='images')
  h = inputs
  for f in filters:
    h = keras.layers.Conv2D(f, 3, padding='same', activation='relu')(h)
    h = keras.layers.MaxPooling2D()(h)
  h = keras.layers.Dense(features, activation='relu', name='features')(keras.layers.Flatten()(h))
  logits = keras.layers.Dense(NUM_CLASSES, name='logits')(h)
  return keras.Model(inputs, {'features': h, 'logits': logits})


class _Progress(keras.callbacks.Callback):
  """Prints a line every `log_every` steps and after each validation."""

  def __init__(self, steps, log_every, log):
    super().__init__()
    self.steps, self.log_every, self.log = steps, log_every, log
    self.start = time.time()

  def _step(self):
    return int(self.model.optimizer.iterations.numpy())

  def on_train_batch_end(self, batch, logs=None):
    step = self._step()
    if step % self.log_every == 0:
      self.log(
          f'step {step}/{self.steps}  loss {logs["loss"]:.4f}  '
          f'accuracy {logs["accuracy"]:.4f}  {time.time() - self.start:.0f} s'
      )

  def on_epoch_end(self, epoch, logs=None):
    self.log(
        f'step {self._step()}/{self.steps}  validation loss {logs["val_loss"]:.4f}  '
        f'accuracy {logs["val_accuracy"]:.4f}'
    )


def train(config, log=print):
  """Trains the classifier; returns (network from `build`, metrics dict)."""
  data, train_config = config.data, config.train
  if data.name != DATASET:
    raise errors.UserError(
        f'The classifier is for {DATASET}, not {data.name!r} (--config.data.name).'
    )
  if train_config.steps % train_config.eval_every:
    raise errors.UserError(
        f'--config.train.steps ({train_config.steps}) must be a multiple of '
        f'--config.train.eval_every ({train_config.eval_every}).'
    )
  source = dict(data_dir=data.data_dir, source=data.source, idx_dir=data.idx_dir)
  x, y = load_labelled('train', **source)
  held_out = data.validation_examples
  if not 0 < held_out < len(x):
    raise errors.UserError(
        f'--config.data.validation_examples={held_out} must be between 1 '
        f'and {len(x) - 1} (the training split has {len(x)} images).'
    )
  keras.utils.set_random_seed(train_config.seed)
  network = build(tuple(config.model.filters), config.model.features)
  classifier = keras.Model(network.input, network.output['logits'])
  classifier.compile(
      optimizer=keras.optimizers.Adam(train_config.learning_rate),
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=['accuracy'],
  )
  batches = (
      tf.data.Dataset.from_tensor_slices((x[:-held_out], y[:-held_out]))
      .shuffle(len(x) - held_out, seed=train_config.seed)
      .repeat()
      .batch(train_config.batch_size)
      .prefetch(tf.data.AUTOTUNE)
  )
  log(
      f'Training on {len(x) - held_out} images, validating on {held_out}; '
      f'{classifier.count_params()} parameters.'
  )
  start = time.time()
  history = classifier.fit(
      batches,
      steps_per_epoch=train_config.eval_every,
      epochs=train_config.steps // train_config.eval_every,
      validation_data=(x[-held_out:], y[-held_out:]),
      shuffle=False,
      verbose=0,
      callbacks=[_Progress(train_config.steps, train_config.log_every, log)],
  )
  seconds = time.time() - start
  x_test, y_test = load_labelled('test', **source)
  test_loss, test_accuracy = classifier.evaluate(x_test, y_test, batch_size=1000, verbose=0)
  log(f'test accuracy {test_accuracy:.4f} ({len(x_test)} images)')
  return network, dict(
      test_accuracy=float(test_accuracy),
      test_loss=float(test_loss),
      test_examples=len(x_test),
      validation_accuracy=float(history.history['val_accuracy'][-1]),
      validation_examples=held_out,
      training_steps=int(classifier.optimizer.iterations.numpy()),
      batch_size=train_config.batch_size,
      training_seconds=round(seconds, 1),
      parameters=classifier.count_params(),
      feature_dimension=config.model.features,
      num_classes=NUM_CLASSES,
  )


class _Serving(tf.Module):
  """The network's serving function: images [None, 28, 28, 1] in [-1, 1] -> logits, features."""

  def __init__(self, network):
    super().__init__()
    self.network = network

  @tf.function(
      input_signature=[
          tf.TensorSpec((None,) + images.image_shape(DATASET), tf.float32, name='images')
      ]
  )
  def __call__(self, batch):
    outputs = self.network(batch, training=False)
    return {'logits': outputs['logits'], 'features': outputs['features']}


def export(network, export_dir, info):
  """SavedModel in `export_dir`/1 (signature serving_default) and `info` as classifier.json."""
  module = _Serving(network)
  path = os.path.join(export_dir, feature_networks.CLASSIFIER_VERSION)
  tf.saved_model.save(module, path, signatures={'serving_default': module.__call__})
  records.write_json(os.path.join(export_dir, feature_networks.CLASSIFIER_INFO), info)
  return path
