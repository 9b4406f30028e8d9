"""Training that starts from a checkpoint of another directory: `--load N --load_dir D`
into a new `--train_dir` (fine-tuning, or training a released model further). The
release's create_model restored `checkpoint-N` of load_dir whenever --load > 0, in
training too (docs/faithfulness.md §5, §11).

* From one of this project's checkpoints: the weights (batch-norm averages included) and,
  unless --fresh_optimizer, Adam's state and step (so the learning-rate schedule goes
  on), the epoch counter and the random-generator states. Continuing into a new
  directory then trains exactly what resuming in D would have.
* From the authors' TF1 checkpoints, or a packaged model (models/<name>,
  mdm.checkpoint.package): the weights only; Adam starts afresh at step 0.
* Never the normalisation statistics: as in the release, the run computes them from its
  own training data, and its checkpoints carry those.

D is only read. A train_dir that already holds checkpoints resumes from its own.
"""

import logging
import os

import numpy as np

from mdm.checkpoint import package, release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.core.errors import UserError, first_line

LOG = logging.getLogger(__name__)


def loads_elsewhere(config):
    """Whether --load_dir names a directory other than --train_dir."""
    if not config.load_dir:
        return False
    return os.path.realpath(config.load_dir) != os.path.realpath(config.train_dir)


def restore_initial_checkpoint(store, config):
    """Restore checkpoint --load (0: the latest) of --load_dir into `store`'s model (and
    optimizer, see the module docstring); returns the epoch to start at."""
    step = checkpoint_store.resolve_step(config.load_dir, config.load)
    path = checkpoint_store.checkpoint_path(config.load_dir, step)
    if package.is_package(path):
        checkpoint_store.check_architecture(config.load_dir, config)
        package.restore_package(store.parts["model"], path)
        LOG.info("starting from the packaged model %s: its weights, a fresh Adam at step 0",
                 path)
        return 0
    if release_format.checkpoint_format(path) == release_format.RELEASE:
        release_format.check_release_architecture(path, config)
        release_format.restore_release(store.parts["model"], path, config.num_layers,
                                       config.batch_norm)
        LOG.info("starting from the released TF1 checkpoint %s: its weights, a fresh Adam "
                 "at step 0", path)
        return 0
    checkpoint_store.check_architecture(config.load_dir, config)
    keep_optimizer = not config.fresh_optimizer
    try:
        epoch = store.restore_training_state(path, optimizer_state=keep_optimizer)
    except checkpoint_store.RESTORE_ERRORS as err:
        raise UserError(f"cannot restore {path}: {first_line(err)}") from None
    if keep_optimizer:
        _check_epochs_left(path, epoch, config.epochs)
        LOG.info("starting from %s: its weights, Adam state (step %d) and epoch counter "
                 "(%d); --fresh_optimizer True would start Adam afresh", path, step, epoch)
    else:
        LOG.info("starting from %s: its weights, a fresh Adam at step 0 (--fresh_optimizer)",
                 path)
    _log_statistics(path, store.stats())
    return epoch


def _check_epochs_left(path, epoch, epochs):
    if epoch >= epochs:
        raise UserError(f"{path} was trained for {epoch} epochs and --epochs {epochs} is the "
                        "total to reach: nothing to train (raise --epochs, or give "
                        "--fresh_optimizer True to count epochs from 0)")


def _log_statistics(path, stats):
    """Say whether this run's statistics (from its training data) differ from the ones
    stored with the checkpoint it starts from."""
    saved = checkpoint_store.saved_stats(path)
    same = all(np.allclose(getattr(stats, name), getattr(saved, name))
               for name in ("mean_2d", "std_2d", "mean_3d", "std_3d"))
    LOG.info("normalisation statistics: from this run's training data, as in the release "
             "(%s those stored in %s)", "the same as" if same else "they differ from", path)
