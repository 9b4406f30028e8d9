"""preprocessing.py / mdm.data.mpi_inf_3dhp_preprocess: hand-built raw files -> npz numbers checked against
numpy computed here; the synthetic raw set through the command line; bad input."""

import os
import re
import subprocess
import sys
import types

import h5py
import numpy as np
import pytest
import scipy.io
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core.errors import UserError
from mdm.core.skeleton import J24_NAMES, MPI17_NAMES, MPI28_NAMES
from mdm.data import mpi_inf_3dhp_frames, mpi_inf_3dhp_preprocess
from mdm.data.synthetic import mpi_writer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The npz keeps the joints named in both raw lists (the 17 test joints).
KEPT = [name for name in J24_NAMES if name in MPI17_NAMES]
CAMERA_BLOCK = ("name {i}\n sensor 10 10\n size 2048 2048\n animated 0\n"
                " intrinsic 1500 0 1024 0 0 1500 1024 0 0 0 1 0 0 0 0 1\n"
                " extrinsic 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n radial 0\n")


def train_joints(camera, frames=4):
    """Hand-made annot2 (n, 28, 2) px and annot3 (n, 28, 3) mm of one camera."""
    joint, frame = np.meshgrid(np.arange(28.0), np.arange(frames))
    annot2 = np.stack([100 + 10 * joint + frame + camera, 200 + 20 * joint], axis=-1)
    annot3 = np.stack([10 * joint + frame, -20 * joint, 3000 + joint + camera], axis=-1)
    if camera == 1:
        annot2[2, MPI28_NAMES.index("left_wrist"), 0] = 2048.0  # outside: frame dropped
    annot2[3, MPI28_NAMES.index("left_toe"), 1] = -5.0  # outside, but not kept: no effect
    return annot2, annot3


def write_train_sequence(folder, cameras=2):
    os.makedirs(folder)
    cells = {key: np.empty((cameras, 1), dtype=object) for key in ("annot2", "annot3",
                                                                   "univ_annot3")}
    for camera in range(cameras):
        annot2, annot3 = train_joints(camera)
        cells["annot2"][camera, 0] = annot2.reshape(len(annot2), -1)
        cells["annot3"][camera, 0] = annot3.reshape(len(annot3), -1)
        cells["univ_annot3"][camera, 0] = 2 * annot3.reshape(len(annot3), -1)
    scipy.io.savemat(os.path.join(folder, "annot.mat"), cells)
    with open(os.path.join(folder, "camera.calibration.txt"), "w") as handle:
        handle.write("header\n" + "".join(CAMERA_BLOCK.format(i=i) for i in range(cameras)))


@pytest.fixture
def hand_train_root(tmp_path):
    for sequence in (1, 2):
        write_train_sequence(str(tmp_path / "S1" / f"Seq{sequence}"))
    return str(tmp_path)


def test_training_npz_numbers(hand_train_root, tmp_path):
    path, count = mpi_inf_3dhp_preprocess.preprocess(hand_train_root, str(tmp_path / "out"), "train",
                                          subsample=2, subjects=(1,), cameras=(0, 1))
    assert path == str(tmp_path / "out" / "mpi_inf_3dhp_train.npz")
    npz = np.load(path)
    # Every 2nd frame (0, 2); camera 1 loses frame 2 to its wrist at x = 2048.
    expected_names = [f"S1/Seq{q}/imageFrames/video_{c}/frame_{f:06d}.jpg"
                      for q in (1, 2) for c, frames in ((0, (1, 3)), (1, (1,))) for f in frames]
    assert list(npz["imgname"]) == expected_names and count == 6
    annot2, annot3 = train_joints(0)
    rows = [MPI28_NAMES.index(name) for name in KEPT]
    slots = [J24_NAMES.index(name) for name in KEPT]
    assert_allclose(npz["part"][1, slots, :2], annot2[2, rows], rtol=1e-6)
    assert_array_equal(npz["part"][1, :, 2], np.isin(np.arange(24), slots))
    pelvis = annot3[2, MPI28_NAMES.index("pelvis")]
    assert_allclose(npz["S"][1, slots, :3], (annot3[2, rows] - pelvis) / 1000.0, atol=1e-6)
    assert_array_equal(npz["S"][1, :, 3], np.isin(np.arange(24), slots))
    low, high = annot2[2, rows].min(axis=0), annot2[2, rows].max(axis=0)
    assert_allclose(npz["center"][1], (low + high) / 2, rtol=1e-6)
    assert_allclose(npz["scale"][1], 1.2 * max(high - low) / 200.0, rtol=1e-6)
    assert npz["part"].dtype == np.float32 and npz["S"].shape == (6, 24, 4)


