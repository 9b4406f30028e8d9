"""mdm.data.cameras: rigid transforms, the distorted projection of docs/faithfulness.md §1 and the
cameras.h5 reader / writer."""

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.transform import Rotation

from mdm.core.errors import UserError
from mdm.data import cameras as cams


def _random_camera(rng, name="54138969", distortion=0.05):
    return cams.Camera(
        R=Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix(),
        T=rng.uniform(-3000, 3000, size=3),
        f=rng.uniform(1000, 1200, size=2),
        c=rng.uniform(450, 550, size=2),
        k=rng.uniform(-distortion, distortion, size=3),
        p=rng.uniform(-distortion / 10, distortion / 10, size=2),
        name=name,
    )


def _camera_table(rng, subjects=(1, 5)):
    names = ("54138969", "55011271", "58860488", "60457274")
    return {s: [_random_camera(rng, n) for n in names] for s in subjects}


def test_world_to_camera_matches_formula_and_round_trips():
    rng = np.random.default_rng(0)
    camera = _random_camera(rng)
    points = rng.uniform(-2000, 2000, size=(7, 5, 3))
    in_camera = cams.world_to_camera(points, camera)
    assert in_camera.shape == points.shape
    expected = np.empty_like(points)
    for index in np.ndindex(points.shape[:2]):
        expected[index] = camera.R @ (points[index] - camera.T)
    assert_allclose(in_camera, expected, rtol=1e-12, atol=1e-9)
    assert_allclose(cams.camera_to_world(in_camera, camera), points, rtol=1e-12, atol=1e-9)
    # Rigid: distances are preserved.
    assert_allclose(np.linalg.norm(in_camera[:, 0] - in_camera[:, 1], axis=-1),
                    np.linalg.norm(points[:, 0] - points[:, 1], axis=-1), rtol=1e-12)


