"""Load a trained model with its normalisation statistics from any checkpoint format:
this project's object-based checkpoints (statistics inside), its packaged models
(mdm.checkpoint.package, as shipped in models/) or the authors' released TF1 checkpoints
(statistics recomputed from the training subjects, docs/faithfulness.md §5).

Every consumer of a trained model goes through `load_model`: the --test and --sample
modes, the cross-dataset test, the Lifter and `python -m mdm.infer`.
"""

import dataclasses
import logging
import math
import os

from mdm.checkpoint import package, release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.core import skeleton
from mdm.core.config import ARCHITECTURE_FIELDS
from mdm.core.errors import UserError, first_line
from mdm.data import splits
from mdm.model.network import build_model

LOG = logging.getLogger(__name__)


def with_resolved_checkpoint(config):
    """`config` with load_dir defaulted to train_dir and load 0 resolved to the latest
    step there (said in the log, so a user sees which checkpoint was taken)."""
    load_dir = config.load_dir or config.train_dir
    step = checkpoint_store.resolve_step(load_dir, config.load)
    if not config.load:
        LOG.info("--load 0: using the latest checkpoint in %s, checkpoint-%d", load_dir, step)
    return dataclasses.replace(config, load_dir=load_dir, load=step)


def with_saved_architecture(config, explicit, directory):
    """`config` with the architecture recorded in `directory`/config.json, so that a
    checkpoint is used without repeating --linear_size, --num_layers, ...

    Only the flags in `explicit` (those the user gave) can contradict the record: they
    are a UserError naming each. Without config.json (e.g. a released checkpoint) the
    flags stand as given."""
    saved = checkpoint_store.read_saved_config(directory)
    if saved is None:
        return config
    recorded = {name: saved[name] for name in ARCHITECTURE_FIELDS if name in saved}
    contradicting = [f"--{name}={getattr(config, name)} (checkpoint: {value})"
                     for name, value in recorded.items()
                     if name in explicit and getattr(config, name) != value]
    if contradicting:
        raise UserError(f"the checkpoints in {directory} were trained with other architecture "
                        f"flags: {', '.join(contradicting)}")
    taken = {name: value for name, value in recorded.items() if getattr(config, name) != value}
    if taken:
        LOG.info("architecture from %s: %s", checkpoint_store.CONFIG_FILE,
                 ", ".join(f"--{name}={value}" for name, value in taken.items()))
    return dataclasses.replace(config, **recorded)


def training_source_directory(config):
    """Whose config.json a training run follows: train_dir's when it has one (resuming),
    else --load_dir's when given (starting from its checkpoint), else train_dir's."""
    resuming = os.path.isfile(os.path.join(config.train_dir, checkpoint_store.CONFIG_FILE))
    return config.load_dir if config.load_dir and not resuming else config.train_dir


def load_model(directory, step, config):
    """(model, stats) of checkpoint `step` (0: the latest) in `directory`.

    `config` gives the architecture and, for a released checkpoint, the data whose
    training subjects yield the statistics."""
    path = checkpoint_store.checkpoint_path(directory,
                                            checkpoint_store.resolve_step(directory, step))
    if release_format.checkpoint_format(path) == release_format.RELEASE:
        # The authors' TF1 files carry no statistics: recompute them from the training
        # subjects of config.data_dir, as the release did (docs/faithfulness.md §5).
        model = release_format.load_release_model(path, config)
        return model, splits.training_statistics(config)
    checkpoint_store.check_architecture(directory, config)
    model = build_model(config, skeleton.output_dim(config.predict_14))
    if package.is_package(path):
        return model, package.restore_package(model, path)
    store = checkpoint_store.CheckpointStore(directory, model)
    try:
        store.restore(path, partial=True)
    except checkpoint_store.RESTORE_ERRORS as err:
        raise UserError(f"cannot restore {path}: {first_line(err)}") from None
    stats = store.stats()
    if not math.isfinite(float(stats.std_3d.sum())) or float(stats.std_2d.sum()) == 0.0:
        raise UserError(f"{path} holds no normalisation statistics")
    return model, stats
