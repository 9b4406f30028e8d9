"""The synthetic MPI-INF-3DHP writer (mdm.data.synthetic.mpi_writer) against the format facts, read
back here with scipy / h5py / plain text parsing, not with mdm.data.mpi_inf_3dhp_raw."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io
from numpy.testing import assert_allclose

from mdm.data.synthetic import mpi_writer

FRAMES = 6


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("raw") / "mpi")
    return mpi_writer.write_synthetic_mpi(out, frames_per_sequence=FRAMES, seed=2)


def parse_calibration(path):
    """[(size, intrinsic 4x4, extrinsic 4x4)] per camera, by the stated 7-line layout."""
    lines = open(path).read().splitlines()
    assert (len(lines) - 1) % 7 == 0
    cameras = []
    for start in range(1, len(lines), 7):
        block = [line.split() for line in lines[start:start + 7]]
        assert [words[0] for words in block] == ["name", "sensor", "size", "animated",
                                                 "intrinsic", "extrinsic", "radial"]
        cameras.append((tuple(int(v) for v in block[2][1:]),
                        np.array(block[4][1:], float).reshape(4, 4),
                        np.array(block[5][1:], float).reshape(4, 4)))
    return cameras


def test_training_layout_and_geometry(raw):
    folders = sorted(os.listdir(raw))
    assert folders == sorted([f"S{s}" for s in range(1, 9)] + ["mpi_inf_3dhp_test_set"])
    folder = os.path.join(raw, "S4", "Seq2")
    mat = scipy.io.loadmat(os.path.join(folder, "annot.mat"))
    cameras = parse_calibration(os.path.join(folder, "camera.calibration.txt"))
    assert len(cameras) == 14
    world = []
    for c, (size, intrinsic, extrinsic) in enumerate(cameras):
        assert size == (2048, 2048)
        assert mat["annot2"].shape == (14, 1) and mat["annot2"].dtype == object
        annot2 = mat["annot2"][c, 0].reshape(FRAMES, 28, 2)
        annot3 = mat["annot3"][c, 0].reshape(FRAMES, 28, 3)
        homogeneous = annot3 @ intrinsic[:3, :3].T
        assert_allclose(annot2, homogeneous[..., :2] / homogeneous[..., 2:], rtol=1e-6)
        rotation, translation = extrinsic[:3, :3], extrinsic[:3, 3]
        assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
        world.append((annot3 - translation) @ rotation)  # X_cam = R X + T
    # One pose seen by 14 cameras: the extrinsics put every view back on the same points.
    assert_allclose(np.std(world, axis=0).max(), 0.0, atol=1e-2)


def test_universal_skeleton_is_rescaled_about_the_pelvis(raw):
    mat = scipy.io.loadmat(os.path.join(raw, "S1", "Seq1", "annot.mat"))
    annot3 = mat["annot3"][0, 0].reshape(FRAMES, 28, 3)
    univ = mat["univ_annot3"][0, 0].reshape(FRAMES, 28, 3)
    pelvis = 4
    assert_allclose(univ[:, pelvis], annot3[:, pelvis])
    ratio = np.linalg.norm(univ - univ[:, [pelvis]], axis=-1)[:, 7] / np.linalg.norm(
        annot3 - annot3[:, [pelvis]], axis=-1)[:, 7]
    assert_allclose(ratio, ratio[0])
    assert 0.8 < ratio[0] < 1.25


def test_test_set_is_matlab_v73_with_the_stated_shapes(raw):
    for sequence in range(1, 7):
        path = os.path.join(raw, "mpi_inf_3dhp_test_set", f"TS{sequence}", "annot_data.mat")
        with open(path, "rb") as handle:
            header = handle.read(128)
        assert header.startswith(b"MATLAB 7.3 MAT-file") and header[124:128] == b"\x00\x02IM"
        with pytest.raises(NotImplementedError):  # scipy recognises a v7.3 file
            scipy.io.loadmat(path)
        with h5py.File(path, "r") as handle:
            shapes = {name: handle[name].shape for name in handle}
            annot2 = handle["annot2"][()]
            assert handle["annot2"].attrs["MATLAB_class"] == b"double"
        assert shapes == {"annot2": (FRAMES, 1, 17, 2), "annot3": (FRAMES, 1, 17, 3),
                          "univ_annot3": (FRAMES, 1, 17, 3), "valid_frame": (FRAMES, 1),
                          "activity_annotation": (FRAMES, 1)}
        width, height = (2048, 2048) if sequence <= 4 else (1920, 1080)
        centre = annot2.reshape(-1, 2).mean(axis=0)
        assert 0 < centre[0] < width and 0 < centre[1] < height


def read_h5(path, name):
    with h5py.File(path, "r") as handle:
        return handle[name][()]


def test_same_seed_same_data(raw, tmp_path):
    again = mpi_writer.write_synthetic_mpi(str(tmp_path / "again"), FRAMES, seed=2)
    train, test = "S8/Seq1/annot.mat", "mpi_inf_3dhp_test_set/TS5/annot_data.mat"
    assert_allclose(scipy.io.loadmat(os.path.join(raw, train))["annot3"][13, 0],
                    scipy.io.loadmat(os.path.join(again, train))["annot3"][13, 0])
    assert_allclose(read_h5(os.path.join(raw, test), "univ_annot3"),
                    read_h5(os.path.join(again, test), "univ_annot3"))


def test_command_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "mdm.synthetic", "--format", "mpi_inf_3dhp",
                               *args], capture_output=True, text=True, timeout=120,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = str(tmp_path / "cli")
    result = run("--out", out, "--frames_per_sequence", "3")
    assert result.returncode == 0 and "TS1-TS6" in result.stdout, result.stderr
    assert os.path.isfile(os.path.join(out, "S8", "Seq2", "camera.calibration.txt"))
    again = run("--out", out)
    assert again.returncode == 1 and again.stderr.startswith("error: ")
    assert "is not empty" in again.stderr and len(again.stderr.splitlines()) == 1
