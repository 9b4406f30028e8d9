"""Readers of the raw MPI-INF-3DHP files, written from the format facts of the
MPI-INF-3DHP issue (docs/faithfulness.md §8), with one clear message naming the file for every
malformed input.

* Training set, per sequence: `annot.mat` (MATLAB v5, scipy.io.loadmat) with cell arrays
  `annot2`, `annot3`, `univ_annot3`, one cell per camera (0..13), each cell
  `(n_frames, 28 * 2)` pixels or `(n_frames, 28 * 3)` mm, joint-major (x0, y0, x1, ...);
  and `camera.calibration.txt`: a header line, then per camera the lines name, sensor,
  size, animated, intrinsic (row-major 4x4), extrinsic (row-major 4x4 [R|T], T in mm),
  radial.
* Test set, per sequence: `annot_data.mat` (MATLAB v7.3 = HDF5, h5py). MATLAB writes
  column-major, so its 2x17x1xN `annot2` reads in h5py as `(N, 1, 17, 2)`; likewise
  `annot3` / `univ_annot3` `(N, 1, 17, 3)` mm and `valid_frame` `(N, 1)`.
"""

import dataclasses

import h5py
import numpy as np
import scipy.io

from mdm.core.errors import UserError
from mdm.core.skeleton import MPI17_NAMES, MPI28_NAMES

NUM_TRAIN_CAMERAS = 14
# Image (width, height): the 14 studio training cameras and the studio test sequences TS1-4
# at 2048x2048, the outdoor TS5-6 at 1920x1080.
TRAIN_IMAGE_SIZE = (2048, 2048)
TEST_IMAGE_SIZES = {1: (2048, 2048), 2: (2048, 2048), 3: (2048, 2048), 4: (2048, 2048),
                    5: (1920, 1080), 6: (1920, 1080)}
_CALIBRATION_KEYS = ("name", "size", "intrinsic", "extrinsic")
_MAT_READ_ERRORS = (scipy.io.matlab.MatReadError, ValueError, OSError, TypeError, EOFError,
                    UnicodeDecodeError, IndexError, KeyError)


@dataclasses.dataclass(frozen=True)
class CalibratedCamera:
    """One camera of camera.calibration.txt: X_cam = R X_world + T (mm)."""

    name: str
    size: tuple  # (width, height) pixels
    K: np.ndarray  # (3, 3) intrinsics
    R: np.ndarray  # (3, 3)
    T: np.ndarray  # (3,) mm


@dataclasses.dataclass(frozen=True)
class CameraAnnotations:
    """One camera's annotations of a training sequence, frame-aligned."""

    annot2: np.ndarray  # (n, 28, 2) pixels
    annot3: np.ndarray  # (n, 28, 3) mm, camera frame
    univ_annot3: np.ndarray  # (n, 28, 3) mm, the universal (height-normalised) skeleton


@dataclasses.dataclass(frozen=True)
class AnnotData:
    """A test sequence TS<k> (17 joints, MPI17_NAMES order)."""

    annot2: np.ndarray  # (N, 17, 2) pixels
    annot3: np.ndarray  # (N, 17, 3) mm, camera frame
    univ_annot3: np.ndarray  # (N, 17, 3) mm
    valid: np.ndarray  # (N,) bool


def _numbers(path, camera, key, words, count):
    try:
        values = np.array([float(word) for word in words])
    except ValueError:
        raise UserError(f"{path}: camera {camera}: '{key}' holds a non-number") from None
    if values.size != count:
        raise UserError(f"{path}: camera {camera}: '{key}' has {values.size} numbers, "
                        f"expected {count}")
    return values


def _calibration_blocks(path, lines):
    """{key: words} per camera: a camera's block starts at its 'name' line."""
    blocks = []
    for line in lines[1:]:  # the first line is the file's header
        words = line.split()
        if not words:
            continue
        if words[0] == "name":
            blocks.append({})
        elif not blocks:
            raise UserError(f"{path}: '{words[0]}' before the first 'name' line")
        blocks[-1][words[0]] = words[1:]
    return blocks


def _camera_from_block(path, block):
    missing = [key for key in _CALIBRATION_KEYS if key not in block]
    name = " ".join(block.get("name", ["?"]))
    if missing:
        raise UserError(f"{path}: camera {name} lacks {', '.join(missing)}")
    size = _numbers(path, name, "size", block["size"], 2)
    intrinsic = _numbers(path, name, "intrinsic", block["intrinsic"], 16).reshape(4, 4)
    extrinsic = _numbers(path, name, "extrinsic", block["extrinsic"], 16).reshape(4, 4)
    return CalibratedCamera(name=name, size=(int(size[0]), int(size[1])),
                            K=intrinsic[:3, :3], R=extrinsic[:3, :3], T=extrinsic[:3, 3])


