"""TensorBoard summaries of a run in `workdir/summaries` (a path or a URL), written by the chief
only (other workers write to a no-op writer): the config as text at the start, `train/loss` and
`train/steps_per_sec` at each log, and what the evaluation returns at each evaluation
(`eval/<key>`: scalars, and image batches under keys starting with `images/`)."""

import os

import tensorflow as tf

IMAGES = 'images/'  # an evaluation key with this prefix holds an image batch [k, H, W, C]


class Summaries:
  """The run's summary writer."""

  def __init__(self, workdir, chief):
    self._writer = (
        tf.summary.create_file_writer(os.path.join(workdir, 'summaries'))
        if chief
        else tf.summary.create_noop_writer()
    )

  def config(self, step, text):
    with self._writer.as_default(step=step):
      tf.summary.text('config', f'```json\n{text}\n```')  # Markdown: keep the layout

  def training(self, step, loss, steps_per_sec):
    with self._writer.as_default(step=step):
      tf.summary.scalar('train/loss', loss)
      tf.summary.scalar('train/steps_per_sec', steps_per_sec)

  def evaluation(self, step, metrics):
    """Every entry of `metrics`: floats as scalars, `images/...` batches (uint8, or float in
    [0, 1]) as images."""
    with self._writer.as_default(step=step):
      for key, value in metrics.items():
        if key.startswith(IMAGES):
          tf.summary.image(f'eval/{key}', value, max_outputs=len(value))
        else:
          tf.summary.scalar(f'eval/{key}', value)

  def flush(self):
    self._writer.flush()
