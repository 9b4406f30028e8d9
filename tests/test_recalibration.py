"""Recalibrated spread and per-joint radius: the mixture with per-coordinate factors
against scipy, the shared-noise sampler, the radius's coverage on data drawn from a known
distribution, the fitted factors against known ones, and the recalibration file."""

import json
import logging

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose
from scipy import stats as scipy_stats
from scipy.special import logsumexp

from mdm.checkpoint import recalibration
from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.evaluate import radius_coverage, recalibration_fit, uncertainty
from mdm.model import mixture, radius


def _mixture(rng, rows=6, kernels=3, joints=4):
    means = rng.normal(0.0, 1.0, (rows, kernels, 3 * joints)).astype(np.float32)
    scales = rng.uniform(0.2, 1.5, (rows, kernels)).astype(np.float32)
    weights = rng.dirichlet(np.ones(kernels), rows).astype(np.float32)
    return means, scales, weights


def test_recalibrated_log_prob_equals_scipy():
    rng = np.random.default_rng(0)
    means, scales, weights = _mixture(rng)
    factors = recalibration.coordinate_factors([0.5, 1.0, 2.0, 3.0])
    targets = rng.normal(0.0, 1.0, (6, 12))
    distribution = mixture.mixture_distribution(means.astype(np.float64),
                                                scales.astype(np.float64),
                                                weights.astype(np.float64), factors)
    stds = scales[..., None].astype(np.float64) * factors
    log_terms = scipy_stats.norm.logpdf(targets[:, None], means, stds).sum(-1) + np.log(weights)
    assert_allclose(distribution.log_prob(targets).numpy(), logsumexp(log_terms, axis=1),
                    rtol=1e-6)
    raw = mixture.mixture_distribution(means, scales, weights)  # unchanged without factors
    log_raw = scipy_stats.norm.logpdf(targets[:, None], means, scales[..., None]).sum(-1)
    assert_allclose(raw.log_prob(targets.astype(np.float32)).numpy(),
                    logsumexp(log_raw + np.log(weights), axis=1), rtol=1e-5)


def test_shared_noise_draws_follow_the_mixture_and_ignore_the_batch():
    means = np.zeros((2, 3, 6), np.float32)
    means[:, 1] += 100.0
    means[:, 2] -= 100.0
    scales = np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
    weights = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]], np.float32)
    factors = recalibration.coordinate_factors([1.0, 3.0])
    noise = mixture.shared_noise(20000, 6, 5)
    draws = mixture.sample_with_noise(means, scales, weights, noise, factors).numpy()
    middle, high = np.abs(draws[0, :, 0]) < 50, draws[0, :, 0] > 50
    assert abs(middle.mean() - 0.2) < 0.01 and abs(high.mean() - 0.5) < 0.01
    assert_allclose(draws[0, high].std(axis=0), [2, 2, 2, 6, 6, 6], rtol=0.03)
    assert np.all(np.abs(draws[1, :, 0]) < 50)  # a zero weight is never drawn
    alone = mixture.sample_with_noise(means[1:], scales[1:], weights[1:], noise, factors)
    assert_allclose(alone.numpy()[0], draws[1])


def test_quantile_of_draws_equals_numpy():
    values = np.random.default_rng(1).normal(size=(5, 37, 4)).astype(np.float32)
    for level in (0.0, 0.5, 0.9, 0.95, 1.0):
        assert_allclose(radius.quantile_of_draws(values, level).numpy(),
                        np.quantile(values, level, axis=1), rtol=1e-6, atol=1e-6)


def test_radius_of_one_gaussian_is_the_chi_quantile():
    """One isotropic kernel of std sigma (mm) per joint: the distance from its mean is
    sigma * chi(3), so the p-radius is sigma * sqrt(chi2.ppf(p, 3))."""
    means = np.zeros((3, 1, 6), np.float32)
    scales = np.array([[1.0], [2.0], [0.5]], np.float32)
    spread = np.array([10.0] * 3 + [40.0] * 3)
    radii = radius.joint_radius_numpy(means, scales, np.ones((3, 1), np.float32), means[:, 0],
                                      spread, [0.5, 0.9], seed=0)
    sigma = scales[:, :, None] * np.array([10.0, 40.0])[None, :, None]
    expected = sigma * np.sqrt(scipy_stats.chi2.ppf([0.5, 0.9], 3))
    assert_allclose(radii, expected, rtol=0.05)
    again = radius.joint_radius_numpy(means, scales, np.ones((3, 1), np.float32), means[:, 0],
                                      spread, [0.5, 0.9], seed=0, rows_per_chunk=2)
    assert_allclose(again, radii, rtol=1e-6)  # chunking changes nothing


