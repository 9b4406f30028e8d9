"""Reading what 2D detectors write: COCO-17 (MMPose, Detectron2, YOLO-pose, RTMPose,
ViTPose), OpenPose BODY_25 and MMPose's 17-joint Human3.6M order, with a confidence per
joint where the file has one.

Accepted files (README, "Keypoints from 2D detectors"):

* a folder of OpenPose JSON files, one per frame (`--write_json`), in natural file-name
  order (frame_2 before frame_10), or one such file;
* COCO JSON: a results list (`[{"image_id", "keypoints": [x, y, score] * 17, "score"}]`,
  Detectron2 and the COCO evaluation format), an annotation file (`{"images",
  "annotations"}`, the score is the visibility flag v: 0 = not labelled), or MMPose's
  inferencer predictions (`[{"frame_id", "instances": [{"keypoints", "keypoint_scores"}]}]`);
  frames in image-id (or frame) order;
* any format as an array (.npy, .json, .csv) of (J, 2), (J, 3), (N, J, 2) or (N, J, 3)
  numbers, the third being the score (e.g. YOLO-pose's `results[i].keypoints.data`), or
  rows of J * 2 or J * 3 numbers.

Where a frame holds several people, the one with the largest detection score (or mean
keypoint score) is lifted; a frame with nobody has every joint missing.
"""

import dataclasses
import json
import os
import re

import numpy as np

from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.serve import keypoint_files
from mdm.serve.progress import Progress

COCO = "coco"
OPENPOSE25 = "openpose25"
H36M17 = "h36m17"
DETECTOR_ORDERS = (COCO, OPENPOSE25, H36M17)

COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
OPENPOSE25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar",
    "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
# MMPose's Human3.6M keypoints (root, right_hip, ..., neck_base, head, ...) are
# Human3.6M's 17 joints in the same order as skeleton.H36M17_NAMES.
FORMAT_NAMES = {COCO: COCO_NAMES, OPENPOSE25: OPENPOSE25_NAMES, H36M17: skeleton.H36M17_NAMES}


@dataclasses.dataclass(frozen=True)
class Detections:
    """One person's keypoints per frame, in a detector's joint order."""

    keypoints: np.ndarray  # (N, J, 2) float64 pixels, NaN where the file has no joint
    scores: np.ndarray  # (N, J) confidences, or None when the file gives none
    joint_order: str  # one of DETECTOR_ORDERS
    frames: tuple  # (N,) a name per frame: file name, image id or index

    def __len__(self):
        return len(self.keypoints)


def check_order(joint_order):
    if joint_order not in DETECTOR_ORDERS:
        raise UserError(f"unknown detector joint order {joint_order!r}: use one of "
                        f"{', '.join(DETECTOR_ORDERS)}")


def read_detections(path, joint_order):
    """Detections from a file or a folder of OpenPose frames (module docstring)."""
    check_order(joint_order)
    if os.path.isdir(path):
        return _read_openpose_folder(path, joint_order)
    if not os.path.isfile(path):
        raise UserError(f"input not found: {path}")
    if path.lower().endswith(".json") and os.path.getsize(path) > 0:
        content = _load_json(path)
        try:
            structured = _structured_json(content, joint_order, os.path.basename(path))
        except UserError as err:
            raise UserError(f"{path}: {err}") from None
        if structured is not None:
            return structured
    array, _ = keypoint_files.read_keypoints(path)
    try:
        return from_array(array, joint_order)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None


def from_array(array, joint_order, frames=None):
    """Detections from an array of one of the shapes in the module docstring."""
    check_order(joint_order)
    count = len(FORMAT_NAMES[joint_order])
    array = keypoint_files.as_numeric_array(array)
    shape = array.shape
    if array.ndim in (1, 2) and shape[-1] in (2 * count, 3 * count):
        array = array.reshape(-1, count, shape[-1] // count)
    elif array.ndim == 2 and shape[-1] in (2, 3):
        array = array[None]
    if array.ndim != 3 or array.shape[1:] not in ((count, 2), (count, 3)) or not len(array):
        raise UserError(f"keypoints of shape {shape}: the {joint_order} order has {count} "
                        f"joints, so expected ({count}, 2) or ({count}, 3) per pose (x, y "
                        "and optionally a score)")
    if np.isinf(array).any():
        raise UserError("infinite coordinate or score (give NaN or a score of 0 for a "
                        "missing joint)")
    scores = array[..., 2] if array.shape[-1] == 3 else None
    frames = tuple(range(len(array))) if frames is None else tuple(frames)
    return Detections(array[..., :2].copy(), scores, joint_order, frames)


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None


def _structured_json(content, joint_order, name):
    """Detections from a detector's own JSON layout, or None for a plain keypoint array."""
    if isinstance(content, dict) and "keypoints_2d" in content:  # write_keypoints_json's
        declared = content.get("joint_order", joint_order)
        if declared != joint_order:
            raise UserError(f"its 'joint_order' is {declared!r}, not {joint_order!r}")
        return from_array(keypoint_files.json_numbers(content["keypoints_2d"]), joint_order)
    if isinstance(content, dict) and "people" in content:
        return _frames_to_detections([_openpose_people(content, joint_order)], joint_order,
                                     [name])
    if isinstance(content, dict) and "annotations" in content:
        return _coco_annotations(content, joint_order)
    if isinstance(content, list) and content and all(isinstance(i, dict) for i in content):
        if all("instances" in item for item in content):
            return _mmpose_predictions(content, joint_order)
        if all("keypoints" in item for item in content):
            return _coco_results(content, joint_order)
        raise UserError("a list of objects that are neither COCO results (with "
                        '"keypoints") nor MMPose predictions (with "instances")')
    return None


def _read_openpose_folder(folder, joint_order):
    if joint_order != OPENPOSE25:
        raise UserError(f"{folder} is a folder: a folder of per-frame files is read as "
                        "OpenPose JSON (--joint_order openpose25)")
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(".json")),
                   key=natural_key)
    if not names:
        raise UserError(f"{folder}: no .json files (OpenPose --write_json output)")
    people, progress = [], Progress(len(names), "reading frames")
    try:
        for done, name in enumerate(names, start=1):
            progress.update(done)
            people.append(_read_openpose_frame(os.path.join(folder, name), joint_order))
    finally:
        progress.close()
    return _frames_to_detections(people, joint_order, names)


