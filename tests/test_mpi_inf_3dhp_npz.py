"""The npz as PoseSets (mdm.data.mpi_inf_3dhp_npz): joint mapping in mm, streams and scenes from
imgname, the dataset dispatch of mdm.data.splits, and one clear error per bad npz or flag."""

import logging
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core import skeleton
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data import mpi_inf_3dhp_npz, splits
from mdm.data.cameras import camera_to_upright

NAMES = [
    "S2/Seq1/imageFrames/video_4/frame_000011.jpg",
    "S2/Seq1/imageFrames/video_0/frame_000001.jpg",
    "mpi_inf_3dhp_test_set/TS3/imageSequence/img_000005.jpg",
    "mpi_inf_3dhp_test_set/TS6/imageSequence/img_000002.jpg",
]
KEPT = [name for name in skeleton.J24_NAMES if name in skeleton.MPI17_NAMES]


def make_arrays(count=4, seed=0):
    """npz arrays with random positions in the kept slots, as preprocessing.py writes."""
    rng = np.random.default_rng(seed)
    slots = [skeleton.J24_NAMES.index(name) for name in KEPT]
    part, poses = np.zeros((count, 24, 3)), np.zeros((count, 24, 4))
    part[:, slots] = np.concatenate([rng.uniform(0, 2000, (count, 17, 2)),
                                     np.ones((count, 17, 1))], axis=-1)
    poses[:, slots] = np.concatenate([rng.normal(0, 0.5, (count, 17, 3)),
                                      np.ones((count, 17, 1))], axis=-1)
    return {"imgname": np.array(NAMES[:count]), "center": np.zeros((count, 2)),
            "scale": np.ones(count), "part": part.astype(np.float32),
            "S": poses.astype(np.float32)}


def save(path, arrays):
    np.savez(path, **arrays)
    return str(path)


def at(poses_24, name):
    return poses_24[..., skeleton.J24_NAMES.index(name), :]


def test_npz_becomes_h36m_ordered_millimetres(tmp_path):
    arrays = make_arrays()
    pose_set = mpi_inf_3dhp_npz.pose_set_from_npz(save(tmp_path / "a.npz", arrays))
    part, metres = arrays["part"][..., :2].astype(float), arrays["S"][..., :3].astype(float)
    names = [skeleton.H36M17_NAMES[j] for j in skeleton.INPUT_JOINTS]
    assert_allclose(pose_set.poses_2d[:, names.index("LWrist")], at(part, "left_wrist"))
    assert_allclose(pose_set.poses_2d[:, names.index("Thorax")], at(part, "neck"))
    root = at(metres, "pelvis")
    head = 1000 * (at(metres, "head_top") - root)
    assert_allclose(pose_set.poses_3d[:, skeleton.H36M17_NAMES.index("Head")], head, rtol=1e-5)
    nose = 500 * (at(metres, "neck") + at(metres, "head_top")) - 1000 * root
    assert_allclose(pose_set.poses_3d[:, skeleton.H36M17_NAMES.index("Neck/Nose")], nose,
                    rtol=1e-5, atol=1e-3)
    assert_allclose(pose_set.poses_3d[:, skeleton.ROOT], 0.0)
    assert pose_set.poses_2d.dtype == np.float32 and pose_set.poses_3d.shape == (4, 17, 3)


def test_streams_and_scenes_come_from_imgname(tmp_path):
    pose_set = mpi_inf_3dhp_npz.pose_set_from_npz(save(tmp_path / "a.npz", make_arrays()))
    streams = [pose_set.streams[i] for i in pose_set.stream_index]
    assert [(s.subject, s.action, s.sequence, s.camera) for s in streams] == [
        (2, "Seq1", "S2 Seq1", 4), (2, "Seq1", "S2 Seq1", 0), (3, "noGS", "TS3", 0),
        (6, "Outdoor", "TS6", 0)]
    assert_array_equal(pose_set.frame_index, [10, 0, 4, 1])
    assert list(pose_set.actions()) == ["Seq1", "Seq1", "noGS", "Outdoor"]
    assert mpi_inf_3dhp_npz.SCENES == {1: "GS", 2: "GS", 3: "noGS", 4: "noGS", 5: "Outdoor",
                                  6: "Outdoor"}


