"""tf.distribute strategies for --distribute (one device, mirrored GPUs, or workers).

`--batch_size` is always the global batch: each of R replicas computes B/R samples, the
replicas' gradients are summed from loss / R (see MixtureDensityNetwork.train_step) and
batch norm is synchronised, so the learning rate and its schedule need no change and a
run on R replicas takes the same steps as a run on one device.
"""

import atexit
import json
import logging
import os
import shutil
import tempfile

import tensorflow as tf

LOG = logging.getLogger(__name__)


def make_strategy(name, devices=None):
    """The strategy for --distribute: "" (default), "mirrored" (on `devices`, default all
    GPUs, else the CPU) or "multi_worker"."""
    if not name:
        return tf.distribute.get_strategy()
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        # Reads the cluster from TF_CONFIG; without it this is a one-worker cluster.
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    LOG.info("%s strategy over %d replicas", name, strategy.num_replicas_in_sync)
    return strategy


def is_chief():
    """The task that writes checkpoints, logs and results: the "chief" task if the cluster
    has one, else worker 0; without TF_CONFIG, this process."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if not task:
        return True
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def writes_outputs(distribute):
    """Whether this process writes train_dir (config, logs, summaries, results): always,
    except in the non-chief tasks of a --distribute multi_worker cluster, which may share
    train_dir with the chief."""
    return distribute != "multi_worker" or is_chief()


def checkpoint_directory(train_dir, distribute):
    """Where this process saves checkpoints: non-chief workers must take part in every
    save, but into a scratch folder of their own, removed when the process exits."""
    if writes_outputs(distribute):
        return train_dir
    scratch = tempfile.mkdtemp(prefix="mdm_worker_checkpoint_")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch
