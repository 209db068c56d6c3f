"""Feature networks for FID / KID / Inception score, loaded from SavedModels.

A `FeatureNetwork` maps float32 images [B, H, W, C] in [-1, 1] to
{'features': [B, F], 'logits': [B, K]}: `features` feed FID, KID and the feature-space nearest
neighbours, `logits` the Inception score. Its `name` goes into every reported figure.

  * A classifier of the model's own data (`launch/train_classifier.py` on any labelled image
    set; the project ships the Fashion-MNIST one in saved_models/fashion_mnist_classifier/): a
    SavedModel whose `serving_default` signature (and `__call__`) take `images` [None, H, W, C]
    and return `logits` (one per class) and `features` (the penultimate layer), beside its
    classifier.json (the data identity, event shape and class names it was trained on; the
    shipped Fashion-MNIST record predates them and names its data by data.name only). Figures
    computed with it are "domain" FID / KID / IS.
  * Inception-v3 (TF-GAN's TF-Hub module `tfgan/eval/inception/1`, the graph TF-GAN computes
    FID / IS with) from a directory (a local path or a URL): called on [B, 299, 299, 3] images
    in [-1, 1], it returns `logits` and `pool_3` (the 2048 pool features). Images are resized
    bilinearly to 299 x 299 (TF-GAN's preprocessing) and grey images repeated to three
    channels.
"""

import os

import tensorflow as tf

from tfsmooth import errors
from tfsmooth import records

CLASSIFIER_NAME = 'fashion_mnist_classifier'
CLASSIFIER_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    'saved_models',
    CLASSIFIER_NAME,
)
CLASSIFIER_VERSION = '1'
CLASSIFIER_INFO = 'classifier.json'
INCEPTION_NAME = 'inception_v3'
INCEPTION_SIZE = 299
INCEPTION_FEATURES = 'pool_3'


class FeatureNetwork:
  """A named classifier: images [B, H, W, C] in [-1, 1] -> {'features', 'logits'} (float32).

  `input_shape`: the (H, W, C) its signature takes, or None where it takes any (Inception
  resizes)."""

  def __init__(self, name, call, info=None, input_shape=None):
    self.name = name
    self.info = dict(info or {})
    self.input_shape = None if input_shape is None else tuple(input_shape)
    self._call = call

  def __call__(self, images):
    return self._call(tf.cast(images, tf.float32))


def _outputs(loaded, features_key, logits_key):
  """The loaded SavedModel as a function images -> {'features', 'logits'} ([B, ...] flattened).

  Uses the object's own `__call__` if it was saved with one, else its `serving_default`
  signature (whose single input takes the images by keyword).
  """
  if callable(loaded):
    fn = loaded
  else:
    signature = loaded.signatures.get('serving_default')
    if signature is None:
      raise errors.UserError(
          'The SavedModel is neither callable nor has a serving_default signature.'
      )
    (input_name,) = signature.structured_input_signature[1]
    fn = lambda images: signature(**{input_name: images})  # noqa: E731

  def call(images):
    outputs = fn(images)
    missing = {features_key, logits_key} - set(outputs)
    if missing:
      raise errors.UserError(
          f'The feature network returns {sorted(outputs)}, not {sorted(missing)}.'
      )
    flatten = lambda t: tf.reshape(t, [tf.shape(t)[0], -1])  # noqa: E731
    return {'features': flatten(outputs[features_key]), 'logits': flatten(outputs[logits_key])}

  return call


def _load(path, message):
  """tf.saved_model.load(path), or a UserError with `message` if path holds no SavedModel."""
  if not path or not tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
    raise errors.UserError(message)
  return tf.saved_model.load(path)


def _input_shape(loaded):
  """The (H, W, C) of the images the `serving_default` signature of `loaded` takes, where it
  fixes them, else None."""
  signature = getattr(loaded, 'signatures', {}).get('serving_default')
  if signature is None:
    return None
  specs = list(signature.structured_input_signature[1].values())
  if len(specs) != 1 or specs[0].shape.rank != 4 or None in specs[0].shape[1:]:
    return None
  return tuple(int(d) for d in specs[0].shape[1:])


def load_classifier(base_dir=CLASSIFIER_DIR, flag='--classifier_dir'):
  """A classifier exported by launch/train_classifier.py from `base_dir`/1 (default the
  shipped Fashion-MNIST one), named and described by its classifier.json."""
  path = os.path.join(base_dir, CLASSIFIER_VERSION)
  loaded = _load(
      path,
      f'No classifier SavedModel at {path}: pass {flag} the --export_dir of '
      'launch/train_classifier.py (the project ships one in '
      f'saved_models/{CLASSIFIER_NAME}).',
  )
  info = {}
  info_path = os.path.join(base_dir, CLASSIFIER_INFO)
  if tf.io.gfile.exists(info_path):
    info = records.read_json(info_path)
  name = info.get('name', CLASSIFIER_NAME)
  return FeatureNetwork(
      name, _outputs(loaded, 'features', 'logits'), info, input_shape=_input_shape(loaded)
  )


def load_inception(path, flag='--inception_path'):
  """Inception-v3 from a TF-Hub / SavedModel directory `path` (named by `flag` in errors).

  The model is called on images resized to 299 x 299 x 3 (values stay in [-1, 1]) and returns
  `logits` and `pool_3` (TF-GAN's Inception contract).
  """
  where = f'{path!r} holds no saved_model.pb' if path else 'no path was given'
  loaded = _load(
      path,
      f'FID / KID / IS with Inception-v3 need its weights, which cannot be '
      f'downloaded here, and {where}: pass {flag}=/dir/of/the/TF-Hub/module '
      "(TF-GAN's tfgan/eval/inception/1, unpacked: the directory with "
      "saved_model.pb), or use the project's Fashion-MNIST classifier instead.",
  )
  call = _outputs(loaded, INCEPTION_FEATURES, 'logits')

  def resized(images):
    images = tf.image.resize(images, [INCEPTION_SIZE, INCEPTION_SIZE], method='bilinear')
    if images.shape[-1] == 1:
      images = tf.image.grayscale_to_rgb(images)
    return call(images)

  return FeatureNetwork(INCEPTION_NAME, resized, {'path': path})
