"""The Human3.6M loader (mdm.data.h36m) and the split cache (mdm.data.splits): on the real excerpt
beside the repository (shared/data/h36m_sample) when it exists, and on small fake datasets written with h5py
in the 3d-pose-baseline layout of docs/faithfulness.md §1."""

import logging
import os

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data import cameras as cams
from mdm.data import h36m, splits

CAMERA_NAMES = ["54138969", "55011271", "58860488", "60457274"]
# docs/faithfulness.md §1: the 17 moving joints (32-joint indices), the 16 input joints (no
# Neck/Nose) and the stacked-hourglass order of the detections.
MOVING_32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
NAMES_32 = {0: "Hip", 1: "RHip", 2: "RKnee", 3: "RFoot", 6: "LHip", 7: "LKnee", 8: "LFoot",
            12: "Spine", 13: "Thorax", 14: "Neck/Nose", 15: "Head", 17: "LShoulder",
            18: "LElbow", 19: "LWrist", 25: "RShoulder", 26: "RElbow", 27: "RWrist"}
INPUT_NAMES = [NAMES_32[i] for i in MOVING_32 if i != 14]
SH_ORDER = ["RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax",
            "Head", "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist"]
EDGES_32 = [(0, 1), (1, 2), (2, 3), (0, 6), (6, 7), (7, 8), (0, 12), (12, 13), (13, 14),
            (14, 15), (13, 17), (17, 18), (18, 19), (13, 25), (25, 26), (26, 27)]
EDGES_17 = [(MOVING_32.index(a), MOVING_32.index(b)) for a, b in EDGES_32]


def _world_to_camera(world, rotation, centre):
    """X_cam = R (X - T), written out per point."""
    flat = world.reshape(-1, 3)
    out = np.stack([rotation @ (p - centre) for p in flat])
    return out.reshape(world.shape)


# ----------------------------------------------------------------------------- real excerpt


@pytest.fixture(scope="module")
def real_splits(h36m_sample_dir):
    data_dir = h36m_sample_dir
    cameras = cams.load_cameras(str(data_dir / "cameras.h5"), [1])
    loaded = {}
    for use_sh in (True, False):
        loaded[use_sh] = h36m.load_split(str(data_dir), [1], ["Walking"], cameras, use_sh,
                                         "StackedHourglass", camera_frame=True)
    return data_dir, loaded


def _frames(path):
    with h5py.File(path, "r") as handle:
        return handle["3D_positions"].shape[1]


def test_real_shapes_and_streams(real_splits):
    data_dir, loaded = real_splits
    folder = data_dir / "S1" / "MyPoses" / "3D_positions"
    frames = {name: _frames(folder / f"{name}.h5") for name in ("Walking", "Walking 1")}
    total = 4 * sum(frames.values())
    for use_sh, split in loaded.items():
        assert len(split) == total
        assert split.poses_2d.shape == (total, 16, 2)
        assert split.poses_3d.shape == (total, 17, 3)
        assert split.roots.shape == (total, 3)
        assert len(split.streams) == 8
        assert sorted((s.sequence, s.camera) for s in split.streams) == [
            (seq, cam) for seq in ("Walking", "Walking 1") for cam in range(4)]
        assert {s.subject for s in split.streams} == {1}
        assert set(split.actions()) == {"Walking"}
        for index, stream in enumerate(split.streams):
            mask = split.stream_index == index
            assert mask.sum() == frames[stream.sequence]
            assert_array_equal(split.frame_index[mask], np.arange(frames[stream.sequence]))


