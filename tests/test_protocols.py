"""The trained-model interface as types (`models.interface`): every kind of model satisfies the
Protocols that fit it, and a loaded export answers as the model it was exported from.

Kinds: plain MADE, MADE pair, plain PixelCNN++ and PixelCNN++ pair (tiny, fixed weights), a
standardised plain MADE and MADE pair, a MADE pair with class labels, and `export.ExportedModel`
of a plain PixelCNN++, of a MADE pair and of the labelled MADE pair (given the same labels). `isinstance` with a runtime-checkable Protocol checks only that the members
exist, so the test also checks `smoothed` and that every method takes the Protocol's
parameters and the conditions as keywords. The exported models' draws, bounds, denoisings and
inpaintings are compared with the in-memory model's for the same seed rows (tolerances of
tests/test_interface.py); refusals of what an export lacks name the missing signature.
"""

import inspect

import keras
import numpy as np
import pytest

from tests.distributed import tiny_models
from tfsmooth import errors
from tfsmooth import export
from tfsmooth import kernels
from tfsmooth import seeds
from tfsmooth import smoothing
from tfsmooth import standardized
from tfsmooth.models import context
from tfsmooth.models import interface
from tfsmooth.models import made

ROWS = seeds.rows(3, 'samples', 0, 3)
IW_SAMPLES = 2
# kind: (smoothed, a SmoothedPair)
KINDS = {
    'made': (False, False),
    'made_pair': (True, True),
    'pixelcnn': (False, False),
    'pixelcnn_pair': (True, True),
    'standardized_made': (False, False),
    'standardized_made_pair': (True, True),
    'labelled_made_pair': (True, True),
    'exported_pixelcnn': (False, False),
    'exported_made_pair': (True, False),
    'exported_labelled_made_pair': (True, False),
}
LABELS = context.labels(3)
# Per-row class labels of the labelled kinds (3: the null class), one per row of ROWS and of
# tiny_models.points.
GIVEN = {'labels': np.array([0, 2, 1, 3, 0], np.int32)}


def labelled_made_pair():
  """A MADE pair with class labels (tfsmooth's own conditioning), fixed weights."""
  keras.utils.set_random_seed(0)
  conditions = {LABELS.keyword: LABELS}
  model = smoothing.SmoothedModel(
      made.MADE(2, (8,), 2, conditions=conditions),
      made.MADE(2, (8,), 2, conditional=True, conditions=conditions),
      kernels.SmoothingKernel(),
  )
  model.build_variables()
  rng = np.random.default_rng(0)
  for v in model.trainable_variables:
    v.assign(0.3 * rng.standard_normal(v.shape).astype(np.float32))
  return model


def _build(kind):
  return labelled_made_pair() if kind == 'labelled_made_pair' else tiny_models.build(kind)


def _given(model, rows):
  """The conditions of `model` for `rows` rows."""
  return {k: v[:rows] for k, v in GIVEN.items() if k in model.conditions}


class Zoo:
  """The models of every kind, each built (and exported) once, on first use."""

  def __init__(self, export_root):
    self.export_root = export_root
    self.models = {}

  def __getitem__(self, kind):
    if kind.startswith('exported_'):
      return self.exported(kind)[1]
    if kind not in self.models:
      if kind.startswith('standardized_'):
        inner = tiny_models.build(kind[len('standardized_') :])
        self.models[kind] = standardized.wrap(inner, shift=[1.0, -2.0], scale=[2.0, 0.5])
      else:
        self.models[kind] = _build(kind)
    return self.models[kind]

  def exported(self, kind):
    """(the in-memory model, the `ExportedModel` of its export) of an exported kind."""
    if kind not in self.models:
      model = _build(kind[len('exported_') :])
      version = export.export(model, str(self.export_root / kind), IW_SAMPLES)
      self.models[kind] = (model, export.ExportedModel(version))
    return self.models[kind]


@pytest.fixture(scope='module')
def zoo(tmp_path_factory):
  return Zoo(tmp_path_factory.mktemp('exports'))


def _takes_the_protocols_parameters(model, protocol):
  """The methods of `protocol` that `model`'s do not take as declared: every named parameter,
  and further keywords (the conditions)."""
  wrong = []
  for name, declared in vars(protocol).items():
    if name.startswith('_') or not inspect.isfunction(declared):
      continue
    wanted = [p for p in inspect.signature(declared).parameters.values() if p.name != 'self']
    given = inspect.signature(getattr(model, name)).parameters
    named = [p.name for p in wanted if p.kind is not p.VAR_KEYWORD]
    keywords = any(p.kind is p.VAR_KEYWORD for p in wanted)
    takes_keywords = any(p.kind is p.VAR_KEYWORD for p in given.values())
    if any(n not in given for n in named) or keywords and not takes_keywords:
      wrong.append(f'{name}{inspect.signature(getattr(model, name))}')
  return wrong


