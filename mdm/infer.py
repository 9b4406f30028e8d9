"""Command line: lift 2D keypoints from a file to K 3D hypotheses, draw samples, plot,
or export a SavedModel for serving.

    python -m mdm.infer --load_dir D [--load N] --input poses.json --output poses_3d.json
    python -m mdm.infer --load_dir D --input poses.csv --joint_order mpii --output out.npz \
        --num_samples 100 --seed 0 --plot figures/
    python -m mdm.infer --load_dir D --export saved_model/

Every answer carries a per-joint radius (mm) around the chosen pose that holds the truth
with probability --coverage, from the mixture recalibrated by the checkpoint's
recalibration.json when there is one (--recalibrate False: the raw spread).

Mistakes in the input or the flags end with one line `error: ...` and exit status 1.
"""

import argparse
import os
import sys
import warnings


from mdm.cli import exit_on_user_error, import_tensorflow_quietly
from mdm.core.errors import UserError
from mdm.data.cameras import camera_to_upright
from mdm.serve import keypoint_files

DEFAULT_COVERAGE = 0.9  # mdm.model.radius.DEFAULT_COVERAGE, without importing TensorFlow

PLOT_LIMIT = 20  # figures written by --plot: one per input pose, the first ones only
# Camera axes (x right, y down, z forward) -> drawing axes with z up: a rotation.


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mdm.infer",
        description="Lift 2D keypoints (pixels) to the model's K 3D pose hypotheses.")
    parser.add_argument("--load_dir", required=True, help="directory of the checkpoints")
    parser.add_argument("--load", type=int, default=0, help="checkpoint step (0 = latest)")
    parser.add_argument("--input", help="2D keypoints: .npy, .json or .csv, (16, 2) or "
                        "(N, 16, 2) pixels, NaN/null/empty for a missing limb joint")
    parser.add_argument("--output", help="hypotheses file: .npz or .json")
    parser.add_argument("--joint_order", choices=("h36m", "mpii"), default=None,
                        help="joint order of --input (default: the file's own "
                        "'joint_order' field, else h36m); also the order --export takes")
    parser.add_argument("--num_samples", type=int, default=0,
                        help="also draw this many poses per input from the mixture")
    parser.add_argument("--seed", type=int, default=0, help="seed of --num_samples")
    parser.add_argument("--select", choices=("none", "temporal"), default="none",
                        help="temporal: the input is one video's frames in time order; also "
                        "write the one pose per frame of the Viterbi path through the "
                        "hypotheses (path_pose_3d, path_kernel, path_probability)")
    parser.add_argument("--smoothness", type=float, default=None,
                        help="weight of the frame-to-frame change in --select temporal, per "
                        "mm (default: the value chosen on Human3.6M's training subjects)")
    parser.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE,
                        help="probability of the per-joint radius around the chosen pose "
                        f"(radius_mm; default {DEFAULT_COVERAGE})")
    parser.add_argument("--recalibrate", type=_boolean, default=True, metavar="{True,False}",
                        help="apply the checkpoint's recalibration.json (python -m "
                        "mdm.calibrate) when it was fitted for this step (default True)")
    parser.add_argument("--plot", help=f"directory for figures (first {PLOT_LIMIT} poses)")
    parser.add_argument("--export", help="write a SavedModel (pixels in, mm out) here")
    parser.add_argument("--data_dir", default="", help="Human3.6M data directory; needed only "
                        "for a released TF1 checkpoint, whose statistics it computes")
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up logging (CUDA probing) hidden unless the user set the level.
    quiet = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return exit_on_user_error(lambda: run(args, quiet_import=quiet))


def _boolean(text):
    """True/False (also 1/0, yes/no) for --recalibrate."""
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")
    return words[text.lower()]


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def run(args, quiet_import=False):
    _check_arguments(args)
    keypoints, joint_order = None, args.joint_order or keypoint_files.H36M
    if args.input:
        keypoints, file_order = keypoint_files.read_keypoints(args.input)
        if args.joint_order and file_order and args.joint_order != file_order:
            raise UserError(f"--joint_order {args.joint_order} contradicts the "
                            f"'joint_order': '{file_order}' of {args.input}")
        joint_order = args.joint_order or file_order or keypoint_files.H36M
        keypoints = keypoint_files.to_model_order(keypoints, joint_order)
    if quiet_import:  # TensorFlow: imported only once the arguments are sound
        import_tensorflow_quietly()
    from mdm.serve.lifter import Lifter

    lifter = Lifter.load(args.load_dir, args.load, data_dir=args.data_dir,
                         recalibrate=args.recalibrate)
    if lifter.recalibration is not None:
        print(lifter.recalibration.summary())
    if keypoints is not None:
        _lift(lifter, keypoints, args)
    if args.export:
        from mdm.serve import export

        export.export_saved_model(lifter, args.export, joint_order, args.coverage, args.seed)
        print(f"SavedModel written to {args.export} (signature '{export.SIGNATURE}')")


