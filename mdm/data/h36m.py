"""Human3.6M in the 3d-pose-baseline layout (docs/faithfulness.md §1): 3D sequences, stacked-
hourglass detections and ground-truth projections, paired per (sequence, camera).

Public copies are incomplete, so nothing here asserts counts: a missing sequence or
camera file is a warning naming it, and 2D without 3D is skipped with a warning.
"""

import glob
import logging
import os

import h5py
import numpy as np

from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.data import cameras as cams
from mdm.data.containers import PoseSet, Stream

LOG = logging.getLogger(__name__)
SH_FINE_TUNED = "StackedHourglassFineTuned240"
SH_OFF_THE_SHELF = "StackedHourglass"
LAYOUT_HINT = (
    "expected the 3d-pose-baseline layout <data_dir>/cameras.h5, "
    "<data_dir>/S<n>/MyPoses/3D_positions/<sequence>.h5 and "
    "<data_dir>/S<n>/StackedHourglass[FineTuned240]/<sequence>.<camera>.h5 "
    "(Human3.6M from its authors, processed as in Martinez et al. 2017), or run "
    "'python -m mdm.synthetic --out <data_dir>' for the synthetic dataset"
)


def check_data_dir(data_dir, cameras_path):
    if not os.path.isdir(data_dir):
        raise UserError(f"data directory not found: {data_dir} ({LAYOUT_HINT})")
    if not os.path.isfile(cameras_path):
        raise UserError(f"cameras file not found: {cameras_path} ({LAYOUT_HINT})")


def define_actions(action):
    """'All' or one action name, as the release's --action (docs/faithfulness.md §1)."""
    if action == "All":
        return list(skeleton.ACTIONS)
    if action not in skeleton.ACTIONS:
        raise UserError(
            f"unknown --action '{action}'; choose All or one of {', '.join(skeleton.ACTIONS)}"
        )
    return [action]


def resolve_sh_folder(data_dir, subjects, sh_dir):
    """The detection folder: --sh_dir if given, else the fine-tuned one if present."""
    if sh_dir:
        return sh_dir
    for subject in subjects:
        if os.path.isdir(os.path.join(data_dir, f"S{subject}", SH_FINE_TUNED)):
            return SH_FINE_TUNED
    return SH_OFF_THE_SHELF


def belongs_to_action(name, action):
    """The release's rule: a prefix match, except that Sitting excludes SittingDown."""
    if action == "Sitting" and name.startswith("SittingDown"):
        return False
    return name.startswith(action)


def list_sequences(data_dir, subject, action):
    """Sorted 3D sequence names (without .h5) of one subject and action."""
    folder = os.path.join(data_dir, f"S{subject}", "MyPoses", "3D_positions")
    names = [os.path.basename(path)[:-3] for path in glob.glob(os.path.join(folder, "*.h5"))]
    return sorted(name for name in names if belongs_to_action(name, action))


def _read_dataset(path, dataset):
    try:
        with h5py.File(path, "r") as handle:
            if dataset not in handle:
                found = ", ".join(handle.keys()) or "nothing"
                raise UserError(f"{path}: no dataset '{dataset}' (found {found})")
            return np.asarray(handle[dataset][()], dtype=np.float64)
    except OSError as err:
        raise UserError(f"{path}: not a readable HDF5 file ({err})") from None


def read_3d_sequence(path):
    """`(N, 17, 3)` world-frame millimetres from a `3D_positions` (96, N) file."""
    raw = _read_dataset(path, "3D_positions")
    if raw.ndim != 2 or raw.shape[0] != 3 * skeleton.NUM_JOINTS_32 or raw.shape[1] == 0:
        raise UserError(f"{path}: dataset '3D_positions' has shape {raw.shape}, expected (96, N>0)")
    if not np.all(np.isfinite(raw)):
        raise UserError(f"{path}: dataset '3D_positions' contains NaN or infinite values")
    return skeleton.from_32(raw.T.reshape(-1, skeleton.NUM_JOINTS_32, 3))


def read_detections(path, num_frames):
    """`(N, 16, 2)` pixel detections in model input order from an SH `poses` file."""
    raw = _read_dataset(path, "poses")
    if raw.ndim != 3 or raw.shape[1:] != (len(skeleton.SH_NAMES), 2):
        raise UserError(f"{path}: dataset 'poses' has shape {raw.shape}, expected (N, 16, 2)")
    if raw.shape[0] != num_frames:
        raise UserError(
            f"{path}: {raw.shape[0]} frames of detections but its 3D sequence has {num_frames}"
        )
    if not np.all(np.isfinite(raw)):
        raise UserError(f"{path}: dataset 'poses' contains NaN or infinite values")
    return skeleton.sh_to_input(raw)