def test_real_3d_root_centred_rigid_and_in_camera_frame(real_splits):
    data_dir, loaded = real_splits
    split = loaded[True]
    assert_array_equal(split.poses_3d[:, 0], 0.0)
    bones = np.stack([np.linalg.norm(split.poses_3d[:, b] - split.poses_3d[:, a], axis=-1)
                      for a, b in EDGES_17], axis=1)
    assert np.all(bones.std(axis=0) < 1.0)  # mm
    assert np.all(bones.mean(axis=0) > 50.0)
    # One stream against the raw file transformed here.
    with h5py.File(data_dir / "S1" / "MyPoses" / "3D_positions" / "Walking 1.h5", "r") as f:
        raw = f["3D_positions"][()]
    with h5py.File(data_dir / "cameras.h5", "r") as f:
        rotation = f["subject1/camera3/R"][()].T
        centre = f["subject1/camera3/T"][()].ravel()
    world = raw.T.reshape(-1, 32, 3)[:, MOVING_32]
    index = [i for i, s in enumerate(split.streams) if (s.sequence, s.camera) == ("Walking 1", 2)]
    mask = split.stream_index == index[0]
    sel = slice(0, None, 97)  # a subset of frames keeps the per-point loop fast
    in_camera = _world_to_camera(world[sel], rotation, centre)
    assert_allclose(split.roots[mask][sel], in_camera[:, 0], rtol=1e-5, atol=0.05)
    assert_allclose(split.poses_3d[mask][sel], in_camera - in_camera[:, :1], rtol=1e-5, atol=0.05)
    assert np.all(split.roots[:, 2] > 1000)  # in front of the camera


def test_real_ground_truth_2d_lands_near_detections(real_splits):
    _, loaded = real_splits
    detections, projected = loaded[True], loaded[False]
    assert_array_equal(detections.poses_3d, projected.poses_3d)
    distance = np.linalg.norm(detections.poses_2d - projected.poses_2d, axis=-1)
    assert np.median(distance) < 20.0
    assert np.all(detections.poses_2d > -100) and np.all(detections.poses_2d < 1100)
    # The SH permutation: every limb joint's detection is near its own projection, and
    # much nearer than to the opposite side's.
    for name in ("LWrist", "RWrist", "LElbow", "RElbow", "LKnee", "RKnee", "LFoot", "RFoot"):
        own = INPUT_NAMES.index(name)
        other = INPUT_NAMES.index(("R" if name[0] == "L" else "L") + name[1:])
        near = np.median(np.linalg.norm(detections.poses_2d[:, own] - projected.poses_2d[:, own],
                                        axis=-1))
        far = np.median(np.linalg.norm(detections.poses_2d[:, own]
                                       - projected.poses_2d[:, other], axis=-1))
        assert near < 20.0, name
        assert far > 2 * near, name


# ----------------------------------------------------------------------------- fake data


def _rot_y(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _fake_cameras(subjects):
    table = {}
    for subject in subjects:
        table[subject] = []
        for index, name in enumerate(CAMERA_NAMES):
            rotation = _rot_y(np.pi / 2 * index + 0.1 * subject)
            centre = -rotation.T @ np.array([0.0, 0.0, 5000.0])  # origin 5 m in front
            table[subject].append(cams.Camera(
                R=rotation, T=centre, f=np.array([1000.0, 1010.0]), c=np.array([500.0, 490.0]),
                k=np.zeros(3), p=np.zeros(2), name=name))
    return table


def _fake_sequence(rng, frames):
    """(96, N) world mm: a rigid random skeleton translated per frame."""
    skeleton_32 = rng.uniform(-400, 400, size=(32, 3))
    offsets = rng.uniform(-300, 300, size=(frames, 1, 3))
    world = skeleton_32[None] + offsets
    return world.reshape(frames, 96).T


def _write_3d(data_dir, subject, sequence, raw, dataset_name="3D_positions"):
    folder = data_dir / f"S{subject}" / "MyPoses" / "3D_positions"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / f"{sequence}.h5", "w") as handle:
        handle[dataset_name] = raw
    return folder / f"{sequence}.h5"


def _sh_code(frames):
    """Detections whose SH joint i sits at x = 10 i, y = frame index."""
    poses = np.zeros((frames, 16, 2))
    poses[:, :, 0] = 10.0 * np.arange(16)
    poses[:, :, 1] = np.arange(frames)[:, None]
    return poses


def _write_sh(data_dir, subject, sequence, camera_name, poses, folder="StackedHourglass"):
    path = data_dir / f"S{subject}" / folder / f"{sequence.replace(' ', '_')}.{camera_name}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle["poses"] = poses
    return path


