"""Carrying a fit over between training runs (mdm/evaluate/recalibration_anchor.py): the
curve under a recalibration against numpy's own draws, and anchored fits that must find
the recalibration a known difference between two runs calls for."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mdm.checkpoint.recalibration import Recalibration
from mdm.evaluate import recalibration_anchor, recalibration_fit, uncertainty

JOINTS = 3


def _kernels(rng, rows=1500, kernels=3):
    """(means, sigmas (N, K, J, 3) mm, weights (N, K), targets (N, J, 3)): targets drawn
    from the raw mixture, so the raw curve is near the diagonal."""
    means = rng.normal(0.0, 40.0, (rows, kernels, JOINTS, 3))
    sigmas = rng.uniform(5.0, 30.0, (rows, kernels, 1, 1)) * np.ones((1, 1, JOINTS, 3))
    weights = rng.dirichlet(np.ones(kernels), rows)
    pick = np.array([rng.choice(kernels, p=w) for w in weights])
    rows_index = np.arange(rows)
    targets = means[rows_index, pick] + sigmas[rows_index, pick] * rng.standard_normal(
        (rows, JOINTS, 3))
    return means, sigmas, weights, targets


def test_curve_under_a_recalibration_equals_numpys_draws():
    """The curve from the fit's shared draws against samples drawn one by one with numpy
    from the recalibrated mixture (other random numbers: equal within sampling noise)."""
    rng = np.random.default_rng(0)
    means, sigmas, weights, targets = _kernels(rng)
    recal = Recalibration({}, np.array([0.5, 1.0, 2.0]), np.array([1.0, 0.5, 0.0]), 2.0)
    centre = means[np.arange(len(means)), np.argmax(weights, axis=1)][:, None]
    shrunk = centre + recal.joint_shrink[:, None] * (means - centre)
    tempered = weights ** recal.temperature
    tempered /= tempered.sum(axis=1, keepdims=True)
    samples = np.empty((len(means), 200, JOINTS, 3))
    for row in range(len(means)):
        kernel = rng.choice(len(tempered[row]), size=200, p=tempered[row])
        samples[row] = shrunk[row, kernel] + recal.joint_factors[:, None] \
            * sigmas[row, kernel] * rng.standard_normal((200, JOINTS, 3))
    by_hand = uncertainty.calibration_curve(samples, targets, uncertainty.default_levels())
    assert_allclose(recalibration_anchor.curve_under((means, sigmas, weights, targets), recal),
                    by_hand, atol=0.035)


@pytest.fixture
def doubling_grid(monkeypatch):
    """Widths on powers of two (so half a grid width is a grid width), two temperatures."""
    monkeypatch.setattr(recalibration_fit, "COARSE_WIDTHS", 2.0 ** np.arange(-3.0, 3.0))
    monkeypatch.setattr(recalibration_fit, "TEMPERATURES", (1.0, 2.0))


def test_a_run_twice_as_wide_gets_half_the_widths(doubling_grid):
    """The fold run's fit, carried over to a run whose kernels are twice as wide on the same
    frames: the anchored widths are half, the shrinks and temperature the same, and the
    checkpoint's curve then is the fold run's exactly (common draws)."""
    fold = _kernels(np.random.default_rng(1), rows=300)
    means, sigmas, weights, targets = fold
    wider = (means, 2.0 * sigmas, weights, targets)
    fold_fit = Recalibration({}, np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, 0.0]), 2.0)
    curve = recalibration_anchor.target_curve([fold], fold_fit)
    anchored, distance = recalibration_anchor.anchored_fit(wider, curve)
    assert_allclose(anchored.joint_factors, fold_fit.joint_factors / 2.0)
    assert_allclose(anchored.joint_shrink, fold_fit.joint_shrink)
    assert anchored.temperature == fold_fit.temperature
    assert_allclose(distance, 0.0, atol=1e-12)
    assert np.all(recalibration_anchor.distance(wider, curve) > 0.02)  # raw: off
    assert_allclose(recalibration_anchor.distance(wider, curve, anchored), 0.0, atol=1e-12)


def test_the_diagonal_as_target_is_the_plain_calibration_fit(doubling_grid):
    kernels = _kernels(np.random.default_rng(2), rows=200)
    diagonal = np.tile(uncertainty.default_levels(), (JOINTS, 1))
    plain, plain_errors = recalibration_fit.fit_calibration(*kernels)
    anchored, errors = recalibration_anchor.anchored_fit(kernels, diagonal)
    assert_allclose(anchored.joint_factors, plain.joint_factors)
    assert_allclose(anchored.joint_shrink, plain.joint_shrink)
    assert anchored.temperature == plain.temperature
    assert_allclose(errors, plain_errors)
