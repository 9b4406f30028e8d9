"""What lifting a 2D detector's output costs on Human3.6M (README, "Keypoints from 2D
detectors"): the derived joints, the camera normalisation, and missing joints.

  nice -n 10 python benchmarks/detector_inputs.py --data_dir /tmp/h36m \
      --load_dir exp/curve_sh_k5 --load 18838 [--frame_step 5] [--json FILE]
  python benchmarks/detector_inputs.py --data_dir /tmp/h36m --fit

Test frames: subject 8, every --frame_step-th frame of every sequence and camera, the
stacked-hourglass (SH) detections as input. Errors: Protocol #1 MPJPE (mm) over the 17
joints, the mean of the 15 action means, of the best and the most probable hypothesis.

* Derivation: each format's joints built from the SH detections (hips, knees, ankles,
  shoulders, elbows, wrists as detected; OpenPose's Neck and MidHip as the midpoints of the
  shoulders and hips, as OpenPose defines them) and the nose from Human3.6M's Neck/Nose
  joint projected with the camera (SH has no nose); eyes and ears absent. The four
  derived joints (mdm.serve.derived_joints) replace the SH ones.
* Camera: the SH pixels resized by s and placed at the centre of a W x H image, as if the
  same view were filmed at another resolution; lifted without and with each
  normalisation of mdm.serve.camera_norm ("video" per sequence and camera; "focal" with
  that camera's focal length and principal point scaled alike).
* Missing joints: one random limb joint per frame missing (normalised to 0, as
  --miss_num does), or displaced by d pixels in a random direction instead.

--fit prints the derivation coefficients (derived_joints.DERIVATION_RULES), least squares
on every 10th frame of the training subjects, for SH and for ground-truth inputs.
"""

import argparse
import json
import sys
import time

import numpy as np

from mdm.core import skeleton
from mdm.core.config import Config
from mdm.data import cameras, splits
from mdm.evaluate import metrics, report
from mdm.serve import camera_norm, derived_joints, detector_formats, keypoint_files
from mdm.serve.lifter import Lifter

NOSE = skeleton.H36M17_NAMES.index("Neck/Nose")
H36M_IMAGE_CENTRE = np.array([500.0, 500.0])  # Human3.6M's images are about 1000 x 1000
# (scale s, target image W x H): the camera table's rows.
CAMERA_ROWS = ((1.0, (1000, 1000)), (0.5, (640, 480)), (1.0, (1280, 720)),
               (1.08, (1920, 1080)), (2.16, (3840, 2160)), (3.0, (3840, 2160)))
DISPLACEMENTS_PX = (10, 20, 40, 80, 160)
FIT_STEP = 10


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--load_dir", default="")
    parser.add_argument("--load", type=int, default=0)
    parser.add_argument("--cache_dir", default="/tmp/detector_inputs_cache")
    parser.add_argument("--frame_step", type=int, default=5)
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--tables", default="derivation,camera,missing",
                        help="which of derivation, camera, missing to measure")
    parser.add_argument("--json", default="")
    return parser.parse_args(argv)


def projected_2d(pose_set, camera_table):
    """(N, 17, 2) ground-truth pixels: the camera-frame 3D joints projected (with
    distortion) by each row's own camera."""
    points = pose_set.poses_3d.astype(np.float64) + pose_set.roots[:, None].astype(np.float64)
    pixels = np.zeros(points.shape[:2] + (2,))
    for index, stream in enumerate(pose_set.streams):
        rows = pose_set.stream_index == index
        if rows.any():
            camera = camera_table[stream.subject][stream.camera]
            pixels[rows] = cameras.project_to_pixels(points[rows], camera)
    return pixels


def with_nose(inputs_16, nose):
    """(N, 17, 2) h36m17 keypoints: the 16 model-order joints plus a Neck/Nose."""
    keypoints = np.zeros((len(inputs_16), skeleton.NUM_JOINTS, 2))
    keypoints[:, skeleton.INPUT_JOINTS] = inputs_16
    keypoints[:, NOSE] = nose
    return keypoints


def as_format(h36m17, joint_order):
    """(N, J, 2) keypoints in a detector order from h36m17 ones (module docstring)."""
    if joint_order == detector_formats.H36M17:
        return h36m17
    names = detector_formats.FORMAT_NAMES[joint_order]
    out = np.full((len(h36m17), len(names), 2), np.nan)
    source = {**{coco: h36m for h36m, coco in derived_joints.COPIED_COCO.items()},
              **{op: h36m for h36m, op in derived_joints.COPIED_OPENPOSE.items()},
              "nose": "Neck/Nose", "Nose": "Neck/Nose"}
    for position, name in enumerate(names):
        if name in source:
            out[:, position] = h36m17[:, skeleton.H36M17_NAMES.index(source[name])]
    if joint_order == detector_formats.OPENPOSE25:
        joint = lambda n: h36m17[:, skeleton.H36M17_NAMES.index(n)]  # noqa: E731
        out[:, names.index("MidHip")] = (joint("LHip") + joint("RHip")) / 2
        out[:, names.index("Neck")] = (joint("LShoulder") + joint("RShoulder")) / 2
    return out


