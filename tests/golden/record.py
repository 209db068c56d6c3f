"""Records the golden outputs that tests/test_golden.py checks the code against.

Run it on a commit that is known good (the goldens are taken as the truth), from a checkout of
that commit, so that the recorded code is that commit's and not an edited working tree:

  git worktree add <tmpdir> <known-good commit>
  cd <tmpdir>
  PYTHONPATH=. <repo>/.venv/bin/python tests/golden/record.py --output=<repo>/tests/golden \
      [--saved_models=<repo>/saved_models] [--only=<name>,<name>]
  git worktree remove <tmpdir>

Without --only it records every entry and replaces the golden files. With --only it records
just the named shipped (SHIPPED, PINNED_ONLY) or fresh (`tiny_configs`) entries and merges them
into the existing manifest.json and signature_defs.json (replacing those entries, adding new
ones) and writes their npz files; every other entry and file stays byte for byte as it was, so
a new model is recorded without re-recording goldens taken at an older known-good commit (a
fresh entry is seeded by its place in `tiny_configs`, so alone it records what a full run would).

The shipped models are read from `saved_models/` of the checkout (or --saved_models) at the
versions in SHIPPED and checked at the versions in CHECKED_AS (the same weights re-exported,
the recorded versions having left the tree; or the recorded version itself), the Fashion-MNIST
test images they are given from the IDX files of the Debian package `dataset-fashion-mnist`,
the points by their data set (SHIPPED_POINTS). A model may be named in SHIPPED before it is
exported: while neither its recorded nor its checked version directory exists, a full recording
skips it (test_golden counts it as pending until its directory appears) and --only naming it is
refused. It writes into --output:

  signature_defs.json  the serving signatures of every shipped SavedModel: method name, each
                       input's key, tensor name, dtype and shape, each output's key, dtype and
                       shape, and which signatures call one function (serving_default, sample);
  manifest.json        what was called: per shipped model its signatures and how each output
                       compares; per fresh tiny model its config, importance draws K, the shapes
                       and paths of its weights, the signature pins and shared functions of its
                       export, likewise; for a model with conditioning inputs, also its
                       'conditions' as its export's metadata describes them;
  shipped_<name>.npz   inputs 'in.<signature>.<input>' and outputs 'out.<signature>.<key>' of
                       the shipped model's signatures;
  fresh_<name>.npz     the same for a tiny model built from a tfsmooth config, plus its weights
                       'weights.<component>.<index>' (component 'model', or 'prior' and
                       'conditional' of a two-step model), so that a test sets the weights
                       instead of relying on initialisers.

Conditioned models: what inputs a model's signatures take beyond x, x_tilde, seed and
num_known_rows is read from its export's metadata ('conditions': keyword -> input name, dtype,
range, default, names), never from the kind of model, and every signature gets each such input
with fixed values per row (`condition_values`): class labels 0, 1, ... with the last row the
null class (the default, when the metadata names it), noise levels spread over the trained
range. The fresh tiny models cover a class-labelled MADE pair (labelled rings), a
class-labelled PixelCNN++ pair (4 x 4 images, Fashion-MNIST's classes) and a noise-conditional
MADE pair (whose annealed sampler has a signature of its own, sample_annealed, given what
sample is given of the inputs it declares: the seed, and no sigma, since the sampler sets its
own levels; an export made before that, the shipped rings_noise_conditional/1, declares and is
given sigma too); a model without conditions records exactly as before.

Outputs that are 8-bit images (PixelCNN++ samples, denoised and inpainted images from the
discretized head, and a sampler's own draws when they end on the 8-bit grid) are marked
'quantized' and compared on the 8-bit grid; the rest are 'float', compared with a small
tolerance. Seeded draws of autoregressive models (`draws_by_rows`) are compared row by row, one
row allowed to differ (a value drawn at a rounding error from a decision boundary flips between
CPU types, and the rest of the row follows it): the rule is in tests/test_golden.py's docstring.
"""

import argparse
import inspect
import json
import os
import shutil
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import keras  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.tools import saved_model_utils  # noqa: E402

