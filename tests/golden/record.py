"""Records the golden outputs that tests/test_golden.py checks the code against.

Run it on a commit that is known good (the goldens are taken as the truth), from a checkout of
that commit, so that the recorded code is that commit's and not an edited working tree:

  git worktree add <tmpdir> <known-good commit>
  cd <tmpdir>
  PYTHONPATH=. <repo>/.venv/bin/python tests/golden/record.py --output=<repo>/tests/golden
  git worktree remove <tmpdir>

The shipped models are read from `saved_models/` of the checkout (or --saved_models) at the
versions in SHIPPED and checked at the versions in CHECKED_AS (the same weights re-exported; the
recorded versions left the tree), the Fashion-MNIST test images they are given from the IDX
files of the Debian package `dataset-fashion-mnist`. It writes into --output:

  signature_defs.json  the serving signatures of every shipped SavedModel: method name, each
                       input's key, tensor name, dtype and shape, each output's key, dtype and
                       shape, and which signatures call one function (serving_default, sample);
  manifest.json        what was called: per shipped model its signatures and how each output
                       compares; per fresh tiny model its config, importance draws K, the shapes
                       and paths of its weights, the signature pins and shared functions of its
                       export, likewise;
  shipped_<name>.npz   inputs 'in.<signature>.<input>' and outputs 'out.<signature>.<key>' of
                       the shipped model's signatures;
  fresh_<name>.npz     the same for a tiny model built from a tfsmooth config, plus its weights
                       'weights.<component>.<index>' (component 'model', or 'prior' and
                       'conditional' of a two-step model), so that a test sets the weights
                       instead of relying on initialisers.

Outputs that are 8-bit images (PixelCNN++ samples, denoised and inpainted images from the
discretized head) are marked 'quantized' and compared on the 8-bit grid; the rest are 'float',
compared with a small tolerance. Seeded draws of autoregressive models (`draws_by_rows`) are
compared row by row, one row allowed to differ (a value drawn at a rounding error from a
decision boundary flips between CPU types, and the rest of the row follows it): the rule is in
tests/test_golden.py's docstring.
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

# Shipped models: base path under saved_models/, version, the points or images they take.
SHIPPED = {
    'rings': ('rings/1', 'points'),
    'olympics': ('olympics/1', 'points'),
    'fashion_mnist_smoothed': ('fashion_mnist_smoothed/2', 'images'),
    'fashion_mnist_baseline': ('fashion_mnist_baseline/2', 'images'),
}
# The version now shipped with each recorded model's weights, against which tests/test_golden.py
# checks the goldens: re-exported from the recorded version (launch/export.py --saved_model),
# which then left the tree, so its outputs must equal the recorded ones.
CHECKED_AS = {
    'rings': 'rings/2',
    'olympics': 'olympics/2',
    'fashion_mnist_smoothed': 'fashion_mnist_smoothed/3',
    'fashion_mnist_baseline': 'fashion_mnist_baseline/3',
}
PINNED_ONLY = {'fashion_mnist_classifier': 'fashion_mnist_classifier/1'}
# Signatures whose outputs are seeded draws, and the models that draw autoregressively (value by
# value, each conditioned on the values drawn before it): their draws are compared row by row.
DRAW_SIGNATURES = ('sample', 'serving_default', 'denoise', 'inpaint')
AUTOREGRESSIVE = ('made', 'pixelcnn')
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
  (RealNVP) are a continuous function of the seeded noise and compare with a tolerance."""
  if signature not in DRAW_SIGNATURES:
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


def signature_inputs(kind, x, x_tilde, height):
  """Inputs of every possible signature, {signature: {input: array}}."""
  seeds = POINT_SEEDS if kind == 'points' else IMAGE_SEEDS
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
  return inputs


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
    args = {key: inputs[name][key] for key in names}
    outputs = function(**{key: tf.constant(value) for key, value in args.items()})
    modes[name] = {}
    for key, value in args.items():
      arrays[f'in.{name}.{key}'] = value
    for key, value in outputs.items():
      value = value.numpy()
      arrays[f'out.{name}.{key}'] = value
      quantized = (
          kind == 'images'
          and key == 'x'
          and name in ('sample', 'serving_default', 'denoise', 'inpaint')
      )
      if quantized:
        levels = (value.astype(np.float64) + 1.0) * 127.5
        if not np.allclose(levels, np.round(levels), atol=1e-3):
          raise AssertionError(f'{version_dir} {name}.{key} is not on the 8-bit grid.')
      modes[name][key] = 'quantized' if quantized else 'float'
  return arrays, modes


