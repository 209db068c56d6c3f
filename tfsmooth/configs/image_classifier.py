"""A feature classifier for any labelled image set: "domain" FID / KID / IS and the class
accuracy of a class-labelled model's samples (launch/evaluate.py) on data other than
Fashion-MNIST.

  python launch/train_classifier.py --config=tfsmooth/configs/image_classifier.py \
      --config.data.path=/path/to/images --workdir=runs/my_classifier \
      --export_dir=classifiers/my_images
  python launch/train_classifier.py --config=tfsmooth/configs/image_classifier.py:svhn_cropped \
      --workdir=runs/svhn_classifier --export_dir=classifiers/svhn_cropped
  python launch/evaluate.py --workdir=runs/my_images --classifier_dir=classifiers/my_images

The data block is the image configs' (tfsmooth/configs/images.py, my_images.py), so the
classifier sees the images a model run on the same keys sees: the default variant `images`
reads your folder (one subfolder per class) or .npz array (x and y) from data.path, fitted to
28 x 28 x 1 as my_images.py does (set data.image_size and data.channels as your run did);
any other variant is a TFDS image set by name, at its own size. A run finds its classifier by
the data identity and image shape recorded in classifier.json, so the keys that decide which
images are read (path, image_size, channels; the TFDS name) must be the run's. Your images
keep their own seeded train / validation / test splits (split_seed, the fractions); a TFDS set
trains on train_split minus its last validation_examples images and is tested on test_split.

The network and its training are fashion_mnist_classifier.py's (two blocks of 3x3 convolution,
ReLU and 2x2 max-pooling, 128 features, Adam, 3000 steps of batch 128): images whose side is
at least 4 fit (each block halves it).
"""

import ml_collections

from tfsmooth.configs import fashion_mnist_classifier


def get_config(variant='images'):
  variant = variant or 'images'
  config = fashion_mnist_classifier.get_config()
  own = variant == 'images'
  config.data = ml_collections.ConfigDict(
      dict(
          name=variant,  # 'images': yours from `path`; any other name a TFDS image set
          path='',
          source='auto',
          data_dir='',
          idx_dir='',
          label_feature='',  # a TFDS set's class feature ('' : label)
          labels=True,
          image_size=28 if own else 0,  # 0: the TFDS set's own size
          channels=1 if own else 0,  # 0: the TFDS set's own channels
          skip_unreadable=False,
          split_seed=0,
          validation_fraction=0.1,
          test_fraction=0.1,
          train_split='train',  # TFDS sets only
          test_split='test',  # TFDS sets only
          validation_examples=5000,  # TFDS sets only: the last images of train_split
      )
  )
  return config
