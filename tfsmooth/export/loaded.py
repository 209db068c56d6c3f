"""A loaded export: the trained-model interface of a version directory, through its signatures.

`ExportedModel(version_dir)` answers what `models.interface.TrainedModel` names, in a process
that need not rebuild the model: `draw` (every sampler the export has: a pair's single-step
sampler applies the `denoise_single_step` signature to the `sample` signature's x~; a sampler
with a signature of its own gets the condition inputs that signature takes,
`sampler_conditions`),
`likelihood` (exact, or the bound with the K fixed at export), `denoise` (two-step through the
`denoise` signature, single-step through `denoise_single_step`), `inpaint` (the `inpaint`
signature) and `facts()` / `conditions` as the export's `tfsmooth.json` recorded them. A member
the export has no signature for refuses, naming what the export lacks. It is not a
`SmoothedPair` even when exported from one: the signatures give neither the kernel nor p(x~).
"""

import tensorflow as tf

# Siblings by their full names: `from tfsmooth.export import ...` reads, to the package's
# import-graph test, as an import of the package, whose __init__ imports this module.
import tfsmooth.export.directory as directory  # pylint: disable=consider-using-from-import
import tfsmooth.export.signatures as signatures  # pylint: disable=consider-using-from-import
from tfsmooth import errors
from tfsmooth.models import interface

# The denoiser each denoising signature applies.
DENOISE_SIGNATURES = {'denoise_single_step': 'single_step', 'denoise': 'two_step'}
_SIGNATURE_OF = {name: signature for signature, name in DENOISE_SIGNATURES.items()}
# The facts of exports made before tfsmooth.json recorded `facts` (model.facts() keys, stored
# beside the other metadata).
_OLDER_FACTS = ('kernel', 'sigma', 'num_params_prior', 'num_params_conditional', 'standardized')


