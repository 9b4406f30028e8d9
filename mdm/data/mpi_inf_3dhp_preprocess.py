"""MPI-INF-3DHP preprocessing: the raw dataset to the npz that the original project's
notebook consumed (docs/faithfulness.md §8; formats in the MPI-INF-3DHP issue).

The npz holds, per kept frame: `imgname` (N,), `center` (N, 2), `scale` (N,), `part`
(N, 24, 3) pixel x, y, visibility and `S` (N, 24, 4) root-relative x, y, z in metres and
visibility, in the common 24-joint layout (`skeleton.J24_NAMES`). Raw joints go to the
npz slot of the same name; the 17 joints both raw sets carry are filled.

* Training: subjects S1-S8, sequences Seq1-2, cameras 0, 1, 2, 4, 5, 6, 7, 8 by default;
  every `subsample`-th frame (10 by default); 3D from `annot3` (the true skeleton in the
  camera frame).
* Test: TS1-TS6, valid frames only; 3D from `univ_annot3`, the height-normalised skeleton
  that the benchmark's 3DPCK is defined on.
* Either way a frame is dropped when one of its filled joints lies outside the image.
"""

import dataclasses
import os

import numpy as np

from mdm.core import skeleton
from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError
from mdm.data import mpi_inf_3dhp_raw

TRAIN_SUBJECTS = tuple(range(1, 9))
TRAIN_SEQUENCES = (1, 2)
DEFAULT_TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
TEST_FOLDER = "mpi_inf_3dhp_test_set"
MODES = ("train", "test")
DEFAULT_SUBSAMPLE = {"train": 10, "test": 1}
NPZ_FILE_NAMES = {"train": "mpi_inf_3dhp_train.npz", "test": "mpi_inf_3dhp_test.npz"}
# The common npz convention: scale = 1.2 x the longer side of the joints' box / 200 px.
BBOX_MARGIN = 1.2
BBOX_UNIT_PX = 200.0
NPZ_KEYS = ("imgname", "center", "scale", "part", "S")


@dataclasses.dataclass(frozen=True)
class FrameJob:
    """Frames of one training video to extract (0-based indices) into `frame_dir`."""

    video_path: str
    frame_dir: str
    frames: np.ndarray


def to_npz_arrays(joints_2d, joints_3d_mm, mpi_names):
    """(n, J, 2) px and (n, J, 3) mm in the raw order `mpi_names` -> part, S, center, scale
    in the 24-joint layout (3D root-relative, metres)."""
    rows, slots = skeleton.mpi_to_j24_indices(mpi_names)
    count, num_slots = len(joints_2d), len(skeleton.J24_NAMES)
    part = np.zeros((count, num_slots, 3))
    part[:, slots, :2] = joints_2d[:, rows]
    part[:, slots, 2] = 1.0
    pelvis = joints_3d_mm[:, mpi_names.index("pelvis")]
    poses_3d = np.zeros((count, num_slots, 4))
    poses_3d[:, slots, :3] = (joints_3d_mm[:, rows] - pelvis[:, None]) / 1000.0
    poses_3d[:, slots, 3] = 1.0
    low, high = joints_2d[:, rows].min(axis=1), joints_2d[:, rows].max(axis=1)
    return {"center": (low + high) / 2.0,
            "scale": BBOX_MARGIN * (high - low).max(axis=1) / BBOX_UNIT_PX,
            "part": part, "S": poses_3d}


def kept_frames(joints_2d, mpi_names, image_size, subsample, valid=None):
    """0-based indices of every `subsample`-th frame that is valid and has all the joints
    the npz keeps inside the (width, height) image."""
    rows, _ = skeleton.mpi_to_j24_indices(mpi_names)
    used = joints_2d[:, rows]
    width, height = image_size
    inside = np.all((used[..., 0] >= 0) & (used[..., 0] < width)
                    & (used[..., 1] >= 0) & (used[..., 1] < height), axis=1)
    if valid is not None:
        inside &= valid
    candidates = np.zeros(len(joints_2d), bool)
    candidates[::subsample] = True
    return np.flatnonzero(candidates & inside)


def _concatenate(parts):
    if not parts:
        return None
    return {key: np.concatenate([part[key] for part in parts]) for key in NPZ_KEYS}


def _with_names(arrays, names):
    arrays["imgname"] = np.array(names, dtype=str)
    return arrays


def _train_sequence(root, subject, sequence, cameras, subsample):
    folder = os.path.join(root, f"S{subject}", f"Seq{sequence}")
    if not os.path.isdir(folder):
        raise UserError(f"training sequence folder not found: {folder} (expected "
                        "<dataset_path>/S<1..8>/Seq<1,2>/; --subjects selects a subset)")
    calibration_path = os.path.join(folder, "camera.calibration.txt")
    calibration = mpi_inf_3dhp_raw.read_calibration(calibration_path)
    absent = [camera for camera in cameras if camera >= len(calibration)]
    if absent:
        raise UserError(f"{calibration_path}: {len(calibration)} cameras, camera(s) {absent} "
                        "requested")
    annotations = mpi_inf_3dhp_raw.read_train_annotations(os.path.join(folder, "annot.mat"), cameras)
    parts, jobs = [], []
    for camera in cameras:
        ann = annotations[camera]
        keep = kept_frames(ann.annot2, skeleton.MPI28_NAMES, calibration[camera].size,
                           subsample)
        names = [f"S{subject}/Seq{sequence}/imageFrames/video_{camera}/frame_{i + 1:06d}.jpg"
                 for i in keep]
        parts.append(_with_names(to_npz_arrays(ann.annot2[keep], ann.annot3[keep],
                                               skeleton.MPI28_NAMES), names))
        jobs.append(FrameJob(os.path.join(folder, "imageSequence", f"video_{camera}.avi"),
                             os.path.join(folder, "imageFrames", f"video_{camera}"), keep))
    return parts, jobs


