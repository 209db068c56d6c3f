"""Checkpoints of a model and of a training run: keyed weights, EMA averages, readable fallback.

A checkpoint holds a model's weights as `weights/<position>/<Keras path>` (all of
`model.variables`, dropout seed states too); a training checkpoint adds the optimizer, the
training time, the best validation figure, the EMA averages as `ema/<key>` for the trainable
weights (when the run keeps them) and, on one worker, the input position.

A run's checkpoints are `<workdir>/checkpoints` (periodic, resumable) and `<workdir>/best` (the
lowest validation). Restoring takes the newest checkpoint that reads; an unreadable one is
named with its files and, when training resumes, set aside in `<dir>/unreadable/` (its number
is then free, and the evidence stays). Orphan `ckpt-N_temp` directories of a save cut short
are removed. Every path may be a URL: all file access goes through `tf.io.gfile`.

A save the storage refuses (a full disk, a lost permission: TF's checkpoint writer raises
`ResourceExhaustedError` and leaves `ckpt-N_temp/` behind) raises `writes.WriteFailed`, which
names the checkpoint, why, and the newest intact checkpoint a rerun resumes from, after removing
what the save left: its `_temp` directory, its files if no state file lists them, and the state
file's temporaries. The checkpoints saved before stay as they were, listed and loadable.
"""

import os
import re

from absl import logging
import tensorflow as tf

from tfsmooth import errors
from tfsmooth import writes
from tfsmooth.train import strategy as strategy_lib

CHECKPOINTS = 'checkpoints'
BEST = 'best'
UNREADABLE = 'unreadable'
STATE = 'checkpoint'  # the state file listing a directory's checkpoints


# Keras names the seed generators of dropout layers by a counter of the whole process
# (seed_generator, seed_generator_1, ...): the same model built second gets other names.
_SEED_SCOPE = re.compile(r'^seed_generator(_\d+)?/')


def keyed_variables(model, legacy=False):
  """'<position>/<Keras path>' -> variable for all of `model.variables` (paths alone repeat
  across sub-models). A dropout seed state is keyed 'seed_generator/...' whatever number the
  process gave it, so that a model restores a checkpoint of its twin built earlier in the same
  process; `legacy` keys them as a fresh process numbered them before that (the j-th
  'seed_generator_j'), for checkpoints saved so."""
  keyed, seeds = {}, 0
  for i, v in enumerate(model.variables):
    path = v.path
    if _SEED_SCOPE.match(path):
      scope = f'seed_generator_{seeds}' if legacy and seeds else 'seed_generator'
      path = _SEED_SCOPE.sub(scope + '/', path)
      seeds += 1
    keyed[f'{i:03d}/{path}'] = v
  return keyed


def _legacy_seed_keys(prefix):
  """Whether checkpoint `prefix` keys dropout seed states by the process's numbering."""
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)
  return any(
      re.match(r'^weights/\d+\.Sseed_generator_\d+\.S', name)  # '/' in a key is stored '.S'
      for name in reader.get_variable_to_shape_map()
  )


def model_checkpoint(model, legacy=False, **extra):
  """A tf.train.Checkpoint of the model's weights (plus `extra`).

  Keras 3 models are not tracked by tf.train.Checkpoint through attributes, so the weights
  are listed explicitly (all of `model.variables`, so dropout seed states too); evaluation
  and export restore with the same structure. `legacy`: `keyed_variables`'s.
  """
  return tf.train.Checkpoint(weights=keyed_variables(model, legacy), **extra)


def _ema_checkpoint(model, legacy=False):
  """Restores a training checkpoint's EMA averages into the model's trainable weights (the
  other weights from the raw ones)."""
  keyed = keyed_variables(model, legacy)
  return tf.train.Checkpoint(
      weights={k: v for k, v in keyed.items() if not v.trainable},
      ema={k: v for k, v in keyed.items() if v.trainable},
  )


def _holds(prefix, key):
  """Whether the checkpoint `prefix` holds the entry `key` (of `model_checkpoint`'s extras)."""
  # Read from the prefix itself: `tf.train.list_variables` first asks whether it is a
  # directory, which some file systems (ram://) answer yes for any prefix of a file name.
  reader = tf.compat.v1.train.NewCheckpointReader(prefix)
  return any(name.startswith(f'{key}/') for name in reader.get_variable_to_shape_map())


def has_ema(prefix):
  """Whether the checkpoint `prefix` holds EMA averages."""
  return _holds(prefix, 'ema')


def candidates(directory):
  """Checkpoint prefixes listed in `directory`'s state file, newest first.

  `get_checkpoint_state` already joins relative entries with `directory`.
  """
  state = tf.train.get_checkpoint_state(directory)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  return paths[::-1]


