"""Training with Keras `fit` (docs/faithfulness.md §2): Adam with the release's continuous
exponential decay, a checkpoint and a per-action evaluation after every epoch, a text log
and TensorBoard summaries. Running the same command again resumes from the latest
checkpoint in train_dir; a new train_dir with --load_dir elsewhere starts from that
directory's checkpoint (mdm.checkpoint.warm_start).
"""

import contextlib
import logging
import os
import time

import keras
import tensorflow as tf

from mdm.checkpoint import store as checkpoint_store
from mdm.checkpoint import warm_start
from mdm.core import faults
from mdm.core.errors import UserError, first_line
from mdm.data import splits
from mdm.data.normalization import NormStats
from mdm.data.pipeline import distributed_training_dataset
from mdm.evaluate import prediction, report
from mdm.model.network import build_model
from mdm.train import distribute, divergence, interruption, run_lock
from mdm.train.optimizer import make_optimizer

LOG = logging.getLogger(__name__)
SUMMARY_EVERY_STEPS = 100


class EpochEnd(keras.callbacks.Callback):
    """After each epoch: checkpoint first (a crash in evaluation loses nothing), then
    evaluate per action, log the table and write summaries and a results file.

    A diverged model (mdm.train.divergence: non-finite or absurd loss, absurd poses on the
    `probe`, a divergence.ErrorProbe) stops training before it is saved, so the last
    checkpoint stays the last good one; `stop_reason` then says why. Every task of a
    distributed run decides alike (same logged loss, same weights and probe), so all skip
    the collective save together.
    """

    def __init__(self, config, store, stats, test_set, writer, probe):
        super().__init__()
        self.config, self.store, self.stats = config, store, stats
        self.test_set, self.writer, self.probe = test_set, writer, probe
        self.predictor = None
        self.stop_reason = None
        self.first_step = self.last_summary_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.first_step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        faults.point("batch")
        step = self.first_step + batch + 1
        # Reading the loss is a host round trip: do it only every SUMMARY_EVERY_STEPS.
        if step // SUMMARY_EVERY_STEPS > self.last_summary_step // SUMMARY_EVERY_STEPS:
            self.last_summary_step = step
            if self._stop_if_diverged(divergence.loss_problem(float(logs["loss"])), step):
                return
            with self.writer.as_default(step=step):
                tf.summary.scalar("train/loss", float(logs["loss"]))
                tf.summary.scalar("train/learning_rate", float(logs["learning_rate"]))

    def _stop_if_diverged(self, problem, step):
        """Stop at the first `problem` (a reason, or None): the running-mean loss stays
        non-finite once a step was, so the epoch's end would see it too."""
        if problem is None:
            return False
        self.stop_reason = f"{problem} by step {step}"
        self.model.stop_training = True
        return True

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.stop_reason is not None or self._stop_if_diverged(
                divergence.loss_problem(float(logs["loss"])), step):
            return
        if self.predictor is None:
            self.predictor = prediction.make_predictor(self.model, self.config.jit_compile)
        if self._stop_if_diverged(self.probe.problem(self.predictor), step):
            return
        path = self.store.save(step, epoch + 1)
        LOG.info("epoch %d: loss %.4f, saved %s", epoch + 1, float(logs["loss"]), path)
        if self.test_set is None:
            return
        start = time.time()
        faults.point("evaluation")
        results, _ = prediction.evaluate(self.predictor, self.stats, self.test_set, self.config)
        title = (f"epoch {epoch + 1}, step {step}, "
                 f"{prediction.protocol_name(self.config.procrustes)}, mm")
        LOG.info("evaluation (%.1f s)\n%s", time.time() - start,
                 report.format_table(results, title=title))
        self._write_summaries(step, logs, results["Average"])
        report.write_results(os.path.join(self.config.train_dir, "results"), results,
                             {"step": step, "epoch": epoch + 1,
                              "protocol": prediction.protocol_name(self.config.procrustes)})

    def _write_summaries(self, step, logs, average):
        with self.writer.as_default(step=step):
            tf.summary.scalar("epoch/loss", float(logs["loss"]))
            for column, value in average.items():
                tf.summary.scalar(f"error_mm/{column}", value)
        self.writer.flush()


def prepare_training_arrays(config):
    train_set, test_set, _ = splits.load_splits(config)
    stats = NormStats.from_training(train_set.poses_2d, train_set.poses_3d)
    inputs = stats.normalize_inputs(train_set.poses_2d)
    targets = stats.normalize_targets(train_set.poses_3d, config.predict_14)
    return inputs, targets, stats, test_set


def _resume(store, config):
    """Restore the newest readable checkpoint of train_dir; returns its epoch (0 if none).

    A checkpoint that cannot be read (e.g. damaged by a crash or a full disk) is skipped
    with a warning and the one before it is used."""
    for step in reversed(checkpoint_store.available_steps(config.train_dir)):
        path = os.path.join(config.train_dir, f"{checkpoint_store.PREFIX}-{step}")
        try:
            epoch = store.restore(path)
        except checkpoint_store.RESTORE_ERRORS as err:
            LOG.warning("cannot resume from %s (%s); trying the previous checkpoint", path,
                        first_line(err))
            continue
        LOG.info("resuming from %s (epoch %d)", path, epoch)
        return epoch
    return 0


