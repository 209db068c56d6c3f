"""The one model interface, for a plain MADE, a MADE pair, a plain PixelCNN++ and a PixelCNN++
pair (tiny): every sampler by name is row-independent (row i depends on seed i alone) and
equals the direct draw of the model's distributions for that seed; a plain model's likelihood
record is its exact log-prob; a model exported from memory, without a workdir, round-trips
through tf.saved_model.load in a fresh TensorFlow-only process. (A pair's bounds against a true
log-density: tests/test_bounds_1d.py.)"""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow_probability as tfp

from tests.distributed import tiny_models
from tfsmooth import errors
from tfsmooth import export
from tfsmooth import seeds

KINDS = ['made', 'made_pair', 'pixelcnn', 'pixelcnn_pair']
ROWS = seeds.rows(3, 'samples', 0, 3)


def _direct(model, seed):
  """{sampler: [1, ...]} for one seed row from the distributions themselves."""
  if not model.smoothed:
    return {'samples': model.distribution().sample(1, seed=seed)}
  prior_seed, denoise_seed = tfp.random.split_seed(seed, 2)
  x_tilde = model.prior.distribution().sample(1, seed=prior_seed)
  out = {
      'smoothed': x_tilde,
      'two_step': model.conditional_model.distribution(x_tilde).sample(seed=denoise_seed),
  }
  if 'single_step' in model.samplers:
    out['single_step'] = model.denoise_single_step(x_tilde)
  return out


@pytest.fixture(scope='module', params=KINDS)
def model(request):
  return tiny_models.build(request.param)


def test_every_sampler_is_row_independent_and_equals_the_direct_draw(model):
  drawn = {k: v.numpy() for k, v in model.draw(ROWS).items()}
  assert set(drawn) == set(model.samplers)
  reversed_rows = {k: v.numpy() for k, v in model.draw(ROWS[::-1]).items()}
  alone = {k: v.numpy() for k, v in model.draw(ROWS[1:2]).items()}
  for name, x in drawn.items():
    np.testing.assert_allclose(reversed_rows[name][::-1], x, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(alone[name][0], x[1], rtol=1e-4, atol=1e-5, err_msg=name)
  for i in range(len(ROWS)):
    for name, x in _direct(model, ROWS[i]).items():
      np.testing.assert_allclose(drawn[name][i], x.numpy()[0], rtol=1e-4, atol=1e-4, err_msg=name)
  assert not np.allclose(drawn[model.samplers[-1]][0], drawn[model.samplers[-1]][1])
  with pytest.raises(errors.UserError, match='has no sampler'):
    model.draw(ROWS, ['nope'])


def test_one_seed_where_a_seed_per_row_is_due_names_the_fix(model):
  """The mistake of passing one [2] seed (or float seeds, or a row count that differs from the
  input's) is a UserError naming [N, 2] and tfsmooth.seeds.rows, not a map_fn shape error."""
  x = model.draw(ROWS)[model.samplers[-1]]
  calls = [lambda s: model.draw(s), lambda s: model.likelihood(x, s, 2)]
  if model.denoisers:
    calls.append(lambda s: model.denoise(x, s, ['two_step']))
  if model.can_inpaint:
    calls.append(lambda s: model.inpaint(x, 1, s))
  for call in calls[:1]:
    for bad in (ROWS[0], np.asarray(ROWS, np.float32)):
      with pytest.raises(errors.UserError, match=r'integer \[N, 2\].*seeds.rows'):
        call(bad)
  for call in calls[1:]:
    if call is calls[1] and model.exact_likelihood:
      continue  # an exact likelihood draws nothing
    with pytest.raises(errors.UserError, match=r'N = 3, the rows of the input'):
      call(ROWS[:2])


def test_a_plain_models_record_is_its_exact_log_prob(model):
  x = tiny_models.points(model)
  record = model.likelihood(x, seeds.rows(0, 'test', 0, len(x)), 8)
  if model.smoothed:
    assert not record.exact and record.num_samples == 8
    assert np.all(record.log_prob.numpy() >= record.elbo.numpy() - 1e-4)
    return
  exact = model.distribution().log_prob(x).numpy()
  assert record.exact and record.num_samples == 1
  np.testing.assert_allclose(record.log_prob, exact, rtol=1e-6)
  np.testing.assert_allclose(record.elbo, exact, rtol=1e-6)


FRESH = r"""
import sys
import numpy as np
import tensorflow as tf
signatures = tf.saved_model.load(sys.argv[1]).signatures
rows = np.load(sys.argv[2])
np.save(sys.argv[3], signatures['sample'](seed=tf.constant(rows))['x'].numpy())
assert 'tfsmooth' not in sys.modules and 'tensorflow_probability' not in sys.modules
"""


def test_a_model_built_in_python_exports_without_a_workdir(tmp_path):
  model = tiny_models.build('made_pair')
  version = export.export(model, str(tmp_path / 'exports'), iw_samples=2)
  np.save(tmp_path / 'rows.npy', ROWS.numpy())
  subprocess.run(
      [sys.executable, '-c', FRESH, version, str(tmp_path / 'rows.npy'), str(tmp_path / 'x.npy')],
      check=True,
      timeout=300,
  )
  np.testing.assert_allclose(
      np.load(tmp_path / 'x.npy'), model.draw(ROWS)['two_step'], rtol=1e-5, atol=1e-6
  )
  assert export.read_metadata(version)['smoothed'] is True


def test_evaluation_caches_do_not_keep_a_model_alive():
  """likelihood.rows and tasks.draw_rows keep their traced functions on the model itself (no
  global cache), so a model the caller drops is freed with them."""
  import gc
  import weakref

  from tfsmooth import tasks
  from tfsmooth.evaluation import likelihood

  model = tiny_models.build('made_pair')
  x = tiny_models.points(model)
  rows = seeds.rows(0, 'test', 0, len(x))
  first = likelihood.rows(model, x, rows, 2)
  again = likelihood.rows(model, x, rows, 2)  # the same traced function, the same rows
  np.testing.assert_array_equal(first.log_prob, again.log_prob)
  tasks.draw_rows(model, rows)
  alive = weakref.ref(model)
  del model
  gc.collect()
  assert alive() is None
