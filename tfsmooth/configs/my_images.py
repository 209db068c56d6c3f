"""Your own images: a folder of image files or an image array, the smoothed pair or the baseline.

  python launch/train.py --config=tfsmooth/configs/my_images.py \
      --config.data.path=/path/to/images --workdir=runs/my_images
  python launch/train.py --config=tfsmooth/configs/my_images.py:baseline \
      --config.data.path=/path/to/images --workdir=runs/my_images_baseline

data.path (required) is a folder of PNG, JPEG, BMP or GIF files (flat, or one subfolder per
class; local or a URL) or an array file (.npy: uint8 [N, H, W, C]; .npz: x, and y for labels).
Every image is centre-cropped to a square, resized to data.image_size (a multiple of 4) and
converted to data.channels (1 grey, 3 RGB), then rounded to 8 bits (tfsmooth/data/
image_files.py). data.labels=True reads the classes (class subfolders, or the .npz's y).
data.skip_unreadable=True leaves corrupt files out (with a warning naming them) instead of
refusing them. The images are split once, seeded by data.split_seed, into
validation_fraction / test_fraction / the rest for training; config.json records the split
(hashes, counts, for small folders the file list), and a resume refuses a folder that changed.

Sized for a CPU like fashion_mnist.py: PixelCNN++s of 1 gated resnet per resolution, the pair's
two networks of 32 filters, the baseline one network of 45 filters (about the pair's parameter
count at 28 x 28 x 1), 10 logistics, no dropout, batch 32, 5000 steps, EMA weights. Bigger
images or data: --config.model.nr_filters= / --config.model.nr_resnet= (and the same keys of
conditional_model for p(x | x~)), --config.train.steps=.

sigma: the paper's heuristic on your training images (smoothing.sigma_heuristic=True, App.
C.1: median pairwise distance / (2 sqrt(D)); 0.5 for MNIST and 0.3 for CIFAR-10 by the paper's
values) rather than a fixed number: nothing is known about your images in advance, and the
heuristic scales sigma to their spread as the paper did for its data sets. The value is
settled once into config.json. For a fixed sigma: --config.smoothing.sigma_heuristic=False
--config.smoothing.sigma=0.3.
"""

import ml_collections

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  config = images.get_config(
      'images',
      variant or 'smoothed',
      sigma=0.5,
      nr_filters=32,
      baseline_filters=45,
      nr_resnet=1,
      nr_logistic_mix=10,
      dropout=0.0,
      batch_size=32,
      learning_rate=1e-3,
      lr_decay=0.99995,
      steps=5000,
      paper_label='no figures in the paper for your images',
  )
  config.data = ml_collections.ConfigDict(
      dict(
          name='images',  # your images from `path`; 'file' is points, other names TFDS sets
          path='',
          image_size=28,
          channels=1,
          labels=False,
          label_drop_rate=0.1,  # share of training labels dropped to the null class
          skip_unreadable=False,
          split_seed=0,
          validation_fraction=0.1,
          test_fraction=0.1,
          validation_examples=256,  # validation images scored at each evaluation (0: all)
          test_examples=0,  # 0: the whole test split
      )
  )
  config.smoothing.sigma_heuristic = True
  config.train.eval_every = 1000
  config.train.log_every = 50
  config.train.checkpoint_every = 250
  config.train.ema_decay = 0.999
  return config
