"""mdm.evaluate.distribution_report: the --uncertainty figures against direct numpy/scipy
computations, and the files it writes."""

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats as scipy_stats
from scipy.special import logsumexp

from mdm.core.config import Config
from mdm.data.containers import PoseSet, Stream
from mdm.data.normalization import NormStats
from mdm.evaluate import distribution_report


def random_case(rng, n=40, k=3, j=16):
    means = rng.normal(0.0, 100.0, (n, k, j, 3))
    sigmas = np.broadcast_to(rng.uniform(5.0, 50.0, (n, k, 1, 1)) *
                             rng.uniform(0.5, 2.0, (j, 3)), (n, k, j, 3))
    weights = rng.dirichlet(np.ones(k), n)
    targets = means[np.arange(n), rng.integers(k, size=n)] + rng.normal(0, 20.0, (n, j, 3))
    return means, sigmas, weights, targets


def test_nll_and_best_of_kernels_equal_direct_computations():
    rng = np.random.default_rng(0)
    means, sigmas, weights, targets = random_case(rng)
    figures, levels, observed = distribution_report.measure(means, sigmas, weights, targets,
                                                            1.0, np.random.default_rng(1))
    log_components = scipy_stats.norm.logpdf(targets[:, None], means, sigmas).sum(axis=(2, 3))
    nll = -logsumexp(log_components + np.log(weights), axis=1)
    assert_allclose(figures["nll_nats_per_pose"], nll.mean(), rtol=1e-9)
    assert_allclose(figures["nll_nats_per_coordinate"], nll.mean() / 48, rtol=1e-9)
    kernel = np.linalg.norm(means - targets[:, None], axis=-1).mean(axis=-1).min(axis=1)
    assert_allclose(figures["best_of_3_kernels_mm"], kernel.mean(), rtol=1e-9)
    assert observed.shape == (16, len(levels))
    assert 0.0 <= figures["calibration_error"] <= 0.5


def test_samples_of_a_sharp_mixture_find_its_kernels():
    """With tiny scales every draw is a kernel mean: the best of 200 draws is the best
    kernel, and the best of 5 draws cannot beat it."""
    rng = np.random.default_rng(2)
    means, _, weights, targets = random_case(rng)
    sigmas = np.full(means.shape, 1e-6)
    figures, _, _ = distribution_report.measure(means, sigmas, weights, targets, 16 / 17,
                                                np.random.default_rng(3))
    assert_allclose(figures["min_mpjpe_200_samples_mm"], figures["best_of_3_kernels_mm"],
                    rtol=1e-4)
    assert figures["min_mpjpe_5_samples_mm"] >= figures["best_of_3_kernels_mm"] - 1e-3


def test_a_calibrated_mixture_has_a_small_calibration_error_and_an_overconfident_one_not():
    rng = np.random.default_rng(4)
    n, j = 2000, 16
    means = np.zeros((n, 1, j, 3))
    targets = rng.normal(0.0, 30.0, (n, j, 3))
    good, _, _ = distribution_report.measure(means, np.full(means.shape, 30.0), np.ones((n, 1)),
                                             targets, 1.0, np.random.default_rng(5))
    bad, _, _ = distribution_report.measure(means, np.full(means.shape, 9.0), np.ones((n, 1)),
                                            targets, 1.0, np.random.default_rng(5))
    assert good["calibration_error"] < 0.03 < 0.15 < bad["calibration_error"]


def report_case(rng, n, k):
    """Statistics, a random K-kernel mixture (normalised) and a PoseSet of n frames."""
    poses_3d = rng.normal(0.0, 200.0, (n, 17, 3))
    poses_3d[:, 0] = 0.0
    stats = NormStats.from_training(rng.normal(500, 50, (n, 16, 2)), poses_3d)
    mixture = (rng.normal(size=(n, k, 48)), rng.uniform(0.5, 1.5, (n, k)),
               rng.dirichlet(np.ones(k), n))
    pose_set = PoseSet(poses_2d=np.zeros((n, 16, 2), np.float32),
                       poses_3d=poses_3d.astype(np.float32), roots=np.zeros((n, 3)),
                       stream_index=np.zeros(n, np.int32), frame_index=np.arange(n),
                       streams=[Stream(9, "Walking", "Walking 1", 0)])
    return stats, mixture, pose_set