def _read_openpose_frame(path, joint_order):
    content = _load_json(path)
    if not isinstance(content, dict) or "people" not in content:
        raise UserError(f"{path}: not an OpenPose frame (an object with \"people\")")
    try:
        return _openpose_people(content, joint_order)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None


def natural_key(name):
    """Sort key that orders embedded numbers by value: frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _openpose_people(content, joint_order):
    """[(keypoints (J, 3), person score)] of one OpenPose frame."""
    people = content["people"]
    if not isinstance(people, list):
        raise UserError('"people" must be a list')
    return [_person(entry.get("pose_keypoints_2d") if isinstance(entry, dict) else None,
                    None, joint_order, "pose_keypoints_2d") for entry in people]


def _person(flat, score, joint_order, field):
    """(keypoints (J, 3) x, y, score; detection score) from a flat [x, y, s] * J list."""
    count = len(FORMAT_NAMES[joint_order])
    if not isinstance(flat, list):
        raise UserError(f'a person without a "{field}" list')
    values = keypoint_files.as_numeric_array(keypoint_files.json_numbers(flat))
    if values.size != 3 * count:
        raise UserError(f'"{field}" holds {values.size} numbers; {joint_order} needs '
                        f"{3 * count} (x, y, score for each of {count} joints)")
    keypoints = values.reshape(count, 3)
    if score is not None and not isinstance(score, (int, float)):
        raise UserError(f'detection "score" {json.dumps(score)} is not a number')
    mean_score = float(np.nan_to_num(keypoints[:, 2]).mean())  # null scores count as 0
    return keypoints, mean_score if score is None else float(score)


def _frames_to_detections(people_per_frame, joint_order, frames):
    """The most confident person of each frame; all-NaN keypoints where nobody is."""
    count = len(FORMAT_NAMES[joint_order])
    chosen = np.full((len(people_per_frame), count, 3), np.nan)
    for frame, people in enumerate(people_per_frame):
        if people:
            best = max(range(len(people)), key=lambda i: np.nan_to_num(people[i][1], nan=-1))
            chosen[frame] = people[best][0]
    scores = chosen[..., 2]
    return Detections(chosen[..., :2].copy(), np.nan_to_num(scores, nan=0.0), joint_order,
                      tuple(frames))


def _coco_results(items, joint_order, images=None):
    """COCO results / annotations: frames by image id; `images` lists the ids that exist."""
    by_image = {}
    for item in items:
        if "image_id" not in item:
            raise UserError('a COCO keypoint entry without "image_id"')
        image = item["image_id"]
        if isinstance(image, (list, dict)):
            raise UserError(f'"image_id" {json.dumps(image)} is not an id')
        by_image.setdefault(image, []).append(_person(item["keypoints"], item.get("score"),
                                                      joint_order, "keypoints"))
    ids = list(images) if images is not None else sorted(by_image, key=_id_key)
    return _frames_to_detections([by_image.get(i, []) for i in ids], joint_order, ids)


def _id_key(image_id):
    return (0, image_id, "") if isinstance(image_id, (int, float)) else \
        (1, 0, natural_key(str(image_id)))


def _coco_annotations(content, joint_order):
    annotations = content["annotations"]
    if not isinstance(annotations, list):
        raise UserError('"annotations" must be a list')
    annotations = [a for a in annotations if isinstance(a, dict) and "keypoints" in a]
    images = content.get("images")
    ids = None
    if isinstance(images, list) and all(isinstance(i, dict) and "id" in i for i in images):
        ids = sorted((image["id"] for image in images), key=_id_key)
    return _coco_results(annotations, joint_order, ids)


def _mmpose_predictions(frames, joint_order):
    people_per_frame, names = [], []
    for index, frame in enumerate(frames):
        instances = frame["instances"]
        if not isinstance(instances, list):
            raise UserError(f'frame {index}: "instances" must be a list')
        people_per_frame.append([_mmpose_instance(item, joint_order, index)
                                 for item in instances])
        names.append(frame.get("frame_id", index))
    return _frames_to_detections(people_per_frame, joint_order, names)


def _mmpose_instance(item, joint_order, index):
    count = len(FORMAT_NAMES[joint_order])
    if not isinstance(item, dict) or "keypoints" not in item:
        raise UserError(f'frame {index}: an instance without "keypoints"')
    points = keypoint_files.as_numeric_array(keypoint_files.json_numbers(item["keypoints"]))
    scores = item.get("keypoint_scores")
    scores = np.ones(count) if scores is None else keypoint_files.as_numeric_array(
        keypoint_files.json_numbers(scores))
    if points.shape != (count, 2) or scores.shape != (count,):
        raise UserError(f"frame {index}: keypoints of shape {points.shape} and scores of "
                        f"shape {scores.shape}; {joint_order} needs ({count}, 2) and ({count},)")
    score = item.get("bbox_score")
    score = float(np.mean(scores)) if not isinstance(score, (int, float)) else float(score)
    return np.concatenate([points, scores[:, None]], axis=1), score