def _names(directory):
  """Entry names in `directory` (none if it does not exist), without the '/' that object
  stores append to directories."""
  if not tf.io.gfile.isdir(directory):
    return []
  try:
    return sorted(name.rstrip('/') for name in tf.io.gfile.listdir(directory))
  except tf.errors.NotFoundError:
    return []


def _files(prefix):
  """The files of checkpoint `prefix`: `<prefix>.*` (listed, not globbed: a path may hold
  glob metacharacters and `tf.io.gfile.glob` cannot escape them)."""
  directory, base = os.path.split(prefix)
  return [os.path.join(directory, n) for n in _names(directory) if n.startswith(base + '.')]


def _describe(error):
  if 'Failed to restore dataset iterator' in str(error):
    return (
        'its input-pipeline position was written by a different data pipeline (the data '
        "set definition or tfsmooth's input code changed since)"
    )
  return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _set_aside(directory, bad, good):
  """Moves the files of the `bad` prefixes to `directory/unreadable/` and lists only `good`
  (oldest first) in the state file."""
  aside = os.path.join(directory, UNREADABLE)
  with writes.guarded('the unreadable checkpoints set aside', aside):
    tf.io.gfile.makedirs(aside)
    for path in (f for p in bad for f in _files(p)):
      tf.io.gfile.rename(path, os.path.join(aside, os.path.basename(path)), overwrite=True)
    tf.compat.v1.train.update_checkpoint_state(directory, good[-1], good)
  return aside


def restore_newest_readable(directory, restore, set_aside=False):
  """Calls `restore(prefix)` on the newest checkpoint of `directory` that reads, newest first.

  An unreadable checkpoint is logged with its files; with `set_aside`, its files move to
  `directory/unreadable/` and the state file lists only the ones left, so that a new save
  under its number cannot silently replace the evidence. Returns the prefix restored, or None
  if `directory` has none; raises `errors.UserError` if none reads.
  """
  listed = candidates(directory)
  bad = {}  # unreadable prefix: why, newest first
  for prefix in listed:
    try:
      restore(prefix)
    except (tf.errors.OpError, IndexError) as e:  # IndexError: a truncated data file
      bad[prefix] = _describe(e)
      logging.error(
          'Checkpoint %s is unreadable (%s); files: %s.',
          prefix,
          bad[prefix],
          ', '.join(_files(prefix)) or 'none',
      )
      continue
    if bad and set_aside:
      aside = _set_aside(directory, bad, [p for p in reversed(listed) if p not in bad])
      logging.warning(
          'Set aside unreadable checkpoint(s) %s in %s; resuming from %s.',
          ', '.join(map(os.path.basename, bad)),
          aside,
          prefix,
      )
    elif bad:
      logging.warning('Using %s, the newest readable checkpoint in %s.', prefix, directory)
    return prefix
  if bad:

    def why(prefix, reason):
      files = _files(prefix)
      if not files:
        return f'{prefix}: listed in the "checkpoint" file but its files are missing'
      return f'{prefix} ({", ".join(files)}): {reason}'

    details = '; '.join(why(p, r) for p, r in bad.items())
    raise errors.UserError(
        f'No checkpoint in {directory} can be read ({details}). Restore them '
        'from a backup, or move them away to start the run over.'
    )
  return None


def remove_tree(path):
  """Deletes the directory `path` and its contents, if it exists (best effort)."""
  try:
    if tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)
  except tf.errors.OpError as e:
    logging.warning('Could not remove %s: %s', path, e)


def remove_orphans(directory):
  """Deletes `ckpt-N_temp` directories and state-file temporaries (`checkpoint.tmp<hex>`) that a
  save killed midway left behind (never listed in the state file, so never restored)."""
  for name in _names(directory):
    path = os.path.join(directory, name)
    if name.endswith('_temp') and not name.startswith('.') and tf.io.gfile.isdir(path):
      logging.info('Removing %s, left by a save that did not finish.', path)
      remove_tree(path)
    elif name.startswith(STATE + '.tmp'):
      logging.info('Removing %s, left by a save that did not finish.', path)
      writes.remove_quietly(path)


def _remove_failed_save(directory, prefix):
  """Removes what a save of `prefix` that failed left in `directory`: its `_temp` directory,
  the state file's temporaries and, unless the state file lists it (the failure came after
  it was recorded: it is whole), its own files."""
  remove_orphans(directory)
  if prefix not in _listed(directory):
    for path in _files(prefix):
      writes.remove_quietly(path)


def _listed(directory):
  """The prefixes the state file of `directory` lists (none if it cannot be read)."""
  try:
    return candidates(directory)
  except (tf.errors.OpError, ValueError):  # ValueError: a state file that does not parse
    return []


