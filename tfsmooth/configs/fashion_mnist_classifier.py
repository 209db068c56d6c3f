"""Fashion-MNIST classifier: the feature network of the project's "domain" FID / KID / IS.

  python launch/train_classifier.py --config=tfsmooth/configs/fashion_mnist_classifier.py \
      --workdir=runs/fmnist_classifier --export_dir=saved_models/fashion_mnist_classifier

A small CNN (per entry of `filters` a 3x3 convolution, ReLU and 2x2 max-pooling; then a dense
layer of `features` units whose ReLU output is the feature vector; then the 10 logits), trained
with Adam on the training split minus its last `validation_examples` images, which are held out
for validation; the test split gives the recorded accuracy.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  config.data = ml_collections.ConfigDict(
      dict(name='fashion_mnist', source='auto', data_dir='', idx_dir='', validation_examples=5000)
  )
  config.model = ml_collections.ConfigDict(dict(filters=(32, 64), features=128))
  config.train = ml_collections.ConfigDict(
      dict(steps=3000, batch_size=128, learning_rate=1e-3, seed=0, log_every=100, eval_every=500)
  )
  return config