def test_radius_covers_truth_drawn_from_the_mixture():
    """Ground truth drawn from a known 3-kernel mixture: the p-radius around the most
    probable kernel's mean holds it for a fraction p of the joints, per joint."""
    rng = np.random.default_rng(2)
    rows, joints = 3000, 4
    means, scales, weights = _mixture(rng, rows, 3, joints)
    factors = recalibration.coordinate_factors([0.7, 1.0, 1.5, 2.0])
    spread = rng.uniform(20.0, 80.0, 3 * joints)
    kernel = np.array([rng.choice(3, p=w / w.sum()) for w in weights])
    truth = means[np.arange(rows), kernel] + scales[np.arange(rows), kernel, None] * factors \
        * rng.standard_normal((rows, 3 * joints))
    radii = radius_coverage.joint_radii(means, scales, weights, spread, (0.5, 0.9, 0.95),
                                        factors)
    chosen = (means * spread)[np.arange(rows), np.argmax(weights, axis=1)]
    observed = radius_coverage.observed_coverage(
        radii, chosen.reshape(rows, joints, 3), (truth * spread).reshape(rows, joints, 3))
    assert observed.shape == (joints, 3)
    assert_allclose(observed, np.broadcast_to([0.5, 0.9, 0.95], observed.shape), atol=0.03)
    # Without the factors the radius is wrong for every joint whose factor is not 1.
    raw = radius_coverage.joint_radii(means, scales, weights, spread, (0.9,))
    raw_observed = radius_coverage.observed_coverage(
        raw, chosen.reshape(rows, joints, 3), (truth * spread).reshape(rows, joints, 3))
    assert raw_observed[0, 0] > 0.93 and raw_observed[3, 0] < 0.8


def _known_case(rng, factors, rows=3000, kernels=3):
    joints = len(factors)
    means = rng.normal(0.0, 100.0, (rows, kernels, joints, 3))
    sigmas = rng.uniform(10.0, 40.0, (rows, kernels, 1, 1)) * np.ones((1, 1, joints, 3))
    weights = rng.dirichlet(np.ones(kernels), rows)
    kernel = np.array([rng.choice(kernels, p=w) for w in weights])
    picked = np.arange(rows), kernel
    truth = means[picked] + sigmas[picked] * np.asarray(factors)[:, None] \
        * rng.standard_normal((rows, joints, 3))
    return means, sigmas, weights, truth


def test_nll_gradient_and_value_equal_direct_computations():
    rng = np.random.default_rng(3)
    means, sigmas, weights, truth = _known_case(rng, [0.5, 2.0], rows=200)
    squares, log_density = recalibration_fit.squared_residuals(means, sigmas, truth)
    log_factors = np.array([0.3, -0.2])
    value, gradient = recalibration_fit.nll_and_gradient(log_factors, squares, log_density,
                                                         np.log(weights))
    scaled = sigmas * np.exp(log_factors)[:, None]
    direct = uncertainty.negative_log_likelihood_mm(
        means.reshape(200, 3, -1), scaled.reshape(200, 3, -1), weights, truth.reshape(200, -1))
    assert_allclose(value, direct.mean(), rtol=1e-10)
    step = 1e-6
    for j in range(2):
        shifted = log_factors + step * np.eye(2)[j]
        numeric = (recalibration_fit.nll_and_gradient(shifted, squares, log_density,
                                                      np.log(weights))[0] - value) / step
        assert_allclose(gradient[j], numeric, rtol=1e-4)


def test_fits_recover_known_factors(monkeypatch):
    # A coarser first grid than the tool's (fewer sampled evaluations), same refinement.
    monkeypatch.setattr(recalibration_fit, "COARSE_FACTORS", np.exp(np.linspace(
        np.log(0.3), np.log(3.5), 9)))
    true_factors = np.array([0.5, 1.0, 2.0])
    means, sigmas, weights, truth = _known_case(np.random.default_rng(4), true_factors)
    assert_allclose(recalibration_fit.fit_nll(means, sigmas, weights, truth), true_factors,
                    rtol=0.04)
    fitted, errors = recalibration_fit.fit_calibration(means[:1500], sigmas[:1500],
                                                       weights[:1500], truth[:1500])
    assert_allclose(fitted, true_factors, rtol=0.1)
    assert np.all(errors < 0.03)
    # One factor for joints 0 and 1 together: between their two true factors.
    tied = recalibration_fit.fit_nll(means, sigmas, weights, truth, {"pair": [0, 1]})
    assert tied[0] == tied[1] and 0.5 < tied[0] < 1.0
    assert_allclose(tied[2], 2.0, rtol=0.04)


def test_record_round_trip_and_refusals(tmp_path, caplog):
    directory = str(tmp_path)
    factors = np.linspace(0.5, 2.0, 16)
    record = recalibration.make_record(7, factors, False, objective="nll",
                                       calibration_subjects=[7])
    path = recalibration.write_record(directory, record)
    with pytest.raises(UserError, match="exists .*checkpoint-7.*--replace True"):
        recalibration.write_record(directory, record)
    loaded = recalibration.load_for(directory, 7, False)
    assert_allclose(loaded.joint_factors, factors)
    assert_allclose(loaded.coordinate_factors, np.repeat(factors, 3), rtol=1e-6)
    assert loaded.factors_17(False)[skeleton.ROOT] == 1.0
    with caplog.at_level(logging.INFO, logger="mdm.checkpoint.recalibration"):
        assert recalibration.load_for(directory, 8, False) is None
        assert recalibration.load_for(directory, 7, False, enabled=False) is None
    assert "fitted for checkpoint-7, not checkpoint-8" in caplog.text
    assert "--recalibrate False" in caplog.text
    recalibration.write_record(directory, dict(record, checkpoint=9), replace=True)
    assert recalibration.read_record(directory)["checkpoint"] == 9
    broken = dict(record, joint_factors=dict(record["joint_factors"], LWrist=-1.0))
    with open(path, "w") as handle:
        json.dump(broken, handle)
    with pytest.raises(UserError, match="factor of LWrist must be a positive number"):
        recalibration.load_for(directory, 7, False)
    with open(path, "w") as handle:
        handle.write("{not json")
    with pytest.raises(UserError, match="cannot read"):
        recalibration.read_record(directory)
    assert recalibration.load_for(str(tmp_path / "elsewhere"), 7, False) is None
