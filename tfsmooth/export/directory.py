"""The serving directory protocol: numeric versions published whole, their metadata, warm-up
requests and weights.

An export base directory holds numeric version directories `<export_dir>/<n>`, the layout TF
Serving reads (it lists the numeric subdirectories of a model's base path). `write_version`
writes the next version into a temporary sibling (`.tmp-<n>-<pid>`) and publishes it only when
it is complete: a failed export leaves no partial version and never touches earlier ones, and
temporaries of killed exports are removed by the next export. Inside a version directory,
besides the SavedModel: `assets.extra/tfsmooth.json` (`METADATA`, what the export states about
its model) and `assets.extra/tf_serving_warmup_requests` (`WARMUP`, a TFRecord of
`PredictionLog`s that TF Serving replays at load). Paths go through `tf.io.gfile` (local paths
or URLs).
"""

import os

from absl import logging
import tensorflow as tf
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tfsmooth import errors
from tfsmooth import records
from tfsmooth import writes

METADATA = os.path.join('assets.extra', 'tfsmooth.json')
WARMUP = os.path.join('assets.extra', 'tf_serving_warmup_requests')
VARIABLES = os.path.join('variables', 'variables')
_TEMPORARY_PREFIX = '.tmp-'


def next_version(export_dir):
  """1 + the largest numeric version directory in export_dir (1 if none)."""
  names = tf.io.gfile.listdir(export_dir) if tf.io.gfile.isdir(export_dir) else []
  versions = [int(n.rstrip('/')) for n in names if n.rstrip('/').isdigit()]
  return max(versions, default=0) + 1


def write_version(export_dir, write):
  """Writes the next version of export_dir: `write(path, version)` fills a temporary directory
  `path`, which is then published as export_dir/<version> (`publish`) and removed. Returns the
  path of the new version directory.

  A write the storage refuses (a full disk, a lost permission) raises `writes.WriteFailed`
  naming the version, after removing all of it: the temporary, and what a copy cut short left of
  the version itself (URL file systems); earlier versions are untouched."""
  with writes.guarded('the export directory', export_dir):
    tf.io.gfile.makedirs(export_dir)
    _remove_stale_temporaries(export_dir)
  version = next_version(export_dir)
  final = os.path.join(export_dir, str(version))
  temporary = os.path.join(export_dir, f'{_TEMPORARY_PREFIX}{version}-{os.getpid()}')
  publishing = []

  def remove_partial_version():
    if publishing:
      _remove(final)

  guard = writes.guarded(
      f'version {version} of the export',
      final,
      cleanup=remove_partial_version,
      saved=f'Nothing of version {version} was kept; the versions before it are as they were.',
      within=export_dir,
  )
  try:
    with guard:
      write(temporary, version)
      if tf.io.gfile.exists(final):
        raise errors.UserError(
            f'{final} appeared during the export (another export into '
            f'{export_dir}?); rerun to write the next version.'
        )
      publishing.append(final)
      publish(temporary, final)
  finally:
    _remove(temporary)
  return final


def _remove_stale_temporaries(export_dir):
  """Removes temporaries of exports whose process is gone (killed midway)."""
  for name in tf.io.gfile.listdir(export_dir):
    name = name.rstrip('/')
    if not name.startswith(_TEMPORARY_PREFIX):
      continue
    pid = name.rsplit('-', 1)[-1]
    alive = pid.isdigit() and os.path.exists(f'/proc/{pid}')
    if not alive or int(pid) == os.getpid():
      tf.io.gfile.rmtree(os.path.join(export_dir, name))


def publish(temporary, final):
  """Puts the finished export in place so that TF Serving never loads half of it. On a local
  disk, a rename (atomic). On URL file systems a directory rename is a copy of object after
  object (gs://, s3://) or moves no files (ram://): the files are copied one by one, the graph
  saved_model.pb last, so a server that lists the version before the copy ends finds no graph,
  fails that load and retries, and never loads a version without its variables."""
  if '://' not in temporary:
    tf.io.gfile.rename(temporary, final)
    return
  files = [
      os.path.join(folder, name)
      for folder, _, names in tf.io.gfile.walk(temporary)
      for name in names
  ]  # ram:// also lists names that only share a prefix (assets/.extra of assets.extra)
  files = [path for path in files if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)]
  files.sort(key=lambda path: os.path.basename(path) == 'saved_model.pb')
  for path in files:
    target = os.path.join(final, os.path.relpath(path, temporary))
    tf.io.gfile.makedirs(os.path.dirname(target))
    tf.io.gfile.copy(path, target)


def _remove(directory):
  """Removes a temporary export directory, file by file where rmtree cannot (ram://); a storage
  that refuses (on the way out of a failed export) leaves it to the next export."""
  try:
    if tf.io.gfile.exists(directory):
      tf.io.gfile.rmtree(directory)
  except tf.errors.NotFoundError:  # ram:// lists names it cannot remove; its files are gone
    pass
  except writes.WRITE_ERRORS as e:
    logging.warning('Could not remove %s: %s', directory, e)


def write_metadata(version_dir, record):
  """Writes `record` as the `tfsmooth.json` of a version directory."""
  tf.io.gfile.makedirs(os.path.join(version_dir, os.path.dirname(METADATA)))
  records.write_json(os.path.join(version_dir, METADATA), record)


def read_metadata(version_dir):
  """The `tfsmooth.json` of an exported version directory."""
  return records.read_json(os.path.join(version_dir, METADATA))


def write_warmup(path, requests, model_name):
  """Writes `requests` {signature: {input: numpy}} as TF Serving warm-up records at `path`
  (TFRecord of PredictionLog, each a PredictRequest for one signature of `model_name`)."""
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for signature, inputs in requests.items():
      request = predict_pb2.PredictRequest(
          model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
      )
      for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request)
      )
      writer.write(log.SerializeToString())


def read_warmup(version_dir):
  """[(signature, {input: numpy})] of an export's warm-up requests, in file order."""
  out = []
  for record in tf.data.TFRecordDataset(os.path.join(version_dir, WARMUP)):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    request = log.predict_log.request
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    out.append((request.model_spec.signature_name, inputs))
  return out


def restore_weights(model, version_dir):
  """Restores into a built `model` (rebuilt from the export's config) the weights an export
  holds: its variables checkpoint, read by the `model_variables` it tracks (in
  `model.variables` order, each shape checked)."""
  prefix = os.path.join(version_dir, VARIABLES)
  reader = tf.train.load_checkpoint(prefix)
  shapes = reader.get_variable_to_shape_map()
  variables = model.variables
  recorded = [
      shapes.get(f'model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE') for i in range(len(variables))
  ]
  extra = f'model_variables/{len(variables)}/.ATTRIBUTES/VARIABLE_VALUE' in shapes
  mismatched = [
      f'{v.path}: {list(v.shape)} vs {shape}'
      for v, shape in zip(variables, recorded)
      if shape is None or list(v.shape) != list(shape)
  ]
  if mismatched or extra:
    raise errors.UserError(
        f'The weights in {prefix} do not fit the model rebuilt from its tfsmooth.json config '
        f'({"; ".join(mismatched[:3]) or "the export holds more weights"}): the export was '
        'made from another model or by another version of tfsmooth. Re-export it from its '
        'training workdir (launch/export.py --workdir=...).'
    )
  status = tf.train.Checkpoint(model_variables=[v.value for v in variables]).read(prefix)
  status.expect_partial().assert_existing_objects_matched()
  return model