def test_frames_lacking_a_needed_joint_are_skipped(tmp_path, caplog):
    arrays = make_arrays()
    arrays["part"][1, skeleton.J24_NAMES.index("left_knee"), 2] = 0
    arrays["S"][2, skeleton.J24_NAMES.index("spine"), 3] = 0
    arrays["S"][3, skeleton.J24_NAMES.index("head"), 3] = 0  # not needed by the model
    with caplog.at_level(logging.WARNING, logger="mdm"):
        pose_set = mpi_inf_3dhp_npz.pose_set_from_npz(save(tmp_path / "a.npz", arrays))
    assert len(pose_set) == 2 and "2 of 4 frames lack a joint" in caplog.text
    arrays["part"][:, 0, 2] = 0
    with pytest.raises(UserError, match="no frame has all the joints"):
        mpi_inf_3dhp_npz.pose_set_from_npz(save(tmp_path / "b.npz", arrays))


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.pop("S"), "no array(s) S"),
    (lambda a: a.update(part=a["part"][:, :17]),
     "'part' has shape (4, 17, 3), expected (4, 24, 3)"),
    (lambda a: a["S"].__setitem__((0, 0, 0), np.nan), "'S' contains NaN"),
    (lambda a: a["imgname"].__setitem__(0, "images/0001.png"), "imgname 'images/0001.png'"),
])
def test_bad_npz(tmp_path, edit, message):
    arrays = make_arrays()
    arrays["imgname"] = arrays["imgname"].astype("<U80")
    edit(arrays)
    path = save(tmp_path / "bad.npz", arrays)
    with pytest.raises(UserError, match=re.escape(path)) as caught:
        mpi_inf_3dhp_npz.pose_set_from_npz(path)
    assert message in str(caught.value)


def test_unreadable_or_missing_npz(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable npz file"):
        mpi_inf_3dhp_npz.read_npz(str(broken))
    with pytest.raises(UserError, match="npz file not found: .*preprocessing.py"):
        mpi_inf_3dhp_npz.read_npz(str(tmp_path / "none.npz"))


def test_load_splits_dispatches_to_the_npz(tmp_path):
    train = save(tmp_path / "train.npz", make_arrays(2))
    test = save(tmp_path / "test.npz", make_arrays(4, seed=1))
    config = Config(dataset="mpi_inf_3dhp", mpi_train_npz=train, mpi_test_npz=test)
    train_set, test_set, sh_folder = splits.load_splits(config)
    assert (len(train_set), len(test_set), sh_folder) == (2, 4, "")
    _, test_only, _ = splits.load_splits(config, need_train=False)
    assert len(test_only) == 4


@pytest.mark.parametrize("fields, message", [
    ({"mpi_train_npz": ""}, "--mpi_train_npz"),
    ({"mpi_test_npz": ""}, "--mpi_test_npz"),
    ({"camera_frame": False}, "--camera_frame True"),
    ({"dataset": "mpii"}, "--dataset must be h36m or mpi_inf_3dhp"),
])
def test_bad_mpi_configuration(fields, message):
    config = Config(dataset="mpi_inf_3dhp", mpi_train_npz="a.npz", mpi_test_npz="b.npz")
    for name, value in fields.items():
        setattr(config, name, value)
    with pytest.raises(UserError, match=re.escape(message)):
        mpi_inf_3dhp_npz.load_mpi_splits(config)


def test_upright_turns_camera_axes_z_up():
    # Camera frame: y points down, z away; upright: z up, y away.
    assert_allclose(camera_to_upright(np.array([[1.0, -2.0, 3.0]])), [[1.0, 3.0, 2.0]])
