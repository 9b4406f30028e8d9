"""Raw MPI-INF-3DHP readers on small files built by hand from the format facts (not by the
synthetic writer), and their one-line answers to malformed files."""

import re

import h5py
import numpy as np
import pytest
import scipy.io
from numpy.testing import assert_allclose, assert_array_equal

from mdm.core.errors import UserError
from mdm.data import mpi_inf_3dhp_raw

CALIBRATION = """Skeletool Camera Calibration File V1.0
name          0
  sensor      10 10
  size        2048 2048
  animated    0
  intrinsic   1497.693 0 1024.704 0 0 1497.103 1051.394 0 0 0 1 0 0 0 0 1
  extrinsic   0 1 0 -562.8 0 0 -1 1398.1 -1 0 0 3852.6 0 0 0 1
  radial      0
name          1
  sensor      10 10
  size        1920 1080
  animated    0
  intrinsic   1500 0 960 0 0 1501 540 0 0 0 1 0 0 0 0 1
  extrinsic   1 0 0 10 0 1 0 20 0 0 1 30 0 0 0 1
  radial      0
"""


def write_v5_annotations(path, frames=3, cameras=14, **overrides):
    """annot.mat as MATLAB saves it: 14x1 cell arrays; cell c holds camera c's rows
    (x0, y0, x1, y1, ...) with value 1000 c + 100 frame + coordinate index."""
    def cells(dims):
        column = np.empty((cameras, 1), dtype=object)
        for camera in range(cameras):
            frame = np.arange(frames)[:, None]
            column[camera, 0] = 1000.0 * camera + 100.0 * frame + np.arange(28 * dims)[None]
        return column
    variables = {"annot2": cells(2), "annot3": cells(3), "univ_annot3": cells(3),
                 "frames": np.arange(frames)[:, None], "cameras": np.arange(cameras)[None]}
    variables.update(overrides)
    scipy.io.savemat(str(path), variables)
    return path


def write_v73_annotations(path, frames=4, **overrides):
    """annot_data.mat as h5py sees MATLAB's v7.3 file: (N, 1, 17, d) and (N, 1)."""
    values = np.arange(frames * 17 * 3, dtype=np.float64)
    arrays = {"annot2": values[: frames * 34].reshape(frames, 1, 17, 2),
              "annot3": values.reshape(frames, 1, 17, 3),
              "univ_annot3": -values.reshape(frames, 1, 17, 3),
              "valid_frame": np.array([[1.0], [0.0], [1.0], [1.0]])[:frames],
              "activity_annotation": np.ones((frames, 1))}
    arrays.update(overrides)
    with h5py.File(path, "w") as handle:
        for name, array in arrays.items():
            if array is not None:
                handle[name] = array
    return path


def test_calibration_is_parsed_row_major(tmp_path):
    path = tmp_path / "camera.calibration.txt"
    path.write_text(CALIBRATION)
    cameras = mpi_inf_3dhp_raw.read_calibration(str(path))
    assert [c.name for c in cameras] == ["0", "1"]
    assert cameras[0].size == (2048, 2048) and cameras[1].size == (1920, 1080)
    assert_allclose(cameras[0].K, [[1497.693, 0, 1024.704], [0, 1497.103, 1051.394], [0, 0, 1]])
    assert_allclose(cameras[0].R, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]])
    assert_allclose(cameras[0].T, [-562.8, 1398.1, 3852.6])
    assert_allclose(cameras[1].T, [10, 20, 30])


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("  intrinsic   1500 0 960 0", "  intrinsic   1500 0 960"),
     "camera 1: 'intrinsic' has 15 numbers, expected 16"),
    (lambda text: text.replace("extrinsic   1 0 0 10", "extrinsic   1 0 x 10"),
     "camera 1: 'extrinsic' holds a non-number"),
    (lambda text: text.replace("  size        1920 1080\n", ""), "camera 1 lacks size"),
    (lambda text: text.splitlines()[0] + "\n", "no camera found"),
    (lambda text: "header\n  size 1 2\n" + text, "'size' before the first 'name' line"),
])
def test_bad_calibration_names_file_and_problem(tmp_path, edit, message):
    path = tmp_path / "camera.calibration.txt"
    path.write_text(edit(CALIBRATION))
    with pytest.raises(UserError, match=re.escape(str(path))) as caught:
        mpi_inf_3dhp_raw.read_calibration(str(path))
    assert message in str(caught.value)


def test_missing_calibration(tmp_path):
    with pytest.raises(UserError, match="calibration file not found"):
        mpi_inf_3dhp_raw.read_calibration(str(tmp_path / "camera.calibration.txt"))