def test_run_writes_the_figures_and_the_reliability_diagram(tmp_path):
    n, k = 24, 2
    stats, mixture, pose_set = report_case(np.random.default_rng(6), n, k)
    config = Config(train_dir=str(tmp_path), load=7, num_models=k)
    figures = distribution_report.run(mixture, stats, pose_set, config)
    written = json.load(open(tmp_path / "uncertainty_7.json"))
    assert written["frames"] == len(range(0, n, distribution_report.FRAME_STRIDE))
    assert written["calibration_error"] == pytest.approx(figures["calibration_error"])
    assert (tmp_path / "reliability_7.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_scale_that_underflowed_to_zero_is_clipped_as_the_mixture_clips_it():
    stats, mixture, _ = report_case(np.random.default_rng(8), 6, 2)
    scales = mixture[1].astype(np.float32)
    scales[0, 1] = 0.0
    _, sigmas_mm, _ = distribution_report.predicted_mm(stats, (mixture[0], scales, mixture[2]),
                                                       False)
    std_mm = distribution_report.output_spread(stats, False).reshape(16, 3)
    assert_allclose(sigmas_mm[0, 1], 1e-15 * std_mm)
    assert_allclose(sigmas_mm[1], scales[1, :, None, None] * std_mm, rtol=1e-6)


def test_run_applies_the_recalibration_of_its_step_and_names_the_files(tmp_path):
    """A recalibration.json for the loaded step changes the spread (factors multiply the
    per-joint stds) and the files are *_recalibrated; --recalibrate False measures raw."""
    import dataclasses

    from mdm.checkpoint import recalibration

    k = 2
    stats, mixture, pose_set = report_case(np.random.default_rng(7), 40, k)
    poses_3d = pose_set.poses_3d.astype(np.float64)
    factors, shrink, temperature = np.full(16, 0.5), np.full(16, 0.6), 2.0
    recalibration.write_record(str(tmp_path), recalibration.make_record(
        7, factors, False, shrink, temperature))
    config = Config(train_dir=str(tmp_path), load=7, num_models=k)
    recalibrated = distribution_report.run(mixture, stats, pose_set, config)
    raw = distribution_report.run(mixture, stats, pose_set,
                                  dataclasses.replace(config, recalibrate=False))
    written = json.load(open(tmp_path / "uncertainty_7_recalibrated.json"))
    assert written["recalibration"]["checkpoint"] == 7
    assert json.load(open(tmp_path / "uncertainty_7.json"))["recalibration"] is None
    assert (tmp_path / "reliability_7_recalibrated.png").is_file()
    # By hand: half the stds, means 0.6 of the way from the most probable one, weights
    # squared and renormalised.
    stride = distribution_report.FRAME_STRIDE
    params = tuple(a[::stride] for a in mixture)
    means_mm, sigmas_mm, weights = distribution_report.predicted_mm(stats, params, False)
    centre = means_mm[np.arange(len(weights)), np.argmax(weights, axis=1)][:, None]
    tempered = weights ** 2 / np.sum(weights ** 2, axis=1, keepdims=True)
    targets = poses_3d[::stride, 1:]
    log_terms = [scipy_stats.norm.logpdf(targets[:, None], means_mm, sigmas_mm).sum(
        axis=(2, 3)) + np.log(weights),
        scipy_stats.norm.logpdf(targets[:, None], centre + 0.6 * (means_mm - centre),
                                0.5 * sigmas_mm).sum(axis=(2, 3)) + np.log(tempered)]
    assert_allclose([raw["nll_nats_per_pose"], recalibrated["nll_nats_per_pose"]],
                    [-logsumexp(terms, axis=1).mean() for terms in log_terms], rtol=1e-8)
    assert set(recalibrated["radius"]["observed"]) == {"0.5", "0.9", "0.95"}
    assert recalibrated["radius"]["mean_radius_mm"]["0.9"] < raw["radius"]["mean_radius_mm"]["0.9"]