def _fake_dataset(root, sequences, subjects=(1,), seed=0, sh_cameras=CAMERA_NAMES):
    """sequences: {name: frames}; every subject gets all of them."""
    rng = np.random.default_rng(seed)
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    table = _fake_cameras(subjects)
    cams.save_cameras(str(data_dir / "cameras.h5"), table)
    raws = {}
    for subject in subjects:
        for name, frames in sequences.items():
            raws[subject, name] = _fake_sequence(rng, frames)
            _write_3d(data_dir, subject, name, raws[subject, name])
            for camera_name in sh_cameras:
                _write_sh(data_dir, subject, name, camera_name, _sh_code(frames))
    return data_dir, table, raws


SITTING_FILES = {"Sitting 1": 5, "Sitting 2": 6, "SittingDown": 7, "SittingDown 2": 4,
                 "Walking 1": 3, "WalkTogether": 2, "WalkDog 1": 2, "Directions": 3}


def test_sitting_does_not_take_sittingdown(tmp_path):
    data_dir, table, _ = _fake_dataset(tmp_path, SITTING_FILES)
    expected = {"Sitting": ["Sitting 1", "Sitting 2"], "SittingDown": ["SittingDown",
                                                                       "SittingDown 2"],
                "Walking": ["Walking 1"], "WalkTogether": ["WalkTogether"],
                "WalkDog": ["WalkDog 1"], "Directions": ["Directions"], "Eating": []}
    for action, names in expected.items():
        assert h36m.list_sequences(str(data_dir), 1, action) == names
    split = h36m.load_split(str(data_dir), [1], ["Sitting"], table, False, "", True)
    assert sorted({s.sequence for s in split.streams}) == ["Sitting 1", "Sitting 2"]
    assert len(split) == 4 * (5 + 6)
    split = h36m.load_split(str(data_dir), [1], ["SittingDown"], table, True,
                            "StackedHourglass", True)
    assert sorted({s.sequence for s in split.streams}) == ["SittingDown", "SittingDown 2"]
    assert len(split) == 4 * (7 + 4) and set(split.actions()) == {"SittingDown"}


@pytest.mark.parametrize("camera_frame", [True, False])
def test_fake_ground_truth_projection_and_targets(tmp_path, camera_frame):
    data_dir, table, raws = _fake_dataset(tmp_path, {"Eating 2": 4})
    split = h36m.load_split(str(data_dir), [1], ["Eating"], table, False, "", camera_frame)
    assert len(split.streams) == 4 and len(split) == 16
    world = raws[1, "Eating 2"].T.reshape(-1, 32, 3)[:, MOVING_32]
    for index, stream in enumerate(split.streams):
        camera = table[1][stream.camera]
        mask = split.stream_index == index
        in_camera = _world_to_camera(world, camera.R, camera.T)
        # No distortion in the fake cameras: pixel = f X/Z + c; input joints = no Neck/Nose.
        pinhole = camera.f * in_camera[..., :2] / in_camera[..., 2:] + camera.c
        input_rows = [j for j in range(17) if j != 9]
        assert_allclose(split.poses_2d[mask], pinhole[:, input_rows], rtol=1e-5, atol=1e-3)
        target = in_camera if camera_frame else world
        assert_allclose(split.roots[mask], target[:, 0], rtol=1e-5, atol=1e-2)
        assert_allclose(split.poses_3d[mask], target - target[:, :1], rtol=1e-5, atol=1e-2)
    assert split.poses_2d.dtype == np.float32 and split.poses_3d.dtype == np.float32


def test_fake_detections_follow_the_sh_permutation(tmp_path):
    data_dir, table, _ = _fake_dataset(tmp_path, {"Phoning 1": 5})
    split = h36m.load_split(str(data_dir), [1], ["Phoning"], table, True, "StackedHourglass",
                            True)
    assert len(split) == 20
    for position, name in enumerate(INPUT_NAMES):
        assert_array_equal(split.poses_2d[:, position, 0], 10.0 * SH_ORDER.index(name))
    assert_array_equal(split.poses_2d[:, 0, 1], np.tile(np.arange(5), 4))