class ExportedModel:
  """The model interface of an exported version directory (module docstring).

  Args:
    version_dir: a version directory written by `tfsmooth.export.export`.
    metadata: its tfsmooth.json, if already read.
  """

  def __init__(self, version_dir, metadata=None):
    self.version_dir = version_dir
    self.metadata = directory.read_metadata(version_dir) if metadata is None else metadata
    self.loaded = tf.saved_model.load(version_dir)  # owns the variables the signatures read
    self.signatures = self.loaded.signatures
    self.event_shape = tuple(self.metadata['event_shape'])
    self.smoothed = bool(self.metadata['smoothed'])
    self.iw_samples = self.metadata.get('iw_samples')
    self.exact_likelihood = self.iw_samples is None
    self.conditions = {
        keyword: interface.Condition.from_record(keyword, record)
        for keyword, record in (self.metadata.get('conditions') or {}).items()
    }
    self.denoisers = tuple(
        name for signature, name in DENOISE_SIGNATURES.items() if signature in self.signatures
    )
    own = tuple(  # samplers with a signature of their own: sample_<name> (e.g. annealed)
        name[len('sample_') :] for name in sorted(self.signatures) if name.startswith('sample_')
    )
    self.samplers = (('smoothed',) + self.denoisers if self.smoothed else ('samples',)) + own
    self.can_inpaint = 'inpaint' in self.signatures

  def facts(self):
    """What the exported model's `facts()` stated (kernel, sigma, ...), from its metadata."""
    if 'facts' in self.metadata:
      return dict(self.metadata['facts'])
    return {k: self.metadata[k] for k in _OLDER_FACTS if k in self.metadata}

  def sampler_conditions(self, sampler):
    """The keywords of the conditions that `sampler` reads: those whose input its own
    signature sample_<sampler> takes (an export made before such a signature dropped the
    inputs its sampler does not read takes them all), or all of them for the samplers of the
    `sample` signature."""
    interface.choose(self, 'samplers', [sampler])
    own = self.signatures.get(f'sample_{sampler}')
    if own is None:
      return tuple(self.conditions)
    takes = own.structured_input_signature[1]
    return tuple(k for k, c in self.conditions.items() if c.input_name in takes)

  def _inputs(self, conditions, rows):
    """The signatures' inputs of the given conditions, {input_name: [N]}, defaults filled."""
    resolved = interface.resolve_conditions(self, conditions, rows)
    return {self.conditions[k].input_name: v for k, v in resolved.items()}

  def _points(self, x, what):
    """x as float32 [N, *event_shape] (a UserError naming the shape otherwise)."""
    x = tf.convert_to_tensor(x, tf.float32)
    trailing = tuple(x.shape[1:]) if x.shape.rank is not None else self.event_shape
    if len(trailing) != len(self.event_shape) or any(
        d is not None and d != e for d, e in zip(trailing, self.event_shape)
    ):
      raise errors.UserError(
          f'{what} has shape {tuple(x.shape)}, but the export at {self.version_dir} models '
          f'events of shape {self.event_shape}: pass [N, {", ".join(map(str, self.event_shape))}].'
      )
    return x

  def _lacks(self, signature, why):
    return errors.UserError(
        f'The export at {self.version_dir} has no {signature} signature: {why} (its signatures '
        f'are {", ".join(sorted(s for s in self.signatures if s != "serving_default"))}).'
    )

  def _choose(self, kind, names):
    """`names` of the export's `kind` ('samplers' or 'denoisers'; None: all of them); a
    denoiser whose signature the export lacks is refused naming that signature."""
    for name in names or ():
      signature = _SIGNATURE_OF.get(name)
      if signature and signature not in self.signatures:
        raise self._lacks(signature, f'the exported model has no {name} denoiser')
    return interface.choose(self, kind, names)

  def draw(self, seeds, samplers=None, **conditions):
    """{sampler: x [N, ...]}, row i from seeds[i] [N, 2] alone (the `sample` signature)."""
    samplers = self._choose('samplers', samplers)
    seeds = tf.cast(interface.check_seeds(seeds), tf.int32)
    inputs = self._inputs(conditions, interface.rows_of(seeds))
    drawn = {}
    if set(samplers) & (set(signatures.SAMPLE_KEYS) | {'single_step'}):
      out = self.signatures['sample'](seed=seeds, **inputs)
      drawn = {
          name: out[signatures.SAMPLE_KEYS[name]]
          for name in self.samplers
          if name in signatures.SAMPLE_KEYS
      }
      if 'single_step' in samplers:
        drawn.update(self.denoise(out['x_tilde'], None, ['single_step'], **conditions))
    for name in samplers:
      if f'sample_{name}' in self.signatures:
        reads = {self.conditions[k].input_name for k in self.sampler_conditions(name)}
        given = {key: value for key, value in inputs.items() if key in reads}
        drawn[name] = self.signatures[f'sample_{name}'](seed=seeds, **given)['x']
    return {name: drawn[name] for name in samplers}

  def likelihood(self, x, seeds=None, num_samples=1, **conditions):
    """Exact log p(x), or the export's importance-weighted bound and ELBO with its K draws
    (`num_samples` must be that K)."""
    x = self._points(x, 'x')
    inputs = self._inputs(conditions, interface.rows_of(x))
    if self.exact_likelihood:
      log_prob = self.signatures['log_prob'](x=x, **inputs)['log_prob']
      return interface.Likelihood(log_prob, log_prob, 1, True)
    if num_samples != self.iw_samples:
      raise errors.UserError(
          f'The export at {self.version_dir} computes its bound with K={self.iw_samples} '
          f'draws, fixed at export; K={num_samples} cannot change it. Pass '
          f'num_samples={self.iw_samples} (launch/evaluate.py: drop --iw_samples), or evaluate '
          'the training workdir, or re-export with another K.'
      )
    seeds = tf.cast(interface.check_seeds(seeds, x), tf.int32)
    out = self.signatures['log_prob'](x=x, seed=seeds, **inputs)
    return interface.Likelihood(out['log_prob'], out['elbo'], int(num_samples), False)

  def denoise(self, x_tilde, seeds, denoisers=None, **conditions):
    """{denoiser: x} for given smoothed rows x~: 'two_step' through the `denoise` signature
    (row i from seeds[i] alone), 'single_step' through `denoise_single_step` (seeds unused)."""
    denoisers = self._choose('denoisers', denoisers)
    if not denoisers:
      return {}
    x_tilde = self._points(x_tilde, 'x_tilde')
    inputs = self._inputs(conditions, interface.rows_of(x_tilde))
    out = {}
    if 'single_step' in denoisers:
      out['single_step'] = self.signatures['denoise_single_step'](x_tilde=x_tilde, **inputs)['x']
    if 'two_step' in denoisers:
      seeds = tf.cast(interface.check_seeds(seeds, x_tilde), tf.int32)
      out['two_step'] = self.signatures['denoise'](x_tilde=x_tilde, seed=seeds, **inputs)['x']
    return out

  def inpaint(self, x, num_known_rows, seeds, **conditions):
    """Images x with the rows below their top num_known_rows[i] drawn, row i from seeds[i]
    alone (the `inpaint` signature)."""
    if not self.can_inpaint:
      raise self._lacks(
          'inpaint',
          'it was exported from a model that cannot inpaint (only image models, PixelCNN++, '
          'complete images below given rows)',
      )
    x = self._points(x, 'x')
    seeds = tf.cast(interface.check_seeds(seeds, x), tf.int32)
    counts = tf.broadcast_to(tf.convert_to_tensor(num_known_rows, tf.int32), tf.shape(seeds)[:1])
    inputs = self._inputs(conditions, interface.rows_of(x))
    return self.signatures['inpaint'](x=x, num_known_rows=counts, seed=seeds, **inputs)['x']
