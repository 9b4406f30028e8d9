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


def _adjusted_numpy(means, stds, weights, joint_factors, joint_shrink, temperature):
    """The recalibrated kernels by hand: means pulled toward the most probable kernel's,
    stds times the factors, weights to the power t renormalised."""
    centre = means[np.arange(len(means)), np.argmax(weights, axis=1)][:, None]
    shrunk = centre + np.repeat(joint_shrink, 3) * (means - centre)
    tempered = np.asarray(weights, np.float64) ** temperature
    return shrunk, stds * np.repeat(joint_factors, 3), tempered / tempered.sum(1, keepdims=True)


def _adjustment(factors, shrink, temperature):
    return recalibration.Recalibration({}, np.asarray(factors), np.asarray(shrink),
                                       temperature).adjustment


def test_recalibrated_log_prob_equals_scipy():
    rng = np.random.default_rng(0)
    means, scales, weights = _mixture(rng)
    factors, shrink = [0.5, 1.0, 2.0, 3.0], [1.0, 0.3, 0.0, 1.4]
    targets = rng.normal(0.0, 1.0, (6, 12))
    distribution = mixture.mixture_distribution(
        means.astype(np.float64), scales.astype(np.float64), weights.astype(np.float64),
        _adjustment(factors, shrink, 2.5))
    shrunk, stds, tempered = _adjusted_numpy(means.astype(np.float64),
                                             scales[..., None].astype(np.float64), weights,
                                             factors, shrink, 2.5)
    log_terms = scipy_stats.norm.logpdf(targets[:, None], shrunk, stds).sum(-1) \
        + np.log(tempered)
    assert_allclose(distribution.log_prob(targets).numpy(), logsumexp(log_terms, axis=1),
                    rtol=1e-6)
    raw = mixture.mixture_distribution(means, scales, weights)  # unchanged without factors
    log_raw = scipy_stats.norm.logpdf(targets[:, None], means, scales[..., None]).sum(-1)
    assert_allclose(raw.log_prob(targets.astype(np.float32)).numpy(),
                    logsumexp(log_raw + np.log(weights), axis=1), rtol=1e-5)
    identity = mixture.mixture_distribution(means, scales, weights,
                                            _adjustment(np.ones(4), np.ones(4), 1.0))
    assert_allclose(identity.log_prob(targets.astype(np.float32)).numpy(),
                    raw.log_prob(targets.astype(np.float32)).numpy(), rtol=1e-5)


def test_shared_noise_draws_follow_the_mixture_and_ignore_the_batch():
    means = np.zeros((2, 3, 6), np.float32)
    means[:, 1] += 100.0
    means[:, 2] -= 100.0
    scales = np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
    weights = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]], np.float32)
    adjustment = _adjustment([1.0, 3.0], [1.0, 1.0], 1.0)
    noise = mixture.shared_noise(20000, 6, 5)
    draws = mixture.sample_with_noise(means, scales, weights, noise, adjustment).numpy()
    middle, high = np.abs(draws[0, :, 0]) < 50, draws[0, :, 0] > 50
    assert abs(middle.mean() - 0.2) < 0.01 and abs(high.mean() - 0.5) < 0.01
    assert_allclose(draws[0, high].std(axis=0), [2, 2, 2, 6, 6, 6], rtol=0.03)
    assert np.all(np.abs(draws[1, :, 0]) < 50)  # a zero weight is never drawn
    alone = mixture.sample_with_noise(means[1:], scales[1:], weights[1:], noise, adjustment)
    assert_allclose(alone.numpy()[0], draws[1])
    # Temperature 2 and shrink 0.5: weights 0.04, 0.25, 0.09 renormalised; kernels 0 and 2
    # halfway to the most probable kernel 1 (at 100): at 50 and at 0.
    tempered = mixture.sample_with_noise(means, scales, weights, noise,
                                         _adjustment([1.0, 1.0], [0.5, 0.5], 2.0)).numpy()
    near_zero, near_fifty = np.abs(tempered[0, :, 0]) < 25, np.abs(tempered[0, :, 0] - 50) < 25
    assert abs(near_zero.mean() - 0.09 / 0.38) < 0.01
    assert abs(near_fifty.mean() - 0.04 / 0.38) < 0.01
    assert_allclose(tempered[0, near_zero].mean(axis=0), [0.0] * 6, atol=0.1)
    assert_allclose(tempered[0, near_fifty].mean(axis=0), [50.0] * 6, atol=0.1)


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
    """Ground truth drawn from a known recalibrated 3-kernel mixture (drawn by hand from
    `_adjusted_numpy`'s kernels): the p-radius around the most probable kernel's mean
    holds it for a fraction p of the joints, per joint."""
    rng = np.random.default_rng(2)
    rows, joints = 3000, 4
    means, scales, weights = _mixture(rng, rows, 3, joints)
    factors, shrink, temperature = [0.7, 1.0, 1.5, 2.0], [1.0, 0.5, 0.2, 1.2], 2.0
    shrunk, stds, tempered = _adjusted_numpy(means, scales[..., None], weights, factors,
                                             shrink, temperature)
    spread = rng.uniform(20.0, 80.0, 3 * joints)
    kernel = np.array([rng.choice(3, p=w) for w in tempered])
    picked = np.arange(rows), kernel
    truth = shrunk[picked] + stds[picked] * rng.standard_normal((rows, 3 * joints))
    chosen = (means * spread)[np.arange(rows), np.argmax(weights, axis=1)]
    # Every row draws with the same random numbers, so one seed's quantile error is shared
    # by all rows (about 1.5 % of coverage at p = 0.5): averaged over 4 seeds.
    observed = np.mean([radius_coverage.observed_coverage(
        radius_coverage.joint_radii(means, scales, weights, spread, (0.5, 0.9, 0.95),
                                    _adjustment(factors, shrink, temperature), seed=seed),
        chosen.reshape(rows, joints, 3), (truth * spread).reshape(rows, joints, 3))
        for seed in range(4)], axis=0)
    assert observed.shape == (joints, 3)
    assert_allclose(observed, np.broadcast_to([0.5, 0.9, 0.95], observed.shape), atol=0.03)
    # Without the recalibration the radius is wrong for the joints it changes.
    raw = radius_coverage.joint_radii(means, scales, weights, spread, (0.9,))
    raw_observed = radius_coverage.observed_coverage(
        raw, chosen.reshape(rows, joints, 3), (truth * spread).reshape(rows, joints, 3))
    assert raw_observed[0, 0] > 0.93 and raw_observed[3, 0] < 0.8


def _known_case(rng, factors, shrink, temperature, rows=3000, kernels=3):
    """Kernels in mm and ground truth drawn from their recalibration (factors, shrink,
    temperature), drawn by hand."""
    joints = len(factors)
    means = rng.normal(0.0, 100.0, (rows, kernels, joints, 3))
    sigmas = rng.uniform(10.0, 40.0, (rows, kernels, 1, 1)) * np.ones((1, 1, joints, 3))
    weights = rng.dirichlet(np.ones(kernels), rows)
    shrunk, stds, tempered = _adjusted_numpy(means.reshape(rows, kernels, -1),
                                             sigmas.reshape(rows, kernels, -1), weights,
                                             factors, shrink, temperature)
    kernel = np.array([rng.choice(kernels, p=w) for w in tempered])
    picked = np.arange(rows), kernel
    truth = shrunk[picked] + stds[picked] * rng.standard_normal((rows, 3 * joints))
    return means, sigmas, weights, truth.reshape(rows, joints, 3)


def test_nll_gradient_and_value_equal_direct_computations():
    rng = np.random.default_rng(3)
    means, sigmas, weights, truth = _known_case(rng, [0.5, 2.0], [0.8, 1.0], 1.5, rows=200)
    terms = recalibration_fit.residual_terms(means, sigmas, weights, truth)
    tie = recalibration_fit.tie_matrix(2)
    params = np.array([0.3, -0.2, 0.7, 1.1, np.log(1.7)])
    log_weights = recalibration_fit.log_weights_of(weights)
    value, gradient = recalibration_fit.nll_and_gradient(params, terms, log_weights, tie)
    shrunk, stds, tempered = _adjusted_numpy(means.reshape(200, 3, -1),
                                             sigmas.reshape(200, 3, -1), weights,
                                             np.exp(params[:2]), params[2:4], 1.7)
    direct = uncertainty.negative_log_likelihood_mm(shrunk, stds, tempered,
                                                    truth.reshape(200, -1))
    assert_allclose(value, direct.mean(), rtol=1e-10)
    step = 1e-6
    for index in range(len(params)):
        shifted = params + step * np.eye(len(params))[index]
        numeric = (recalibration_fit.nll_and_gradient(shifted, terms, log_weights, tie)[0]
                   - value) / step
        assert_allclose(gradient[index], numeric, rtol=1e-4, atol=1e-6)


