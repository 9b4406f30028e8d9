"""From a detector's joints to the model's 16 input joints, and which joints the model can
do without.

Hips, knees, ankles (Human3.6M's "Foot"), shoulders, elbows and wrists are copied. The
four joints COCO-17 and OpenPose BODY_25 lack are derived (README, "Keypoints from 2D
detectors", measures what this costs):

* Hip (the root) = the midpoint of the two hips (BODY_25: its MidHip, which OpenPose
  defines as that midpoint); on Human3.6M's training subjects 0.3 px from the projected
  root, 3.0 px from the stacked-hourglass detector's.
* With S the shoulder midpoint (BODY_25: its Neck, defined as that midpoint), U = S - Hip
  (up the torso) and V = face - S (towards the head), each of Spine, Thorax and Head is
  S + alpha U + beta V. The face point is the nose; without it the midpoint of the eyes,
  else of the ears (those two fall-backs are not measured: Human3.6M has no eyes or ears).

alpha and beta are least-squares fits on Human3.6M's training subjects (S1, 5, 6, 7,
every 10th frame; `python benchmarks/detector_inputs.py --data_dir DIR --fit`), to the joints the model
saw in training: "sh" for a model trained on stacked-hourglass detections (the default,
`--use_sh True`, where the slot named Spine holds MPII's thorax, next to the shoulders), "gt"
for one trained on ground-truth projections. The nose is Human3.6M's Neck/Nose joint
projected.
"""

import numpy as np

from mdm.core import skeleton
from mdm.serve import detector_formats as formats
from mdm.serve import keypoint_files

# (alpha, beta) per derived joint (module docstring); benchmarks/detector_inputs.py --fit.
DERIVATION_RULES = {
    "sh": {"Spine": (-0.009, 0.022), "Thorax": (0.050, 0.302), "Head": (0.319, 1.017)},
    "gt": {"Spine": (-0.419, -0.145), "Thorax": (0.099, 0.131), "Head": (0.314, 0.688)},
}
DEFAULT_RULES = "sh"
DERIVED = ("Hip", "Spine", "Thorax", "Head")
# Joints copied from each format: model input name -> the format's name.
COPIED_COCO = {"RHip": "right_hip", "RKnee": "right_knee", "RFoot": "right_ankle",
                "LHip": "left_hip", "LKnee": "left_knee", "LFoot": "left_ankle",
                "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist",
                "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist"}
COPIED_OPENPOSE = {"RHip": "RHip", "RKnee": "RKnee", "RFoot": "RAnkle", "LHip": "LHip",
                    "LKnee": "LKnee", "LFoot": "LAnkle", "LShoulder": "LShoulder",
                    "LElbow": "LElbow", "LWrist": "LWrist", "RShoulder": "RShoulder",
                    "RElbow": "RElbow", "RWrist": "RWrist"}
_FACE = {formats.COCO: (("nose",), ("left_eye", "right_eye"), ("left_ear", "right_ear")),
         formats.OPENPOSE25: (("Nose",), ("LEye", "REye"), ("LEar", "REar"))}
# The format's own midpoints, used where given (else computed from the pair).
_MIDPOINTS = {formats.OPENPOSE25: {"hips": "MidHip", "shoulders": "Neck"}}

MAX_MISSING = 2  # --miss_num is 1 or 2 (docs/faithfulness.md §4)
LIMB_NAMES = tuple(keypoint_files.INPUT_NAMES[p] for p in skeleton.LIMB_INPUT_POSITIONS)


def apply_min_confidence(detections, min_confidence):
    """(N, J, 2) keypoints with NaN where the score is below `min_confidence` or not
    positive (detectors write 0 for a joint they did not find; COCO's v = 0)."""
    keypoints = detections.keypoints.copy()
    if detections.scores is not None:
        scores = np.nan_to_num(detections.scores, nan=0.0)
        keypoints[(scores < min_confidence) | (scores <= 0)] = np.nan
    return keypoints


def to_model_joints(keypoints, joint_order, rules=DEFAULT_RULES):
    """(N, J, 2) pixels in a detector order -> (N, 16, 2) in the model's input order
    (keypoint_files.INPUT_NAMES), NaN where a joint (or a joint it is derived from) is
    missing."""
    formats.check_order(joint_order)
    keypoints = np.asarray(keypoints, np.float64)
    if joint_order == formats.H36M17:
        return keypoints[:, skeleton.INPUT_JOINTS]
    names = formats.FORMAT_NAMES[joint_order]
    copied = COPIED_COCO if joint_order == formats.COCO else COPIED_OPENPOSE
    joint = {name: keypoints[:, names.index(source)] for name, source in copied.items()}
    hips = _midpoint(keypoints, names, joint_order, "hips", joint["LHip"], joint["RHip"])
    shoulders = _midpoint(keypoints, names, joint_order, "shoulders", joint["LShoulder"],
                          joint["RShoulder"])
    face = _face_point(keypoints, names, joint_order)
    joint["Hip"] = hips
    for name, (alpha, beta) in DERIVATION_RULES[rules].items():
        joint[name] = shoulders + alpha * (shoulders - hips) + beta * (face - shoulders)
    return np.stack([joint[name] for name in keypoint_files.INPUT_NAMES], axis=1)


def _midpoint(keypoints, names, joint_order, pair, left, right):
    """The format's own midpoint joint where it has one and found it, else the mean of
    the pair (NaN if either is missing: one hip is no hip centre)."""
    mean = (left + right) / 2
    own = _MIDPOINTS.get(joint_order, {}).get(pair)
    if own is None:
        return mean
    given = keypoints[:, names.index(own)]
    return np.where(np.isnan(given).any(axis=1, keepdims=True), mean, given)


def _face_point(keypoints, names, joint_order):
    """The nose, else the midpoint of the eyes, else of the ears (NaN if none)."""
    face = np.full(keypoints[:, 0].shape, np.nan)
    for group in reversed(_FACE[joint_order]):  # the nose last, so it wins
        point = keypoints[:, [names.index(name) for name in group]].mean(axis=1)
        face = np.where(np.isnan(point).any(axis=1, keepdims=True), face, point)
    return face


def missing_joint_problem(names):
    """Why a pose whose joints `names` (model input names) are missing cannot be lifted,
    or None. Training only ever dropped up to MAX_MISSING of the 8 limb joints
    (docs/faithfulness.md §4)."""
    if "Hip" in names:
        return ("the root joint (Hip) is missing; the 3D pose is relative to it, so it "
                "must be given")
    others = [name for name in names if name not in LIMB_NAMES]
    if others:
        return (f"{', '.join(others)} missing; only limb joints ({', '.join(LIMB_NAMES)}) "
                "can be missing")
    if len(names) > MAX_MISSING:
        return (f"{len(names)} limb joints missing ({', '.join(names)}); at most "
                f"{MAX_MISSING} can be, as in training with --miss_num")
    return None
