"""CelebA (centre-crop 140, resize 32) PixelCNN++ as in the paper (section 4.3, App. C): sigma 0.3,
160 filters.

  python launch/train.py --config=tfsmooth/configs/celeb_a.py --workdir=runs/celeb_a
  python launch/train.py --config=tfsmooth/configs/celeb_a.py:baseline \
      --workdir=runs/celeb_a_baseline

5 gated resnets per resolution, 10 logistic mixtures, dropout 0.5, Adam 2e-4 (paper App. C.1)
with PixelCNN++'s per-step decay 0.999995, global batch 64 (PixelCNN++'s 16 per GPU on 4 GPUs).
The baseline has 226 filters: one network with about the pair's total parameter count.
Sized for accelerators (`--config.train.strategy=mirrored` or `tpu`), not for this CPU.
"""

from tfsmooth.configs import images


def get_config(variant='smoothed'):
  return images.get_config(
      'celeb_a', variant or 'smoothed', sigma=0.3, nr_filters=160, baseline_filters=226,
      nr_resnet=5, nr_logistic_mix=10, dropout=0.5, batch_size=64, learning_rate=2e-4,
      lr_decay=0.999995, steps=500_000,
      paper_label='the paper reports no bpd for CelebA')