def test_fits_recover_known_recalibration(monkeypatch):
    # A smaller grid than the tool's (fewer sampled evaluations), same refinement.
    monkeypatch.setattr(recalibration_fit, "COARSE_WIDTHS", np.exp(np.linspace(
        np.log(0.3), np.log(3.5), 7)))
    monkeypatch.setattr(recalibration_fit, "TEMPERATURES", (1.0, 2.0))
    true_factors, true_shrink = np.array([0.5, 1.0, 2.0]), np.array([1.0, 0.6, 0.3])
    means, sigmas, weights, truth = _known_case(np.random.default_rng(4), true_factors,
                                                true_shrink, 2.0)
    fitted = recalibration_fit.fit_nll(means, sigmas, weights, truth)
    assert_allclose(fitted.joint_factors, true_factors, rtol=0.05)
    assert_allclose(fitted.joint_shrink, true_shrink, atol=0.05)
    assert_allclose(fitted.temperature, 2.0, rtol=0.1)
    calibrated, errors = recalibration_fit.fit_calibration(means[:1500], sigmas[:1500],
                                                           weights[:1500], truth[:1500])
    assert np.all(errors < 0.03)
    # Measured again with other draws (numpy's own sampler) on the other 1500 poses: the
    # fit holds, where the raw mixture is off for the joints the truth changed. (Width and
    # shrink trade off in this error, so the fitted values themselves are not unique.)
    def measured(joint_factors, joint_shrink, temperature):
        shrunk, stds, tempered = _adjusted_numpy(means[1500:].reshape(1500, 3, -1),
                                                 sigmas[1500:].reshape(1500, 3, -1),
                                                 weights[1500:], joint_factors, joint_shrink,
                                                 temperature)
        samples = uncertainty.sample_mixture_mm(shrunk, stds, tempered, 200,
                                                np.random.default_rng(9))
        levels = uncertainty.default_levels()
        observed = uncertainty.calibration_curve(samples.reshape(1500, 200, 3, 3),
                                                 truth[1500:], levels)
        return uncertainty.expected_calibration_error(observed, levels)[0]

    assert np.all(measured(calibrated.joint_factors, calibrated.joint_shrink,
                           calibrated.temperature) < 0.035)
    raw = measured(np.ones(3), np.ones(3), 1.0)
    assert raw[0] > 0.05 and raw[2] > 0.05
    # One width and shrink for joints 0 and 1 together: shared, joint 2 still recovered,
    # and a likelihood between the free fit's and the raw mixture's.
    tied = recalibration_fit.fit_nll(means, sigmas, weights, truth, {"pair": [0, 1]})
    assert tied.joint_factors[0] == tied.joint_factors[1]
    assert tied.joint_shrink[0] == tied.joint_shrink[1]
    assert_allclose(tied.joint_factors[2], 2.0, rtol=0.05)
    terms = recalibration_fit.residual_terms(means, sigmas, weights, truth)

    def nll(recal):
        params = np.concatenate([np.log(recal.joint_factors), recal.joint_shrink,
                                 [np.log(recal.temperature)]])
        return recalibration_fit.nll_and_gradient(
            params, terms, recalibration_fit.log_weights_of(weights), np.eye(3))[0]

    raw_nll = nll(recalibration.Recalibration({}, np.ones(3), np.ones(3), 1.0))
    assert nll(fitted) < nll(tied) < raw_nll


def test_record_round_trip_and_refusals(tmp_path, caplog):
    directory = str(tmp_path)
    factors, shrink = np.linspace(0.5, 2.0, 16), np.linspace(0.0, 1.5, 16)
    record = recalibration.make_record(7, factors, False, shrink, 3.0, objective="nll",
                                       calibration_subjects=[7])
    path = recalibration.write_record(directory, record)
    with pytest.raises(UserError, match="exists .*checkpoint-7.*--replace True"):
        recalibration.write_record(directory, record)
    loaded = recalibration.load_for(directory, 7, False)
    assert_allclose(loaded.joint_factors, factors)
    adjustment = loaded.adjustment
    assert_allclose(adjustment.coordinate_factors, np.repeat(factors, 3), rtol=1e-6)
    assert_allclose(adjustment.coordinate_shrink, np.repeat(shrink, 3), rtol=1e-6)
    assert adjustment.temperature == 3.0
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
    for key, value, message in (("temperature", 0.0, "temperature must be a positive"),
                                ("joint_shrink", dict(record["joint_shrink"], RHip=-0.1),
                                 "shrink of RHip must be a number >= 0"),
                                ("joint_shrink", [1.0], "joint_shrink must map")):
        with open(path, "w") as handle:
            json.dump(dict(record, **{key: value}), handle)
        with pytest.raises(UserError, match=message):
            recalibration.load_for(directory, 7, False)
    # A width-only file (before shrink and temperature existed) keeps both at 1.
    width_only = {key: value for key, value in record.items()
                  if key not in ("joint_shrink", "temperature")}
    with open(path, "w") as handle:
        json.dump(width_only, handle)
    old = recalibration.load_for(directory, 7, False)
    assert_allclose(old.joint_shrink, 1.0) and old.temperature == 1.0
    with open(path, "w") as handle:
        handle.write("{not json")
    with pytest.raises(UserError, match="cannot read"):
        recalibration.read_record(directory)
    assert recalibration.load_for(str(tmp_path / "elsewhere"), 7, False) is None
