"""The tiny model, data and config that the trainer tests share with their subprocess driver,
and free loopback ports for multi-worker tests."""

import socket

import ml_collections
import numpy as np
import tensorflow as tf

from tfsmooth.models import made

POINTS = np.random.default_rng(0).normal(size=(512, 2)).astype(np.float32)
HELD_OUT = np.random.default_rng(1).normal(size=(256, 2)).astype(np.float32)  # validation


def dataset():
  return tf.data.Dataset.from_tensor_slices(POINTS).shuffle(512, seed=0).repeat()


def model():
  tf.keras.utils.set_random_seed(5)
  return made.MADE(2, (16,), 2)


def config(steps, **overrides):
  settings = dict(
      steps=steps,
      batch_size=64,
      learning_rate=3e-3,
      seed=0,
      log_every=20,
      checkpoint_every=200,
      keep_checkpoints=2,
      jit_compile=False,
      ema_decay=0.9,
      steps_per_loop=8,
  )  # the fault tests run the multi-step loop
  settings.update(overrides)
  return ml_collections.ConfigDict(settings)


def free_ports(n):
  """n TCP ports on 127.0.0.1 that were free a moment ago (for a TF_CONFIG cluster)."""
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports
