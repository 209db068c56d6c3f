"""A storage that refuses an export's writes (a full disk, a lost permission) while it writes
the graph, a record or publishes the version: one paragraph naming the version, exit status 2
from the binaries' runner, no partial version, earlier versions byte for byte as they were, and
the next export takes the same version number.

The refusals are injected (tests/train/refusals.py: the errors and leftovers of a real full
disk, seen on a small tmpfs).
"""

import os
import re
import uuid

import pytest
import tensorflow as tf

from tests.train import refusals
from tfsmooth import experiment
from tfsmooth import export
from tfsmooth.configs import rings
from tfsmooth.export import directory
from tfsmooth.programs import cli

NO_SPACE = refusals.NO_SPACE


@pytest.fixture(scope='module')
def model():
  """An untrained tiny rings MADE (exports need no training)."""
  config = rings.get_config('baseline')
  config.model.hidden_sizes = (8,)
  model = experiment.build_model(experiment.settle(config))
  model.build_variables()
  return model


def _contents(folder):
  """{relative path: bytes} of every file under `folder`."""
  out = {}
  for root, _, names in tf.io.gfile.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with tf.io.gfile.GFile(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = f.read()
  return out


def _refused_export(model, export_dir, capsys):
  """Exports through the binaries' runner; returns its paragraph (checking exit status 2)."""
  with pytest.raises(SystemExit) as end:
    cli.reported(lambda argv: export.export(model, export_dir))(['export.py'])
  assert end.value.code == 2
  err = capsys.readouterr().err
  return ' '.join(re.sub(r'-\n', '-', err.split('Error: ')[-1]).split())


def _expected(export_dir, version):
  return (
      f'Could not write version {version} of the export ({export_dir}/{version}): {NO_SPACE}. '
      f'Free space (or raise the quota) on the storage of {export_dir}, then rerun the same '
      f'command. Nothing of version {version} was kept; the versions before it are as they '
      'were.'
  )


def test_refused_graph_or_record_leaves_no_partial_version(tmp_path, monkeypatch, capsys, model):
  export_dir = str(tmp_path / 'exports')
  first = export.export(model, export_dir)
  before = _contents(first)
  for name in ('saved_model.pb', 'tfsmooth.json'):
    refused = refusals.refuse_file_writes(monkeypatch.setattr, name, budget=100)
    paragraph = _refused_export(model, export_dir, capsys)
    monkeypatch.undo()
    assert refused and all('/.tmp-2-' in path for path in refused)
    assert paragraph == _expected(export_dir, 2)
    assert os.listdir(export_dir) == ['1']  # neither version 2 nor its temporary
    assert _contents(first) == before
  assert export.export(model, export_dir) == os.path.join(export_dir, '2')


def test_publish_cut_short_on_an_object_store_leaves_no_partial_version(monkeypatch, capsys, model):
  # On URL file systems a version is published file by file (the graph last): a copy refused
  # midway must not leave a version without its graph or variables.
  export_dir = f'ram://tfsmooth-test-{uuid.uuid4().hex}/exports'
  copy = tf.io.gfile.copy
  copied = []

  def refusing_copy(source, target, overwrite=False):
    if len(copied) == 2:
      raise tf.errors.ResourceExhaustedError(None, None, f'{target}; {NO_SPACE}')
    copied.append(target)
    copy(source, target, overwrite)

  monkeypatch.setattr(tf.io.gfile, 'copy', refusing_copy)
  paragraph = _refused_export(model, export_dir, capsys)
  monkeypatch.undo()
  assert len(copied) == 2 and all(c.startswith(f'{export_dir}/1/') for c in copied)
  assert paragraph == _expected(export_dir, 1)
  assert not [p for p in copied if tf.io.gfile.exists(p)]
  assert directory.next_version(export_dir) == 1
  assert export.export(model, export_dir) == f'{export_dir}/1'


def test_an_error_of_the_export_itself_is_no_write_failure(tmp_path, monkeypatch, model):
  # Only errors that name a file of the export directory are the storage's: a bug keeps its
  # type and traceback (and still leaves no version).
  def failing_save(*args, **kwargs):
    raise tf.errors.FailedPreconditionError(None, None, 'Could not find variable dense/kernel')

  monkeypatch.setattr(tf.saved_model, 'save', failing_save)
  export_dir = str(tmp_path / 'exports')
  with pytest.raises(tf.errors.FailedPreconditionError, match='dense/kernel'):
    export.export(model, export_dir)
  assert os.listdir(export_dir) == []
