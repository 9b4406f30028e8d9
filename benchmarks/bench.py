"""Throughput and latency of training, evaluation, inference and data preparation.

  python benchmarks/bench.py [--data_dir D] [--json FILE] [--steps N]

Runs on real Human3.6M when --data_dir points to it (train S1,5,6,7; test S8) and on
the synthetic set otherwise. Every figure is measured through the same code paths as
predict_3dpose_mdm.py (tf.data input, Keras fit with the custom train_step).

The release's speed is measured in the same process, in the same interleaved rounds: its
training graph rebuilt in tf.compat.v1 (benchmarks/release_graph.py), stepped as its
training loop did, with numpy batches through feed_dict and the loss, summaries and all
mixture parameters fetched back every step. `speedup_vs_release_b64` is the ratio of the
two measured rates.
"""

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from release_graph import ReleaseGraph  # the script's own folder, benchmarks/

from mdm.core.config import Config
from mdm.data import splits
from mdm.data.normalization import NormStats
from mdm.data.pipeline import training_dataset
from mdm.data.synthetic import h36m_writer
from mdm.evaluate import prediction
from mdm.model.network import build_model
from mdm.train.optimizer import make_optimizer


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.warmup:
            float(logs["loss"])  # wait for the device before starting the clock
            self.start = time.perf_counter()
            self.first = batch + 1
        elif batch + 1 > self.warmup:
            self.steps = batch + 1 - self.first

    def on_epoch_end(self, epoch, logs=None):
        float(logs["loss"])
        self.elapsed = time.perf_counter() - self.start


