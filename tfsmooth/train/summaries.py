"""TensorBoard summaries of a run in `workdir/summaries` (a path or a URL), written by the chief
only (other workers write to a no-op writer): the config as text at the start, `train/loss` and
`train/steps_per_sec` at each log, and what the evaluation returns at each evaluation
(`eval/<key>`: scalars, and image batches under keys starting with `images/`).

Each write ends with a flush (leaving `as_default` flushes), so a storage that refuses the
events (a full disk: the writer raises from its flush) fails the call that wrote them, as
`writes.WriteFailed` naming the summaries folder; the events it could not write are dropped.
"""

import os

import tensorflow as tf

from tfsmooth import writes

IMAGES = 'images/'  # an evaluation key with this prefix holds an image batch [k, H, W, C]
WHAT = 'TensorBoard summaries'


class Summaries:
  """The run's summary writer."""

  def __init__(self, workdir, chief):
    self.directory = os.path.join(workdir, 'summaries')
    with self._guarded():
      self._writer = (
          tf.summary.create_file_writer(self.directory)
          if chief
          else tf.summary.create_noop_writer()
      )

  def _guarded(self):
    return writes.guarded(WHAT, self.directory)

  def config(self, step, text):
    with self._guarded(), self._writer.as_default(step=step):
      tf.summary.text('config', f'```json\n{text}\n```')  # Markdown: keep the layout

  def training(self, step, loss, steps_per_sec):
    with self._guarded(), self._writer.as_default(step=step):
      tf.summary.scalar('train/loss', loss)
      tf.summary.scalar('train/steps_per_sec', steps_per_sec)

  def evaluation(self, step, metrics):
    """Every entry of `metrics`: floats as scalars, `images/...` batches (uint8, or float in
    [0, 1]) as images."""
    with self._guarded(), self._writer.as_default(step=step):
      for key, value in metrics.items():
        if key.startswith(IMAGES):
          tf.summary.image(f'eval/{key}', value, max_outputs=len(value))
        else:
          tf.summary.scalar(f'eval/{key}', value)

  def flush(self):
    with self._guarded():
      self._writer.flush()
