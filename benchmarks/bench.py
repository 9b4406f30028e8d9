"""Throughput and latency of training, evaluation, inference and data preparation.

  python benchmarks/bench.py [--data_dir D] [--json FILE] [--steps N]

Runs on real Human3.6M when --data_dir points to it (train S1,5,6,7; test S8) and on
the synthetic set otherwise. Every figure is measured through the same code paths as
predict_3dpose_mdm.py (tf.data input, Keras fit with the custom train_step).
"""

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import keras
import tensorflow as tf

from mdm import dataset, evaluation, synthetic
from mdm.config import Config
from mdm.model import build_model
from mdm.normalization import NormStats
from mdm.pipeline import training_dataset
from mdm.training import make_optimizer


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.warmup:
            float(logs["loss"])  # wait for the device before starting the clock
            self.start = time.perf_counter()
        elif batch + 1 > self.warmup:
            self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        float(logs["loss"])
        self.elapsed = time.perf_counter() - self.start


def train_throughput(config, inputs, targets, batch_size, steps, jit_compile, warmup=20):
    """Samples per second of fit() over `steps` steps after `warmup` compiled steps."""
    keras.utils.set_random_seed(0)
    model = build_model(config, targets.shape[1])
    model.compile(optimizer=make_optimizer(config), jit_compile=jit_compile)
    data, _ = training_dataset(inputs, targets, batch_size, seed=0, epochs=1000)
    timer = _StepTimer(warmup)
    model.fit(data, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0)
    return timer.steps * batch_size / timer.elapsed, model


def prep_times(config):
    """Cold (empty cache) and cached preparation time of both splits."""
    shutil.rmtree(config.resolved_cache_dir(), ignore_errors=True)
    start = time.perf_counter()
    dataset.load_splits(config)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    splits = dataset.load_splits(config)
    return cold, time.perf_counter() - start, splits


def eval_seconds(model, stats, test_set, config):
    predictor = evaluation.make_predictor(model, jit_compile=True)
    evaluation.evaluate(predictor, stats, test_set, config)  # compile
    start = time.perf_counter()
    evaluation.evaluate(predictor, stats, test_set, config)
    return time.perf_counter() - start


def infer_ms_b1(model, repeats=200):
    predictor = evaluation.make_predictor(model, jit_compile=True)
    pose = tf.zeros([1, 32])
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


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="", help="real Human3.6M (default: synthetic)")
    parser.add_argument("--json", default="", help="write the figures to this file")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per setting")
    parser.add_argument("--large_batch", type=int, default=1024)
    parser.add_argument("--work_dir", default="", help="cache/synthetic data (default: tmp)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="mdm_bench_")
    if args.data_dir:
        config = Config(data_dir=args.data_dir, train_subjects=(1, 5, 6, 7), test_subjects=(8,),
                        train_dir=work_dir)
    else:
        data_dir = os.path.join(work_dir, "synthetic")
        if not os.path.isdir(data_dir):
            synthetic.write_synthetic_h36m(data_dir)
        config = Config(data_dir=data_dir, train_dir=work_dir)
    cold, cached, (train_set, test_set, _) = prep_times(config)
    stats = NormStats.from_training(train_set.poses_2d, train_set.poses_3d)
    inputs = stats.normalize_inputs(train_set.poses_2d)
    targets = stats.normalize_targets(train_set.poses_3d)
    figures = {"prep_seconds_cold": cold, "prep_seconds_cached": cached}
    for jit in (True, False):
        tag = "" if jit else "_no_xla"
        rate, model = train_throughput(config, inputs, targets, 64, args.steps, jit)
        figures[f"train_samples_per_s_b64{tag}"] = rate
        figures[f"train_samples_per_s_large{tag}"], _ = train_throughput(
            config, inputs, targets, args.large_batch, max(args.steps // 8, 20), jit)
    figures["train_ms_per_step_b64"] = 64000.0 / figures["train_samples_per_s_b64"]
    figures["release_samples_per_s_b64"] = 64 / 0.028  # REFERENCE: ~28 ms/step on this CPU
    figures["speedup_vs_release_b64"] = figures["train_samples_per_s_b64"] / (64 / 0.028)
    figures["epoch_minutes_b64"] = len(inputs) / figures["train_samples_per_s_b64"] / 60
    figures["eval_seconds"] = eval_seconds(model, stats, test_set, config)
    figures["eval_frames"] = len(test_set)
    figures["infer_ms_b1"] = infer_ms_b1(model)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.update(device=device_name(), tensorflow=tf.__version__, train_samples=len(inputs),
                   data="real" if args.data_dir else "synthetic", large_batch=args.large_batch,
                   timed_steps=args.steps, command=" ".join([sys.argv[0]] + (argv or sys.argv[1:])))
    width = max(len(name) for name in figures)
    for name, value in figures.items():
        text = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {text}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
