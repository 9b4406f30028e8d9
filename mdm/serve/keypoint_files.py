"""Reading users' 2D keypoint files and writing the lifted hypotheses.

Input files hold pixels, one pose `(16, 2)` or a batch `(N, 16, 2)` (a row of 32 numbers
x0, y0, x1, y1, ... per pose is accepted too), in one of two joint orders:

* "h36m": the model's own input order, skeleton.H36M17_NAMES without Neck/Nose;
* "mpii": the stacked-hourglass / MPII order of skeleton.SH_NAMES (docs/faithfulness.md §1).

A missing joint is NaN (`null` in JSON, an empty field or `nan` in CSV). Anything that is
not a pose array in pixels is refused with a UserError naming the file and the problem.
"""

import csv
import json
import math
import os

import numpy as np

from mdm.core import skeleton
from mdm.core.errors import UserError

H36M = "h36m"
MPII = "mpii"
JOINT_ORDERS = (H36M, MPII)
INPUT_NAMES = tuple(skeleton.H36M17_NAMES[j] for j in skeleton.INPUT_JOINTS)
NUM_INPUT_JOINTS = len(INPUT_NAMES)
INPUT_SUFFIXES = (".npy", ".json", ".csv")
OUTPUT_SUFFIXES = (".npz", ".json")


def joint_names(joint_order):
    """The 16 joint names of a file in `joint_order`."""
    _check_order(joint_order)
    return INPUT_NAMES if joint_order == H36M else skeleton.SH_NAMES


def _check_order(joint_order):
    if joint_order not in JOINT_ORDERS:
        raise UserError(f"unknown joint order {joint_order!r}: use one of "
                        f"{', '.join(JOINT_ORDERS)}")


def to_model_order(keypoints, joint_order=H36M):
    """Any accepted array layout in `joint_order` -> (N, 16, 2) float64 pixels in the
    model's input order, NaN where a joint is missing."""
    _check_order(joint_order)
    poses = _as_pose_batch(as_numeric_array(keypoints))
    infinite = np.argwhere(np.isinf(poses))
    if len(infinite):
        pose, joint, _ = infinite[0]
        raise UserError(f"pose {pose}, joint {joint_names(joint_order)[joint]}: infinite "
                        "coordinate (give NaN for a missing joint)")
    return skeleton.sh_to_input(poses) if joint_order == MPII else poses


def as_numeric_array(keypoints):
    try:
        array = np.asarray(keypoints)
    except ValueError:
        raise UserError("keypoints are ragged: every pose needs 16 joints of (x, y)") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.floating)
                                     or np.issubdtype(array.dtype, np.integer)):
        raise UserError(f"keypoints must be numbers (pixels), got values of type {array.dtype}")
    return array.astype(np.float64)


def _as_pose_batch(array):
    """(16, 2), (N, 16, 2), (32,) or (N, 32) -> (N, 16, 2); anything else is refused."""
    shape = array.shape
    if array.size == 0:
        raise UserError(f"no keypoints (array of shape {shape})")
    if array.ndim == 1 and shape[0] == 2 * NUM_INPUT_JOINTS:
        return array.reshape(1, NUM_INPUT_JOINTS, 2)
    if array.ndim == 2 and shape[1] == 2 * NUM_INPUT_JOINTS:
        return array.reshape(-1, NUM_INPUT_JOINTS, 2)
    if array.ndim in (2, 3) and shape[-1] == 2 and shape[-2] != NUM_INPUT_JOINTS:
        raise UserError(f"{shape[-2]} joints per pose (shape {shape}); the model takes "
                        f"{NUM_INPUT_JOINTS}: {', '.join(INPUT_NAMES)} (h36m order) or the "
                        "stacked-hourglass/MPII order (--joint_order mpii)")
    if array.ndim in (2, 3) and shape[-2:] == (NUM_INPUT_JOINTS, 2):
        return array.reshape(-1, NUM_INPUT_JOINTS, 2)
    raise UserError(f"keypoints of shape {shape}: expected (16, 2) for one pose, (N, 16, 2) "
                    "for a batch, or 32 numbers x0, y0, x1, y1, ... per pose")