def write_test_sequence(folder, valid, annot2):
    os.makedirs(folder)
    frames = len(valid)
    annot3 = np.arange(frames * 51, dtype=float).reshape(frames, 1, 17, 3)
    with h5py.File(os.path.join(folder, "annot_data.mat"), "w") as handle:
        handle["annot2"] = annot2[:, None]
        handle["annot3"] = annot3
        handle["univ_annot3"] = 3 * annot3
        handle["valid_frame"] = np.array(valid, float)[:, None]
        handle["activity_annotation"] = np.ones((frames, 1))


def test_test_npz_uses_valid_frames_image_sizes_and_univ_annot3(tmp_path):
    annot2 = np.full((3, 17, 2), 500.0)
    annot2[2, MPI17_NAMES.index("right_wrist")] = (2000.0, 500.0)  # in 2048 px, not 1920 px
    for sequence in range(1, 7):
        write_test_sequence(str(tmp_path / "mpi_inf_3dhp_test_set" / f"TS{sequence}"),
                            [1, 0, 1], annot2)
    path, count = mpi_inf_3dhp_preprocess.preprocess(str(tmp_path), str(tmp_path / "t.npz"), "test")
    names = list(np.load(path)["imgname"])
    expected = [f"mpi_inf_3dhp_test_set/TS{s}/imageSequence/img_{f:06d}.jpg"
                for s in range(1, 7) for f in ((1, 3) if s <= 4 else (1,))]
    assert path == str(tmp_path / "t.npz") and names == expected and count == 10
    univ = 3 * np.arange(3 * 51, dtype=float).reshape(3, 17, 3)
    slots = [J24_NAMES.index(name) for name in KEPT]
    rows = [MPI17_NAMES.index(name) for name in KEPT]
    pelvis = univ[2, MPI17_NAMES.index("pelvis")]
    assert_allclose(np.load(path)["S"][1, slots, :3], (univ[2, rows] - pelvis) / 1000, atol=1e-6)
    # The test set's own folder works as --dataset_path too.
    again, _ = mpi_inf_3dhp_preprocess.preprocess(str(tmp_path / "mpi_inf_3dhp_test_set"),
                                       str(tmp_path / "u.npz"), "test")
    assert list(np.load(again)["imgname"]) == expected


@pytest.mark.parametrize("options, message", [
    ({"mode": "valid"}, "--mode must be train or test"),
    ({"subsample": 0}, "--subsample must be at least 1"),
    ({"cameras": (0, 14)}, "--cameras must be among 0..13"),
    ({"subjects": (9,)}, "--subjects must be among 1..8"),
    ({"subjects": (1, 2)}, "training sequence folder not found: "),
    ({"cameras": (0, 3)}, "camera.calibration.txt: 2 cameras, camera(s) [3] requested"),
    ({"mode": "test"}, "test set folder not found"),
])
def test_bad_options_and_layouts(hand_train_root, tmp_path, options, message):
    arguments = {"mode": "train", "subjects": (1,), "cameras": (0, 1)}
    arguments.update(options)
    mode = arguments.pop("mode")
    with pytest.raises(UserError, match=re.escape(message)):
        mpi_inf_3dhp_preprocess.preprocess(hand_train_root, str(tmp_path / "o"), mode, **arguments)


def test_everything_dropped_is_an_error(tmp_path):
    annot2 = np.full((2, 17, 2), -1.0)
    for sequence in range(1, 7):
        write_test_sequence(str(tmp_path / f"TS{sequence}"), [1, 1], annot2)
    with pytest.raises(UserError, match="no frame of .* kept"):
        mpi_inf_3dhp_preprocess.preprocess(str(tmp_path), str(tmp_path / "o"), "test")


