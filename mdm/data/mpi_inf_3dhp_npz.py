"""The MPI-INF-3DHP npz (written by preprocessing.py, see mdm.data.mpi_inf_3dhp_preprocess) as the
model's data: `mdm.data.containers.PoseSet`s in Human3.6M joint order, so that normalisation, the
tf.data pipelines, training and evaluation run unchanged (docs/faithfulness.md §8).

* 2D input: `part`'s pixels at the 16 input joints (skeleton.INPUT_JOINTS order).
* 3D: `S` in metres -> mm, 17 H36M joints by the name table skeleton.H36M_FROM_J24
  (Neck/Nose the mean of its neighbours), re-centred on Hip; camera frame of each view.
* Streams: a training frame `S<s>/Seq<q>/imageFrames/video_<c>/...` is
  Stream(s, "Seq<q>", "S<s> Seq<q>", c); a test frame `.../TS<t>/...` is
  Stream(t, <scene of TS<t>>, "TS<t>", 0), so per-"action" results are per scene.
"""

import logging
import os
import re
import zipfile

import numpy as np

from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.data.containers import PoseSet, Stream

LOG = logging.getLogger(__name__)
DATASET_NAME = "mpi_inf_3dhp"
# Scenes of the test sequences: green screen, studio without it, outdoor.
SCENES = {1: "GS", 2: "GS", 3: "noGS", 4: "noGS", 5: "Outdoor", 6: "Outdoor"}
SCENE_ORDER = ("GS", "noGS", "Outdoor")
_TRAIN_NAME = re.compile(r"S(\d+)/Seq(\d+)/imageFrames/video_(\d+)/frame_(\d+)\.jpg$")
_TEST_NAME = re.compile(r"TS(\d+)/imageSequence/img_(\d+)\.jpg$")
_SHAPES = {"part": (len(skeleton.J24_NAMES), 3), "S": (len(skeleton.J24_NAMES), 4)}


def read_npz(path):
    """{imgname, part, S} of an npz in the format of mdm.data.mpi_inf_3dhp_preprocess, validated."""
    if not os.path.isfile(path):
        raise UserError(f"npz file not found: {path} (write it with preprocessing.py)")
    try:
        with np.load(path, allow_pickle=False) as handle:
            missing = [key for key in ("imgname", "part", "S") if key not in handle.files]
            if missing:
                raise UserError(f"{path}: no array(s) {', '.join(missing)} (found "
                                f"{', '.join(handle.files) or 'nothing'})")
            arrays = {key: handle[key] for key in ("imgname", "part", "S")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: not a readable npz file ({err})") from None
    count = len(arrays["imgname"])
    for key, tail in _SHAPES.items():
        if arrays[key].shape != (count,) + tail:
            raise UserError(f"{path}: '{key}' has shape {arrays[key].shape}, expected "
                            f"{(count,) + tail}")
        if not np.all(np.isfinite(arrays[key])):
            raise UserError(f"{path}: '{key}' contains NaN or infinite values")
    return arrays


def _parse_name(path, name):
    """(Stream, 0-based frame) of one imgname."""
    match = _TRAIN_NAME.search(name)
    if match:
        subject, sequence, camera, frame = (int(group) for group in match.groups())
        stream = Stream(subject, f"Seq{sequence}", f"S{subject} Seq{sequence}", camera)
        return stream, frame - 1
    match = _TEST_NAME.search(name)
    if match and int(match.group(1)) in SCENES:
        sequence, frame = int(match.group(1)), int(match.group(2))
        return Stream(sequence, SCENES[sequence], f"TS{sequence}", 0), frame - 1
    raise UserError(f"{path}: imgname '{name}' is neither S<s>/Seq<q>/imageFrames/video_<c>/"
                    "frame_<n>.jpg nor .../TS<1..6>/imageSequence/img_<n>.jpg")


def _streams(path, names):
    parsed = [_parse_name(path, str(name)) for name in names]
    streams = sorted({stream for stream, _ in parsed},
                     key=lambda s: (s.subject, s.sequence, s.camera))
    index_of = {stream: index for index, stream in enumerate(streams)}
    stream_index = np.array([index_of[stream] for stream, _ in parsed], np.int32)
    frame_index = np.array([frame for _, frame in parsed], np.int32)
    return streams, stream_index, frame_index


def visible_rows(path, arrays):
    """Rows whose joints used by the H36M mapping are all visible, in part and S."""
    used = skeleton.j24_joints_used()
    visible = np.all(arrays["part"][:, used, 2] > 0, axis=1) & np.all(
        arrays["S"][:, used, 3] > 0, axis=1)
    if not visible.all():
        LOG.warning("%s: %d of %d frames lack a joint the model needs: skipped", path,
                    int((~visible).sum()), len(visible))
    return visible


def pose_set_from_npz(path):
    """The npz at `path` as a PoseSet (2D px, 3D mm root-centred, H36M joint order)."""
    arrays = read_npz(path)
    keep = visible_rows(path, arrays)
    if not keep.any():
        raise UserError(f"{path}: no frame has all the joints the model needs")
    names = arrays["imgname"][keep]
    poses_2d = skeleton.j24_to_h36m(arrays["part"][keep, :, :2].astype(np.float64))
    poses_3d = skeleton.j24_to_h36m(1000.0 * arrays["S"][keep, :, :3].astype(np.float64))
    poses_3d -= poses_3d[:, skeleton.ROOT:skeleton.ROOT + 1]
    streams, stream_index, frame_index = _streams(path, names)
    return PoseSet(poses_2d=poses_2d[:, skeleton.INPUT_JOINTS].astype(np.float32),
                   poses_3d=poses_3d.astype(np.float32),
                   roots=np.zeros((len(names), 3), np.float32), stream_index=stream_index,
                   frame_index=frame_index, streams=streams)


def empty_pose_set():
    return PoseSet(poses_2d=np.zeros((0, len(skeleton.INPUT_JOINTS), 2), np.float32),
                   poses_3d=np.zeros((0, skeleton.NUM_JOINTS, 3), np.float32),
                   roots=np.zeros((0, 3), np.float32), stream_index=np.zeros(0, np.int32),
                   frame_index=np.zeros(0, np.int32), streams=[])


def check_mpi_config(config, need_train=True):
    """One clear line for MPI-INF-3DHP options that cannot work."""
    if config.dataset not in ("h36m", DATASET_NAME):
        raise UserError(f"--dataset must be h36m or {DATASET_NAME} (got {config.dataset!r})")
    if need_train and not config.mpi_train_npz:
        raise UserError("--dataset mpi_inf_3dhp trains on --mpi_train_npz "
                        "(write it with: python preprocessing.py --mode train ...)")
    if not config.mpi_test_npz:
        raise UserError("--dataset mpi_inf_3dhp tests on --mpi_test_npz "
                        "(write it with: python preprocessing.py --mode test ...)")
    if not config.camera_frame:
        raise UserError("MPI-INF-3DHP poses exist in the camera frame only: "
                        "use --camera_frame True")


def load_mpi_splits(config, need_train=True):
    """(train PoseSet, test PoseSet) from config.mpi_train_npz and config.mpi_test_npz."""
    check_mpi_config(config, need_train)
    LOG.info("2D input: the MPI-INF-3DHP 2D annotations (--use_sh does not apply)")
    train = pose_set_from_npz(config.mpi_train_npz) if need_train else empty_pose_set()
    test = pose_set_from_npz(config.mpi_test_npz)
    LOG.info("MPI-INF-3DHP: %d training frames from %s, %d test frames from %s", len(train),
             config.mpi_train_npz or "-", len(test), config.mpi_test_npz)
    return train, test