from tfsmooth import experiment  # noqa: E402
import tfsmooth  # noqa: E402
from tfsmooth import export  # noqa: E402
from tfsmooth.configs import cifar10  # noqa: E402
from tfsmooth.configs import fashion_mnist  # noqa: E402
from tfsmooth.configs import olympics_realnvp  # noqa: E402
from tfsmooth.configs import rings  # noqa: E402
from tfsmooth.data import images as image_data  # noqa: E402

POINT_SEEDS = np.array([[0, 1], [0, 2], [7, 3]], np.int32)
IMAGE_SEEDS = np.array([[0, 1], [7, 3]], np.int32)
PERTURBATION = 0.1  # scale of the noise added to initial weights (zero-initialised ones too)

# Shipped models: base path under saved_models/, version, the points or images they take. A
# model may be named here before it is exported (then it has no directory and no goldens yet:
# record.py skips it, test_golden counts it as pending) and recorded with --only once it is.
SHIPPED = {
    'rings': ('rings/1', 'points'),
    'olympics': ('olympics/1', 'points'),
    'fashion_mnist_smoothed': ('fashion_mnist_smoothed/2', 'images'),
    'fashion_mnist_baseline': ('fashion_mnist_baseline/2', 'images'),
    'fashion_mnist_labels': ('fashion_mnist_labels/1', 'images'),
    'rings_noise_conditional': ('rings_noise_conditional/1', 'points'),
    'fashion_mnist_noise_conditional': ('fashion_mnist_noise_conditional/1', 'images'),
}
# The version now shipped with each recorded model's weights, against which tests/test_golden.py
# checks the goldens: re-exported from the recorded version (launch/export.py --saved_model),
# which then left the tree, so its outputs must equal the recorded ones; or the recorded version
# itself.
CHECKED_AS = {
    'rings': 'rings/2',
    'olympics': 'olympics/2',
    'fashion_mnist_smoothed': 'fashion_mnist_smoothed/3',
    'fashion_mnist_baseline': 'fashion_mnist_baseline/3',
    'fashion_mnist_labels': 'fashion_mnist_labels/1',
    'rings_noise_conditional': 'rings_noise_conditional/1',
    'fashion_mnist_noise_conditional': 'fashion_mnist_noise_conditional/1',
}
PINNED_ONLY = {'fashion_mnist_classifier': 'fashion_mnist_classifier/1'}
# Signatures whose outputs are seeded draws, and the models that draw autoregressively (value by
# value, each conditioned on the values drawn before it): their draws are compared row by row.
# A sampler with a signature of its own, sample_<sampler> (the annealed sampler of a
# noise-conditional pair), takes what `sample` takes and draws too.
DRAW_SIGNATURES = ('sample', 'serving_default', 'denoise', 'inpaint')
OWN_SAMPLER_PREFIX = 'sample_'
AUTOREGRESSIVE = ('made', 'pixelcnn')
# Points given to the shipped point models, by the data set of their config (data.name).
SHIPPED_POINTS = {
    'rings': [[0.75, 0.0], [0.1, -1.5], [1.6, 1.5]],
    'olympics': [[-2.2, 1.5], [0.0, -0.5], [1.0, 0.4]],
}
# serving_default is the sample function (pinned as a shared function); a call of it in an
# image model would instantiate the sampler's graph a second time, so only point models call it.
SKIP_CALLS = {'images': ('serving_default',), 'points': ()}


def signature_pins(version_dir):
  """The serving signatures of a SavedModel, as JSON-able structure (saved_model_cli's view)."""
  meta_graph = saved_model_utils.get_meta_graph_def(version_dir, 'serve')

  def shape(info):
    if info.tensor_shape.unknown_rank:
      return None
    return [int(d.size) for d in info.tensor_shape.dim]

  signatures = {}
  for name, signature in sorted(meta_graph.signature_def.items()):
    if name.startswith('__'):  # __saved_model_init_op is not a serving signature
      continue
    signatures[name] = {
        'method_name': signature.method_name,
        'inputs': {
            key: {
                'name': info.name,
                'dtype': tf.dtypes.as_dtype(info.dtype).name,
                'shape': shape(info),
            }
            for key, info in sorted(signature.inputs.items())
        },
        'outputs': {
            key: {'dtype': tf.dtypes.as_dtype(info.dtype).name, 'shape': shape(info)}
            for key, info in sorted(signature.outputs.items())
        },
    }
  return signatures


