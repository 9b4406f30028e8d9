"""The mixture's likelihood, samples and calibration, checked against direct computation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal, norm

from mdm.evaluate.reliability_figure import (
    draw_reliability_diagram,
    group_curves,
    h36m17_joint_groups,
)
from mdm.evaluate.uncertainty import (
    calibration_counts,
    calibration_curve,
    default_levels,
    expected_calibration_error,
    means_to_mm,
    min_mpjpe_of_samples,
    negative_log_likelihood_mm,
    nll_summary,
    overall_curve,
    sample_mixture_mm,
    sigmas_to_mm,
)


def _random_mixture(rng, num_rows=20, num_hyp=3, dims=6):
    means = rng.normal(0.0, 100.0, (num_rows, num_hyp, dims))
    sigmas = rng.uniform(5.0, 50.0, (num_rows, num_hyp, dims))
    weights = rng.dirichlet(np.ones(num_hyp), num_rows)
    targets = means[:, 0] + rng.normal(0.0, 30.0, (num_rows, dims))
    return means, sigmas, weights, targets


def test_nll_equals_scipy_multivariate_normal():
    rng = np.random.default_rng(0)
    means, sigmas, weights, targets = _random_mixture(rng)
    expected = [-np.log(sum(w * multivariate_normal(m, np.diag(s ** 2)).pdf(x)
                            for m, s, w in zip(means[n], sigmas[n], weights[n])))
                for n, x in enumerate(targets)]
    assert_allclose(negative_log_likelihood_mm(means, sigmas, weights, targets), expected,
                    rtol=1e-10)


def test_nll_stays_finite_for_tiny_sigmas():
    rng = np.random.default_rng(1)
    means, sigmas, weights, targets = _random_mixture(rng)
    sigmas = sigmas * 1e-6  # every density underflows to 0 in plain exp
    log_terms = norm.logpdf(targets[:, None], means, sigmas).sum(axis=-1) + np.log(weights)
    peak = log_terms.max(axis=1)
    expected = -(peak + np.log(np.exp(log_terms - peak[:, None]).sum(axis=1)))
    nll = negative_log_likelihood_mm(means, sigmas, weights, targets)
    assert np.all(np.isfinite(nll)) and np.all(nll > 1e6)
    assert_allclose(nll, expected, rtol=1e-12)


def test_nll_rejects_zero_sigma_and_summary_divides_by_dims():
    rng = np.random.default_rng(2)
    means, sigmas, weights, targets = _random_mixture(rng)
    sigmas[0, 0, 0] = 0.0
    with pytest.raises(ValueError, match="sigmas"):
        negative_log_likelihood_mm(means, sigmas, weights, targets)
    summary = nll_summary(np.array([6.0, 12.0]), 6)
    assert summary == {"nats_per_pose": 9.0, "nats_per_coordinate": 1.5}


def test_normalised_parameters_to_mm():
    std, mean = np.array([2.0, 4.0]), np.array([10.0, -10.0])
    assert_allclose(means_to_mm(np.ones((1, 1, 2)), mean, std), [[[12.0, -6.0]]])
    assert_allclose(sigmas_to_mm(np.array([[0.5, 2.0]]), std), [[[1.0, 2.0], [4.0, 8.0]]])


def test_samples_follow_the_mixture():
    rng = np.random.default_rng(3)
    means = np.array([[[0.0, 0.0], [100.0, -50.0], [7.0, 7.0]]])
    sigmas = np.array([[[1.0, 2.0], [3.0, 3.0], [1.0, 1.0]]])
    weights = np.array([[0.3, 0.7, 0.0]])  # a zero-weight component is never drawn
    samples = sample_mixture_mm(means, sigmas, weights, 20000, rng)
    assert samples.shape == (1, 20000, 2)
    near_second = samples[0, :, 0] > 50.0
    assert abs(near_second.mean() - 0.7) < 0.02
    assert_allclose(samples[0, near_second].mean(axis=0), [100.0, -50.0], atol=0.1)
    assert_allclose(samples[0, near_second].std(axis=0), [3.0, 3.0], rtol=0.03)
    assert_allclose(samples[0, ~near_second].std(axis=0), [1.0, 2.0], rtol=0.03)


def test_min_mpjpe_of_samples_equals_loop():
    rng = np.random.default_rng(4)
    samples, targets = rng.normal(size=(5, 7, 4, 3)), rng.normal(size=(5, 4, 3))
    expected = [min(np.mean(np.linalg.norm(s - targets[n], axis=-1)) for s in samples[n])
                for n in range(5)]
    assert_allclose(min_mpjpe_of_samples(samples, targets), expected)


def _gaussian_poses(rng, num_poses, num_samples, num_joints, sample_std_factor):
    """Ground truth and samples from per-pose Gaussians; samples' std scaled by a factor."""
    centre = rng.normal(0.0, 300.0, (num_poses, 1, num_joints, 3))
    std = rng.uniform(20.0, 80.0, (num_poses, 1, num_joints, 1))
    truth = (centre + std * rng.standard_normal(centre.shape))[:, 0]
    noise = rng.standard_normal((num_poses, num_samples, num_joints, 3))
    return centre + sample_std_factor * std * noise, truth


def test_calibration_of_true_and_overconfident_distributions():
    rng = np.random.default_rng(5)
    levels = default_levels()
    samples, truth = _gaussian_poses(rng, 2000, 200, 3, 1.0)
    observed = calibration_curve(samples, truth, levels)
    assert observed.shape == (3, 21)
    assert np.all(np.diff(observed, axis=1) >= 0)
    assert np.all(observed[:, 0] < 0.02) and np.all(observed[:, -1] > 0.98)
    per_joint, median = expected_calibration_error(observed, levels)
    assert per_joint.shape == (3,) and median < 0.03

    narrow, truth = _gaussian_poses(rng, 2000, 200, 3, 0.3)
    _, median_narrow = expected_calibration_error(
        calibration_curve(narrow, truth, levels), levels)
    assert median_narrow > 0.15


def test_calibration_counts_accumulate_over_chunks():
    rng = np.random.default_rng(6)
    levels = default_levels()
    samples, truth = _gaussian_poses(rng, 300, 50, 2, 1.0)
    counts = calibration_counts(samples[:100], truth[:100], levels) \
        + calibration_counts(samples[100:], truth[100:], levels)
    assert counts.dtype == np.int64
    assert_allclose(counts / 300, calibration_curve(samples, truth, levels))
    # Brute force for one joint and level: GT strictly inside the sample quantile.
    median = np.median(samples[:, :, 1], axis=1)
    inside = [np.linalg.norm(truth[n, 1] - median[n])
              < np.quantile(np.linalg.norm(samples[n, :, 1] - median[n], axis=-1), 0.6)
              for n in range(300)]
    assert counts[1, 12] == sum(inside)


def test_group_curves_and_reliability_png(tmp_path):
    rng = np.random.default_rng(7)
    levels = default_levels()
    observed = np.sort(rng.uniform(size=(16, 21)), axis=1)
    groups = h36m17_joint_groups()
    assert sorted(j for joints in groups.values() for j in joints) == list(range(16))
    curves = group_curves(observed, groups)
    assert_allclose(curves["arms"], observed[10:16].mean(axis=0))
    assert_allclose(curves["overall"], overall_curve(observed))
    path = draw_reliability_diagram(str(tmp_path / "reliability.png"), levels, curves,
                                    "synthetic")
    data = (tmp_path / "reliability.png").read_bytes()
    assert path.endswith("reliability.png") and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