def detection_path(data_dir, subject, sh_folder, sequence, camera_name):
    name = f"{sequence.replace(' ', '_')}.{camera_name}.h5"
    return os.path.join(data_dir, f"S{subject}", sh_folder, name)


def _warn_unpaired_detections(data_dir, subject, action, sh_folder, sequences):
    folder = os.path.join(data_dir, f"S{subject}", sh_folder)
    for path in sorted(glob.glob(os.path.join(folder, "*.h5"))):
        sequence = os.path.basename(path).split(".")[0].replace("_", " ")
        if belongs_to_action(sequence, action) and sequence not in sequences:
            LOG.warning("skipping %s: it has 2D detections but no 3D sequence", path)


class _Accumulator:
    """Collects per-stream arrays and concatenates them once."""

    def __init__(self):
        self.parts = {"poses_2d": [], "poses_3d": [], "roots": [], "stream_index": [],
                      "frame_index": []}
        self.streams = []

    def add(self, stream, poses_2d, poses_3d_frame):
        count = len(poses_2d)
        roots = poses_3d_frame[:, skeleton.ROOT]
        self.parts["poses_2d"].append(poses_2d.astype(np.float32))
        self.parts["poses_3d"].append((poses_3d_frame - roots[:, None]).astype(np.float32))
        self.parts["roots"].append(roots.astype(np.float32))
        self.parts["stream_index"].append(np.full(count, len(self.streams), np.int32))
        self.parts["frame_index"].append(np.arange(count, dtype=np.int32))
        self.streams.append(stream)

    def build(self):
        if not self.streams:
            empty = {"poses_2d": (0, 16, 2), "poses_3d": (0, 17, 3), "roots": (0, 3)}
            arrays = {name: np.zeros(shape, np.float32) for name, shape in empty.items()}
            arrays.update(stream_index=np.zeros(0, np.int32), frame_index=np.zeros(0, np.int32))
            return PoseSet(streams=[], **arrays)
        arrays = {name: np.concatenate(parts) for name, parts in self.parts.items()}
        return PoseSet(streams=list(self.streams), **arrays)


def _add_sequence(acc, data_dir, subject, action, sequence, subject_cameras, options):
    path = os.path.join(data_dir, f"S{subject}", "MyPoses", "3D_positions", sequence + ".h5")
    world = read_3d_sequence(path)
    for index, camera in enumerate(subject_cameras):
        in_camera = cams.world_to_camera(world, camera)
        if options["use_sh"]:
            sh_path = detection_path(data_dir, subject, options["sh_folder"], sequence, camera.name)
            if not os.path.isfile(sh_path):
                LOG.warning("missing detections %s: stream skipped", sh_path)
                continue
            poses_2d = read_detections(sh_path, len(world))
        else:
            poses_2d = cams.project_to_pixels(in_camera, camera)[:, skeleton.INPUT_JOINTS]
        target = in_camera if options["camera_frame"] else world
        acc.add(Stream(subject, action, sequence, index), poses_2d, target)


def load_split(data_dir, subjects, actions, cameras_by_subject, use_sh, sh_folder, camera_frame):
    """Every (frame, camera) sample of `subjects` x `actions` as one PoseSet."""
    acc = _Accumulator()
    options = {"use_sh": use_sh, "sh_folder": sh_folder, "camera_frame": camera_frame}
    for subject in subjects:
        if not os.path.isdir(os.path.join(data_dir, f"S{subject}")):
            LOG.warning("subject S%d not found under %s: skipped", subject, data_dir)
            continue
        for action in actions:
            sequences = list_sequences(data_dir, subject, action)
            if not sequences:
                LOG.warning("S%d %s: no 3D sequences found", subject, action)
            for sequence in sequences:
                _add_sequence(acc, data_dir, subject, action, sequence,
                              cameras_by_subject[subject], options)
            if use_sh:
                _warn_unpaired_detections(data_dir, subject, action, sh_folder, sequences)
    return acc.build()


def present_subjects(data_dir, subjects):
    return [s for s in subjects if os.path.isdir(os.path.join(data_dir, f"S{s}"))]