def fit_rules(inputs_16, nose):
    """{joint: (alpha, beta)}: joint = S + alpha (S - Hip) + beta (nose - S), least squares."""
    joint = lambda name: inputs_16[:, keypoint_files.INPUT_NAMES.index(name)]  # noqa: E731
    hips = (joint("LHip") + joint("RHip")) / 2
    shoulders = (joint("LShoulder") + joint("RShoulder")) / 2
    design = np.stack([(shoulders - hips).reshape(-1), (nose - shoulders).reshape(-1)], axis=1)
    rules = {}
    for name in ("Spine", "Thorax", "Head"):
        coefficients, *_ = np.linalg.lstsq(design, (joint(name) - shoulders).reshape(-1),
                                           rcond=None)
        fitted = shoulders + (design @ coefficients).reshape(-1, 2)
        residual = np.linalg.norm(fitted - joint(name), axis=-1)
        rules[name] = {"alpha": round(float(coefficients[0]), 3),
                       "beta": round(float(coefficients[1]), 3),
                       "mean_residual_px": round(float(residual.mean()), 2)}
    rules["Hip"] = {"mean_residual_px": round(float(
        np.linalg.norm(hips - joint("Hip"), axis=-1).mean()), 2)}
    return rules


def protocol1(lifter, pixels, test, rows):
    """{"best", "most_probable"}: mean of the action means (mm) of pixels (N, 16, 2)."""
    start = time.time()
    hypotheses = lifter.predict(pixels, coverage=None)  # the radius's draws are not scored
    joints = skeleton.eval_joints(False)
    errors = metrics.hypothesis_errors(hypotheses.poses[:, :, joints], hypotheses.weights,
                                       test.poses_3d[rows][:, joints])
    table = report.aggregate_by_action(
        {name: errors[name] for name in ("best", "most_probable")}, test.actions()[rows])
    print(f"{len(pixels)} frames lifted and scored in {time.time() - start:.1f} s",
          file=sys.stderr)
    return {name: round(value, 1) for name, value in table["Average"].items()}


def derivation_table(lifter, sh, nose, test, rows):
    results = {"native SH (16 joints)": protocol1(lifter, sh, test, rows)}
    keypoints = with_nose(sh, nose)
    for joint_order, rules in ((detector_formats.H36M17, "sh"), (detector_formats.COCO, "sh"),
                               (detector_formats.OPENPOSE25, "sh"),
                               (detector_formats.COCO, "gt")):
        pixels = derived_joints.to_model_joints(as_format(keypoints, joint_order),
                                                joint_order, rules)
        results[f"{joint_order} ({rules} rules)"] = protocol1(lifter, pixels, test, rows)
    return results


def camera_table(lifter, sh, test, rows, views):
    intrinsics = [(c.f.mean(), c.c) for c in views]
    streams, cams = test.stream_index[rows], np.array([s.camera for s in test.streams])
    results = {}
    for scale, (width, height) in CAMERA_ROWS:
        shift = np.array([width, height]) / 2 - scale * H36M_IMAGE_CENTRE
        pixels = scale * sh + shift
        row = {}
        for mode in camera_norm.MODES:
            factor, offset = np.ones(len(rows)), np.zeros((len(rows), 2))
            for stream in np.unique(streams):
                group = streams == stream
                focal, centre = intrinsics[cams[stream]]
                factor[group], offset[group] = camera_norm.similarity(
                    pixels[group], lifter.stats.mean_2d, mode, scale * focal,
                    scale * centre + shift)
            row[mode] = protocol1(lifter, camera_norm.apply(pixels, factor, offset), test, rows)
        results[f"x{scale} in {width}x{height}"] = row
    return results


def missing_table(lifter, sh, test, rows, seed=0):
    rng = np.random.default_rng(seed)
    joint = skeleton.LIMB_INPUT_POSITIONS[rng.integers(len(skeleton.LIMB_INPUT_POSITIONS),
                                                       size=len(sh))]
    frames = np.arange(len(sh))
    missing = sh.copy()
    missing[frames, joint] = np.nan
    results = {"one limb joint missing": protocol1(lifter, missing, test, rows)}
    angle = rng.uniform(0, 2 * np.pi, len(sh))
    for distance in DISPLACEMENTS_PX:
        moved = sh.copy()
        moved[frames, joint] += distance * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        results[f"one limb joint moved {distance} px"] = protocol1(lifter, moved, test, rows)
    return results


def main(argv=None):
    args = parse_arguments(argv)
    config = Config(data_dir=args.data_dir, cache_dir=args.cache_dir, use_sh=True,
                    train_subjects=(1, 5, 6, 7), test_subjects=(8,))
    train, test, _ = splits.load_splits(config)
    camera_table_all = cameras.load_cameras(config.resolved_cameras_path(), [1, 5, 6, 7, 8])
    if args.fit:
        rows = np.arange(0, len(train), FIT_STEP)
        subset = train.subset(rows)
        truth = projected_2d(subset, camera_table_all)
        results = {"sh": fit_rules(subset.poses_2d.astype(np.float64), truth[:, NOSE]),
                   "gt": fit_rules(truth[:, skeleton.INPUT_JOINTS], truth[:, NOSE])}
    else:
        rows = np.flatnonzero(test.frame_index % args.frame_step == 0)
        # A detection whose Thorax is on its Hip cannot be scaled (the command line flags
        # such a frame); it is left out of every row so that all rows score the same frames.
        degenerate = camera_norm.torso_length(test.poses_2d[rows].astype(np.float64)) == 0
        subset = test.subset(rows[~degenerate])
        lifter = Lifter.load(args.load_dir, args.load)
        sh = subset.poses_2d.astype(np.float64)
        nose = projected_2d(subset, camera_table_all)[:, NOSE]
        every = np.arange(len(subset))
        tables = {"derivation": lambda: derivation_table(lifter, sh, nose, subset, every),
                  "camera": lambda: camera_table(lifter, sh, subset, every, camera_table_all[8]),
                  "missing": lambda: missing_table(lifter, sh, subset, every)}
        results = {"checkpoint": lifter.source, "frames": len(every),
                   "frames_left_out_no_torso": int(degenerate.sum()),
                   **{name: tables[name]() for name in args.tables.split(",")}}
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