def shared_functions(version_dir):
  """Groups (sorted lists) of signatures whose wrappers call one and the same function."""
  meta_graph = saved_model_utils.get_meta_graph_def(version_dir, 'serve')
  nodes = {node.name: node for node in meta_graph.graph_def.node}
  library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
  called = {}
  for name, signature in meta_graph.signature_def.items():
    if name.startswith('__'):
      continue
    wrappers = {nodes[t.name.split(':')[0]].attr['f'].func.name for t in signature.outputs.values()}
    inner = tuple(
        sorted(
            node.attr['f'].func.name
            for wrapper in wrappers
            for node in library[wrapper].node_def
            if 'f' in node.attr
        )
    )
    called.setdefault(inner, []).append(name)
  return sorted(sorted(names) for names in called.values() if len(names) > 1)


def draws_by_rows(signature, config):
  """Whether the outputs of `signature` of the model of settled `config` (a dict, as the
  manifest and an export's metadata hold it) are autoregressive draws: a seeded sampler's, of a
  model whose prior or (in a two-step model) conditional is MADE or PixelCNN++. A flow's draws
  (RealNVP) are a continuous function of the seeded noise and compare with a tolerance. A
  sampler's own signature (sample_<sampler>: the annealed sampler, which starts from an
  autoregressive draw and may end with one) draws like `sample`."""
  if signature not in DRAW_SIGNATURES and not signature.startswith(OWN_SAMPLER_PREFIX):
    return False
  models = [config['model']]
  if config['smoothing']['enabled']:
    models.append(config['conditional_model'])
  return any(model['name'] in AUTOREGRESSIVE for model in models)


def fashion_mnist_test_images(count):
  """The first `count` Fashion-MNIST test images in [-1, 1], read offline from IDX files."""
  path = os.path.join(image_data.FASHION_MNIST_IDX_DIR, image_data.IDX_FILES['test'])
  images = image_data.read_idx(path)[:count, :, :, None]
  return image_data.to_unit_range(images).numpy()


def pattern_images(count, shape):
  """A deterministic pattern of `count` images of `shape` on the 8-bit grid of [-1, 1]."""
  n, i, j, c = np.meshgrid(*(np.arange(d) for d in (count,) + tuple(shape)), indexing='ij')
  levels = (53 * n + 37 * i + 11 * j + 71 * c + 5 * i * j) % 256
  return (levels / 127.5 - 1.0).astype(np.float32)


def point_inputs(points):
  points = np.asarray(points, np.float32)
  x_tilde = points + np.float32(0.3) * np.random.RandomState(1).standard_normal(points.shape)
  return points, x_tilde.astype(np.float32)


def image_inputs(x, sigma):
  noise = np.random.RandomState(2).standard_normal(x.shape).astype(np.float32)
  return x, (x + np.float32(sigma) * noise).astype(np.float32)


def condition_values(record, rows):
  """Fixed values [rows] of one conditioning input, as an export's metadata describes it
  (`conditions[keyword]`: 'dtype', 'range' [low, high], 'default', optional 'names'), for
  every model alike.

  An integer input (class labels): row i takes the i-th value of [low, high] other than the
  default, cyclically (labels 0, 1, 2, ...), and the last row the default when the metadata
  names it (the null class, a row given no label). A float input (noise levels): row i takes
  the level at fraction (i + 1) / (rows + 1) of the range, geometrically where the range is
  positive (log-spaced like the levels a noise-conditional model trains on), inside the range
  and off its ends.
  """
  low, high = record['range']
  dtype = np.dtype(record['dtype'])
  if np.issubdtype(dtype, np.integer):
    default = int(record['default'])
    values = [v for v in range(int(low), int(high) + 1) if v != default]
    chosen = [values[i % len(values)] for i in range(rows)]
    names = record.get('names') or ()
    if rows > 1 and 0 <= default - int(low) < len(names):
      chosen[-1] = default
    return np.array(chosen, dtype)
  fractions = (np.arange(rows) + 1.0) / (rows + 1.0)
  if low > 0:
    return np.exp(np.log(low) + fractions * (np.log(high) - np.log(low))).astype(dtype)
  return (low + fractions * (high - low)).astype(dtype)


