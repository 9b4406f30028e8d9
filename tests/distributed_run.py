"""Run by test_distribute.py in a fresh process (logical devices must be set before
TensorFlow starts): train a few steps on one device and on two logical CPUs with the
same global batch, and print the per-step losses and final weights of both as JSON."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mdm import distribution  # noqa: E402
from mdm.config import Config  # noqa: E402
from mdm.model import build_model  # noqa: E402
from mdm.pipeline import distributed_training_dataset  # noqa: E402
from mdm.training import make_optimizer  # noqa: E402

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
    strategy = distribution.make_strategy(distribute, devices)
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


if __name__ == "__main__":
    single = run("mirrored", ["/cpu:0"]) if sys.argv[1:] == ["mirrored1"] else run("", None)
    mirrored = run("mirrored", ["/cpu:0", "/cpu:1"])
    print(json.dumps({"single": single, "mirrored": mirrored}))