def preprocess_train(root, subjects=TRAIN_SUBJECTS, cameras=DEFAULT_TRAIN_CAMERAS,
                     subsample=DEFAULT_SUBSAMPLE["train"]):
    """(npz arrays, [FrameJob]) of the training set under `root`."""
    parts, jobs = [], []
    for subject in subjects:
        for sequence in TRAIN_SEQUENCES:
            new_parts, new_jobs = _train_sequence(root, subject, sequence, cameras, subsample)
            parts += new_parts
            jobs += new_jobs
    return _concatenate(parts), jobs


def locate_test_folder(root):
    """<root>/mpi_inf_3dhp_test_set, or `root` itself when it holds TS1..TS6."""
    nested = os.path.join(root, TEST_FOLDER)
    if os.path.isdir(nested):
        return nested
    if os.path.isdir(os.path.join(root, "TS1")):
        return root
    raise UserError(f"test set folder not found: {nested} (expected "
                    f"<dataset_path>/{TEST_FOLDER}/TS<1..6>/annot_data.mat)")


def preprocess_test(root, subsample=DEFAULT_SUBSAMPLE["test"]):
    """npz arrays of the test set TS1-TS6 under `root` (valid frames only)."""
    folder = locate_test_folder(root)
    parts = []
    for sequence, image_size in mpi_inf_3dhp_raw.TEST_IMAGE_SIZES.items():
        path = os.path.join(folder, f"TS{sequence}", "annot_data.mat")
        if not os.path.isfile(path):
            raise UserError(f"test annotation file not found: {path}")
        ann = mpi_inf_3dhp_raw.read_test_annotations(path)
        keep = kept_frames(ann.annot2, skeleton.MPI17_NAMES, image_size, subsample, ann.valid)
        names = [f"{TEST_FOLDER}/TS{sequence}/imageSequence/img_{i + 1:06d}.jpg" for i in keep]
        parts.append(_with_names(to_npz_arrays(ann.annot2[keep], ann.univ_annot3[keep],
                                               skeleton.MPI17_NAMES), names))
    return _concatenate(parts)


def write_npz(path, arrays):
    """Write the npz atomically (a crash never leaves half a file under `path`)."""
    with atomic_write(path, "wb") as stream:
        np.savez(stream, imgname=arrays["imgname"],
                 center=arrays["center"].astype(np.float32),
                 scale=arrays["scale"].astype(np.float32),
                 part=arrays["part"].astype(np.float32), S=arrays["S"].astype(np.float32))


def output_path(out_path, mode):
    """`out_path` itself when it names an .npz file, else the mode's file inside it."""
    if out_path.endswith(".npz"):
        return out_path
    return os.path.join(out_path, NPZ_FILE_NAMES[mode])


def _check_options(dataset_path, mode, subsample, subjects, cameras):
    if mode not in MODES:
        raise UserError(f"--mode must be train or test (got {mode!r})")
    if not os.path.isdir(dataset_path):
        raise UserError(f"dataset folder not found: {dataset_path} (give --dataset_path, "
                        "the folder holding S1..S8 and mpi_inf_3dhp_test_set)")
    if subsample < 1:
        raise UserError(f"--subsample must be at least 1 (got {subsample})")
    bad_subjects = sorted(set(subjects) - set(TRAIN_SUBJECTS))
    if bad_subjects or not subjects:
        raise UserError(f"--subjects must be among 1..8 (got {list(subjects)})")
    bad_cameras = sorted(c for c in cameras if not 0 <= c < mpi_inf_3dhp_raw.NUM_TRAIN_CAMERAS)
    if bad_cameras or not cameras:
        raise UserError(f"--cameras must be among 0..13 (got {list(cameras)})")


def preprocess(dataset_path, out_path, mode, subsample=None, subjects=TRAIN_SUBJECTS,
               cameras=DEFAULT_TRAIN_CAMERAS, extract_frames=False):
    """Raw dataset -> npz; returns (npz path, number of frames written)."""
    subsample = DEFAULT_SUBSAMPLE.get(mode, 1) if subsample is None else subsample
    _check_options(dataset_path, mode, subsample, subjects, cameras)
    if mode == "train":
        arrays, jobs = preprocess_train(dataset_path, subjects, cameras, subsample)
    else:
        arrays, jobs = preprocess_test(dataset_path, subsample), []
    if arrays is None or len(arrays["imgname"]) == 0:
        raise UserError(f"no frame of {dataset_path} kept: every frame is invalid or has a "
                        "joint outside the image")
    if extract_frames:
        from mdm.data import mpi_inf_3dhp_frames  # decoding videos needs the optional OpenCV
        for job in jobs:
            mpi_inf_3dhp_frames.extract_frames(job.video_path, job.frame_dir, job.frames)
    path = output_path(out_path, mode)
    write_npz(path, arrays)
    return path, len(arrays["imgname"])
