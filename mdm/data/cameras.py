"""Human3.6M cameras: reading and writing cameras.h5, rigid transforms and the
distorted pinhole projection (docs/faithfulness.md §1 "cameras.h5", "World to camera",
"Projection with distortion").
"""

import dataclasses
import os

import h5py
import numpy as np

from mdm.core.errors import UserError
from mdm.core.skeleton import CAMERA_NAMES

_CAMERA_DATASETS = ("R", "T", "f", "c", "k", "p", "Name")


@dataclasses.dataclass(frozen=True)
class Camera:
    """One calibrated camera. `R` maps world to camera axes: X_cam = R @ (X - T)."""

    R: np.ndarray  # (3, 3)
    T: np.ndarray  # (3,) camera centre in world millimetres
    f: np.ndarray  # (2,) focal lengths in pixels
    c: np.ndarray  # (2,) principal point in pixels
    k: np.ndarray  # (3,) radial distortion
    p: np.ndarray  # (2,) tangential distortion
    name: str  # e.g. "54138969"


def world_to_camera(points_world, camera):
    """`(..., 3)` world points to the camera frame: X_cam = R (X - T)."""
    return (points_world - camera.T) @ camera.R.T


def camera_to_world(points_camera, camera):
    """Inverse of `world_to_camera`: X = R^T X_cam + T."""
    return points_camera @ camera.R + camera.T


def project_to_pixels(points_camera, camera):
    """Distorted pinhole projection of `(..., 3)` camera-frame points to `(..., 2)` pixels.

    x = X[:2] / X[2]; r2 = |x|^2; radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3;
    tan = p1 x_y + p2 x_x; x_d = x (radial + tan) + [p2, p1] r2; pixel = f x_d + c.
    """
    xy = points_camera[..., :2] / points_camera[..., 2:3]
    r2 = np.sum(xy**2, axis=-1, keepdims=True)
    k1, k2, k3 = camera.k
    p1, p2 = camera.p
    radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tangential = p1 * xy[..., 1:2] + p2 * xy[..., 0:1]
    distorted = xy * (radial + tangential) + np.array([p2, p1]) * r2
    return camera.f * distorted + camera.c


def _decode_name(codes):
    # Names are stored as (8, 1) float64 character codes (shared/data/README.md).
    return "".join(chr(int(code)) for code in np.asarray(codes).ravel())


def _read_camera(group, path):
    missing = [name for name in _CAMERA_DATASETS if name not in group]
    if missing:
        raise UserError(f"{path}: group '{group.name}' lacks dataset(s) {', '.join(missing)}")
    try:
        values = {name: np.asarray(group[name][()], dtype=np.float64) for name in _CAMERA_DATASETS}
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"{path}: cannot read group '{group.name}' ({err})") from None
    expected = {"R": (3, 3), "T": (3, 1), "f": (2, 1), "c": (2, 1), "k": (3, 1), "p": (2, 1)}
    for name, shape in expected.items():
        if values[name].shape != shape:
            raise UserError(
                f"{path}: dataset '{group.name}/{name}' has shape {values[name].shape}, "
                f"expected {shape}"
            )
    return Camera(
        # cameras.h5 stores R transposed; the release used its transpose (docs/faithfulness.md §1).
        R=values["R"].T.copy(),
        T=values["T"].ravel(),
        f=values["f"].ravel(),
        c=values["c"].ravel(),
        k=values["k"].ravel(),
        p=values["p"].ravel(),
        name=_decode_name(values["Name"]),
    )


def load_cameras(path, subjects):
    """Read `{subject: [Camera x 4]}` (camera1..camera4) for `subjects` from cameras.h5."""
    if not os.path.isfile(path):
        raise UserError(
            f"cameras file not found: {path} (expected the 3d-pose-baseline cameras.h5 with "
            "groups subject<s>/camera<1..4>; set --cameras_path)"
        )
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"{path}: not a readable HDF5 file ({err})") from None
    cameras = {}
    with handle:
        for subject in subjects:
            cameras[subject] = []
            for index in range(1, len(CAMERA_NAMES) + 1):
                key = f"subject{subject}/camera{index}"
                if key not in handle:
                    raise UserError(f"{path}: group '{key}' is missing")
                cameras[subject].append(_read_camera(handle[key], path))
    return cameras


def save_cameras(path, cameras):
    """Write `{subject: [Camera x 4]}` in the cameras.h5 layout that `load_cameras` reads."""
    with h5py.File(path, "w") as handle:
        for subject, subject_cameras in cameras.items():
            for index, camera in enumerate(subject_cameras, start=1):
                group = handle.create_group(f"subject{subject}/camera{index}")
                group["R"] = camera.R.T.astype(np.float64)
                group["T"] = np.asarray(camera.T, np.float64).reshape(3, 1)
                group["f"] = np.asarray(camera.f, np.float64).reshape(2, 1)
                group["c"] = np.asarray(camera.c, np.float64).reshape(2, 1)
                group["k"] = np.asarray(camera.k, np.float64).reshape(3, 1)
                group["p"] = np.asarray(camera.p, np.float64).reshape(2, 1)
                group["Name"] = np.array([[float(ord(ch))] for ch in camera.name])


# Camera axes (x right, y down, z forward) to a z-up frame (x right, y forward, z up).
CAMERA_TO_UPRIGHT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def camera_to_upright(poses_camera):
    """Camera-frame `(..., 3)` points turned z-up: an upright view of the pose as the
    camera saw it, for drawing where no world frame is known (MPI-INF-3DHP's npz, a
    user's own keypoints)."""
    return np.asarray(poses_camera) @ CAMERA_TO_UPRIGHT.T