def _starting_epoch(store, config):
    """Restore where training starts and return its epoch: train_dir's own newest
    checkpoint (resume); else, with --load_dir naming another directory, the checkpoint
    --load of that one (mdm.checkpoint.warm_start); else nothing (epoch 0)."""
    elsewhere = warm_start.loads_elsewhere(config)
    if checkpoint_store.available_steps(config.train_dir):
        if elsewhere:
            LOG.warning("%s already has checkpoints: resuming from its own, not from "
                        "--load_dir %s", config.train_dir, config.load_dir)
        elif config.load:
            LOG.warning("--load %d is not used: training resumes from the newest checkpoint "
                        "of %s (to start from another run's checkpoint, give its directory "
                        "as --load_dir and a new --train_dir)", config.load, config.train_dir)
        return _resume(store, config)
    if elsewhere:
        return warm_start.restore_initial_checkpoint(store, config)
    if config.load:
        raise UserError(f"--load {config.load}: {config.train_dir} has no checkpoint to start "
                        "from (to start from another run's checkpoint, give its directory as "
                        "--load_dir)")
    return 0


def train(config, locked_by_caller=False):
    """Train (or resume) in config.train_dir; returns a keras History of the epochs run
    (None if there was nothing to do).

    Holds train_dir's lock (mdm.train.run_lock) for the whole run, so a second training on
    the same train_dir stops with a UserError before writing anything; `locked_by_caller`:
    the caller holds it already (e.g. taken before its log file in train_dir was opened).
    Under --distribute multi_worker only the chief locks: the workers share its train_dir.
    """
    with contextlib.nullcontext() if locked_by_caller else run_lock.training_lock(config):
        return _train_in_locked_dir(config)


def _train_in_locked_dir(config):
    keras.utils.set_random_seed(config.seed)
    checkpoint_store.check_architecture(config.train_dir, config)
    inputs, targets, stats, test_set = prepare_training_arrays(config)
    steps = len(inputs) // config.batch_size  # the last partial batch is dropped
    if steps == 0:
        raise UserError(f"{len(inputs)} training samples are fewer than one batch of "
                        f"{config.batch_size}; lower --batch_size")
    strategy = distribute.make_strategy(config.distribute)
    with strategy.scope():
        model = build_model(config, targets.shape[1])
        optimizer = make_optimizer(config)
        model.compile(optimizer=optimizer, jit_compile=config.jit_compile,
                      steps_per_execution=config.steps_per_execution)
        optimizer.build(model.trainable_variables)
        store = checkpoint_store.CheckpointStore(distribute.checkpoint_directory(config.train_dir,
                                                                           config.distribute),
                                            model, optimizer, stats,
                                            max_to_keep=config.max_to_keep)
        first_epoch = _starting_epoch(store, config)
    writes_outputs = distribute.writes_outputs(config.distribute)
    if writes_outputs:
        checkpoint_store.write_config(config.train_dir, config)
    if first_epoch >= config.epochs:
        LOG.info("already trained for %d epochs; nothing to do", first_epoch)
        return None
    LOG.info("training on %d samples: %d steps of %d per epoch, epochs %d..%d", len(inputs),
             steps, config.batch_size, first_epoch + 1, config.epochs)
    writer = (tf.summary.create_file_writer(os.path.join(config.train_dir, "summary"))
              if writes_outputs else tf.summary.create_noop_writer())
    # A non-chief worker saves (a collective operation) but evaluates nothing.
    callback = EpochEnd(config, store, stats, test_set if writes_outputs else None, writer,
                        divergence.ErrorProbe(stats, inputs, targets, config.predict_14))
    history = keras.callbacks.History()
    # One copy of the data in TensorFlow for all the epochs' datasets.
    inputs, targets = tf.constant(inputs, tf.float32), tf.constant(targets, tf.float32)
    with interruption.ctrl_c_at_batch_end() as ctrl_c:
        for epoch in range(first_epoch, config.epochs):
            _fit_one_epoch(model, strategy, inputs, targets, config, epoch,
                           [callback, history, ctrl_c])
            if callback.stop_reason is not None:
                latest = checkpoint_store.available_steps(config.train_dir)
                kept = f"checkpoint-{latest[-1]}" if latest else "no checkpoint"
                raise UserError(f"training stopped: {callback.stop_reason} (the last good "
                                f"checkpoint is {kept} in {config.train_dir}); try a lower "
                                "--learning_rate")
    return history


class _StopAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def _fit_one_epoch(model, strategy, inputs, targets, config, epoch, callbacks):
    """One epoch of fit() on a dataset of exactly that epoch's batches.

    One fit() per epoch because with --steps_per_execution N, Keras runs N steps per call
    even across an epoch boundary when N does not divide the steps per epoch; a dataset
    that ends with the epoch makes the last call stop there, so every checkpoint falls on
    an epoch boundary and a resumed run sees the batches an uninterrupted one did. fit() is
    told the run's epoch count (its progress shows "epoch e/total") and stopped after one.
    """
    data, steps = distributed_training_dataset(strategy, inputs, targets, config.batch_size,
                                               config.seed, epochs=epoch + 1, first_epoch=epoch)
    model.fit(data, epochs=config.epochs, initial_epoch=epoch, steps_per_epoch=steps,
              callbacks=callbacks + [_StopAfterEpoch()], verbose=config.verbose,
              shuffle=False)  # the pipeline shuffles, seeded per epoch