def signature_inputs(kind, x, x_tilde, height, conditions=None):
  """Inputs of every possible signature, {signature: {input: array}}; with `conditions` (an
  export's metadata 'conditions', {keyword: record}), every signature is also offered each
  condition's input, one value per row (`condition_values`). A signature sample_<sampler> is
  offered what 'sample' is (`inputs_of`). `call_signatures` gives each signature only the
  inputs it declares (sample_annealed declares no sigma)."""
  seeds = POINT_SEEDS if kind == 'points' else IMAGE_SEEDS
  if len(x) != len(seeds) or len(x_tilde) != len(seeds):
    raise ValueError(f'{len(seeds)} seed rows but x has {len(x)} and x_tilde {len(x_tilde)}.')
  inputs = {
      'sample': {'seed': seeds},
      'serving_default': {'seed': seeds},
      'log_prob': {'x': x, 'seed': seeds},
      'denoise': {'x_tilde': x_tilde, 'seed': seeds},
      'denoise_single_step': {'x_tilde': x_tilde},
  }
  if kind == 'images':
    rows = np.array([height // 2, height - height // 4 - 1], np.int32)  # 28: 14, 20
    inputs['inpaint'] = {'x': x, 'num_known_rows': rows, 'seed': seeds}
  for record in (conditions or {}).values():
    values = condition_values(record, len(seeds))
    for given in inputs.values():
      given[record['input']] = values
  return inputs


def inputs_of(inputs, name):
  """The inputs of signature `name` from `signature_inputs`'s table."""
  if name in inputs:
    return inputs[name]
  if name.startswith(OWN_SAMPLER_PREFIX):
    return inputs['sample']
  raise KeyError(f'No inputs for the signature {name}: tests/golden/record.py does not know it.')


def on_grid(value):
  """Whether every value is k / 127.5 - 1 for an integer k (the 8-bit grid of [-1, 1])."""
  levels = (value.astype(np.float64) + 1.0) * 127.5
  return bool(np.allclose(levels, np.round(levels), atol=1e-3))


def call_signatures(version_dir, inputs, kind, skip=()):
  """Calls every signature of a SavedModel with its inputs (only those it takes).

  Returns ({'in.<sig>.<input>': array, 'out.<sig>.<key>': array}, {sig: {key: mode}}).
  """
  loaded = tf.saved_model.load(version_dir)
  arrays, modes = {}, {}
  for name in sorted(loaded.signatures):
    if name in skip:
      continue
    function = loaded.signatures[name]
    names = sorted(function.structured_input_signature[1])
    given = inputs_of(inputs, name)
    unknown = sorted(set(names) - set(given))
    if unknown:
      raise KeyError(f'{version_dir} {name} takes inputs {unknown} that record.py does not give.')
    args = {key: given[key] for key in names}
    outputs = function(**{key: tf.constant(value) for key, value in args.items()})
    modes[name] = {}
    for key, value in args.items():
      arrays[f'in.{name}.{key}'] = value
    for key, value in outputs.items():
      value = value.numpy()
      arrays[f'out.{name}.{key}'] = value
      # Images drawn by the discretized head are 8-bit; a sampler's own signature is when it
      # ends with that head (the annealed sampler ending 'two_step', not 'single_step').
      images = kind == 'images' and key == 'x'
      quantized = images and name in DRAW_SIGNATURES
      if quantized and not on_grid(value):
        raise AssertionError(f'{version_dir} {name}.{key} is not on the 8-bit grid.')
      quantized = quantized or (images and name.startswith(OWN_SAMPLER_PREFIX) and on_grid(value))
      modes[name][key] = 'quantized' if quantized else 'float'
  return arrays, modes


def record_shipped(saved_models, name):
  """(arrays, manifest entry) of the shipped model `name` (SHIPPED), read at its recorded
  version: its signatures called with fixed inputs of its kind and, if its metadata names
  conditions, fixed conditioning inputs (`signature_inputs`)."""
  where, kind = SHIPPED[name]
  version_dir = os.path.join(saved_models, where)
  metadata = export.read_metadata(version_dir)
  conditions = metadata.get('conditions') or {}
  if kind == 'points':
    data = metadata['config']['data']['name']
    if data not in SHIPPED_POINTS:
      raise KeyError(f'{version_dir} models {data} points: add points of it to SHIPPED_POINTS.')
    x, x_tilde = point_inputs(SHIPPED_POINTS[data])
    height = None
  else:
    x, x_tilde = image_inputs(fashion_mnist_test_images(2), metadata['sigma'] or 0.5)
    height = x.shape[1]
  inputs = signature_inputs(kind, x, x_tilde, height, conditions)
  arrays, modes = call_signatures(version_dir, inputs, kind, SKIP_CALLS[kind])
  entry = {
      'path': f'saved_models/{CHECKED_AS[name]}',
      'recorded_from': f'saved_models/{where}',
      'kind': kind,
      'outputs': modes,
  }
  if conditions:
    entry['conditions'] = conditions
  return arrays, entry


def tiny_configs():
  """{name: (settled config, kind)} of the tiny models, from the shipped config files."""
  configs = {}

  def made(variant, kernel='gaussian', labels=False):
    config = rings.get_config(variant)
    config.smoothing.kernel = kernel
    for model in (config.model, config.conditional_model):
      model.hidden_sizes = (8,)
    if labels:  # the rings labelled by ring index (4 classes and the null class)
      config.data.labels = True
      for model in (config.model, config.conditional_model):
        model.condition_dim = 4
    if config.smoothing.noise_conditional:  # a short ladder: 3 levels of 2 Langevin steps
      config.smoothing.update(annealed_levels=3, annealed_steps=2)
    config.eval.iw_samples = 4
    return experiment.settle(config)

  def realnvp(variant):
    config = olympics_realnvp.get_config(variant)
    for model in (config.model, config.conditional_model):
      model.num_couplings = 2
      model.hidden_sizes = (8,)
    config.eval.iw_samples = 4
    return experiment.settle(config)

  def pixelcnn(module, variant, event_shape, nr_resnet, labels=False):
    config = module.get_config(variant)
    if labels:  # the data set's classes (Fashion-MNIST: 10 and the null class)
      config.data.labels = True
    for model in (config.model, config.conditional_model):
      model.update(nr_resnet=nr_resnet, nr_filters=4, nr_logistic_mix=2, dropout=0.0)
    config.eval.iw_samples = 2
    config = experiment.settle(config)
    # No image set is this small: the tiny shape replaces the data set's (the model, its
    # weights and the export are all the golden needs; no data is read).
    config.data.event_shape = list(event_shape)
    return config

  configs['made_plain'] = (made('baseline'), 'points')
  configs['made_pair_gaussian'] = (made('smoothed'), 'points')
  configs['made_pair_laplace'] = (made('smoothed', 'laplace'), 'points')
  configs['realnvp_plain'] = (realnvp('baseline'), 'points')
  configs['realnvp_pair'] = (realnvp('smoothed'), 'points')
  # The plain model: RGB (channel coupling) and the whole network (gated resnets in the up and
  # down passes). The pair: one channel and nr_resnet 0 (no up-pass resnets, one down-pass
  # resnet after each upsampling), which halves the cost of its export and first calls.
  configs['pixelcnn_plain'] = (pixelcnn(cifar10, 'baseline', (8, 8, 3), 1), 'images')
  configs['pixelcnn_pair'] = (pixelcnn(fashion_mnist, 'smoothed', (8, 8, 1), 0), 'images')
  # Models with a conditioning input in every signature: class labels (a MADE pair on labelled
  # rings; a PixelCNN++ pair on 4 x 4 images with Fashion-MNIST's classes, whose label reaches
  # the gated resnets of both stages), and a noise level (the noise-conditional MADE pair of
  # rings.py, with its annealed sampler's own signature).
  configs['made_pair_labels'] = (made('smoothed', labels=True), 'points')
  configs['pixelcnn_pair_labels'] = (
      pixelcnn(fashion_mnist, 'smoothed', (4, 4, 1), 0, labels=True),
      'images',
  )
  configs['made_pair_noise_conditional'] = (made('noise_conditional'), 'points')
  return configs


def export_model(model, smoothed, images, iw_samples, export_dir):
  """Exports `model` into export_dir; returns the version directory.

  `export.export(model, export_dir, iw_samples=K)` where export takes a model; before that
  API (commit f69e632, where the goldens were first recorded) export took a Run, and the
  model's signatures came from `export.Servable(model, smoothed, images, K)`.
  """
  if next(iter(inspect.signature(export.export).parameters)) == 'model':
    return export.export(model, export_dir, iw_samples=iw_samples)
  servable = export.Servable(model, smoothed, images, iw_samples)
  version_dir = os.path.join(export_dir, '1')
  tf.saved_model.save(servable, version_dir, signatures=servable.serving_signatures)
  return version_dir


def export_conditions(version_dir):
  """The 'conditions' an export's metadata describes: {} for a model without conditions, or an
  export without metadata (export_model's older API)."""
  if not os.path.exists(os.path.join(version_dir, 'assets.extra', 'tfsmooth.json')):
    return {}
  return export.read_metadata(version_dir).get('conditions') or {}


def components(model, smoothed):
  if smoothed:
    return {'prior': model.prior, 'conditional': model.conditional_model}
  return {'model': model}


def record_fresh(name, index, config, kind):
  """(arrays, manifest entry) of the tiny model `name` of `tiny_configs()`, at its `index`
  there (which seeds its initial weights and their perturbation, so that recording it alone
  gives what recording all of them gives)."""
  config = ml_collections.ConfigDict(json.loads(config.to_json_best_effort()))  # as stored
  keras.utils.set_random_seed(index)
  model = experiment.build_model(config)
  model.build_variables()
  smoothed = bool(config.smoothing.enabled)
  rng = np.random.RandomState(100 + index)
  arrays, weights = {}, {}
  for part, layer in components(model, smoothed).items():
    for variable in layer.trainable_variables:
      noise = PERTURBATION * rng.standard_normal(variable.shape)
      variable.assign(variable.numpy() + noise.astype(np.float32))
    values = layer.get_weights()
    weights[part] = [[v.path, list(v.shape)] for v in layer.weights]
    for i, value in enumerate(values):
      arrays[f'weights.{part}.{i:03d}'] = value
  iw_samples = int(config.eval.iw_samples)
  temporary = tempfile.mkdtemp()
  try:
    version_dir = export_model(model, smoothed, kind == 'images', iw_samples, temporary)
    conditions = export_conditions(version_dir)
    event_shape = tuple(config.data.event_shape)
    if kind == 'points':
      x, x_tilde = point_inputs([[0.5, -1.0], [1.5, 0.2], [-2.0, 2.5]])
      height = None
    else:
      sigma = config.smoothing.sigma if smoothed else 0.3
      x, x_tilde = image_inputs(pattern_images(2, event_shape), sigma)
      height = event_shape[0]
    inputs = signature_inputs(kind, x, x_tilde, height, conditions)
    calls, modes = call_signatures(version_dir, inputs, kind, SKIP_CALLS[kind])
    pins = signature_pins(version_dir)
    shared = shared_functions(version_dir)
  finally:
    shutil.rmtree(temporary, ignore_errors=True)
  arrays.update(calls)
  entry = {
      'kind': kind,
      'smoothed': smoothed,
      'iw_samples': iw_samples,
      'config': json.loads(config.to_json_best_effort()),
      'weights': weights,  # per component: [path, shape] of each weight, in order
      'signatures': pins,
      'shared_functions': shared,
      'outputs': modes,
  }
  if conditions:
    entry['conditions'] = conditions  # as the export's metadata describes them
  return arrays, entry


def json_text(value):
  """The text of a golden JSON file (what tests read; a merge re-writes it the same way)."""
  return json.dumps(value, indent=1, sort_keys=True) + '\n'


def read_for_merge(path):
  """The contents of golden JSON file `path`, checked to re-write byte for byte (so that a
  merge changes only the entries it records)."""
  if not os.path.exists(path):
    raise SystemExit(f'{path} does not exist: --only merges into existing goldens.')
  with open(path) as f:
    text = f.read()
  value = json.loads(text)
  if json_text(value) != text:
    raise SystemExit(
        f'{path} is not in the layout record.py writes (json indent 1, sorted keys), so a '
        'merge would rewrite its other entries; re-record them all or restore the file.'
    )
  return value


def write_atomically(path, write):
  """`write(temporary path)`, then the temporary renamed to `path`."""
  base, ext = os.path.splitext(path)
  temporary = f'{base}.tmp-{os.getpid()}{ext}'
  try:
    write(temporary)
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output', required=True, help='directory of the golden files')
  parser.add_argument(
      '--saved_models', default='saved_models', help="the repository's saved_models directory"
  )
  parser.add_argument(
      '--only',
      default='',
      help='comma-separated names of shipped (SHIPPED, PINNED_ONLY) or fresh (tiny_configs) '
      'entries: record just these and merge them into the golden files in --output, leaving '
      'every other entry as it is',
  )
  args = parser.parse_args()
  fresh = tiny_configs()
  assert not set(fresh) & (set(SHIPPED) | set(PINNED_ONLY)), 'fresh and shipped names overlap'
  only = [name for name in args.only.split(',') if name]
  unknown = sorted(set(only) - set(fresh) - set(SHIPPED) - set(PINNED_ONLY))
  if unknown:
    parser.error(
        f'--only names {unknown}, which record.py does not know; choose from the shipped '
        f'{sorted({**SHIPPED, **PINNED_ONLY})} and the fresh {list(fresh)}.'
    )
  if args.only and not only:
    parser.error('--only names nothing.')
  chosen = lambda name: not only or name in only  # noqa: E731
  print('recording with the tfsmooth of', os.path.dirname(os.path.dirname(tfsmooth.__file__)))

  # A shipped model with neither its recorded nor its checked version directory is not exported
  # yet: a full recording skips it (test_golden counts it as pending); --only naming it, or a
  # recorded version missing beside its checked one (re-exported: the recorded version left the
  # tree, so re-recording it needs the checkout of the commit that held it), is refused.
  where = {**{n: w for n, (w, _) in SHIPPED.items()}, **PINNED_ONLY}
  pinned = {}
  for name, path in where.items():
    if not chosen(name):
      continue
    version_dir = os.path.join(args.saved_models, path)
    if not os.path.isdir(version_dir):
      checked = os.path.join(args.saved_models, CHECKED_AS.get(name, path))
      if only or os.path.isdir(checked):
        parser.error(
            f'{version_dir} does not exist: export {name} there first (launch/export.py), or '
            'point --saved_models at the directory that holds it (a version that left the tree: '
            'run record.py in a checkout of a commit that holds it).'
        )
      print('skipped', name, f'({version_dir} does not exist: not exported yet)')
      continue
    pinned[name] = version_dir
  pins = {
      name: {
          'signatures': signature_pins(version_dir),
          'shared_functions': shared_functions(version_dir),
      }
      for name, version_dir in pinned.items()
  }
  recorded = {}  # file name -> arrays
  manifest_entries = {'shipped': {}, 'fresh': {}}
  for name in SHIPPED:
    if name in pinned:
      arrays, manifest_entries['shipped'][name] = record_shipped(args.saved_models, name)
      recorded[f'shipped_{name}.npz'] = arrays
      print('recorded', name, sorted(manifest_entries['shipped'][name]['outputs']))
  for index, (name, (config, kind)) in enumerate(fresh.items()):
    if chosen(name):
      arrays, manifest_entries['fresh'][name] = record_fresh(name, index, config, kind)
      recorded[f'fresh_{name}.npz'] = arrays
      print('recorded', name, sorted(manifest_entries['fresh'][name]['outputs']))

  os.makedirs(args.output, exist_ok=True)
  signature_defs_path = os.path.join(args.output, 'signature_defs.json')
  manifest_path = os.path.join(args.output, 'manifest.json')
  if only:
    merged_pins = read_for_merge(signature_defs_path)
    manifest = read_for_merge(manifest_path)
  else:
    merged_pins, manifest = {}, {'shipped': {}, 'fresh': {}}
  merged_pins.update(pins)
  for part, entries in manifest_entries.items():
    manifest[part].update(entries)
  for file_name, arrays in recorded.items():
    write_atomically(
        os.path.join(args.output, file_name), lambda p, a=arrays: np.savez_compressed(p, **a)
    )

  def writer(value):
    def write(path):
      with open(path, 'w') as f:
        f.write(json_text(value))

    return write

  write_atomically(signature_defs_path, writer(merged_pins))
  write_atomically(manifest_path, writer(manifest))


if __name__ == '__main__':
  main()