@pytest.mark.parametrize('kind', list(KINDS))
def test_every_model_satisfies_the_protocols_that_fit_it(kind, zoo):
  model = zoo[kind]
  smoothed, pair = KINDS[kind]
  assert isinstance(model, interface.TrainedModel)
  assert isinstance(model, interface.SmoothedPair) == pair
  assert model.smoothed == smoothed and model.exact_likelihood == (not smoothed)
  assert _takes_the_protocols_parameters(model, interface.TrainedModel) == []
  if pair:
    assert _takes_the_protocols_parameters(model, interface.SmoothedPair) == []
  assert bool(model.denoisers) == smoothed
  assert set(model.samplers) == ({'smoothed', *model.denoisers} if smoothed else {'samples'})
  assert model.can_inpaint == ('pixelcnn' in kind)
  described = {k: c.describe() for k, c in model.conditions.items()}
  assert described == ({'labels': LABELS.describe()} if 'labelled' in kind else {})


def _numpy(record):
  return {k: np.asarray(v) for k, v in record.items()}


def _assert_rows_equal(actual, expected, what):
  assert set(actual) == set(expected), what
  for name in expected:
    np.testing.assert_allclose(
        actual[name], expected[name], rtol=1e-4, atol=1e-5, err_msg=f'{what} {name}'
    )


@pytest.mark.parametrize(
    'kind', ['exported_pixelcnn', 'exported_made_pair', 'exported_labelled_made_pair']
)
def test_an_export_answers_as_the_model_it_was_exported_from(kind, zoo):
  model, exported = zoo.exported(kind)
  assert exported.event_shape == model.event_shape
  assert exported.samplers == model.samplers and exported.denoisers == model.denoisers
  assert exported.facts() == model.facts()
  given = _given(model, len(ROWS))
  _assert_rows_equal(
      _numpy(exported.draw(ROWS, **given)), _numpy(model.draw(ROWS, **given)), 'draw'
  )
  last = model.samplers[-1]
  _assert_rows_equal(
      _numpy(exported.draw(ROWS, [last], **given)),
      _numpy(model.draw(ROWS, [last], **given)),
      'one sampler',
  )

  x = tiny_models.points(model)
  rows = seeds.rows(0, 'test', 0, len(x))
  given = _given(model, len(x))
  expected = model.likelihood(x, rows, IW_SAMPLES, **given)
  actual = exported.likelihood(x, rows, IW_SAMPLES, **given)
  assert (actual.exact, actual.num_samples) == (expected.exact, expected.num_samples)
  _assert_rows_equal(
      {'log_prob': actual.log_prob, 'elbo': actual.elbo},
      {'log_prob': expected.log_prob, 'elbo': expected.elbo},
      'likelihood',
  )

  denoise_rows = seeds.rows(0, 'denoise', 0, len(x))
  _assert_rows_equal(
      _numpy(exported.denoise(x, denoise_rows, **given)),
      _numpy(model.denoise(x, denoise_rows, **given)),
      'denoise',
  )
  if model.can_inpaint:
    known = [1, 3, 0, 2, 4]
    _assert_rows_equal(
        {'x': exported.inpaint(x, known, denoise_rows, **given)},
        {'x': model.inpaint(x, known, denoise_rows, **given)},
        'inpaint',
    )


def test_an_export_refuses_what_it_has_no_signature_for(zoo):
  plain, pair = zoo['exported_pixelcnn'], zoo['exported_made_pair']
  images, points = tiny_models.points(plain), tiny_models.points(pair)
  rows = seeds.rows(0, 'test', 0, tiny_models.ROWS)
  with pytest.raises(errors.UserError, match='has no denoise signature.*no two_step denoiser'):
    plain.denoise(images, rows, ['two_step'])
  with pytest.raises(errors.UserError, match='has no denoise_single_step signature'):
    plain.draw(ROWS, ['single_step'])
  assert plain.denoise(images, rows) == {}  # a plain model has no denoisers: nothing to do
  with pytest.raises(errors.UserError, match='has no inpaint signature.*cannot inpaint'):
    pair.inpaint(points, 1, rows)
  with pytest.raises(errors.UserError, match=f'K={IW_SAMPLES} draws, fixed at export'):
    pair.likelihood(points, rows, IW_SAMPLES + 1)
  with pytest.raises(errors.UserError, match=r'x has shape \(5, 3\).*events of shape \(2,\)'):
    pair.likelihood(np.zeros([5, 3], np.float32), rows, IW_SAMPLES)
  with pytest.raises(errors.UserError, match='was given labels, but it was trained without'):
    pair.draw(ROWS, labels=[0, 1, 0])
