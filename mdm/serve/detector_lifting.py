"""Lifting a detector's output frame by frame: low-confidence joints become missing, the
four joints the format lacks are derived (mdm.serve.derived_joints), the camera is
normalised (mdm.serve.camera_norm), and a frame the model cannot lift is flagged with
its reason instead of stopping the run or giving a silently wrong pose.

A flagged frame (`valid` False) has NaN poses, weights and scales and kernel index -1; a
video's temporal path (--select temporal) is cut there and starts afresh after it.
"""

import dataclasses

import numpy as np

from mdm.core.errors import UserError
from mdm.evaluate import selection
from mdm.evaluate.oracle_free import DEFAULT_SMOOTHNESS
from mdm.serve import camera_norm, derived_joints, keypoint_files

# Joints scored below this are missing. Low, because on Human3.6M (README, "Keypoints from
# 2D detectors") a limb joint given as missing cost a model trained without --miss_num
# more than the same joint 80 px off; 0.05 is the lowest score OpenPose draws.
DEFAULT_MIN_CONFIDENCE = 0.05
AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class DetectorOptions:
    """How a detector's keypoints become the model's input."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    camera_norm: str = AUTO  # a camera_norm.MODES entry, or AUTO (resolved_mode)
    focal_length: float = None  # pixels, for "focal"
    principal_point: tuple = None  # (cx, cy) pixels, for "focal"
    rules: str = derived_joints.DEFAULT_RULES  # which derivation coefficients

    def resolved_mode(self, temporal):
        """AUTO: "focal" when a focal length is given, else "video" for a video lifted
        with --select temporal, else "pose"."""
        if self.camera_norm != AUTO:
            return self.camera_norm
        if self.focal_length is not None:
            return "focal"
        return "video" if temporal else "pose"


@dataclasses.dataclass(frozen=True)
class FrameLift:
    """Every frame's hypotheses (NaN where flagged) and what was fed to the model."""

    hypotheses: object  # lifter.Hypotheses with one row per frame
    valid: np.ndarray  # (N,) bool, False where the frame could not be lifted
    problems: tuple  # (N,) str, why a frame is flagged ("" when valid)
    pixels: np.ndarray  # (N, 16, 2) model-order joints in the input's pixels, NaN missing
    camera_scale: np.ndarray  # (N,) and
    camera_offset: np.ndarray  # (N, 2): model input = scale * pixels + offset
    camera_mode: str
    frames: tuple  # (N,) each frame's name in the input
    path: dict = None  # --select temporal: path_pose_3d, path_kernel, path_probability,
    # path_radius_mm

    def chosen_poses(self):
        """(N, 17, 3): the temporal path's pose, else the most probable hypothesis."""
        return self.path["path_pose_3d"] if self.path else self.hypotheses.poses[:, 0]

    def as_arrays(self):
        arrays = dict(self.hypotheses.as_arrays(), valid=self.valid,
                      problem=np.array(self.problems, dtype=str),
                      frame=np.array([str(f) for f in self.frames], dtype=str),
                      camera_scale=self.camera_scale, camera_offset=self.camera_offset)
        return dict(arrays, **self.path) if self.path else arrays


def lift_detections(lifter, detections, options, temporal, smoothness, num_samples, seed,
                    coverage):
    """FrameLift of mdm.serve.detector_formats.Detections with `lifter` (a Lifter); every
    lifted frame carries the per-joint radius of probability `coverage` around its chosen
    pose (the most probable hypothesis, or the temporal path's)."""
    keypoints = derived_joints.apply_min_confidence(detections, options.min_confidence)
    pixels = derived_joints.to_model_joints(keypoints, detections.joint_order, options.rules)
    problems = frame_problems(keypoints, pixels)
    mode = options.resolved_mode(temporal)
    valid = np.array([not problem for problem in problems])
    scale, offset = np.full(len(pixels), np.nan), np.full((len(pixels), 2), np.nan)
    if valid.any():
        scale[valid], offset[valid] = camera_norm.similarity(
            pixels[valid], lifter.stats.mean_2d, mode, options.focal_length,
            options.principal_point)
    unusable = valid & ~np.isfinite(scale)
    problems = [("the torso (Hip to Thorax) has no length: no camera normalisation"
                 if bad else problem) for problem, bad in zip(problems, unusable)]
    valid &= ~unusable
    if not valid.any():
        first = int(np.argmax([bool(p) for p in problems]))
        raise UserError(f"none of the {len(pixels)} frame(s) can be lifted (frame "
                        f"{detections.frames[first]}: {problems[first]})")
    model_pixels = camera_norm.apply(pixels[valid], scale[valid], offset[valid])
    lifted, params = lifter.predict_with_parameters(model_pixels, keypoint_files.H36M,
                                                    num_samples, seed, coverage)
    hypotheses = dataclasses.replace(_scatter(lifted, valid),
                                     missing=np.isnan(pixels).any(axis=-1))
    result = FrameLift(hypotheses, valid, tuple(problems), pixels, scale, offset,
                       mode, detections.frames)
    if temporal:
        path = _temporal_path(lifted, valid, smoothness)
        kernel = path["path_kernel"][valid]
        path["path_radius_mm"] = _spread_rows(
            lifter.joint_radius(params, kernel, coverage, seed), valid, np.nan)
        result = dataclasses.replace(result, path=path)
    return result


def frame_problems(keypoints, pixels):
    """(N,) why each frame cannot be lifted ("" when it can): nobody detected, or missing
    joints the model cannot do without (derived_joints.missing_joint_problem)."""
    problems = []
    for frame_keypoints, frame_pixels in zip(keypoints, pixels):
        if np.isnan(frame_keypoints).all():
            problems.append("no person detected (or no joint above --min_confidence)")
            continue
        gone = np.isnan(frame_pixels).any(axis=-1)
        names = [keypoint_files.INPUT_NAMES[j] for j in np.flatnonzero(gone)]
        problems.append(derived_joints.missing_joint_problem(names) or "")
    return problems


def _scatter(lifted, valid):
    """Hypotheses of the valid frames -> one row per frame, NaN (kernel -1) where flagged."""
    fields = {field.name: getattr(lifted, field.name) for field in dataclasses.fields(lifted)}
    return type(lifted)(**{
        name: value if not isinstance(value, np.ndarray) else _spread_rows(
            value, valid, -1 if name == "kernel_index" else (True if name == "missing" else np.nan))
        for name, value in fields.items()})


def _temporal_path(lifted, valid, smoothness):
    """The Viterbi path (selection.viterbi_path) through each run of consecutive valid
    frames; a flagged frame ends a run. Arrays with one row per frame."""
    smoothness = DEFAULT_SMOOTHNESS if smoothness is None else smoothness
    runs = np.cumsum(~valid)[valid]  # a new id after every flagged frame
    rank = selection.viterbi_path(lifted.poses, lifted.weights, runs, smoothness)
    rows = np.arange(len(rank))
    path = {"path_pose_3d": lifted.poses[rows, rank],
            "path_kernel": lifted.kernel_index[rows, rank],
            "path_probability": lifted.weights[rows, rank]}
    return {name: _spread_rows(values, valid, -1 if name == "path_kernel" else np.nan)
            for name, values in path.items()}


def _spread_rows(values, valid, fill):
    full = np.full((len(valid),) + values.shape[1:], fill, dtype=values.dtype)
    full[valid] = values
    return full
