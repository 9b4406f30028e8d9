"""Command line: lift 2D keypoints from a file to K 3D hypotheses, draw samples, plot,
or export a SavedModel for serving.

    python -m mdm.infer --load_dir D [--load N] --input poses.json --output poses_3d.json
    python -m mdm.infer --load_dir D --input poses.csv --joint_order mpii --output out.npz \
        --num_samples 100 --seed 0 --plot figures/
    python -m mdm.infer --load_dir D --input openpose_frames/ --joint_order openpose25 \
        --select temporal --output video_3d.json --animation video_3d.gif
    python -m mdm.infer --load_dir D --export saved_model/

Detector orders (coco, openpose25, h36m17) go through mdm.serve.detector_lifting: scores
below --min_confidence are missing, the joints the format lacks are derived, the camera is
normalised (--camera_norm), and a frame that cannot be lifted is flagged in the output.

Every answer carries a per-joint radius (mm) around the chosen pose that holds the truth
with probability --coverage, from the mixture recalibrated by the checkpoint's
recalibration.json when there is one (--recalibrate False: the raw spread).

Mistakes in the input or the flags end with one line `error: ...` and exit status 1.
"""

import argparse
import os
import sys
import warnings

import numpy as np

from mdm.cli import exit_on_user_error, import_tensorflow_quietly
from mdm.core.errors import UserError
from mdm.data.cameras import camera_to_upright
from mdm.serve import animation, camera_norm, detector_formats, keypoint_files
from mdm.serve.animation import DEFAULT_FPS
from mdm.serve.detector_lifting import AUTO, DEFAULT_MIN_CONFIDENCE, DetectorOptions
from mdm.evaluate.oracle_free import DEFAULT_SMOOTHNESS

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
                        "(N, 16, 2) pixels, NaN/null/empty for a missing limb joint; with "
                        "a detector --joint_order also a detector's JSON or a folder of "
                        "OpenPose JSON frames")
    parser.add_argument("--output", help="hypotheses file: .npz or .json")
    parser.add_argument("--joint_order", choices=keypoint_files.JOINT_ORDERS
                        + detector_formats.DETECTOR_ORDERS, default=None,
                        help="joint order of --input (default: the file's own "
                        "'joint_order' field, else h36m); also the order --export takes "
                        "(h36m or mpii). coco (COCO-17), openpose25 (OpenPose BODY_25) and "
                        "h36m17 (MMPose's Human3.6M) are 2D detectors' outputs, with or "
                        "without a score per joint")
    parser.add_argument("--min_confidence", type=float, default=None,
                        help="detector orders: a joint scored below this is missing "
                        f"(default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--camera_norm", choices=(AUTO,) + camera_norm.MODES, default=AUTO,
                        help="map the 2D poses into the training camera's pixel frame: "
                        "pose (scale and centre per frame), video (one map for all "
                        "frames), focal (from --focal_length and --image_size), none. "
                        "auto: focal when --focal_length is given, else none for h36m and "
                        "mpii, and for detector orders video with --select temporal, else pose")
    parser.add_argument("--focal_length", type=float, default=None,
                        help="the camera's focal length in pixels (for --camera_norm focal)")
    parser.add_argument("--image_size", default=None, help="WIDTHxHEIGHT of the images in "
                        "pixels, e.g. 1920x1080: the principal point is their centre")
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
    parser.add_argument("--animation", help="write the frames as an animation (.gif, or .mp4 "
                        "when ffmpeg is installed): the 2D input beside the chosen 3D pose "
                        "(the temporal path, else the most probable), other hypotheses faint")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS,
                        help="frames per second of --animation (default %(default)s)")
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
    if args.joint_order in detector_formats.DETECTOR_ORDERS:
        return _run_detections(args, quiet_import)
    keypoints, joint_order = None, args.joint_order or keypoint_files.H36M
    if args.input:
        keypoints, file_order = keypoint_files.read_keypoints(args.input)
        if args.joint_order and file_order and args.joint_order != file_order:
            raise UserError(f"--joint_order {args.joint_order} contradicts the "
                            f"'joint_order': '{file_order}' of {args.input}")
        joint_order = args.joint_order or file_order or keypoint_files.H36M
        keypoints = keypoint_files.to_model_order(keypoints, joint_order)
    lifter = _load_lifter(args, quiet_import)
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
    _check_detector_arguments(args)