def train_throughput(config, inputs, targets, batch_size, steps, jit_compile, warmup=20,
                     steps_per_execution=1):
    """Samples per second of fit() over `steps` steps after `warmup` compiled steps."""
    keras.utils.set_random_seed(0)
    model = build_model(config, targets.shape[1])
    model.compile(optimizer=make_optimizer(config), jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    warmup, steps = (-(-n // steps_per_execution) * steps_per_execution for n in (warmup, steps))
    data, _ = training_dataset(inputs, targets, batch_size, seed=0, epochs=1000)
    timer = _StepTimer(warmup)
    model.fit(data, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
    return timer.steps * batch_size / timer.elapsed, model


def plain_keras_throughput(inputs, targets, steps, num_models=5, width=1024):
    """A baseline written the plain Keras way: Dense/BN/ReLU/Dropout layers, the mixture
    NLL as a compile() loss on a concatenated output, fit() on numpy arrays."""
    keras.utils.set_random_seed(0)
    dim = targets.shape[1]
    x = keras.Input((inputs.shape[1],))

    def unit(h):
        h = keras.layers.Dense(width)(h)
        return keras.layers.Dropout(0.5)(keras.layers.ReLU()(keras.layers.BatchNormalization()(h)))

    h = unit(x)
    for _ in range(2):
        h = keras.layers.Add()([h, unit(unit(h))])
    out = keras.layers.Concatenate()([keras.layers.Dense(dim * num_models)(h),
                                      keras.layers.Dense(num_models, activation="elu")(h),
                                      keras.layers.Dense(num_models, activation="softmax")(h)])

    def nll(y, params):
        means = tf.reshape(params[:, : dim * num_models], [-1, dim, num_models])
        scales = tf.clip_by_value(params[:, dim * num_models: -num_models] + 1.0, 1e-15, 1e15)
        weights = tf.clip_by_value(params[:, -num_models:], 1e-8, 1.0)
        sq = tf.reduce_sum((y[:, :, None] - means) ** 2, axis=1)
        log_p = (tf.math.log(weights) - dim * tf.math.log(scales) - sq / (2 * scales ** 2)
                 - 0.5 * dim * np.log(2 * np.pi))
        return -tf.reduce_logsumexp(log_p, axis=1)

    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=nll)
    count = (steps + 20) * 64
    timer = _StepTimer(20)
    model.fit(inputs[:count], targets[:count], batch_size=64, epochs=1, shuffle=True,
              callbacks=[timer], verbose=0)
    return timer.steps * 64 / timer.elapsed


def release_throughput(inputs, targets, steps, warmup=20, batch_size=64, width=1024):
    """Samples per second of the release's training loop: its epoch's batches made as
    its get_all_batches made them (a permutation of float64 arrays split into a list of
    numpy batches), each fed through feed_dict to its graph's step."""
    order = np.random.default_rng(0).permutation(len(inputs))[: (warmup + steps) * batch_size]
    batch_inputs = np.split(inputs[order].astype(np.float64), warmup + steps)
    batch_targets = np.split(targets[order].astype(np.float64), warmup + steps)
    graph = ReleaseGraph(output_dim=targets.shape[1], linear_size=width)
    for i in range(warmup):
        graph.step(batch_inputs[i], batch_targets[i])
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        graph.step(batch_inputs[i], batch_targets[i])
    elapsed = time.perf_counter() - start
    graph.close()
    return steps * batch_size / elapsed


PRECISION_TAGS = {"float32": "", "mixed_bfloat16": "_bf16", "mixed_float16": "_fp16"}


def train_settings(args):
    """(figure name, batch, timed steps, XLA, steps per execution, precision) of every
    timed setting. Plain names are the default setting (Config().jit_compile: no XLA,
    float32); "_xla" the other; "_bf16"/"_fp16" the mixed precisions of --precisions."""
    default_jit = Config().jit_compile
    large_steps = max(args.steps // 8, 20)
    settings = []
    for jit in (default_jit,) if args.skip_xla else (default_jit, not default_jit):
        tag = "" if jit == default_jit else ("_xla" if jit else "_no_xla")
        settings += [(f"train_samples_per_s_b64{tag}", 64, args.steps, jit, 1, "float32"),
                     (f"train_samples_per_s_b64{tag}_spe20", 64, args.steps, jit, 20, "float32"),
                     (f"train_samples_per_s_large{tag}", args.large_batch, large_steps, jit, 1,
                      "float32")]
    for precision in args.precisions.split(","):
        tag = PRECISION_TAGS[precision]
        if tag:
            settings += [(f"train_samples_per_s_b64{tag}", 64, args.steps, default_jit, 1,
                          precision),
                         (f"train_samples_per_s_large{tag}", args.large_batch, large_steps,
                          default_jit, 1, precision)]
    return settings


def train_figures(config, inputs, targets, args):
    """Best samples/s of each setting over `args.rounds` interleaved rounds (the machine's
    load varies between runs; the best round is the least disturbed), and the model
    trained by the default batch-64 setting, for the evaluation and latency figures."""
    figures, default_model = {}, None
    for _ in range(args.rounds):
        for name, batch, steps, jit, spe, precision in train_settings(args):
            rate, model = train_throughput(dataclasses.replace(config, precision=precision),
                                           inputs, targets, batch, steps, jit,
                                           steps_per_execution=spe)
            figures[name] = max(figures.get(name, 0.0), rate)
            if name == "train_samples_per_s_b64":
                default_model = model
        name = "plain_keras_samples_per_s_b64"
        figures[name] = max(figures.get(name, 0.0),
                            plain_keras_throughput(inputs, targets, args.steps,
                                                   width=config.linear_size))
        name = "release_samples_per_s_b64"
        figures[name] = max(figures.get(name, 0.0),
                            release_throughput(inputs, targets, args.steps,
                                               width=config.linear_size))
    return figures, default_model


def cpu_features():
    """The CPU's model name and the flags that decide its matrix-product speed."""
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni",
              "amx_bf16", "amx_tile", "amx_int8")
    try:
        with open("/proc/cpuinfo") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {"model": platform.processor(), "flags": []}
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name", ""), "flags": [f for f in wanted if f in flags]}


def prep_times(config):
    """Cold (empty cache) and cached preparation time of both splits."""
    shutil.rmtree(config.resolved_cache_dir(), ignore_errors=True)
    start = time.perf_counter()
    splits.load_splits(config)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    prepared = splits.load_splits(config)
    return cold, time.perf_counter() - start, prepared


def eval_seconds(model, stats, test_set, config, train_set=None):
    """Seconds of one evaluation of the test set: the three columns of the release's
    protocol, or with `train_set` also the oracle-free ones (whose weights are chosen on
    training sequences in that time)."""
    predictor = prediction.make_predictor(model, jit_compile=True)
    prediction.evaluate(predictor, stats, test_set, config)  # compile
    start = time.perf_counter()
    prediction.evaluate(predictor, stats, test_set, config, train_set=train_set)
    return time.perf_counter() - start


def infer_ms(model, batch, repeats=200):
    """Latency of one call of the evaluation predictor on `batch` poses, results on host."""
    predictor = prediction.make_predictor(model, jit_compile=True)
    pose = tf.zeros([batch, 32])
    for _ in range(10):
        predictor(pose)
    start = time.perf_counter()
    for _ in range(repeats):
        [value.numpy() for value in predictor(pose)]
    return 1000 * (time.perf_counter() - start) / repeats


def device_name():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"CPU {platform.processor() or platform.machine()} x{os.cpu_count()}"


def report(figures, json_path):
    """Print the figures as a table and write them to `json_path` if given."""
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {text}")
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(figures, handle, indent=2)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="", help="real Human3.6M (default: synthetic)")
    parser.add_argument("--json", default="", help="write the figures to this file")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per setting")
    parser.add_argument("--large_batch", type=int, default=1024)
    parser.add_argument("--linear_size", type=int, default=Config().linear_size,
                        help="width of every timed network (smaller only for smoke tests)")
    parser.add_argument("--work_dir", default="", help="cache/synthetic data (default: tmp)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds; each training figure is the best round")
    parser.add_argument("--skip_xla", action="store_true",
                        help="measure only the default setting (no XLA)")
    parser.add_argument("--precisions", default="float32",
                        help="comma-separated: float32 (always timed), mixed_bfloat16, "
                        "mixed_float16; each mixed one adds batch-64 and large-batch figures")
    parser.add_argument("--training_only", action="store_true",
                        help="time training only (no evaluation, inference, memory)")
    args = parser.parse_args(argv)
    unknown = set(args.precisions.split(",")) - set(PRECISION_TAGS)
    if unknown:
        parser.error(f"--precisions: unknown {', '.join(sorted(unknown))} "
                     f"(choose from {', '.join(PRECISION_TAGS)})")
    return args


def main(argv=None):
    args = parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="mdm_bench_")
    if args.data_dir:
        config = Config(data_dir=args.data_dir, train_subjects=(1, 5, 6, 7), test_subjects=(8,),
                        train_dir=work_dir, linear_size=args.linear_size)
    else:
        data_dir = os.path.join(work_dir, "synthetic")
        if not os.path.isdir(data_dir):
            h36m_writer.write_synthetic_h36m(data_dir)
        config = Config(data_dir=data_dir, train_dir=work_dir, linear_size=args.linear_size)
    cold, cached, (train_set, test_set, _) = prep_times(config)
    stats = NormStats.from_training(train_set.poses_2d, train_set.poses_3d)
    inputs = stats.normalize_inputs(train_set.poses_2d)
    targets = stats.normalize_targets(train_set.poses_3d)
    figures = {"prep_seconds_cold": cold, "prep_seconds_cached": cached}
    rates, model = train_figures(config, inputs, targets, args)
    figures.update(rates)
    default_rate = figures["train_samples_per_s_b64"]
    figures["speedup_vs_plain_keras_b64"] = default_rate / figures["plain_keras_samples_per_s_b64"]
    figures["train_ms_per_step_b64"] = 64000.0 / default_rate
    figures["release_ms_per_step_b64"] = 64000.0 / figures["release_samples_per_s_b64"]
    figures["speedup_vs_release_b64"] = default_rate / figures["release_samples_per_s_b64"]
    figures["epoch_minutes_b64"] = len(inputs) / default_rate / 60
    for tag in PRECISION_TAGS.values():
        if tag and f"train_samples_per_s_b64{tag}" in figures:
            figures[f"speedup_vs_release_b64{tag}"] = (figures[f"train_samples_per_s_b64{tag}"]
                                                       / figures["release_samples_per_s_b64"])
            figures[f"speedup{tag}_vs_float32_large"] = (
                figures[f"train_samples_per_s_large{tag}"] / figures["train_samples_per_s_large"])
    figures.update(cpu=cpu_features(), device=device_name(), tensorflow=tf.__version__)
    if args.training_only:
        report(figures, args.json)
        return 0
    figures["eval_seconds"] = eval_seconds(model, stats, test_set, config)
    figures["eval_seconds_all_columns"] = eval_seconds(model, stats, test_set, config, train_set)
    figures["eval_all_columns_ratio"] = (figures["eval_seconds_all_columns"]
                                         / figures["eval_seconds"])
    figures["eval_frames"] = len(test_set)
    figures["infer_ms_b1"] = infer_ms(model, 1)
    figures["infer_ms_b1024"] = infer_ms(model, 1024, repeats=50)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.update(train_samples=len(inputs),
                   data="real" if args.data_dir else "synthetic", large_batch=args.large_batch,
                   timed_steps=args.steps, rounds=args.rounds, linear_size=args.linear_size,
                   command=" ".join([sys.argv[0]] + (argv or sys.argv[1:])))
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
