"""Checkpoints in `train_dir`, named `checkpoint-<global_step>` as the release's
(docs/faithfulness.md §5), each carrying the normalisation statistics so that testing or
inference elsewhere needs nothing but the directory (docs/faithfulness.md §1).

Files per checkpoint: checkpoint-<step>.index, checkpoint-<step>.data-00000-of-00001,
plus the `checkpoint` state file and `config.json` (the architecture flags).
TensorFlow writes each checkpoint to temporary files and renames them into place, and
the state file is updated only after that, so a kill mid-save leaves the previous
checkpoint as the latest readable one.
"""

import glob
import os
import re

import numpy as np
import tensorflow as tf

from mdm.core import config as config_lib
from mdm.core import faults, skeleton
from mdm.core.errors import UserError, first_line
from mdm.data.normalization import NormStats

PREFIX = "checkpoint"
CONFIG_FILE = "config.json"
# What reading a damaged or foreign checkpoint raises (a truncated file: IndexError).
RESTORE_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError)
_STEP_PATTERN = re.compile(r"checkpoint-(\d+)\.index$")
_PACKAGE_PATTERN = re.compile(r"checkpoint-(\d+)\.npz$")


class StatsModule(tf.Module):
    """The normalisation statistics as checkpointed variables."""

    def __init__(self, stats=None):
        super().__init__(name="normalization")
        inputs, joints = (len(skeleton.INPUT_JOINTS), 2), (skeleton.NUM_JOINTS, 3)
        shapes = {"mean_2d": inputs, "std_2d": inputs, "mean_3d": joints, "std_3d": joints}
        arrays = stats.as_arrays() if stats is not None else {
            name: np.zeros(shape) for name, shape in shapes.items()}
        self.values = {name: tf.Variable(arrays[name], dtype=tf.float64, trainable=False,
                                         name=name) for name in shapes}

    def stats(self):
        return NormStats.from_arrays({name: var.numpy() for name, var in self.values.items()})


def random_states(model):
    """Dropout and --miss_num generator states, which Keras 3 does not expose to
    tf.train.Checkpoint by itself; saving them makes a resumed run draw the same masks."""
    return [variable for variable in model.variables if "seed_generator_state" in variable.path]


def available_steps(directory):
    """Sorted global steps of the complete checkpoints in `directory`."""
    steps = []
    for path in glob.glob(os.path.join(directory, f"{PREFIX}-*.index")):
        match = _STEP_PATTERN.search(os.path.basename(path))
        if match and glob.glob(path[: -len(".index")] + ".data-*"):
            steps.append(int(match.group(1)))
    return sorted(steps)


def loadable_steps(directory):
    """Sorted global steps of the training checkpoints and the packaged models
    (mdm.checkpoint.package) in `directory`: what --load can name."""
    packaged = [int(match.group(1)) for match in
                (_PACKAGE_PATTERN.search(os.path.basename(path))
                 for path in glob.glob(os.path.join(directory, f"{PREFIX}-*.npz"))) if match]
    return sorted(set(available_steps(directory)) | set(packaged))


def resolve_step(directory, step):
    """`step`, or for 0 the latest complete checkpoint (or packaged model) of `directory`;
    a UserError if there is none."""
    if step:
        return step
    steps = loadable_steps(directory)
    if not steps:
        where = directory if os.path.isdir(directory) else f"{directory} (no such directory)"
        raise UserError(f"no checkpoint in {where}")
    return steps[-1]


def checkpoint_path(directory, step):
    """The prefix of checkpoint `step`, or a UserError listing the ones that exist."""
    steps = loadable_steps(directory)
    if step not in steps:
        found = ", ".join(str(s) for s in steps) if steps else "none"
        raise UserError(f"no checkpoint-{step} in {directory} (available steps: {found})")
    return os.path.join(directory, f"{PREFIX}-{step}")


