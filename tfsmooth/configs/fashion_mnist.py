"""Fashion-MNIST PixelCNN++ on CPU: the smoothed pair or the baseline, same parameter count.

  python launch/train.py --config=tfsmooth/configs/fashion_mnist.py:baseline \
      --workdir=runs/fmnist_baseline
  python launch/train.py --config=tfsmooth/configs/fashion_mnist.py:smoothed \
      --workdir=runs/fmnist_smoothed

Small enough for a CPU: 1 gated resnet per resolution, no dropout, batch 32. The pair has two
32-filter networks (2 x 0.58M parameters), the baseline one 45-filter network (1.13M, 1.4%
fewer). sigma 0.5 as the paper's MNIST setting (data in [-1, 1]). The paper reports no
Fashion-MNIST figures. 5000 steps (2.7 epochs) give recognisable samples: test bpd 2.860
(baseline, exact) and <= 2.909 (pair, IW-4). A training step takes 0.36 s (baseline) and
0.60 s (pair) on a quiet 2-core CPU (benchmarks/pixelcnn_speed.py), so 5000 steps take about
30 and 50 minutes; a rerun with a larger --config.train.steps continues from the checkpoint.
"""

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  config = images.get_config(
      'fashion_mnist', variant or 'smoothed', sigma=0.5, nr_filters=32, baseline_filters=45,
      nr_resnet=1, nr_logistic_mix=10, dropout=0.0, batch_size=32, learning_rate=1e-3,
      lr_decay=0.99995, steps=5000, paper_label='no Fashion-MNIST figures in the paper')
  config.train.eval_every = 1000
  config.train.log_every = 50
  config.train.checkpoint_every = 250
  config.data.test_examples = 1000
  return config
