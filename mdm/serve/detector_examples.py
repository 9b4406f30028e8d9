"""Detector-format example files generated from the synthetic dataset (mdm.synthetic):
one synthetic subject walking, filmed by a 1920 x 1080 camera (focal length 1500 px, not
Human3.6M's), written as COCO results, OpenPose BODY_25 frames and MMPose predictions.

    python -m mdm.synthetic --format detectors --out examples/detectors --frames_per_sequence 40

Human3.6M's skeleton has no eyes, ears or toes: eyes and ears are placed at fixed offsets
from the Neck/Nose and Head joints (for illustration only), OpenPose's feet are written as
not found (0, 0, 0). Scores are about 0.9, and one wrist is "occluded" (scored 0.1,
displaced) for a stretch of frames, as detectors do.
"""

import dataclasses
import json
import os

import numpy as np

from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.serve import detector_formats as formats

IMAGE_SIZE = (1920, 1080)
FOCAL_PX = 1500.0
OCCLUDED_SCORE = 0.1
_J = skeleton.H36M17_NAMES.index
# Face points: (fraction from Neck/Nose towards Head, sideways offset in mm, +1 = left).
_FACE_POINTS = {"left_eye": (0.3, 30.0), "right_eye": (0.3, -30.0),
                "left_ear": (0.5, 75.0), "right_ear": (0.5, -75.0)}
_FROM_H36M = {"nose": "Neck/Nose", "left_shoulder": "LShoulder",
              "right_shoulder": "RShoulder", "left_elbow": "LElbow", "right_elbow": "RElbow",
              "left_wrist": "LWrist", "right_wrist": "RWrist", "left_hip": "LHip",
              "right_hip": "RHip", "left_knee": "LKnee", "right_knee": "RKnee",
              "left_ankle": "LFoot", "right_ankle": "RFoot"}
_OPENPOSE_FROM_COCO = {"Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
                       "RWrist": "right_wrist", "LShoulder": "left_shoulder",
                       "LElbow": "left_elbow", "LWrist": "left_wrist", "RHip": "right_hip",
                       "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip",
                       "LKnee": "left_knee", "LAnkle": "left_ankle", "REye": "right_eye",
                       "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear"}


def synthetic_coco(frames=40, seed=0, action="Walking"):
    """(T, 17, 3) COCO-17 keypoints (x, y, score) of a synthetic walk seen in 1080p."""
    from mdm.data import cameras
    from mdm.data.synthetic import generator

    rng = np.random.default_rng([seed, 18])
    camera = dataclasses.replace(generator.make_cameras(rng)[0], f=np.full(2, FOCAL_PX),
                                 c=np.array(IMAGE_SIZE, float) / 2, k=np.zeros(3),
                                 p=np.zeros(2))
    world = generator.generate_sequence(rng, generator.make_body(rng, 9), action, frames)
    points = np.stack([_coco_point_3d(world, name) for name in formats.COCO_NAMES], axis=1)
    pixels = cameras.project_to_pixels(cameras.world_to_camera(points, camera), camera)
    pixels = pixels + rng.normal(0.0, 2.0, pixels.shape)
    scores = np.clip(rng.normal(0.9, 0.05, pixels.shape[:2]), 0.5, 1.0)
    wrist = formats.COCO_NAMES.index("left_wrist")
    hidden = slice(frames // 3, frames // 3 + max(frames // 8, 1))
    scores[hidden, wrist] = OCCLUDED_SCORE
    pixels[hidden, wrist] += 60.0  # an occluded joint's guess is off
    return np.concatenate([np.round(pixels, 1), np.round(scores, 3)[..., None]], axis=-1)


def _coco_point_3d(world, name):
    if name in _FROM_H36M:
        return world[:, _J(_FROM_H36M[name])]
    fraction, side = _FACE_POINTS[name]
    nose, head = world[:, _J("Neck/Nose")], world[:, _J("Head")]
    left = world[:, _J("LShoulder")] - world[:, _J("RShoulder")]
    left /= np.linalg.norm(left, axis=-1, keepdims=True)
    return nose + fraction * (head - nose) + side * left


def coco_to_openpose(coco):
    """(T, 25, 3) BODY_25 from (T, 17, 3) COCO: Neck and MidHip are midpoints (as OpenPose
    defines them), the feet not found (0, 0, 0)."""
    out = np.zeros((len(coco), len(formats.OPENPOSE25_NAMES), 3))
    for target, source in _OPENPOSE_FROM_COCO.items():
        out[:, formats.OPENPOSE25_NAMES.index(target)] = coco[:, formats.COCO_NAMES.index(source)]
    for target, (a, b) in (("Neck", ("left_shoulder", "right_shoulder")),
                           ("MidHip", ("left_hip", "right_hip"))):
        pair = coco[:, [formats.COCO_NAMES.index(a), formats.COCO_NAMES.index(b)]]
        out[:, formats.OPENPOSE25_NAMES.index(target)] = np.concatenate(
            [pair[:, :, :2].mean(axis=1), pair[:, :, 2].min(axis=1, keepdims=True)], axis=-1)
    return np.round(out, 3)


def write_coco_results(path, keypoints):
    """COCO results (as Detectron2 and COCO's evaluation write): one entry per frame."""
    entries = [{"image_id": frame, "category_id": 1, "keypoints": pose.reshape(-1).tolist(),
                "score": round(float(pose[:, 2].mean()), 3)}
               for frame, pose in enumerate(np.asarray(keypoints, float))]
    return _write_json(path, entries)


def write_openpose_frames(folder, keypoints, stem="video"):
    """One OpenPose --write_json file per frame: <stem>_<12-digit frame>_keypoints.json."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for frame, pose in enumerate(np.asarray(keypoints, float)):
        person = {"person_id": [-1], "pose_keypoints_2d": pose.reshape(-1).tolist()}
        paths.append(_write_json(os.path.join(folder, f"{stem}_{frame:012d}_keypoints.json"),
                                 {"version": 1.3, "people": [person]}))
    return paths


def write_mmpose_predictions(path, keypoints):
    """MMPose inferencer predictions: per frame, instances with keypoints and scores."""
    frames = [{"frame_id": frame, "instances": [{
                  "keypoints": pose[:, :2].tolist(), "keypoint_scores": pose[:, 2].tolist(),
                  "bbox_score": round(float(pose[:, 2].mean()), 3)}]}
              for frame, pose in enumerate(np.asarray(keypoints, float))]
    return _write_json(path, frames)


def _write_json(path, content):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, separators=(",", ":"))
    return path


def write_examples(out, frames=40, seed=0):
    """coco_walk.json and openpose_walk/ in `out` (new or empty)."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise UserError(f"the number of frames must be a positive integer (got {frames!r})")
    if os.path.exists(out) and os.listdir(out):
        raise UserError(f"{out} exists and is not empty")
    os.makedirs(out, exist_ok=True)
    coco = synthetic_coco(frames, seed)
    write_coco_results(os.path.join(out, "coco_walk.json"), coco)
    write_openpose_frames(os.path.join(out, "openpose_walk"), coco_to_openpose(coco))
    return out
