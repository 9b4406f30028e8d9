"""Where one training step's time goes on this machine, and what bounds it.

  python benchmarks/step_breakdown.py [--json FILE] [--batch_size 64] [--repeats 200]

Every figure is the best of several timed runs of a compiled function (no XLA, the
default), on a fixed random batch so that the input pipeline is excluded:

- float32 matmul times at the hidden layers' shapes: the forward x W, the input gradient
  g W^T as autodiff builds it (MatMul with transpose_b) and as mdm.model.linear_map computes it,
  and the weight gradient x^T g;
- the model's train step with every release feature, then with max-norm, batch norm and
  dropout switched off one at a time and all together;
- the forward and backward pass without the update, and the Adam update alone (bound by
  memory traffic: 4.5 M parameters, 7 float32 reads and writes each);
- the ceiling: the step's matmul FLOPs at the measured forward matmul rate, i.e. the time
  of the matrix products alone, without the update or anything else;
- the release's training step on the same batch, measured here too: its graph rebuilt in
  tf.compat.v1 (benchmarks/release_graph.py), fed through feed_dict with everything it
  fetched back; every `speedup_vs_release_*` figure is a ratio to that measured time.
"""

import argparse
import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from bench import device_name, report  # the script's own folder, benchmarks/
from release_graph import ReleaseGraph

from mdm.core.config import Config
from mdm.model.network import build_model
from mdm.train.optimizer import make_optimizer

OUTPUT_DIM = 48  # 16 joints x 3, the release's default output


def best_ms(function, repeats, rounds=5, warmup=10):
    """Best over `rounds` of the mean time of `repeats` calls, in milliseconds. Each round
    ends by reading the last result to the host (tensors or numpy arrays)."""
    for _ in range(warmup):
        result = function()
    tf.nest.map_structure(np.asarray, result)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            result = function()
        tf.nest.map_structure(np.asarray, result)
        best = min(best, (time.perf_counter() - start) / repeats * 1000)
    return best


def matmul_times(batch, width, repeats):
    inputs, kernel = tf.random.normal([batch, width]), tf.random.normal([width, width])
    upstream = tf.random.normal([batch, width])
    variants = {
        "forward_xW": lambda: tf.matmul(inputs, kernel),
        "input_grad_transpose_b": lambda: tf.matmul(upstream, kernel, transpose_b=True),
        "input_grad_linear_ops": lambda: tf.transpose(tf.matmul(kernel, upstream,
                                                                transpose_b=True)),
        "weight_grad": lambda: tf.matmul(inputs, upstream, transpose_a=True),
    }
    return {f"matmul_ms_{name}": best_ms(tf.function(fn), repeats)
            for name, fn in variants.items()}


def _model(config):
    keras.utils.set_random_seed(0)
    model = build_model(config, OUTPUT_DIM)
    model.compile(optimizer=make_optimizer(config))
    model.optimizer.build(model.trainable_variables)
    return model


def _batch(batch):
    rng = np.random.default_rng(0)
    return (tf.constant(rng.normal(size=(batch, 32)), tf.float32),
            tf.constant(rng.normal(size=(batch, OUTPUT_DIM)), tf.float32))


def train_step_ms(config, batch, repeats):
    model, data = _model(config), _batch(batch)
    return best_ms(tf.function(lambda: model.train_step(data)), repeats)


def forward_backward_and_adam_ms(config, batch, repeats):
    model, (inputs, targets) = _model(config), _batch(batch)

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            loss = model.compute_loss_value(targets, model(inputs, training=True))
        return tape.gradient(loss, model.trainable_variables)

    fixed = [tf.constant(g) for g in gradients()]

    @tf.function
    def update():
        model.optimizer.apply(fixed, model.trainable_variables)
        return model.optimizer.iterations

    return best_ms(gradients, repeats), best_ms(update, repeats)


def release_step_ms(batch, repeats):
    """best_ms of the release's step on one fixed batch, fed as the float64 numpy arrays
    its batches were."""
    inputs, targets = (t.numpy().astype(np.float64) for t in _batch(batch))
    graph = ReleaseGraph(output_dim=OUTPUT_DIM)
    milliseconds = best_ms(lambda: graph.step(inputs, targets), repeats)
    graph.close()
    return milliseconds


def matmul_flops(config, batch):
    """Multiply-adds x 2 of one step: forward, input gradient and weight gradient."""
    widths = ([(32, config.linear_size)] + [(config.linear_size, config.linear_size)]
              * (2 * config.num_layers) + [(config.linear_size, OUTPUT_DIM * config.num_models
                                            + 2 * config.num_models)])
    return sum(3 * 2 * batch * fan_in * units for fan_in, units in widths)


def breakdown(batch, repeats):
    config = Config(batch_size=batch)
    figures = matmul_times(batch, config.linear_size, repeats)
    ablations = {"all_features": {}, "no_max_norm": {"max_norm": False},
                 "no_batch_norm": {"batch_norm": False}, "no_dropout": {"dropout": 1.0},
                 "no_max_norm_bn_dropout": {"max_norm": False, "batch_norm": False,
                                            "dropout": 1.0}}
    for name, changes in ablations.items():
        figures[f"train_step_ms_{name}"] = train_step_ms(
            dataclasses.replace(config, **changes), batch, repeats)
    figures["forward_backward_ms"], figures["adam_update_ms"] = forward_backward_and_adam_ms(
        config, batch, repeats)
    flops = matmul_flops(config, batch)
    matmul_rate = 2 * batch * config.linear_size ** 2 / (figures["matmul_ms_forward_xW"] / 1e3)
    figures["step_matmul_gflop"] = flops / 1e9
    figures["matmul_gflop_per_s"] = matmul_rate / 1e9
    figures["step_matmul_ms"] = flops / matmul_rate * 1e3
    release_ms = release_step_ms(batch, repeats)
    figures["release_ms"] = release_ms
    figures["speedup_vs_release_train_step"] = release_ms / figures["train_step_ms_all_features"]
    figures["speedup_vs_release_without_features"] = (
        release_ms / figures["train_step_ms_no_max_norm_bn_dropout"])
    figures["speedup_vs_release_matmul_only"] = release_ms / figures["step_matmul_ms"]
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="", help="write the figures to this file")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=200, help="calls per timed round")
    args = parser.parse_args(argv)
    figures = breakdown(args.batch_size, args.repeats)
    figures.update(device=device_name(), tensorflow=tf.__version__, batch_size=args.batch_size,
                   command=" ".join([sys.argv[0]] + (argv or sys.argv[1:])))
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