def read_calibration(path):
    """The cameras of a `camera.calibration.txt`, in file order (index = camera id)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise UserError(f"calibration file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the calibration file ({err})") from None
    cameras = [_camera_from_block(path, block) for block in _calibration_blocks(path, lines)]
    if not cameras:
        raise UserError(f"{path}: no camera found (expected a header line, then 7 lines "
                        "per camera starting with 'name')")
    return cameras


def _load_v5(path):
    try:
        return scipy.io.loadmat(path)
    except FileNotFoundError:
        raise UserError(f"annotation file not found: {path}") from None
    except NotImplementedError:  # scipy's answer to a v7.3 (HDF5) file
        raise UserError(f"{path}: is a MATLAB v7.3 file; expected the MATLAB v5 annot.mat "
                        "of the training set") from None
    except _MAT_READ_ERRORS as err:
        raise UserError(f"{path}: not a readable MATLAB v5 file ({err})") from None


def _camera_cells(path, mat, key, camera_ids):
    if key not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "nothing"
        raise UserError(f"{path}: no variable '{key}' (found {found})")
    cells = np.asarray(mat[key])
    if cells.dtype != object:
        raise UserError(f"{path}: '{key}' is not a cell array (one cell per camera)")
    cells = cells.ravel()
    missing = [c for c in camera_ids if c >= len(cells)]
    if missing:
        raise UserError(f"{path}: '{key}' has {len(cells)} camera cells; camera(s) "
                        f"{missing} requested")
    return {c: cells[c] for c in camera_ids}


def _cell_joints(path, key, camera, cell, dims):
    raw = np.asarray(cell)
    width = len(MPI28_NAMES) * dims
    if not np.issubdtype(raw.dtype, np.number) or raw.ndim != 2 or raw.shape[1] != width:
        raise UserError(f"{path}: '{key}' camera {camera} has shape {raw.shape} "
                        f"({raw.dtype}), expected (n_frames, {width}) numbers")
    array = raw.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise UserError(f"{path}: '{key}' camera {camera} contains NaN or infinite values")
    return array.reshape(len(array), len(MPI28_NAMES), dims)


def read_train_annotations(path, camera_ids):
    """{camera: CameraAnnotations} of one training sequence's annot.mat."""
    mat = _load_v5(path)
    cells = {key: _camera_cells(path, mat, key, camera_ids)
             for key in ("annot2", "annot3", "univ_annot3")}
    result = {}
    for camera in camera_ids:
        arrays = {key: _cell_joints(path, key, camera, cells[key][camera], 2 if key == "annot2"
                                    else 3) for key in cells}
        lengths = {key: len(array) for key, array in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise UserError(f"{path}: camera {camera} has different frame counts {lengths}")
        result[camera] = CameraAnnotations(**arrays)
    return result


def _dataset(path, handle, key, tail):
    if key not in handle:
        found = ", ".join(handle.keys()) or "nothing"
        raise UserError(f"{path}: no dataset '{key}' (found {found})")
    try:
        array = np.asarray(handle[key][()], dtype=np.float64)
    except (OSError, TypeError, ValueError, AttributeError) as err:
        raise UserError(f"{path}: cannot read '{key}' ({err})") from None
    if array.ndim != 1 + len(tail) or array.shape[1:] != tail:
        raise UserError(f"{path}: '{key}' has shape {array.shape}, expected (N, "
                        f"{', '.join(str(d) for d in tail)})")
    return array


def _joints_17(path, handle, key, dims):
    array = _dataset(path, handle, key, (1, len(MPI17_NAMES), dims))[:, 0]
    if not np.all(np.isfinite(array)):
        raise UserError(f"{path}: '{key}' contains NaN or infinite values")
    return array


def read_test_annotations(path):
    """AnnotData of one test sequence's annot_data.mat (MATLAB v7.3)."""
    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError:
        raise UserError(f"annotation file not found: {path}") from None
    except OSError as err:
        raise UserError(f"{path}: not a MATLAB v7.3 (HDF5) file ({err}); expected the test "
                        "set's annot_data.mat") from None
    with handle:
        annot2 = _joints_17(path, handle, "annot2", 2)
        annot3 = _joints_17(path, handle, "annot3", 3)
        univ = _joints_17(path, handle, "univ_annot3", 3)
        valid = _dataset(path, handle, "valid_frame", (1,))[:, 0]
    counts = {len(annot2), len(annot3), len(univ), len(valid)}
    if len(counts) != 1:
        raise UserError(f"{path}: annot2, annot3, univ_annot3 and valid_frame have different "
                        f"frame counts ({len(annot2)}, {len(annot3)}, {len(univ)}, {len(valid)})")
    return AnnotData(annot2=annot2, annot3=annot3, univ_annot3=univ, valid=valid > 0.5)
