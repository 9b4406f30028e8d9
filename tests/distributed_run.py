"""Run by test_distribute.py in fresh processes; prints per-step losses and the trained
model's outputs as JSON on its last line.

  python distributed_run.py mirrored    one device, then mirrored on two logical CPUs
  python distributed_run.py single      one device only
  python distributed_run.py worker      one MultiWorkerMirroredStrategy task (TF_CONFIG)
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from mdm.core.config import Config
from mdm.data.pipeline import distributed_training_dataset
from mdm.model.network import build_model
from mdm.train import distribute as distribute_lib
from mdm.train.optimizer import make_optimizer

STEPS = 6


class LossRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        # logs["loss"] is the running mean; recover each step's loss from it.
        mean = float(logs["loss"])
        self.losses.append(mean * (batch + 1) - sum(self.losses))


def run(distribute, devices):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(640, 32)).astype(np.float32)
    targets = rng.normal(size=(640, 48)).astype(np.float32)
    # keep prob 1: dropout masks are per replica, so they would differ by design.
    config = Config(linear_size=32, num_layers=1, dropout=1.0, batch_size=64,
                    distribute=distribute, jit_compile=False)
    strategy = distribute_lib.make_strategy(distribute, devices)
    with strategy.scope():
        model = build_model(config, 48)
        model.compile(optimizer=make_optimizer(config), jit_compile=False)
    data, _ = distributed_training_dataset(strategy, inputs, targets, 64, seed=3, epochs=1)
    recorder = LossRecorder()
    model.fit(data, epochs=1, steps_per_epoch=STEPS, callbacks=[recorder], verbose=0)
    # Compare what the model computes, not raw weights: a dense bias feeding batch norm
    # has zero true gradient, so Adam turns its numerical noise into arbitrary updates
    # that differ between any two summation orders. Batch statistics (training mode;
    # dropout is off) cancel such a bias exactly; moving averages only slowly.
    probe = rng.normal(size=(16, 32)).astype(np.float32)
    outputs = [value.numpy().ravel().tolist() for value in model(probe, training=True)]
    return {"replicas": strategy.num_replicas_in_sync, "losses": recorder.losses,
            "outputs": outputs}


def main(mode):
    if mode == "single":
        return {"single": run("", None)}
    if mode == "worker":
        return {"worker": run("multi_worker", None)}
    # Logical devices must be configured before TensorFlow initialises its devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return {"single": run("", None), "mirrored": run("mirrored", ["/cpu:0", "/cpu:1"])}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
