import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import errors
from tfsmooth.evaluation import classifier
from tfsmooth.evaluation import feature_networks
from tests import offline_data

SHIPPED = os.path.join(feature_networks.CLASSIFIER_DIR, feature_networks.CLASSIFIER_VERSION)

# Runs with nothing but TensorFlow (and its numpy): loads the SavedModel, reports its signature
# and the accuracy of its logits on the images and labels given as .npy files.
_FRESH_PROCESS = """
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
path, x_path, y_path = sys.argv[1:]
proto = saved_model_pb2.SavedModel()
with open(path + '/saved_model.pb', 'rb') as f:
  proto.ParseFromString(f.read())
signature = proto.meta_graphs[0].signature_def['serving_default']
serve = tf.saved_model.load(path).signatures['serving_default']
out = serve(images=tf.constant(np.load(x_path)))
accuracy = float(np.mean(np.argmax(out['logits'].numpy(), 1) == np.load(y_path)))
print(json.dumps(dict(method=signature.method_name, inputs=sorted(signature.inputs),
                      outputs=sorted(signature.outputs), features=out['features'].shape[1],
                      accuracy=accuracy)))
"""


@offline_data.needs_idx
def test_shipped_classifier_loads_in_a_fresh_process_and_reaches_its_accuracy(tmp_path):
  with open(os.path.join(feature_networks.CLASSIFIER_DIR, feature_networks.CLASSIFIER_INFO)) as f:
    info = json.load(f)
  x, y = classifier.load_labelled('test', source='idx')
  n = 2000
  np.save(tmp_path / 'x.npy', x[:n])
  np.save(tmp_path / 'y.npy', y[:n])
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  result = subprocess.run(
      [
          sys.executable,
          '-c',
          _FRESH_PROCESS,
          SHIPPED,
          str(tmp_path / 'x.npy'),
          str(tmp_path / 'y.npy'),
      ],
      capture_output=True,
      text=True,
      env=env,
      check=True,
  )
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report['method'] == 'tensorflow/serving/predict'
  assert report['inputs'] == ['images'] and report['outputs'] == ['features', 'logits']
  assert report['features'] == info['feature_dimension']
  # The binomial standard error of an accuracy near 0.9 on 2000 images is about 0.007.
  assert report['accuracy'] > info['test_accuracy'] - 0.02


def test_missing_feature_network_paths_name_their_flags(tmp_path):
  for path in ('', str(tmp_path / 'nowhere')):
    with pytest.raises(errors.UserError, match='--inception_path'):
      feature_networks.load_inception(path)
  with pytest.raises(errors.UserError, match='--classifier_dir'):
    feature_networks.load_classifier(str(tmp_path))


class _TinyInception(tf.Module):
  """TF-GAN's Inception contract: [B, 299, 299, 3] -> logits [B, 3], pool_3 [B, 1, 1, 3]."""

  @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
  def __call__(self, x):
    means = tf.reduce_mean(x, [1, 2], keepdims=True)
    return {'logits': 2.0 * means[:, 0, 0], 'pool_3': means}


def test_inception_loader_resizes_grey_images_on_a_tiny_model_of_the_same_contract(tmp_path):
  tf.saved_model.save(_TinyInception(), str(tmp_path))
  network = feature_networks.load_inception(str(tmp_path))
  grey = np.stack([np.full((28, 28, 1), v, np.float32) for v in (-0.5, 0.25)])
  outputs = network(grey)
  assert network.name == feature_networks.INCEPTION_NAME
  np.testing.assert_allclose(outputs['features'], [[-0.5] * 3, [0.25] * 3], atol=1e-6)
  np.testing.assert_allclose(outputs['logits'], [[-1.0] * 3, [0.5] * 3], atol=1e-6)