def _project_point(point, camera):
    """docs/faithfulness.md §1 "Projection with distortion", one point, written out."""
    x_x, x_y = point[0] / point[2], point[1] / point[2]
    k1, k2, k3 = camera.k
    p1, p2 = camera.p
    r2 = x_x * x_x + x_y * x_y
    radial = 1.0 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    tan = p1 * x_y + p2 * x_x
    d_x = x_x * (radial + tan) + p2 * r2
    d_y = x_y * (radial + tan) + p1 * r2
    return np.array([camera.f[0] * d_x + camera.c[0], camera.f[1] * d_y + camera.c[1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distorted_projection_matches_reference_formula(seed):
    rng = np.random.default_rng(seed)
    camera = _random_camera(rng, distortion=0.2)
    points = np.concatenate([rng.uniform(-1500, 1500, size=(40, 2)),
                             rng.uniform(2000, 6000, size=(40, 1))], axis=1)
    pixels = cams.project_to_pixels(points, camera)
    expected = np.stack([_project_point(p, camera) for p in points])
    assert pixels.shape == (40, 2)
    assert_allclose(pixels, expected, rtol=1e-10, atol=1e-8)
    # The distortion is not a no-op here (otherwise the test could not fail on it).
    pinhole = camera.f * points[:, :2] / points[:, 2:] + camera.c
    assert np.max(np.abs(pinhole - expected)) > 0.1


def test_projection_batches_over_leading_axes():
    rng = np.random.default_rng(3)
    camera = _random_camera(rng)
    points = np.concatenate([rng.uniform(-500, 500, size=(3, 4, 2)),
                             rng.uniform(3000, 5000, size=(3, 4, 1))], axis=-1)
    pixels = cams.project_to_pixels(points, camera)
    assert pixels.shape == (3, 4, 2)
    for index in np.ndindex(3, 4):
        assert_allclose(pixels[index], _project_point(points[index], camera), rtol=1e-10)


def test_save_load_round_trip_and_file_layout(tmp_path):
    rng = np.random.default_rng(4)
    table = _camera_table(rng)
    path = str(tmp_path / "cameras.h5")
    cams.save_cameras(path, table)
    loaded = cams.load_cameras(path, [1, 5])
    assert sorted(loaded) == [1, 5]
    with h5py.File(path, "r") as handle:
        for subject, subject_cameras in table.items():
            assert len(loaded[subject]) == 4
            for index, (orig, back) in enumerate(zip(subject_cameras, loaded[subject]), 1):
                group = handle[f"subject{subject}/camera{index}"]
                # R is stored transposed in the file.
                assert_allclose(group["R"][()], orig.R.T, rtol=0, atol=0)
                assert group["T"].shape == (3, 1) and group["f"].shape == (2, 1)
                assert group["k"].shape == (3, 1) and group["p"].shape == (2, 1)
                name_codes = group["Name"][()]
                assert name_codes.shape == (8, 1) and name_codes.dtype == np.float64
                assert "".join(chr(int(v)) for v in name_codes.ravel()) == orig.name
                assert_array_equal(back.R, orig.R)
                for field in ("T", "f", "c", "k", "p"):
                    assert_array_equal(getattr(back, field), getattr(orig, field))
                assert back.name == orig.name and isinstance(back.name, str)


def test_load_reads_hand_written_file(tmp_path):
    """A file written with plain h5py in the 3d-pose-baseline layout (R transposed)."""
    path = tmp_path / "cameras.h5"
    rotation = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    with h5py.File(path, "w") as handle:
        for index, name in enumerate(["54138969", "55011271", "58860488", "60457274"], 1):
            group = handle.create_group(f"subject9/camera{index}")
            group["R"] = rotation.T
            group["T"] = np.array([[1.0], [2.0], [3.0]]) * index
            group["f"] = np.array([[1145.0], [1144.0]])
            group["c"] = np.array([[512.0], [515.0]])
            group["k"] = np.array([[-0.2], [0.24], [-0.0031]])
            group["p"] = np.array([[-0.0009], [-0.0005]])
            group["Name"] = np.array([[float(ord(ch))] for ch in name])
    loaded = cams.load_cameras(str(path), [9])[9]
    assert [c.name for c in loaded] == ["54138969", "55011271", "58860488", "60457274"]
    assert_allclose(loaded[0].R, rotation)
    assert_allclose(loaded[2].T, [3.0, 6.0, 9.0])
    assert_allclose(loaded[0].k, [-0.2, 0.24, -0.0031])
    assert_allclose(loaded[0].p, [-0.0009, -0.0005])
    world = np.array([100.0, -50.0, 20.0])
    assert_allclose(cams.world_to_camera(world, loaded[0]), rotation @ (world - [1.0, 2.0, 3.0]))


def test_real_cameras_file(h36m_sample_dir):
    loaded = cams.load_cameras(str(h36m_sample_dir / "cameras.h5"), [1])[1]
    assert [c.name for c in loaded] == ["54138969", "55011271", "58860488", "60457274"]
    for camera in loaded:
        assert_allclose(camera.R @ camera.R.T, np.eye(3), atol=1e-6)
        assert np.linalg.det(camera.R) == pytest.approx(1.0, abs=1e-6)


def _write_table(path, rng):
    cams.save_cameras(str(path), _camera_table(rng, subjects=(1,)))


def test_missing_file_raises_user_error(tmp_path):
    path = tmp_path / "nope" / "cameras.h5"
    with pytest.raises(UserError, match="cameras.h5") as info:
        cams.load_cameras(str(path), [1])
    assert str(path) in str(info.value)


def test_not_hdf5_raises_user_error(tmp_path):
    path = tmp_path / "cameras.h5"
    path.write_text("not hdf5")
    with pytest.raises(UserError) as info:
        cams.load_cameras(str(path), [1])
    assert str(path) in str(info.value)


def test_missing_group_raises_user_error(tmp_path):
    path = tmp_path / "cameras.h5"
    _write_table(path, np.random.default_rng(5))
    with pytest.raises(UserError) as info:
        cams.load_cameras(str(path), [1, 9])
    assert str(path) in str(info.value) and "subject9" in str(info.value)


@pytest.mark.parametrize("removed, named", [("subject1/camera4", ["camera4"]),
                                             ("subject1/camera2/k", ["camera2", "k"])])
def test_missing_camera_group_or_dataset_raises_user_error(tmp_path, removed, named):
    path = tmp_path / "cameras.h5"
    _write_table(path, np.random.default_rng(5))
    with h5py.File(path, "a") as handle:
        del handle[removed]
    with pytest.raises(UserError) as info:
        cams.load_cameras(str(path), [1])
    message = str(info.value)
    assert str(path) in message and all(name in message for name in named)


@pytest.mark.parametrize("dataset,shape", [("T", (3,)), ("R", (3, 2)), ("f", (1, 2))])
def test_wrong_shape_raises_user_error(tmp_path, dataset, shape):
    path = tmp_path / "cameras.h5"
    _write_table(path, np.random.default_rng(7))
    with h5py.File(path, "a") as handle:
        del handle[f"subject1/camera3/{dataset}"]
        handle[f"subject1/camera3/{dataset}"] = np.ones(shape)
    with pytest.raises(UserError) as info:
        cams.load_cameras(str(path), [1])
    assert str(path) in str(info.value) and dataset in str(info.value)
