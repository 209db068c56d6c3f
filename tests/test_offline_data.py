"""The rule for tests that need the offline Fashion-MNIST files: fail under CI, skip elsewhere."""

import pytest

from tests import offline_data


def test_missing_files_fail_under_ci(tmp_path, monkeypatch):
  monkeypatch.setenv('CI', 'true')
  with pytest.raises(pytest.fail.Exception, match='dataset-fashion-mnist'):
    offline_data.require(str(tmp_path))


@pytest.mark.parametrize('ci', [None, ''])
def test_missing_files_skip_with_the_reason_elsewhere(tmp_path, monkeypatch, ci):
  if ci is None:
    monkeypatch.delenv('CI', raising=False)
  else:
    monkeypatch.setenv('CI', ci)
  (tmp_path / offline_data.FILES[0]).write_bytes(b'')
  with pytest.raises(pytest.skip.Exception) as skip:
    offline_data.require(str(tmp_path))
  message = str(skip.value)
  assert str(tmp_path) in message and 'dataset-fashion-mnist' in message
  assert offline_data.FILES[0] not in message and offline_data.FILES[1] in message


def test_present_files_neither_fail_nor_skip(tmp_path, monkeypatch):
  monkeypatch.setenv('CI', 'true')
  for name in offline_data.FILES:
    (tmp_path / name).write_bytes(b'')
  offline_data.require(str(tmp_path))
