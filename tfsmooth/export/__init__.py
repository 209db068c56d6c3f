"""SavedModel exports of a trained model, with serving signatures, under numeric versions.

`export(model, export_dir, iw_samples, metadata)` writes `export_dir/<n>` (n = the next free
version number, the layout TF Serving reads) through a temporary directory renamed into place,
so a failed export leaves no partial version and never touches earlier ones. Signatures
(method name `tensorflow/serving/predict`, free batch dimension N, per-row seeds [N, 2] so
that a row's result depends only on its own inputs and REST "instances" requests work):

  sample (also serving_default): seed -> x            (two-step models also x_tilde)
  log_prob:            x [, seed] -> log_prob          exact for a plain model; for a two-step
                                                        model the importance-weighted bound
                                                        log (1/K) sum_k w_k, and elbo beside it
  denoise:             x_tilde, seed -> x              x ~ p(x | x~)        (two-step models)
  denoise_single_step: x_tilde -> x                    x~ + sigma^2 grad log p(x~) (Gaussian q)
  inpaint:             x, num_known_rows, seed -> x    (image models; row i keeps its top
                                                        num_known_rows[i] rows)

A model with conditions (`model.conditions`: a class label, a noise level) takes one more
input in every signature per condition, named by its `input_name` (e.g. label), one value per
row; the warm-up requests carry each condition's default.

Every signature checks its inputs inside the graph, before the model sees them, and fails with
an InvalidArgumentError that names the input and what was expected (a signature's declared
shape is not enforced when a loaded SavedModel is called, nor by TF Serving): the trailing
shape of x / x_tilde (the event shape) and of seed ([N, 2]), num_known_rows and each
condition ([N]), one row of each input per row of the first, finite values, num_known_rows in
[0, H], each condition within its range, and the values of the data range of image models
(`input_ranges`): x in [-1, 1] (8-bit values v as v / 127.5 - 1) and a pair's smoothed x_tilde
within the kernel's noise bound around it.

`assets.extra/tfsmooth.json` records what the caller passes as metadata (a run's settled
config, data set, training step, weights and the metrics of those weights:
`experiment.Run.export_metadata`), the model's facts (kernel, sigma; also under `facts`), its
conditions (`Condition.describe()` by keyword), the number of importance draws K and what each
signature takes and returns. `assets.extra/tf_serving_warmup_requests` holds one small request
per signature (TFRecord of `PredictionLog`), which TF Serving replays at load so that its first
client does not pay for the graph's first run. Paths go through `tf.io.gfile` (local paths or
URLs).

Size: each weight is stored once (only the tf.Variables are tracked); a pair's `sample` calls
the same traced `denoise` function as the `denoise` signature (the conditional sampler is
traced once); and numpy arrays that layers hold (MADE's masks) are captured as constants,
stored once in the SavedModel, instead of being embedded at every call site of every traced
function, which makes a MADE pair's graph several times smaller. The captured masks enter the
MADE sampler's per-row loops as loop inputs, which makes that loop somewhat slower (an A/B in
one process put it at about 15% of a 1,000-row rings sample; not recorded); log_prob and denoise
were not timed. RESULTS.md, "Shipped models (saved_models/) and serving latency", gives the
measured sizes and times.

Modules: `signatures` (the signature bodies, their input checks, descriptions and warm-up
inputs), `directory` (the serving directory protocol: versions, temporaries, publishing, the
metadata, warm-up records and weights of a version) and `loaded` (`ExportedModel`: the model
interface of an export, through its signatures).
"""

import os

import tensorflow as tf

import tfsmooth
from tfsmooth import errors
from tfsmooth.export import directory
from tfsmooth.export import loaded
from tfsmooth.export import signatures

# The package's interface: what callers use as `export.<name>`.
METADATA = directory.METADATA
WARMUP = directory.WARMUP
VARIABLES = directory.VARIABLES
next_version = directory.next_version
read_metadata = directory.read_metadata
read_warmup = directory.read_warmup
write_warmup = directory.write_warmup
restore_weights = directory.restore_weights
SAMPLE_KEYS = signatures.SAMPLE_KEYS
NOISE_TAIL = signatures.NOISE_TAIL
Servable = signatures.Servable
check_inputs = signatures.check_inputs
describe = signatures.describe
input_ranges = signatures.input_ranges
noise_bound = signatures.noise_bound
warmup_inputs = signatures.warmup_inputs
ExportedModel = loaded.ExportedModel


def _check_metrics(metadata):
  """Refuses metadata whose metrics name other weights than the export holds."""
  metrics = (metadata or {}).get('metrics') or {}
  weights, measured = (metadata or {}).get('weights'), metrics.get('weights')
  if weights and measured and weights != measured:
    raise errors.UserError(
        f'The metrics given to the export were measured on the {measured} weights but the '
        f'model holds the {weights} weights: an export records the metrics of the weights it '
        'holds. Evaluate these weights (experiment.Run.evaluate) or export the weights the '
        'metrics describe.'
    )


def export(model, export_dir, iw_samples=1, metadata=None):
  """Exports a trained `model` as export_dir/<next version>, with `metadata` (the run's
  config, step, weights, metrics...) in its tfsmooth.json beside what the export states
  itself, and TF Serving warm-up requests. Returns the path of the new version directory.

  A model built in Python exports as it is: no workdir is needed. Metadata whose metrics name
  other weights (metrics['weights']) than metadata['weights'] is refused.
  """
  if model is None or not model.built:
    raise errors.UserError(
        'There is no trained model to export: restore a run with experiment.Run.load (or '
        'build the model and train it) first.'
    )
  iw_samples = int(iw_samples)
  if iw_samples < 1:
    raise errors.UserError(f'iw_samples must be >= 1, got {iw_samples}.')
  _check_metrics(metadata)
  servable = signatures.Servable(model, iw_samples)
  facts = model.facts()
  model_name = os.path.basename(os.path.normpath(export_dir))

  def write(path, version):
    with signatures.no_renaming_notice():
      tf.saved_model.save(servable, path, signatures=servable.serving_signatures)
    directory.write_warmup(
        os.path.join(path, WARMUP),
        signatures.warmup_inputs(servable.serving_signatures, model),
        model_name,
    )
    directory.write_metadata(
        path,
        {
            'tfsmooth_version': tfsmooth.__version__,
            'tensorflow_version': tf.__version__,
            'version': version,
            **(metadata or {}),
            'event_shape': list(model.event_shape),
            'smoothed': model.smoothed,
            **facts,
            'facts': facts,
            'conditions': {k: c.describe() for k, c in model.conditions.items()},
            'iw_samples': None if model.exact_likelihood else iw_samples,
            'signatures': signatures.describe(servable.serving_signatures, model, iw_samples),
            'warmup_requests': WARMUP,
        },
    )

  return directory.write_version(export_dir, write)