def read_keypoints(path):
    """(array, joint_order or None) from a .npy, .json or .csv file; the order is given
    only by a JSON object's "joint_order" field. Shape checks are `to_model_order`'s."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in INPUT_SUFFIXES:
        raise UserError(f"{path}: unknown input format {suffix or '(no suffix)'}; "
                        f"use {', '.join(INPUT_SUFFIXES)}")
    if not os.path.isfile(path):
        raise UserError(f"input file not found: {path}")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path}: the file is empty")
    reader = {".npy": _read_npy, ".json": _read_json, ".csv": _read_csv}[suffix]
    try:
        return reader(path)
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None


def _read_npy(path):
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise UserError(f"not a numeric .npy array ({err})") from None
    if not isinstance(array, np.ndarray):
        raise UserError("expected one array saved with numpy.save")
    return as_numeric_array(array), None


def _read_json(path):
    with open(path, encoding="utf-8") as handle:
        try:
            content = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"not valid JSON ({err})") from None
    joint_order = None
    if isinstance(content, dict):
        if "keypoints_2d" not in content:
            raise UserError('a JSON object needs a "keypoints_2d" field')
        joint_order = content.get("joint_order")
        if joint_order is not None:
            _check_order(joint_order)
            _check_names(content.get("joint_names"), joint_order)
        content = content["keypoints_2d"]
    return as_numeric_array(json_numbers(content)), joint_order


def _check_names(names, joint_order):
    if names is not None and tuple(names) != joint_names(joint_order):
        raise UserError(f'"joint_names" do not match the {joint_order} order '
                        f"({', '.join(joint_names(joint_order))})")


def json_numbers(value):
    """Nested lists of numbers with null as NaN; strings and booleans are refused (numpy
    would silently turn "3" or true into numbers)."""
    if isinstance(value, list):
        return [json_numbers(item) for item in value]
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{json.dumps(value)} is not a number (pixels; null for a missing joint)")
    return float(value)


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle), start=1)
                if not _is_blank_line(row) and not row[0].lstrip().startswith("#")]
    if rows and all(_is_label(field) for field in rows[0][1]):
        rows = rows[1:]  # a header line of column names
    if not rows:
        raise UserError("no keypoint rows")
    values = [[_csv_number(field, number, column) for column, field in enumerate(row, start=1)]
              for number, row in rows]
    widths = {len(row) for row in values}
    if len(widths) > 1:
        raise UserError(f"rows have different numbers of columns ({sorted(widths)})")
    array = np.array(values, np.float64)
    # Two columns are the (x, y) rows of one pose; 32 columns are one pose per row.
    return array, None


def _is_blank_line(row):
    """A line with no field at all (only spaces) is skipped; a line of empty fields
    separated by commas (`,`) is kept: it is a pose row or a (x, y) row whose values are
    missing, and dropping it would shift every joint after it."""
    return len(row) <= 1 and not "".join(row).strip()


def _is_label(field):
    text = field.strip()
    return bool(text) and text.lower() != "nan" and not _parses(text)


def _parses(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _csv_number(field, line, column):
    text = field.strip()
    if not text or text.lower() == "nan":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise UserError(f"line {line}, column {column}: {text!r} is not a number") from None


def check_output_path(path):
    """Refuse an output suffix we cannot write before any work is done; make the
    output's directory."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UserError(f"{path}: unknown output format {suffix or '(no suffix)'}; "
                        f"use {', '.join(OUTPUT_SUFFIXES)}")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UserError(f"{directory} is a file, not a directory for {path}")
    os.makedirs(directory, exist_ok=True)  # as --plot and --export make theirs


def write_hypotheses(path, arrays, metadata):
    """Write `arrays` (Hypotheses.as_arrays()) and `metadata` as .npz or .json."""
    check_output_path(path)
    try:
        if path.lower().endswith(".npz"):
            np.savez(path, metadata=np.array(json.dumps(metadata)), **arrays)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(_json_document(arrays, metadata), handle, allow_nan=False)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def _json_document(arrays, metadata):
    """One entry per input pose with its hypotheses, most probable first."""
    poses = []
    for n in range(len(arrays["poses_3d"])):
        flag = {}
        if "valid" in arrays:  # a detector's frames (mdm.serve.detector_lifting)
            flag = {"frame": str(arrays["frame"][n]), "valid": bool(arrays["valid"][n])}
        if flag.get("valid") is False:
            poses.append({"index": n, **flag, "problem": str(arrays["problem"][n]),
                          "hypotheses": []})
            continue
        hypotheses = [{"rank": rank + 1, "kernel": int(arrays["kernel_index"][n, rank]),
                       "weight": float(arrays["weights"][n, rank]),
                       "scale": float(arrays["scales"][n, rank]),
                       "joints_3d": arrays["poses_3d"][n, rank].tolist(),
                       "joint_std_mm": arrays["scales_mm"][n, rank].tolist()}
                      for rank in range(arrays["poses_3d"].shape[1])]
        entry = {"index": n, **flag, "hypotheses": hypotheses,
                 "missing_joints": [name for name, gone in zip(INPUT_NAMES, arrays["missing"][n])
                                    if gone]}
        if "radius_mm" in arrays:  # around the most probable hypothesis
            entry["radius_mm"] = arrays["radius_mm"][n].tolist()
        if "samples" in arrays:
            entry["samples"] = arrays["samples"][n].tolist()
        if "path_pose_3d" in arrays:  # python -m mdm.infer --select temporal
            entry["temporal_path"] = {"kernel": int(arrays["path_kernel"][n]),
                                      "weight": float(arrays["path_probability"][n]),
                                      "joints_3d": arrays["path_pose_3d"][n].tolist()}
            if "path_radius_mm" in arrays:
                entry["temporal_path"]["radius_mm"] = arrays["path_radius_mm"][n].tolist()
        poses.append(entry)
    return {**metadata, "joint_names": list(skeleton.H36M17_NAMES), "poses": poses}


def write_keypoints_json(path, keypoints, joint_order=H36M):
    """A pose file in the format `read_keypoints` reads: (16, 2) or (N, 16, 2) pixels."""
    keypoints = np.asarray(keypoints, np.float64)
    document = {"units": "pixels", "joint_order": joint_order,
                "joint_names": list(joint_names(joint_order)),
                "keypoints_2d": np.where(np.isnan(keypoints), None, keypoints).tolist()}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    return path


def synthetic_example(seed=0, action="Greeting", subject=9):
    """One (16, 2) pose in pixels, h36m order: frame 0 of a synthetic test-subject
    sequence (mdm.synthetic) seen by its first camera, rounded to 0.1 px."""
    from mdm.data import cameras
    from mdm.data.synthetic import generator  # only needed to regenerate examples/

    rng = np.random.default_rng([seed, subject])
    camera = generator.make_cameras(rng)[0]
    body = generator.make_body(rng, subject)
    world = generator.generate_sequence(rng, body, action, n_frames=1)[0]
    pixels = cameras.project_to_pixels(cameras.world_to_camera(world, camera), camera)
    return np.round(pixels[skeleton.INPUT_JOINTS], 1)


def write_example_pose(path="examples/pose_2d.json", seed=0):
    """Regenerate the example pose file shipped in examples/."""
    return write_keypoints_json(path, synthetic_example(seed))