def _check_detector_arguments(args):
    detector = args.joint_order in detector_formats.DETECTOR_ORDERS
    if args.min_confidence is not None and not detector:
        raise UserError("--min_confidence goes with a detector --joint_order "
                        f"({', '.join(detector_formats.DETECTOR_ORDERS)})")
    if args.min_confidence is not None and not 0 <= args.min_confidence <= 1:
        raise UserError(f"--min_confidence must be between 0 and 1 (got {args.min_confidence})")
    if detector and args.export:
        raise UserError("--export takes the h36m or mpii joint order")
    if args.focal_length is not None and not 0 < args.focal_length < 1e6:
        raise UserError(f"--focal_length must be a positive number of pixels "
                        f"(got {args.focal_length})")
    if (args.focal_length is None) != (args.image_size is None):
        raise UserError("--focal_length and --image_size go together (the principal "
                        "point is the image centre)")
    if args.camera_norm == "focal" and args.focal_length is None:
        raise UserError("--camera_norm focal needs --focal_length and --image_size")
    if args.camera_norm not in (AUTO, "focal") and args.focal_length is not None:
        raise UserError(f"--focal_length is not used by --camera_norm {args.camera_norm}")
    if args.animation:
        if not args.input:
            raise UserError("--animation needs --input")
        animation.check_animation_path(args.animation)
    if not args.fps > 0 or args.fps > 1000:
        raise UserError(f"--fps must be a positive number up to 1000 (got {args.fps})")


def image_centre(image_size):
    """(cx, cy) of a "WIDTHxHEIGHT" string, or None."""
    if image_size is None:
        return None
    parts = image_size.lower().split("x")
    try:
        width, height = (float(part) for part in parts)
    except ValueError:
        width = height = -1.0
    if len(parts) != 2 or not (0 < width < 1e6 and 0 < height < 1e6):
        raise UserError(f"--image_size must be WIDTHxHEIGHT in pixels, e.g. 1920x1080 "
                        f"(got {image_size!r})")
    return width / 2, height / 2


def _run_detections(args, quiet_import):
    """A detector's keypoints: read, lift frame by frame (flagging what cannot be), write."""
    detections = detector_formats.read_detections(args.input, args.joint_order)
    options = DetectorOptions(
        min_confidence=(DEFAULT_MIN_CONFIDENCE if args.min_confidence is None
                        else args.min_confidence),
        camera_norm=args.camera_norm, focal_length=args.focal_length,
        principal_point=image_centre(args.image_size))
    lifter = _load_lifter(args, quiet_import)
    lifted = lifter.predict_detections(detections, options, args.select == "temporal",
                                       args.smoothness, args.num_samples, args.seed,
                                       args.coverage)
    flagged = np.flatnonzero(~lifted.valid)
    if len(flagged):
        first = flagged[0]
        warnings.warn(f"{len(flagged)} of {len(lifted.valid)} frame(s) cannot be lifted and "
                      f"are flagged (valid false, with the problem) in the output; frame "
                      f"{lifted.frames[first]}: {lifted.problems[first]}")
    metadata = dict(_metadata(lifter, args), joint_order=args.joint_order,
                    min_confidence=options.min_confidence, camera_norm=lifted.camera_mode,
                    frames_flagged=int(len(flagged)))
    if lifted.path:
        metadata["smoothness"] = (DEFAULT_SMOOTHNESS if args.smoothness is None
                                  else args.smoothness)
    _write_outputs(args, lifter, lifted.as_arrays(), metadata, lifted.pixels,
                   lifted.hypotheses, lifted.chosen_poses(), lifted.valid, lifted.problems)