def test_v5_cells_are_read_per_camera_joint_major(tmp_path):
    path = write_v5_annotations(tmp_path / "annot.mat")
    annotations = mpi_inf_3dhp_raw.read_train_annotations(str(path), [0, 8])
    assert sorted(annotations) == [0, 8]
    annot2 = annotations[8].annot2
    assert annot2.shape == (3, 28, 2)
    # frame 2, joint 5 of camera 8: columns 10 (x) and 11 (y) of row 2.
    assert_array_equal(annot2[2, 5], [8000 + 200 + 10, 8000 + 200 + 11])
    assert_array_equal(annotations[0].annot3[1, 27], [100 + 81, 100 + 82, 100 + 83])
    assert annotations[0].univ_annot3.shape == (3, 28, 3)


def _bad_cells(shape, cameras=14):
    column = np.empty((cameras, 1), dtype=object)
    for camera in range(cameras):
        column[camera, 0] = np.zeros(shape)
    return column


@pytest.mark.parametrize("overrides, cameras, message", [
    ({"annot2": _bad_cells((3, 55))}, [0], "'annot2' camera 0 has shape (3, 55)"),
    ({"annot3": np.zeros((3, 84))}, [0], "'annot3' is not a cell array"),
    ({"univ_annot3": _bad_cells((4, 84))}, [1], "camera 1 has different frame counts"),
    ({"annot2": _bad_cells((3, 56), cameras=4)}, [0, 8],
     "'annot2' has 4 camera cells; camera(s) [8] requested"),
])
def test_bad_v5_annotations(tmp_path, overrides, cameras, message):
    path = write_v5_annotations(tmp_path / "annot.mat", **overrides)
    with pytest.raises(UserError, match=re.escape(str(path))) as caught:
        mpi_inf_3dhp_raw.read_train_annotations(str(path), cameras)
    assert message in str(caught.value)


def test_v5_missing_variable_and_nan(tmp_path):
    path = tmp_path / "annot.mat"
    scipy.io.savemat(str(path), {"annot2": _bad_cells((3, 56))})
    with pytest.raises(UserError, match="no variable 'annot3'"):
        mpi_inf_3dhp_raw.read_train_annotations(str(path), [0])
    cells = _bad_cells((3, 84))
    cells[2, 0][1, 4] = np.nan
    write_v5_annotations(path, annot3=cells)
    with pytest.raises(UserError, match="'annot3' camera 2 contains NaN"):
        mpi_inf_3dhp_raw.read_train_annotations(str(path), [2])


def test_v5_reader_rejects_garbage_and_v73_files(tmp_path):
    garbage = tmp_path / "annot.mat"
    garbage.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(UserError, match=re.escape(f"{garbage}: not a readable MATLAB v5 file")):
        mpi_inf_3dhp_raw.read_train_annotations(str(garbage), [0])
    v73 = tmp_path / "v73.mat"
    with h5py.File(v73, "w", userblock_size=512) as handle:
        handle["annot2"] = np.zeros((1, 2))
    with open(v73, "r+b") as handle:  # MATLAB's header, which scipy reads to pick a reader
        handle.write(b"MATLAB 7.3 MAT-file".ljust(124) + b"\x00\x02IM")
    with pytest.raises(UserError, match="is a MATLAB v7.3 file; expected the MATLAB v5"):
        mpi_inf_3dhp_raw.read_train_annotations(str(v73), [0])
    with pytest.raises(UserError, match="annotation file not found"):
        mpi_inf_3dhp_raw.read_train_annotations(str(tmp_path / "none.mat"), [0])


def test_v73_test_annotations(tmp_path):
    path = write_v73_annotations(tmp_path / "annot_data.mat")
    annotations = mpi_inf_3dhp_raw.read_test_annotations(str(path))
    assert annotations.annot2.shape == (4, 17, 2)
    assert annotations.univ_annot3.shape == (4, 17, 3)
    assert_array_equal(annotations.valid, [True, False, True, True])
    # Frame 1, joint 3 of annot3 is element (1, 0, 3, :) of the h5py array.
    assert_array_equal(annotations.annot3[1, 3], [51 + 9, 51 + 10, 51 + 11])
    assert_array_equal(annotations.univ_annot3[1, 3], [-60, -61, -62])


@pytest.mark.parametrize("overrides, message", [
    ({"annot2": np.zeros((4, 17, 2))}, "'annot2' has shape (4, 17, 2), expected (N, 1, 17, 2)"),
    ({"univ_annot3": None}, "no dataset 'univ_annot3'"),
    ({"valid_frame": np.ones((3, 1))}, "different frame counts"),
    ({"annot3": np.full((4, 1, 17, 3), np.inf)}, "'annot3' contains NaN or infinite"),
])
def test_bad_v73_annotations(tmp_path, overrides, message):
    path = write_v73_annotations(tmp_path / "annot_data.mat", **overrides)
    with pytest.raises(UserError, match=re.escape(str(path))) as caught:
        mpi_inf_3dhp_raw.read_test_annotations(str(path))
    assert message in str(caught.value)


def test_v73_reader_rejects_a_v5_file(tmp_path):
    path = write_v5_annotations(tmp_path / "annot_data.mat")
    with pytest.raises(UserError, match="not a MATLAB v7.3 \\(HDF5\\) file"):
        mpi_inf_3dhp_raw.read_test_annotations(str(path))