def intact(prefix):
  """Whether checkpoint `prefix` has its index, which reads, and all its data files."""
  files = [os.path.basename(f) for f in _files(prefix)]
  data = [f for f in files if '.data-' in f]
  shards = {f.rsplit('-of-', 1)[-1] for f in data}
  if os.path.basename(prefix) + '.index' not in files or len(shards) != 1:
    return False
  if len(data) != int(shards.pop()):
    return False
  try:
    tf.compat.v1.train.NewCheckpointReader(prefix)
  except (tf.errors.OpError, ValueError):
    return False
  return True


def newest_intact(directory):
  """The newest checkpoint of `directory` that is `intact`, or None."""
  return next((prefix for prefix in _listed(directory) if intact(prefix)), None)


def describe_saved(workdir):
  """What a run in `workdir` has saved, as the sentence a write failure ends with: its newest
  intact checkpoint and step, where training resumes, and its best one."""
  newest = newest_intact(os.path.join(workdir, CHECKPOINTS))
  best = newest_intact(os.path.join(workdir, BEST))
  if newest is None:
    sentence = (
        f'No checkpoint of this run was saved in {workdir} yet: training starts again at step 0.'
    )
  else:
    sentence = (
        f'The newest intact checkpoint is {newest} (step {step_of(newest)}): training resumes '
        'from it.'
    )
  if best is not None:
    sentence += f' The best on validation so far is {best} (step {step_of(best)}).'
  return sentence


def saved_near(path, levels=3):
  """`describe_saved` of the run whose workdir holds `path` (a file written in a workdir, or up
  to `levels` folders below it; its `checkpoints` folder shows it is one), else None."""
  folder = os.path.dirname(os.fspath(path).rstrip('/'))
  for _ in range(levels):
    try:
      if tf.io.gfile.isdir(os.path.join(folder, CHECKPOINTS)):
        return describe_saved(folder)
    except tf.errors.OpError:
      return None
    parent = os.path.dirname(folder)
    if parent == folder:
      return None
    folder = parent
  return None


def restore_model(model, directory, ema=True):
  """Builds `model`'s weights and loads them from the newest readable checkpoint in `directory`.

  With `ema` (default) the checkpoint's EMA averages are loaded when the run kept them,
  otherwise the raw weights. Returns the checkpoint prefix.
  """
  model.build_variables()

  def restore(prefix):
    use_ema = ema and has_ema(prefix)
    legacy = _legacy_seed_keys(prefix)
    checkpoint = _ema_checkpoint(model, legacy) if use_ema else model_checkpoint(model, legacy)
    checkpoint.restore(prefix).expect_partial().assert_existing_objects_matched()

  path = restore_newest_readable(directory, restore)
  if path is None:
    raise FileNotFoundError(
        f'No checkpoint in {directory}: train first (launch/train.py '
        'with this --workdir) or point to the right workdir.'
    )
  return path


def restore_best(model, workdir, ema=True):
  """Loads a run's best checkpoint (workdir/best), or its newest one if it kept no best; the
  EMA weights if the run kept them and `ema`, else the raw ones."""
  best = os.path.join(workdir, BEST)
  return restore_model(model, best if candidates(best) else os.path.join(workdir, CHECKPOINTS), ema)


def step_of(prefix):
  """The step N of a 'ckpt-N' prefix."""
  return int(os.path.basename(prefix).split('-')[-1])