def test_missing_camera_file_warns_and_skips_the_stream(tmp_path, caplog):
    data_dir, table, _ = _fake_dataset(
        tmp_path, {"Posing": 3}, sh_cameras=[CAMERA_NAMES[i] for i in (0, 1, 3)])
    with caplog.at_level(logging.WARNING, logger="mdm.data.h36m"):
        split = h36m.load_split(str(data_dir), [1], ["Posing"], table, True, "StackedHourglass",
                                True)
    assert [s.camera for s in split.streams] == [0, 1, 3]
    assert len(split) == 9
    assert any(f"Posing.{CAMERA_NAMES[2]}.h5" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_detections_without_3d_warn(tmp_path, caplog):
    data_dir, table, _ = _fake_dataset(tmp_path, {"Sitting 1": 3})
    orphan = _write_sh(data_dir, 1, "Sitting 2", CAMERA_NAMES[0], _sh_code(3))
    with caplog.at_level(logging.WARNING, logger="mdm.data.h36m"):
        split = h36m.load_split(str(data_dir), [1], ["Sitting"], table, True,
                                "StackedHourglass", True)
    assert {s.sequence for s in split.streams} == {"Sitting 1"}
    assert len(split) == 12
    assert any(str(orphan) in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_missing_subject_is_a_warning(tmp_path, caplog):
    data_dir, table, _ = _fake_dataset(tmp_path, {"Greeting": 2})
    with caplog.at_level(logging.WARNING, logger="mdm.data.h36m"):
        split = h36m.load_split(str(data_dir), [1, 9], ["Greeting"], table, False, "", True)
    assert len(split) == 8
    assert any("S9" in r.getMessage() for r in caplog.records)
    empty = h36m.load_split(str(data_dir), [9], ["Greeting"], table, False, "", True)
    assert len(empty) == 0 and empty.poses_3d.shape == (0, 17, 3)


@pytest.mark.parametrize("problem", ["dataset name", "shape", "nan", "not hdf5", "empty"])
def test_bad_3d_file_raises_user_error_naming_it(tmp_path, problem):
    data_dir, table, raws = _fake_dataset(tmp_path, {"Smoking": 3})
    raw = raws[1, "Smoking"]
    path = data_dir / "S1" / "MyPoses" / "3D_positions" / "Smoking 1.h5"
    if problem == "dataset name":
        _write_3d(data_dir, 1, "Smoking 1", raw, dataset_name="positions")
    elif problem == "shape":
        _write_3d(data_dir, 1, "Smoking 1", raw[:95])
    elif problem == "nan":
        bad = raw.copy()
        bad[4, 1] = np.nan
        _write_3d(data_dir, 1, "Smoking 1", bad)
    elif problem == "empty":
        _write_3d(data_dir, 1, "Smoking 1", np.zeros((96, 0)))
    else:
        path.write_text("garbage")
    for camera_name in CAMERA_NAMES:
        _write_sh(data_dir, 1, "Smoking 1", camera_name, _sh_code(3))
    with pytest.raises(UserError) as info:
        h36m.load_split(str(data_dir), [1], ["Smoking"], table, True, "StackedHourglass", True)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("problem", ["frames", "shape", "nan", "dataset name"])
def test_bad_detection_file_raises_user_error(tmp_path, problem):
    data_dir, table, _ = _fake_dataset(tmp_path, {"Waiting 1": 4})
    poses = _sh_code(4)
    if problem == "frames":
        poses = _sh_code(5)
    elif problem == "shape":
        poses = np.zeros((4, 17, 2))
    elif problem == "nan":
        poses[2, 3, 0] = np.nan
    path = _write_sh(data_dir, 1, "Waiting 1", CAMERA_NAMES[1], poses)
    if problem == "dataset name":
        with h5py.File(path, "w") as handle:
            handle["detections"] = poses
    with pytest.raises(UserError) as info:
        h36m.load_split(str(data_dir), [1], ["Waiting"], table, True, "StackedHourglass", True)
    assert str(path) in str(info.value)
    if problem == "frames":
        assert "5" in str(info.value) and "4" in str(info.value)


def test_define_actions():
    assert h36m.define_actions("All") == [
        "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
        "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
        "WalkTogether"]
    assert h36m.define_actions("Walking") == ["Walking"]
    with pytest.raises(UserError, match="Bogus"):
        h36m.define_actions("Bogus")


def test_resolve_sh_folder(tmp_path):
    data_dir, _, _ = _fake_dataset(tmp_path, {"Photo": 2})
    assert h36m.resolve_sh_folder(str(data_dir), [1], "") == "StackedHourglass"
    (data_dir / "S1" / "StackedHourglassFineTuned240").mkdir()
    assert h36m.resolve_sh_folder(str(data_dir), [1], "") == "StackedHourglassFineTuned240"
    assert h36m.resolve_sh_folder(str(data_dir), [1], "Mine") == "Mine"


# ----------------------------------------------------------------------------- dataset cache


def _cache_config(tmp_path, data_dir, **overrides):
    settings = dict(data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"),
                    train_subjects=(1,), test_subjects=(5,), action="Sitting", use_sh=True)
    settings.update(overrides)
    return Config(**settings)


def _assert_same_split(a, b):
    for name in ("poses_2d", "poses_3d", "roots", "stream_index", "frame_index"):
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.streams == b.streams


def test_load_splits_uses_and_invalidates_the_cache(tmp_path, monkeypatch):
    data_dir, _, _ = _fake_dataset(tmp_path, {"Sitting 1": 3, "SittingDown": 2}, subjects=(1, 5))
    config = _cache_config(tmp_path, data_dir)
    calls = []
    original = h36m.load_split

    def counting(data_dir_arg, subjects, *args, **kwargs):
        calls.append(list(subjects))
        return original(data_dir_arg, subjects, *args, **kwargs)

    monkeypatch.setattr(h36m, "load_split", counting)
    train, test, sh_folder = splits.load_splits(config)
    assert sh_folder == "StackedHourglass"
    assert sorted(calls) == [[1], [5]]
    assert len(train) == 12 and len(test) == 12
    assert {s.subject for s in train.streams} == {1} and {s.subject for s in test.streams} == {5}
    assert len(os.listdir(tmp_path / "cache")) == 2

    # Second call: both splits come from the cache, identical.
    calls.clear()
    train_again, test_again, _ = splits.load_splits(config)
    assert calls == []
    _assert_same_split(train, train_again)
    _assert_same_split(test, test_again)

    # Touching one of subject 1's files invalidates the training split only.
    path = data_dir / "S1" / "MyPoses" / "3D_positions" / "Sitting 1.h5"
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    splits.load_splits(config)
    assert calls == [[1]]

    # Another option (GT 2D instead of detections) is another cache entry.
    calls.clear()
    splits.load_splits(_cache_config(tmp_path, data_dir, use_sh=False))
    assert sorted(calls) == [[1], [5]]


@pytest.mark.parametrize("content", [
    b"",
    b"PK\x03\x04 truncated",
], ids=["empty", "corrupt zip"])
def test_unreadable_cache_is_rebuilt(tmp_path, content):
    data_dir, _, _ = _fake_dataset(tmp_path, {"Sitting 1": 3}, subjects=(1, 5))
    config = _cache_config(tmp_path, data_dir)
    train, _, _ = splits.load_splits(config)
    for name in os.listdir(tmp_path / "cache"):
        (tmp_path / "cache" / name).write_bytes(content)
    train_again, _, _ = splits.load_splits(config)
    _assert_same_split(train, train_again)
    # And the rebuilt cache was written back, readable.
    train_third, _, _ = splits.load_splits(config)
    _assert_same_split(train, train_third)


def test_missing_data_dir_or_cameras_raise_with_layout_hint(tmp_path):
    with pytest.raises(UserError) as info:
        splits.load_splits(_cache_config(tmp_path, tmp_path / "absent"))
    assert str(tmp_path / "absent") in str(info.value)
    assert "3D_positions" in str(info.value) and "cameras.h5" in str(info.value)

    data_dir, _, _ = _fake_dataset(tmp_path, {"Sitting 1": 3})
    os.remove(data_dir / "cameras.h5")
    with pytest.raises(UserError) as info:
        splits.load_splits(_cache_config(tmp_path, data_dir))
    assert str(data_dir / "cameras.h5") in str(info.value)
    assert "3D_positions" in str(info.value)


def test_load_splits_without_samples_is_a_user_error(tmp_path):
    data_dir, _, _ = _fake_dataset(tmp_path, {"Sitting 1": 3}, subjects=(1,))
    with pytest.raises(UserError, match="test"):
        splits.load_splits(_cache_config(tmp_path, data_dir))  # subject 5 absent
    with pytest.raises(UserError):
        splits.load_splits(_cache_config(tmp_path, data_dir, train_subjects=(7,),
                                          test_subjects=(1,)))
