"""The classifier behind "domain" FID / KID / IS and the class accuracy of samples, for any
labelled image set (the project ships the Fashion-MNIST one).

`train` fits the CNN of `tfsmooth/configs/fashion_mnist_classifier.py` (or of
`image_classifier.py`, the same network on any data) with Keras 3 and measures its accuracy on
the test split; `export` writes it as a SavedModel for `feature_networks.load_classifier`.

The data is the config's data block as the image configs have it (`image_sources`): data.name
a TFDS image set, or 'images' with data.path (a folder with one subfolder per class, or an
.npz with x and y), with labels; the input shape and the classes come from the source. Splits:
a TFDS set trains on data.train_split (default 'train') minus its last
data.validation_examples images, held out for validation, and is tested on data.test_split
(default 'test'), as the shipped classifier was; a folder or array uses its own seeded
train / validation / test splits (data.split_seed and the fractions), those a model run on the
same data with the same keys uses. The metrics name the data (`identity`, `event_shape`,
`class_names`), so that a run finds the classifier of its own data (`sample_eval.load_network`).
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


def load_labelled(split, data_dir='', source='auto', idx_dir='', **data):
  """(images [N, H, W, C] float32 in [-1, 1], labels [N] int32) of a split in TFDS's syntax
  ('train', 'test', 'train[:90%]', ...) of Fashion-MNIST, or of the TFDS set data['name'] with
  the other data keys (image_size, channels, label_feature) as `image_sources` reads them.

  Read through `image_sources` with labels on: images and labels from the same source in the
  same order, TFDS if prepared, else (Fashion-MNIST) the IDX image and label files, as `source`
  says.
  """
  config = dict(name=DATASET, data_dir=data_dir, source=source, idx_dir=idx_dir)
  config.update(data, labels=True)
  return image_sources.from_config(config).read(split)


def labelled_source(data):
  """The `image_sources.ImageSource` of a classifier config's data block, labels on; refuses
  points and data.labels=False in one paragraph."""
  data = dict(data.to_dict() if hasattr(data, 'to_dict') else data)
  if not image_sources.is_image_config(data):
    raise errors.UserError(
        f'--config.data.name={data.get("name")!r} names points; the classifier learns the '
        'classes of images: a TFDS image set (e.g. --config.data.name=cifar10) or your own '
        '(--config.data.name=images --config.data.path=DIR, one subfolder per class).'
    )
  if not data.get('labels', True):
    raise errors.UserError(
        'The classifier learns the classes of the images, and --config.data.labels=False '
        'turns them off: set --config.data.labels=True (a folder with one subfolder per class, '
        'an .npz with y, or a TFDS set with a class feature).'
    )
  return image_sources.from_config(dict(data, labels=True))


def network_name(data):
  """The classifier's name in reported figures: <TFDS name>_classifier, or for your images
  <the folder's or file's name>_classifier ('fashion_mnist_classifier' for the shipped one)."""
  name = data.get('name')
  if name == image_sources.USER_IMAGES:
    path = str(data.get('path') or '').rstrip('/')
    base = os.path.splitext(os.path.basename(path))[0] or name
    return f'{base}_classifier'
  return f'{name}_classifier'


def build(filters, features, input_shape=None, num_classes=NUM_CLASSES):
  """Keras model: images [B, H, W, C] (`input_shape`, default Fashion-MNIST's 28 x 28 x 1) ->
  {'features': [B, features], 'logits': [B, num_classes]}."""
  input_shape = tuple(input_shape or images.image_shape(DATASET))
  if input_shape[0] >> len(filters) < 1 or input_shape[1] >> len(filters) < 1:
    raise errors.UserError(
        f'{len(filters)} convolution blocks (--config.model.filters={list(filters)}) halve '
        f'{input_shape[0]} x {input_shape[1]} images {len(filters)} times, to nothing: use '
        'fewer filters entries or larger images.'
    )
  inputs = keras.Input(input_shape, name='images')
  h = inputs
  for f in filters:
    h = keras.layers.Conv2D(f, 3, padding='same', activation='relu')(h)
    h = keras.layers.MaxPooling2D()(h)
  h = keras.layers.Dense(features, activation='relu', name='features')(keras.layers.Flatten()(h))
  logits = keras.layers.Dense(num_classes, name='logits')(h)
  return keras.Model(inputs, {'features': h, 'logits': logits})


def _splits(source, data):
  """(train, validation, test), each (images, labels), of a classifier's data (module
  docstring); refuses a validation hold-out that leaves nothing to train on."""
  if isinstance(source, image_sources.TfdsSource):
    keys = {
        k: data.get(k) for k in ('name', 'image_size', 'channels', 'label_feature') if data.get(k)
    }
    where = dict(data_dir=data.get('data_dir', ''), source=data.get('source', 'auto'))
    where.update(idx_dir=data.get('idx_dir', ''), **keys)
    x, y = load_labelled(data.get('train_split') or 'train', **where)
    held_out = data.get('validation_examples')
    if not isinstance(held_out, int) or not 0 < held_out < len(x):
      raise errors.UserError(
          f'--config.data.validation_examples={held_out} must be between 1 '
          f'and {len(x) - 1} (the training split has {len(x)} images).'
      )
    test = load_labelled(data.get('test_split') or 'test', **where)
    return (x[:-held_out], y[:-held_out]), (x[-held_out:], y[-held_out:]), test
  return tuple(source.split(name) for name in image_sources.SPLITS)


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
  """Trains the classifier; returns (network from `build`, metrics dict naming the data:
  `identity`, `event_shape`, `class_names`)."""
  data, train_config = config.data, config.train
  if train_config.steps % train_config.eval_every:
    raise errors.UserError(
        f'--config.train.steps ({train_config.steps}) must be a multiple of '
        f'--config.train.eval_every ({train_config.eval_every}).'
    )
  source = labelled_source(data)
  (x, y), (x_val, y_val), (x_test, y_test) = _splits(source, data)
  keras.utils.set_random_seed(train_config.seed)
  network = build(
      tuple(config.model.filters), config.model.features, source.event_shape, source.num_classes
  )
  classifier = keras.Model(network.input, network.output['logits'])
  classifier.compile(
      optimizer=keras.optimizers.Adam(train_config.learning_rate),
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=['accuracy'],
  )
  batches = (
      tf.data.Dataset.from_tensor_slices((x, y))
      .shuffle(len(x), seed=train_config.seed)
      .repeat()
      .batch(train_config.batch_size)
      .prefetch(tf.data.AUTOTUNE)
  )
  log(
      f'Training on {len(x)} images of {source.identity} ({source.num_classes} classes), '
      f'validating on {len(x_val)}; {classifier.count_params()} parameters.'
  )
  start = time.time()
  history = classifier.fit(
      batches,
      steps_per_epoch=train_config.eval_every,
      epochs=train_config.steps // train_config.eval_every,
      validation_data=(x_val, y_val),
      shuffle=False,
      verbose=0,
      callbacks=[_Progress(train_config.steps, train_config.log_every, log)],
  )
  seconds = time.time() - start
  test_loss, test_accuracy = classifier.evaluate(x_test, y_test, batch_size=1000, verbose=0)
  log(f'test accuracy {test_accuracy:.4f} ({len(x_test)} images)')
  return network, dict(
      test_accuracy=float(test_accuracy),
      test_loss=float(test_loss),
      test_examples=len(x_test),
      validation_accuracy=float(history.history['val_accuracy'][-1]),
      validation_examples=len(x_val),
      training_steps=int(classifier.optimizer.iterations.numpy()),
      batch_size=train_config.batch_size,
      training_seconds=round(seconds, 1),
      parameters=classifier.count_params(),
      feature_dimension=config.model.features,
      num_classes=source.num_classes,
      class_names=list(source.class_names),
      identity=source.identity,
      event_shape=list(source.event_shape),
  )


class _Serving(tf.Module):
  """The network's serving function: images [None, H, W, C] in [-1, 1] -> logits, features."""

  def __init__(self, network):
    super().__init__()
    self.network = network

  @tf.function
  def __call__(self, batch):
    outputs = self.network(batch, training=False)
    return {'logits': outputs['logits'], 'features': outputs['features']}


def export(network, export_dir, info):
  """SavedModel in `export_dir`/1 (signature serving_default: float32 `images` of the
  network's input shape) and `info` as classifier.json."""
  module = _Serving(network)
  spec = tf.TensorSpec((None,) + tuple(network.input_shape[1:]), tf.float32, name='images')
  path = os.path.join(export_dir, feature_networks.CLASSIFIER_VERSION)
  serve = module.__call__.get_concrete_function(spec)
  tf.saved_model.save(module, path, signatures={'serving_default': serve})
  records.write_json(os.path.join(export_dir, feature_networks.CLASSIFIER_INFO), info)
  return path