def record_shipped(saved_models, output, manifest):
  for name, (where, kind) in SHIPPED.items():
    version_dir = os.path.join(saved_models, where)
    metadata = export.read_metadata(version_dir)
    if kind == 'points':
      points = {
          'rings': [[0.75, 0.0], [0.1, -1.5], [1.6, 1.5]],
          'olympics': [[-2.2, 1.5], [0.0, -0.5], [1.0, 0.4]],
      }[name]
      x, x_tilde = point_inputs(points)
      height = None
    else:
      x, x_tilde = image_inputs(fashion_mnist_test_images(2), metadata['sigma'] or 0.5)
      height = x.shape[1]
    inputs = signature_inputs(kind, x, x_tilde, height)
    arrays, modes = call_signatures(version_dir, inputs, kind, SKIP_CALLS[kind])
    np.savez_compressed(os.path.join(output, f'shipped_{name}.npz'), **arrays)
    manifest['shipped'][name] = {
        'path': f'saved_models/{CHECKED_AS[name]}',
        'recorded_from': f'saved_models/{where}',
        'kind': kind,
        'outputs': modes,
    }
    print('recorded', name, sorted(modes))


def tiny_configs():
  """{name: (settled config, kind)} of the tiny models, from the shipped config files."""
  configs = {}

  def made(variant, kernel='gaussian'):
    config = rings.get_config(variant)
    config.smoothing.kernel = kernel
    for model in (config.model, config.conditional_model):
      model.hidden_sizes = (8,)
    config.eval.iw_samples = 4
    return experiment.settle(config)

  def realnvp(variant):
    config = olympics_realnvp.get_config(variant)
    for model in (config.model, config.conditional_model):
      model.num_couplings = 2
      model.hidden_sizes = (8,)
    config.eval.iw_samples = 4
    return experiment.settle(config)

  def pixelcnn(module, variant, event_shape, nr_resnet):
    config = module.get_config(variant)
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


def components(model, smoothed):
  if smoothed:
    return {'prior': model.prior, 'conditional': model.conditional_model}
  return {'model': model}


def record_fresh(output, manifest):
  for index, (name, (config, kind)) in enumerate(tiny_configs().items()):
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
      event_shape = tuple(config.data.event_shape)
      if kind == 'points':
        x, x_tilde = point_inputs([[0.5, -1.0], [1.5, 0.2], [-2.0, 2.5]])
        height = None
      else:
        sigma = config.smoothing.sigma if smoothed else 0.3
        x, x_tilde = image_inputs(pattern_images(2, event_shape), sigma)
        height = event_shape[0]
      inputs = signature_inputs(kind, x, x_tilde, height)
      calls, modes = call_signatures(version_dir, inputs, kind, SKIP_CALLS[kind])
      pins = signature_pins(version_dir)
      shared = shared_functions(version_dir)
    finally:
      shutil.rmtree(temporary, ignore_errors=True)
    arrays.update(calls)
    np.savez_compressed(os.path.join(output, f'fresh_{name}.npz'), **arrays)
    manifest['fresh'][name] = {
        'kind': kind,
        'smoothed': smoothed,
        'iw_samples': iw_samples,
        'config': json.loads(config.to_json_best_effort()),
        'weights': weights,  # per component: [path, shape] of each weight, in order
        'signatures': pins,
        'shared_functions': shared,
        'outputs': modes,
    }
    print('recorded', name, sorted(modes))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--output', required=True, help='directory of the golden files')
  parser.add_argument(
      '--saved_models', default='saved_models', help="the repository's saved_models directory"
  )
  args = parser.parse_args()
  print('recording with the tfsmooth of', os.path.dirname(os.path.dirname(tfsmooth.__file__)))
  os.makedirs(args.output, exist_ok=True)
  pins = {
      name: {
          'signatures': signature_pins(os.path.join(args.saved_models, where)),
          'shared_functions': shared_functions(os.path.join(args.saved_models, where)),
      }
      for name, where in {**{n: w for n, (w, _) in SHIPPED.items()}, **PINNED_ONLY}.items()
  }
  with open(os.path.join(args.output, 'signature_defs.json'), 'w') as f:
    json.dump(pins, f, indent=1, sort_keys=True)
    f.write('\n')
  manifest = {'shipped': {}, 'fresh': {}}
  record_shipped(args.saved_models, args.output, manifest)
  record_fresh(args.output, manifest)
  with open(os.path.join(args.output, 'manifest.json'), 'w') as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
    f.write('\n')


if __name__ == '__main__':
  main()
