"""JSON records of a run or an export, written whole: config.json, metrics.json, eval.json,
classifier.json, tfsmooth.json.

`write_json` renders the value first (numpy scalars as numbers, non-finite floats as null:
JSON has no Infinity), writes a temporary file beside the target and renames it into place,
so a reader sees the old record or the new one, never half of one. Paths go through
`tf.io.gfile`, so they may be URLs (gs://..., ram://...); on object stores the rename is a copy,
and an object appears whole. A write the storage refuses (a full disk, a lost permission)
raises `writes.WriteFailed`, which names the record, and leaves no temporary behind.
"""

import json
import math
import os

import numpy as np
import tensorflow as tf

from tfsmooth import writes


def json_ready(value):
  """`value` with numpy scalars and arrays as Python, non-finite floats as None."""
  if isinstance(value, dict):
    return {str(k): json_ready(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_ready(v) for v in value]
  if isinstance(value, np.ndarray):
    return json_ready(value.tolist())
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  if isinstance(value, np.integer):
    return int(value)
  if isinstance(value, np.bool_):
    return bool(value)
  return value


def write_text(path, text):
  """Writes `text` to `path` through a temporary file renamed into place (`writes.write_file`:
  raises `writes.WriteFailed` if the storage refuses)."""
  writes.write_file(path, text, what=f'the record {os.path.basename(path)}')


def write_json(path, value):
  """Writes `value` as indented JSON (see the module docstring)."""
  write_text(path, json.dumps(json_ready(value), indent=2, allow_nan=False) + '\n')


def read_json(path):
  """The parsed JSON record at `path`."""
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
