"""Mapping 2D poses from any camera into the pixel frame the model was trained in.

The model's input normalisation (mdm.data.normalization) subtracts a mean and divides by
a std per pixel coordinate of the training set: Human3.6M's ~1000 x 1000 px images of a
subject 4-6 m away. A 1080p or 4K video, or a subject nearer the camera, gives poses far
outside that distribution. Each mode is one similarity map per frame, u' = scale u +
offset (README, "Keypoints from 2D detectors", measures them):

* "pose": each frame's torso length |Thorax - Hip| scaled to that of the training mean
  pose, its root moved to the training mean root;
* "video": one scale and offset for all frames (the median torso length and root
  position), so that motion across the image and towards the camera is kept;
* "focal": from the user's camera (focal length and principal point, pixels) to
  Human3.6M's mean camera: u' = (f_ref / f) (u - c) + c_ref. Exact when only the image
  size or resolution differs; a subject at another distance keeps its other size;
* "none": pixels as given.
"""

import numpy as np

from mdm.core.errors import UserError
from mdm.serve import keypoint_files

MODES = ("none", "pose", "video", "focal")
# Mean intrinsics of Human3.6M's four cameras (cameras.h5; the same for every subject).
H36M_FOCAL_PX = 1147.4
H36M_CENTRE_PX = np.array([514.0, 506.8])
_HIP = keypoint_files.INPUT_NAMES.index("Hip")
_THORAX = keypoint_files.INPUT_NAMES.index("Thorax")


def similarity(pixels, mean_2d, mode, focal_length=None, principal_point=None):
    """(scale (N,), offset (N, 2)) of the map u' = scale u + offset for (N, 16, 2) model-
    order pixels; `mean_2d` (16, 2) is the training mean pose (NormStats.mean_2d). Frames
    without a root or thorax get NaN in "pose" mode and are left out of "video"'s medians."""
    count = len(pixels)
    if mode == "none":
        return np.ones(count), np.zeros((count, 2))
    if mode == "focal":
        if focal_length is None or principal_point is None:
            raise UserError("the focal normalisation needs --focal_length and --image_size")
        scale = H36M_FOCAL_PX / float(focal_length)
        offset = H36M_CENTRE_PX - scale * np.asarray(principal_point, np.float64)
        return np.full(count, scale), np.tile(offset, (count, 1))
    if mode not in MODES:
        raise UserError(f"unknown camera normalisation {mode!r}: use one of {', '.join(MODES)}")
    roots, torso = pixels[:, _HIP], torso_length(pixels)
    reference = float(torso_length(np.asarray(mean_2d)[None])[0])
    if mode == "video":
        usable = np.isfinite(torso) & (torso > 0)
        if not usable.any():
            return np.full(count, np.nan), np.full((count, 2), np.nan)
        torso = np.full(count, np.median(torso[usable]))
        roots = np.tile(np.median(roots[usable], axis=0), (count, 1))
    scale = reference / np.where(torso > 0, torso, np.nan)
    return scale, mean_2d[_HIP] - scale[:, None] * roots


def torso_length(pixels):
    """(N,) |Thorax - Hip| in pixels of (N, 16, 2) model-order poses."""
    return np.linalg.norm(pixels[:, _THORAX] - pixels[:, _HIP], axis=-1)


def apply(pixels, scale, offset):
    """(N, 16, 2) pixels mapped by u' = scale u + offset (NaN stays NaN)."""
    return scale[:, None, None] * pixels + offset[:, None, :]
