"""launch/train_classifier.py on any labelled image set, and a run finding its classifier by data
identity: a tiny folder of generated 8 x 8 images in three class subfolders, a few steps."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import tasks
from tfsmooth.configs import image_classifier
from tfsmooth.configs import my_images
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks
from tfsmooth.programs import classifier_training
from tfsmooth.programs import sample_eval

CLASSES = ('bright', 'dark', 'mid')  # sorted: the labels are 0, 1, 2 in this order
LEVELS = {'dark': 40, 'mid': 128, 'bright': 215}


def _folder(root, per_class=10):
  """root/<class>/<i>.png: noisy grey 8 x 8 images around the class's grey level."""
  rng = np.random.default_rng(0)
  for name in CLASSES:
    os.makedirs(root / name)
    for i in range(per_class):
      image = np.clip(rng.normal(LEVELS[name], 15, (8, 8, 1)), 0, 255).astype(np.uint8)
      tf.io.write_file(str(root / name / f'{i}.png'), tf.io.encode_png(image))
  with open(root / 'notes.txt', 'w') as f:  # not an image: ignored
    f.write('generated')
  return str(root)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(the folder, the classifier's export dir, its classifier.json, its metrics)."""
  tmp = tmp_path_factory.mktemp('classifier_data')
  folder = _folder(tmp / 'images')
  config = image_classifier.get_config()
  config.data.update(path=folder, image_size=8, channels=1)
  config.model.update(filters=(4,), features=6)
  config.train.update(steps=4, eval_every=2, log_every=2, batch_size=8, learning_rate=1e-2)
  export_dir = str(tmp / 'export')
  _, metrics = classifier_training.train_and_export(
      config, str(tmp / 'work'), export_dir, command='test', log=lambda line: None
  )
  with open(os.path.join(export_dir, feature_networks.CLASSIFIER_INFO)) as f:
    info = json.load(f)
  return folder, export_dir, info, metrics


def _run_source(folder, image_size=8):
  """The image source a class-labelled my_images run on `folder` reads."""
  config = my_images.get_config()
  config.data.update(path=folder, image_size=image_size, channels=1, labels=True)
  return tasks.ImageTask(config).source


def test_classifier_of_a_folder_records_its_data_and_classes(trained):
  folder, export_dir, info, metrics = trained
  run_source = _run_source(folder)
  assert info['identity'] == run_source.identity and info['identity'].startswith('folder:')
  assert info['event_shape'] == [8, 8, 1]
  assert info['class_names'] == sorted(
      d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))
  )
  assert info['num_classes'] == 3 and info['name'] == 'images_classifier'
  assert info['config']['data']['path'] == folder and info['command'] == 'test'
  # The splits are the run's: tested on the run's 3 test images (10% of 30), trained on 24.
  assert metrics['test_examples'] == len(run_source.split('test')[0]) == 3
  assert metrics['validation_examples'] == len(run_source.split('validation')[0]) == 3
  network = feature_networks.load_classifier(export_dir)
  assert network.input_shape == (8, 8, 1)
  loaded = tf.saved_model.load(os.path.join(export_dir, feature_networks.CLASSIFIER_VERSION))
  assert list(loaded.signatures['serving_default'].structured_input_signature[1]) == ['images']
  x = run_source.split('test')[0]
  outputs = network(x)
  assert outputs['logits'].shape == (3, 3) and outputs['features'].shape == (3, 6)
  assert sample_eval.classes_match(network, list(CLASSES)) == (True, '')
  assert not sample_eval.classes_match(network, ['a', 'b', 'c'])[0]


def test_a_run_finds_the_classifier_of_its_own_data_and_refuses_others(trained):
  folder, export_dir, info, _ = trained
  run_source = _run_source(folder)
  network = sample_eval.load_network(
      'classifier',
      export_dir,
      dataset='images',
      identity=run_source.identity,
      event_shape=(8, 8, 1),
  )
  assert network.name == 'images_classifier'
  with pytest.raises(errors.UserError) as refused:
    sample_eval.load_network(
        'classifier',
        export_dir,
        dataset='fashion_mnist',
        identity='tfds:fashion_mnist',
        event_shape=(28, 28, 1),
    )
  message = str(refused.value)
  assert info['identity'] in message and 'tfds:fashion_mnist' in message
  assert '8x8x1' in message and '28x28x1' in message and '--classifier_dir' in message
  # The same folder at another size is other images for the classifier.
  with pytest.raises(errors.UserError, match=r'\(8x8x1\), the model on folder:.*\(12x12x1\)'):
    sample_eval.load_network(
        'classifier', export_dir, identity=run_source.identity, event_shape=(12, 12, 1)
    )


def test_the_shipped_classifier_without_identity_is_matched_by_name_and_shape():
  shipped = sample_eval.load_network(
      'classifier', dataset='fashion_mnist', identity='tfds:fashion_mnist', event_shape=(28, 28, 1)
  )
  assert 'identity' not in shipped.info and shipped.input_shape == (28, 28, 1)
  with pytest.raises(errors.UserError, match='trained on fashion_mnist, the model on tfds:mnist'):
    sample_eval.load_network('classifier', dataset='mnist', identity='tfds:mnist')
  with pytest.raises(errors.UserError, match='takes 28x28x1 images.*draws 32x32x1'):
    sample_eval.load_network('classifier', dataset='fashion_mnist', event_shape=(32, 32, 1))


def test_classifier_data_mistakes_are_one_paragraph(tmp_path):
  config = image_classifier.get_config()
  config.data.update(path=_folder(tmp_path / 'images', per_class=2), labels=False)
  with pytest.raises(errors.UserError, match='--config.data.labels=True'):
    classifier.train(config)
  config.data.update(name='rings', labels=True)
  with pytest.raises(errors.UserError, match='names points'):
    classifier.train(config)
  with pytest.raises(errors.UserError, match='halve 8 x 8 images 4 times'):
    classifier.build((4, 4, 4, 4), 6, (8, 8, 1), 3)