class CheckpointStore:
    """Saves and restores model, optimizer, epoch counter and statistics together."""

    def __init__(self, directory, model, optimizer=None, stats=None, max_to_keep=5):
        self.directory, self.max_to_keep = directory, max_to_keep
        self.stats_module = StatsModule(stats)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        parts = {"model": model, "normalization": self.stats_module, "epoch": self.epoch}
        if optimizer is not None:  # training: everything needed to resume exactly
            parts.update(optimizer=optimizer, rng_states=random_states(model))
        self.parts = parts
        self.checkpoint = tf.train.Checkpoint(**parts)
        # write() only stores variables that exist; restore() creates save_counter and
        # would then find it unmatched, so create it now and keep it in every file.
        self.checkpoint.save_counter  # pylint: disable=pointless-statement

    def save(self, step, epoch):
        """Write checkpoint-<step>, then point the state file at it, then prune.

        The files are complete before the state file names them, so a kill at any moment
        leaves at least the previous checkpoint readable."""
        self.epoch.assign(epoch)
        prefix = os.path.join(self.directory, f"{PREFIX}-{step}")
        try:
            path = self.checkpoint.write(prefix)
            faults.point("checkpoint_written")
            self._update_state(path)
        except (tf.errors.OpError, OSError) as err:
            raise UserError(f"cannot write {prefix}: {first_line(err)} (the previous "
                            "checkpoints are untouched)") from None
        return path

    def _update_state(self, latest_path):
        steps = available_steps(self.directory)
        kept = steps[-self.max_to_keep:] if self.max_to_keep else steps
        tf.compat.v1.train.update_checkpoint_state(
            self.directory, latest_path,
            all_model_checkpoint_paths=[os.path.join(self.directory, f"{PREFIX}-{s}")
                                        for s in kept])
        for step in steps[: len(steps) - len(kept)]:
            for old_file in glob.glob(os.path.join(self.directory, f"{PREFIX}-{step}.*")):
                os.remove(old_file)

    def restore(self, path, partial=False):
        """Restore `path`; every variable of the objects given must be in it.

        `partial` (testing) tolerates checkpoint values nobody asked for (optimizer slots);
        a model variable without a value is an error either way, never a silent re-init.
        """
        status = self.checkpoint.restore(path)
        status.assert_existing_objects_matched()
        if partial:
            status.expect_partial()
        return int(self.epoch.numpy())

    def restore_training_state(self, path, optimizer_state=True):
        """Restore `path` into everything but the normalisation statistics, which stay
        those this store was made with; returns the epoch counter (0 without
        `optimizer_state`, which restores the model alone: a fresh Adam at step 0, fresh
        random-generator states).

        For a run that starts from another run's checkpoint: the release computed the
        statistics from each run's own training data (docs/faithfulness.md §5).
        """
        names = ("model", "optimizer", "epoch", "rng_states") if optimizer_state else ("model",)
        parts = {name: self.parts[name] for name in names if name in self.parts}
        # A compiled Keras model tracks its optimizer and random generators, so restoring
        # the model alone would bring them along: keep their current (fresh) values.
        kept = [] if optimizer_state else self._non_weight_state()
        kept_values = [variable.numpy() for variable in kept]
        status = tf.train.Checkpoint(**parts).restore(path)
        status.assert_existing_objects_matched()
        status.expect_partial()  # the statistics (and without optimizer_state, Adam's slots)
        for variable, value in zip(kept, kept_values):
            variable.assign(value)
        return int(self.epoch.numpy()) if optimizer_state else 0

    def _non_weight_state(self):
        optimizer = self.parts.get("optimizer")
        return (list(optimizer.variables) if optimizer is not None else []) + list(
            self.parts.get("rng_states", []))

    def stats(self):
        return self.stats_module.stats()


def saved_stats(path):
    """The normalisation statistics stored in this project's checkpoint `path`."""
    module = StatsModule()
    tf.train.Checkpoint(normalization=module).restore(path).expect_partial()
    return module.stats()


def write_config(directory, config):
    os.makedirs(directory, exist_ok=True)
    config_lib.save_architecture(os.path.join(directory, CONFIG_FILE), config)


def read_saved_config(directory):
    """The flags recorded in `directory`/config.json, or None when there is no such file."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    try:
        return config_lib.load_architecture(path)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {first_line(err)}") from None


def check_architecture(directory, config):
    """A UserError naming every architecture flag that differs from the checkpoint's."""
    saved = read_saved_config(directory)
    if saved is None:
        return
    current = config.architecture()
    differences = [f"--{name}={current[name]} (checkpoint: {saved[name]})"
                   for name in current if name in saved and saved[name] != current[name]]
    if differences:
        raise UserError(f"the checkpoints in {directory} were trained with other architecture "
                        f"flags: {', '.join(differences)}")