def _load_lifter(args, quiet_import):
    if quiet_import:  # TensorFlow: imported only once the arguments are sound
        import_tensorflow_quietly()
    from mdm.serve.lifter import Lifter

    lifter = Lifter.load(args.load_dir, args.load, data_dir=args.data_dir,
                         recalibrate=args.recalibrate)
    if lifter.recalibration is not None:
        print(lifter.recalibration.summary())
    return lifter


def _lift(lifter, keypoints, args):
    """Keypoints are already in model order: predict, write, plot."""
    mode = args.camera_norm
    if mode == AUTO:  # h36m and mpii are the model's own pixels unless a camera is given
        mode = "none" if args.focal_length is None else "focal"
    scale, offset = camera_norm.similarity(keypoints, lifter.stats.mean_2d, mode,
                                           args.focal_length, image_centre(args.image_size))
    if not np.isfinite(scale).all():
        raise UserError(f"--camera_norm {mode}: a pose whose torso (Hip to Thorax) has no "
                        "length cannot be normalised")
    model_keypoints = camera_norm.apply(keypoints, scale, offset)
    hypotheses = lifter.predict(model_keypoints, keypoint_files.H36M, args.num_samples,
                                args.seed, args.coverage)
    arrays = hypotheses.as_arrays()
    metadata = dict(_metadata(lifter, args), camera_norm=mode)
    chosen = hypotheses.poses[:, 0]
    if args.select == "temporal":
        arrays, metadata["smoothness"] = _with_temporal_path(lifter, model_keypoints, arrays,
                                                             args.smoothness, args)
        chosen = arrays["path_pose_3d"]
    _write_outputs(args, lifter, arrays, metadata, keypoints, hypotheses, chosen)


def _metadata(lifter, args):
    return {"checkpoint": lifter.source, "units": "mm", "frame": "camera",
            "root_relative": True, "num_hypotheses": lifter.num_models,
            "input": args.input, "num_samples": args.num_samples, "seed": args.seed,
            "miss_num": lifter.miss_num, "select": args.select,
            **radius_metadata(lifter, args.coverage)}


def _write_outputs(args, lifter, arrays, metadata, keypoints, hypotheses, chosen,
                   valid=None, problems=None):
    """--output, --plot (the first lifted poses) and --animation."""
    count = len(keypoints)
    if args.output:
        keypoint_files.write_hypotheses(args.output, arrays, metadata)
        print(f"{count} pose(s) x {lifter.num_models} hypotheses written to {args.output}")
    if args.plot:
        rows = np.arange(count) if valid is None else np.flatnonzero(valid)
        paths = plot_hypotheses(args.plot, keypoints, hypotheses, rows[:PLOT_LIMIT])
        print(f"{len(paths)} figure(s) written to {args.plot}")
    if args.animation:
        animation.write_animation(args.animation, keypoints, chosen, hypotheses.poses, valid,
                                  problems, args.fps)
        print(f"animation of {count} frame(s) written to {args.animation}")


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
    smoothness = DEFAULT_SMOOTHNESS if smoothness is None else smoothness
    path = lifter.predict_sequence(keypoints, keypoint_files.H36M, smoothness, args.coverage,
                                   args.seed)
    return dict(arrays, path_pose_3d=path.poses, path_kernel=path.kernel,
                path_probability=path.probability, path_radius_mm=path.radius_mm), smoothness


def plot_hypotheses(directory, keypoints, hypotheses, rows):
    """One PNG per input pose of `rows`: the 2D input, then the K hypotheses turned from
    camera axes to z up, with their weights, the most probable one with its per-joint
    radius as a sphere per joint. Returns the paths."""
    from mdm.evaluate import figures

    os.makedirs(directory, exist_ok=True)
    upright = camera_to_upright(hypotheses.poses)
    return [figures.draw_hypotheses_figure(
                os.path.join(directory, f"pose_{n:05d}.png"), keypoints[n], upright[n],
                weights=hypotheses.weights[n],
                radius=None if hypotheses.radius_mm is None else hypotheses.radius_mm[n],
                coverage=hypotheses.coverage)
            for n in rows]


if __name__ == "__main__":
    sys.exit(main())