class RunCheckpoints:
  """The checkpoints of one training run in `workdir`, on every worker of `strategy` (default:
  the current one).

  Each holds the model's weights and `state` (a dict of trackables: optimizer, counters,
  `best_metric` and `best_step` (the lowest validation figure and its step), `ema` {key:
  average} when the run keeps averages, the input iterator). Saves are collective: the chief
  writes `workdir/checkpoints` and `workdir/best`, other workers a scratch directory of their
  own (removed by `remove_scratch`); all workers restore from the chief's.

  A save the storage refuses raises `writes.WriteFailed` on the chief, with what remains saved
  (`describe`), after removing the failed save's files. A worker's scratch save is only its
  share of a collective save and is never read: if the storage refuses it, the worker logs a
  warning and goes on (the chief's saves decide).
  """

  def __init__(self, workdir, model, state, strategy=None):
    self.model = model
    self.state = state
    self._strategy = strategy or tf.distribute.get_strategy()
    self.chief = self._strategy.extended.should_checkpoint
    self.directory = os.path.join(workdir, CHECKPOINTS)
    self.best_directory = os.path.join(workdir, BEST)
    self.scratch = (
        None
        if self.chief
        else os.path.join(workdir, f'scratch_worker{self._strategy.cluster_resolver.task_id}')
    )
    self.checkpoint = model_checkpoint(model, **state)
    self._managers = None

  def resume(self, keep):
    """Restores the newest readable checkpoint (the chief first removes orphan saves and sets
    unreadable ones aside), then starts keeping the newest `keep`. Returns the prefix
    restored, or None for a new run."""
    if self.chief:
      for directory in (self.directory, self.best_directory):
        remove_orphans(directory)
    resumed = restore_newest_readable(self.directory, self._restore, set_aside=self.chief)
    # Managers read the state file when made: after unreadable checkpoints left it.
    write_to = self.scratch or self.directory
    self._managers = (
        tf.train.CheckpointManager(self.checkpoint, write_to, max_to_keep=keep),
        tf.train.CheckpointManager(
            self.checkpoint,
            os.path.join(self.scratch, BEST) if self.scratch else self.best_directory,
            max_to_keep=1,
        ),
    )
    return resumed

  def _restore(self, prefix, parts=None):
    """Restores the weights and `parts` of the state (default: all of it; with `parts`, the
    checkpoint's other entries stay unread). From a checkpoint saved without EMA, the averages
    start from its weights."""
    partial = parts is not None
    parts = self.state if parts is None else parts
    averages = parts.get('ema')
    if averages is not None and not has_ema(prefix):
      logging.warning(
          '%s holds no EMA weights (saved without EMA): the averages start from its weights.',
          prefix,
      )
      parts = {k: v for k, v in parts.items() if k != 'ema'}
    if 'best_step' in parts and not _holds(prefix, 'best_step'):  # saved before it existed
      parts = {k: v for k, v in parts.items() if k != 'best_step'}
    status = model_checkpoint(self.model, _legacy_seed_keys(prefix), **parts).restore(prefix)
    if partial:
      status.expect_partial()
    status.assert_existing_objects_matched()
    if averages is not None and 'ema' not in parts:
      for key, v in keyed_variables(self.model).items():
        if key in averages:
          averages[key].assign(v)

  def save(self, step):
    """Saves the periodic checkpoint of `step`."""
    self._save(self._managers[0], step, f'the checkpoint of step {step}')

  def save_best(self, step):
    """Saves `step` as the best checkpoint (replacing the previous best)."""
    self._save(self._managers[1], step, f'the best checkpoint (step {step})')

  def _save(self, manager, step, what):
    prefix = os.path.join(manager.directory, f'ckpt-{step}')
    try:
      manager.save(checkpoint_number=step)
    except writes.WRITE_ERRORS as e:
      _remove_failed_save(manager.directory, prefix)
      failure = writes.WriteFailed.of(what, prefix, e)
      if not self.chief:
        logging.warning('%s (a scratch save no one reads; the chief saves the run).', failure)
        return
      raise failure.with_saved(self.describe()) from e

  def describe(self):
    """What the run has saved (`describe_saved`): every worker reads the chief's directories."""
    return describe_saved(os.path.dirname(self.directory))

  def save_pending_best(self, step):
    """Saves the best checkpoint that the previous process validated but could not save.

    Where a validation and a periodic checkpoint fall on one step, the trainer saves the
    periodic one first (with the new `best_step` in it), then the best: if the best save
    failed (a full disk) or the process died between the two, the state resumed at `step` is
    that best (`best_step` is `step`), and `best/` is behind it. Every worker decides alike
    from the chief's files, read before anyone writes (`strategy.barrier`). Returns the step
    saved, or None.
    """
    if 'best_step' not in self.state:
      return None
    best_step = int(self.state['best_step'].numpy())
    listed = candidates(self.best_directory)
    behind = not listed or step_of(listed[0]) < best_step
    strategy_lib.barrier(self._strategy)
    if not (best_step == step and behind):
      return None
    logging.info('Saving the best checkpoint of step %d, which the last run could not.', best_step)
    self.save_best(best_step)
    return best_step

  def restore_best_weights(self):
    """Loads the weights, EMA averages and validation figure of the best checkpoint, leaving
    the optimizer, the training time and the input position those of the last step; returns
    its step, or None if there is none.

    Every worker reads the chief's `best/`, once all have called this (`strategy.barrier`), so
    after the chief's last save: a worker that read it sooner could load the previous best, or
    fail on files that the chief's last `save_best` had just deleted. (The chief writes `best/`
    only in `save_best`; a best saved by an earlier process is as safe to read.)
    """
    strategy_lib.barrier(self._strategy)
    best = candidates(self.best_directory)
    if not best:
      return None
    best_parts = ('ema', 'best_metric', 'best_step')
    self._restore(best[0], {k: v for k, v in self.state.items() if k in best_parts})
    return step_of(best[0])

  def remove_scratch(self):
    if self.scratch:
      remove_tree(self.scratch)