def _check_arguments(args):
    if not args.input and not args.export:
        raise UserError("nothing to do: give --input (with --output or --plot) or --export")
    if args.input and not (args.output or args.plot):
        raise UserError("--input needs --output FILE (.npz or .json) or --plot DIR")
    if (args.output or args.plot or args.num_samples) and not args.input:
        raise UserError("--output, --plot and --num_samples need --input")
    if args.output:
        keypoint_files.check_output_path(args.output)
    if args.num_samples < 0:
        raise UserError(f"--num_samples must be >= 0 (got {args.num_samples})")
    if args.smoothness is not None and not (args.smoothness >= 0 and args.smoothness < 1e9):
        raise UserError(f"--smoothness must be a finite number >= 0 (got {args.smoothness})")
    if not 0.0 < args.coverage < 1.0:
        raise UserError(f"--coverage must be a probability between 0 and 1, exclusive "
                        f"(got {args.coverage})")
    if args.smoothness is not None and args.select != "temporal":
        raise UserError("--smoothness goes with --select temporal")


def _lift(lifter, keypoints, args):
    """Keypoints are already in model order: predict, write, plot."""
    hypotheses = lifter.predict(keypoints, keypoint_files.H36M, args.num_samples, args.seed,
                                args.coverage)
    arrays = hypotheses.as_arrays()
    metadata = {"checkpoint": lifter.source, "units": "mm", "frame": "camera",
                "root_relative": True, "num_hypotheses": lifter.num_models,
                "input": args.input, "num_samples": args.num_samples, "seed": args.seed,
                "miss_num": lifter.miss_num, "select": args.select,
                **radius_metadata(lifter, args.coverage)}
    if args.select == "temporal":
        arrays, metadata["smoothness"] = _with_temporal_path(lifter, keypoints, arrays,
                                                             args.smoothness, args)
    if args.output:
        keypoint_files.write_hypotheses(args.output, arrays, metadata)
        print(f"{len(keypoints)} pose(s) x {lifter.num_models} hypotheses written to "
              f"{args.output}")
    if args.plot:
        paths = plot_hypotheses(args.plot, keypoints, hypotheses)
        print(f"{len(paths)} figure(s) written to {args.plot}")


def radius_metadata(lifter, coverage):
    """What radius_mm is: its probability, draws, the pose it is around, and the
    recalibration behind it (None: the network's raw spread)."""
    from mdm.model.radius import RADIUS_SAMPLES

    return {"coverage": coverage, "radius_samples": RADIUS_SAMPLES,
            "radius_around": "the most probable hypothesis (the temporal path's pose for "
                             "path_radius_mm)",
            "recalibration": lifter.recalibration.record if lifter.recalibration else None}


def _with_temporal_path(lifter, keypoints, arrays, smoothness, args):
    """`arrays` plus the temporal path: path_pose_3d (T, 17, 3), path_kernel and
    path_probability (T,), path_radius_mm (T, 17)."""
    from mdm.evaluate.oracle_free import DEFAULT_SMOOTHNESS

    smoothness = DEFAULT_SMOOTHNESS if smoothness is None else smoothness
    path = lifter.predict_sequence(keypoints, keypoint_files.H36M, smoothness, args.coverage,
                                   args.seed)
    return dict(arrays, path_pose_3d=path.poses, path_kernel=path.kernel,
                path_probability=path.probability, path_radius_mm=path.radius_mm), smoothness


def plot_hypotheses(directory, keypoints, hypotheses, limit=PLOT_LIMIT):
    """One PNG per input pose (the first `limit`): the 2D input, then the K hypotheses
    turned from camera axes to z up, with their weights, the most probable one with its
    per-joint radius as a sphere per joint. Returns the paths."""
    from mdm.evaluate import figures

    os.makedirs(directory, exist_ok=True)
    upright = camera_to_upright(hypotheses.poses)
    return [figures.draw_hypotheses_figure(
                os.path.join(directory, f"pose_{n:05d}.png"), keypoints[n], upright[n],
                weights=hypotheses.weights[n],
                radius=None if hypotheses.radius_mm is None else hypotheses.radius_mm[n],
                coverage=hypotheses.coverage)
            for n in range(min(len(keypoints), limit))]


if __name__ == "__main__":
    sys.exit(main())
