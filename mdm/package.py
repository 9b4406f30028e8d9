"""Command line: package a trained checkpoint to ship (mdm.checkpoint.package), as the
models under models/ were made, and measure what float16 storage changes.

    python -m mdm.package --load_dir T [--load N] --out models/NAME

It writes NAME/checkpoint-<step>.npz and NAME/config.json; NAME must not hold a model
yet (nothing is ever overwritten). Then it loads the package back as every consumer does
and compares its hypotheses with the float32 checkpoint's on `--probe_poses` inputs drawn
from the standard normal of the normalised 2D space (the training distribution's scale),
printing the largest and the mean difference in mm.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

from mdm.cli import exit_on_user_error, import_tensorflow_quietly
from mdm.core.errors import UserError


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m mdm.package",
                                     description="Package a checkpoint to ship (float16).")
    parser.add_argument("--load_dir", required=True, help="training directory")
    parser.add_argument("--load", type=int, default=0, help="checkpoint step (0 = latest)")
    parser.add_argument("--out", required=True, help="new directory for the package")
    parser.add_argument("--probe_poses", type=int, default=10000,
                        help="inputs (standard normal in the normalised 2D space) on which "
                        "float16 storage is compared with float32")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return exit_on_user_error(lambda: run(args))


def run(args):
    if args.probe_poses < 1:
        raise UserError(f"--probe_poses must be at least 1 (got {args.probe_poses})")
    source_config = os.path.join(args.load_dir, "config.json")
    if not os.path.isfile(source_config):
        raise UserError(f"{source_config} not found: it records the checkpoint's architecture")
    if os.path.isdir(args.out) and os.listdir(args.out):
        raise UserError(f"{args.out} is not empty; a package is never written over anything "
                        "(choose a new --out)")
    import_tensorflow_quietly()
    from mdm.checkpoint import package
    from mdm.serve.lifter import Lifter

    original = Lifter.load(args.load_dir, args.load)
    step = original.config.load
    os.makedirs(args.out, exist_ok=True)
    path = package.write_package(original.model, original.stats,
                                 os.path.join(args.out, f"checkpoint-{step}"))
    shutil.copyfile(source_config, os.path.join(args.out, "config.json"))
    packaged = Lifter.load(args.out, step)
    difference = compare(original, packaged, args.probe_poses)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB) from {original.source}")
    print(json.dumps({"float16_vs_float32_mm": difference}, indent=2))


def compare(original, packaged, count):
    """Largest and mean |difference| in mm of the K mean poses, and the largest
    difference of the mixing weights, on `count` standard-normal normalised inputs."""
    stats = original.stats
    pixels = stats.unnormalize_inputs(np.random.default_rng(0).standard_normal((count, 32)))
    none_missing = np.zeros((count, 16), bool)
    outputs = [lifter.mixture_parameters(pixels, none_missing) for lifter in (original, packaged)]
    poses = [stats.unnormalize_targets(means, original.config.predict_14)
             for means, _, _ in outputs]
    difference = np.abs(poses[0] - poses[1])
    return {"probe_poses": count, "max_abs_mm": float(difference.max()),
            "mean_abs_mm": float(difference.mean()),
            "max_abs_weight": float(np.abs(outputs[0][2] - outputs[1][2]).max()),
            "max_abs_scale": float(np.abs(outputs[0][1] - outputs[1][1]).max())}


if __name__ == "__main__":
    sys.exit(main())
