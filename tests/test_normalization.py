"""mdm.data.normalization against per-dimension z-scores written out in numpy (docs/faithfulness.md §1)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from mdm.data.normalization import NormStats

# Positions (in the 17-joint order) that the model predicts, from docs/faithfulness.md §1:
# all but Hip (0); with predict_14 also without Spine (7) and Neck/Nose (9).
OUT_16 = list(range(1, 17))
OUT_14 = [j for j in range(17) if j not in (0, 7, 9)]


def _data(seed=0, n=500):
    rng = np.random.default_rng(seed)
    poses_2d = (rng.normal(size=(n, 16, 2)) * rng.uniform(5, 80, size=(16, 2))
                + rng.uniform(100, 900, size=(16, 2))).astype(np.float32)
    poses_3d = (rng.normal(size=(n, 17, 3)) * rng.uniform(20, 300, size=(17, 3))
                + rng.uniform(-500, 500, size=(17, 3))).astype(np.float32)
    poses_3d[:, 0] = 0.0  # root-centred
    return poses_2d, poses_3d


def _population_stats(values):
    values = np.asarray(values, np.float64)
    mean = values.sum(axis=0) / len(values)
    std = np.sqrt(((values - mean) ** 2).sum(axis=0) / len(values))
    return mean, std


def test_from_training_matches_population_mean_and_std():
    poses_2d, poses_3d = _data()
    stats = NormStats.from_training(poses_2d, poses_3d)
    mean_2d, std_2d = _population_stats(poses_2d)
    mean_3d, std_3d = _population_stats(poses_3d)
    assert stats.mean_2d.shape == (16, 2) and stats.mean_3d.shape == (17, 3)
    assert_allclose(stats.mean_2d, mean_2d, rtol=1e-10)
    assert_allclose(stats.std_2d, std_2d, rtol=1e-10)
    assert_allclose(stats.mean_3d, mean_3d, rtol=1e-10, atol=1e-9)
    assert_allclose(stats.std_3d, std_3d, rtol=1e-10, atol=1e-9)
    # Population (ddof=0), not sample (ddof=1), standard deviation.
    sample_std = np.asarray(poses_2d, np.float64).std(axis=0, ddof=1)
    assert not np.allclose(stats.std_2d, sample_std, rtol=1e-5, atol=0)


def test_normalize_inputs_is_joint_major_zscore():
    poses_2d, poses_3d = _data(1)
    stats = NormStats.from_training(poses_2d, poses_3d)
    test_2d, _ = _data(2, n=20)
    flat = stats.normalize_inputs(test_2d)
    assert flat.shape == (20, 32) and flat.dtype == np.float32
    mean, std = _population_stats(poses_2d)
    for joint in range(16):
        for coord in range(2):
            expected = (test_2d[:, joint, coord].astype(np.float64) - mean[joint, coord]) / std[
                joint, coord]
            assert_allclose(flat[:, 2 * joint + coord], expected, rtol=1e-5, atol=1e-5)


def test_inputs_round_trip():
    poses_2d, poses_3d = _data(3)
    stats = NormStats.from_training(poses_2d, poses_3d)
    back = stats.unnormalize_inputs(stats.normalize_inputs(poses_2d[:50]))
    assert back.shape == (50, 16, 2)
    assert_allclose(back, poses_2d[:50], rtol=1e-5, atol=1e-3)


def test_unnormalize_inputs_keeps_leading_axes():
    poses_2d, poses_3d = _data(4)
    stats = NormStats.from_training(poses_2d, poses_3d)
    z = np.random.default_rng(0).normal(size=(3, 4, 32))
    back = stats.unnormalize_inputs(z)
    assert back.shape == (3, 4, 16, 2)
    mean, std = _population_stats(poses_2d)
    assert_allclose(back[1, 2, 5, 1], z[1, 2, 11] * std[5, 1] + mean[5, 1], rtol=1e-6)


@pytest.mark.parametrize("predict_14,joints", [(False, OUT_16), (True, OUT_14)])
def test_normalize_targets_layout(predict_14, joints):
    poses_2d, poses_3d = _data(5)
    stats = NormStats.from_training(poses_2d, poses_3d)
    _, test_3d = _data(6, n=15)
    flat = stats.normalize_targets(test_3d, predict_14=predict_14)
    assert flat.shape == (15, 3 * len(joints)) and flat.dtype == np.float32
    mean, std = _population_stats(poses_3d)
    for position, joint in enumerate(joints):
        for coord in range(3):
            expected = (test_3d[:, joint, coord] - mean[joint, coord]) / std[joint, coord]
            assert_allclose(flat[:, 3 * position + coord], expected, rtol=1e-5, atol=1e-5)


def test_targets_round_trip_root_at_zero():
    poses_2d, poses_3d = _data(7)
    stats = NormStats.from_training(poses_2d, poses_3d)
    _, test_3d = _data(8, n=25)
    test_3d[:, 0] = 0.0
    back = stats.unnormalize_targets(stats.normalize_targets(test_3d))
    assert back.shape == (25, 17, 3)
    assert_array_equal(back[:, 0], 0.0)
    assert_allclose(back, test_3d, rtol=1e-5, atol=1e-2)


def test_predict14_round_trip_fills_training_mean():
    poses_2d, poses_3d = _data(9)
    stats = NormStats.from_training(poses_2d, poses_3d)
    mean, _ = _population_stats(poses_3d)
    _, test_3d = _data(10, n=25)
    back = stats.unnormalize_targets(stats.normalize_targets(test_3d, True), True)
    assert back.shape == (25, 17, 3)
    assert_array_equal(back[:, 0], 0.0)
    assert_allclose(back[:, OUT_14], test_3d[:, OUT_14], rtol=1e-5, atol=1e-2)
    for joint in (7, 9):  # Spine, Neck/Nose: not predicted
        assert_allclose(back[:, joint], np.broadcast_to(mean[joint], (25, 3)), rtol=1e-10)
        assert not np.allclose(back[:, joint], test_3d[:, joint], atol=1.0)


def test_unnormalize_targets_keeps_hypothesis_axis():
    poses_2d, poses_3d = _data(11)
    stats = NormStats.from_training(poses_2d, poses_3d)
    mean, std = _population_stats(poses_3d)
    z = np.random.default_rng(1).normal(size=(4, 5, 48)).astype(np.float32)
    back = stats.unnormalize_targets(z)
    assert back.shape == (4, 5, 17, 3)
    assert_array_equal(back[..., 0, :], 0.0)
    # Output position 6 (joint 7, Spine), coordinate 2 -> flat index 6 * 3 + 2.
    assert_allclose(back[2, 3, 7, 2], z[2, 3, 20] * std[7, 2] + mean[7, 2], rtol=1e-6)


def test_constant_dimension_does_not_divide_by_zero():
    poses_2d, poses_3d = _data(12)
    poses_2d[:, 3, 1] = 250.0
    stats = NormStats.from_training(poses_2d, poses_3d)
    flat = stats.normalize_inputs(poses_2d)
    assert np.all(np.isfinite(flat))
    assert_allclose(flat[:, 7], 0.0, atol=1e-6)
    assert_allclose(stats.unnormalize_inputs(flat)[:, 3, 1], 250.0, rtol=1e-6)


def test_arrays_round_trip():
    poses_2d, poses_3d = _data(13)
    stats = NormStats.from_training(poses_2d, poses_3d)
    again = NormStats.from_arrays(stats.as_arrays())
    for name in ("mean_2d", "std_2d", "mean_3d", "std_3d"):
        assert_array_equal(getattr(again, name), getattr(stats, name))