class FakeCapture:
    """cv2.VideoCapture over a 5-frame video whose images are their frame numbers."""

    def __init__(self, path):
        self.index = 0

    def isOpened(self):
        return True

    def read(self):
        self.index += 1
        return (self.index <= 5, f"image {self.index - 1}")

    def release(self):
        pass


def fake_cv2():
    def imwrite(path, image):
        with open(path, "w") as handle:
            handle.write(image)
    return types.SimpleNamespace(VideoCapture=FakeCapture, imwrite=imwrite)


def test_extract_frames_writes_the_kept_frames(hand_train_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", fake_cv2())
    for sequence in (1, 2):
        video_dir = os.path.join(hand_train_root, "S1", f"Seq{sequence}", "imageSequence")
        os.makedirs(video_dir)
        for camera in (0, 1):
            open(os.path.join(video_dir, f"video_{camera}.avi"), "w").close()
    path, _ = mpi_inf_3dhp_preprocess.preprocess(hand_train_root, str(tmp_path / "o"), "train",
                                      subsample=2, subjects=(1,), cameras=(0, 1),
                                      extract_frames=True)
    for name in np.load(path)["imgname"]:  # every npz image exists, holding its frame
        with open(os.path.join(hand_train_root, name)) as handle:
            assert handle.read() == f"image {int(name[-10:-4]) - 1}"
    frame_dir = os.path.join(hand_train_root, "S1", "Seq1", "imageFrames", "video_1")
    assert os.listdir(frame_dir) == ["frame_000001.jpg"]
    with pytest.raises(UserError, match="ends after 5 frames but the annotations need frame 7"):
        mpi_inf_3dhp_frames.extract_frames(os.path.join(video_dir, "video_0.avi"), str(tmp_path), [6])


def test_extract_frames_without_opencv_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(UserError, match="pip install opencv-python-headless"):
        mpi_inf_3dhp_frames.extract_frames("video.avi", "frames", [0])


def run_preprocessing(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "preprocessing.py"), *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], \
        result.stderr


def test_command_line_on_the_synthetic_raw_set(tmp_path):
    raw = mpi_writer.write_synthetic_mpi(str(tmp_path / "raw"), frames_per_sequence=20)
    train = run_preprocessing("--dataset_path", raw, "--out_path", str(tmp_path / "npz"),
                              "--mode", "train")
    test = run_preprocessing("--dataset_path", raw, "--out_path", str(tmp_path / "npz"),
                             "--mode", "test", "--subsample", "2")
    assert train.returncode == 0 and test.returncode == 0, train.stderr + test.stderr
    npz_train = np.load(tmp_path / "npz" / "mpi_inf_3dhp_train.npz")
    # Default: every 10th frame (0 and 10) of 8 subjects x 2 sequences x 8 cameras.
    assert 200 < len(npz_train["imgname"]) <= 8 * 2 * 8 * 2
    assert f"wrote {len(npz_train['imgname'])} frames" in train.stdout
    cameras = {name.split("/")[3] for name in npz_train["imgname"]}
    assert cameras == {f"video_{c}" for c in (0, 1, 2, 4, 5, 6, 7, 8)}
    npz_test = np.load(tmp_path / "npz" / "mpi_inf_3dhp_test.npz")
    frames = [int(name[-10:-4]) - 1 for name in npz_test["imgname"]]
    assert all(frame % 2 == 0 for frame in frames)
    assert {name.split("/")[1] for name in npz_test["imgname"]} == {f"TS{s}" for s in range(1, 7)}
    # A damaged annotation file is named in one line.
    with open(os.path.join(raw, "S3", "Seq2", "annot.mat"), "wb") as handle:
        handle.write(b"\x00garbage")
    broken = run_preprocessing("--dataset_path", raw, "--out_path", str(tmp_path / "x"))
    assert_one_line_error(broken, os.path.join("S3", "Seq2", "annot.mat"))


@pytest.mark.parametrize("args, fragment", [
    ((), "--dataset_path"),
    (("--dataset_path", "/nonexistent/mpi"), "dataset folder not found: /nonexistent/mpi"),
    (("--dataset_path", ".", "--mode", "valid"), "--mode"),
    (("--dataset_path", ".", "--cameras", "a,b"), "--cameras takes integers"),
])
def test_command_line_errors(args, fragment):
    assert_one_line_error(run_preprocessing(*args), fragment)
