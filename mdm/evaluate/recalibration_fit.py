"""Fitting the mixture's recalibration on frames the model did not train on.

In millimetres kernel k is a diagonal Gaussian with mean m_k and per-coordinate std
sigma_k (mdm/evaluate/uncertainty.py). The recalibration (mdm/model/mixture.py;
README, Recalibrated uncertainty) has, per joint j, a width factor b_j on sigma and a
shrink a_j of the kernel means toward the most probable kernel's mean c, and one
temperature t on the mixing weights:

    p(y) = sum_k w_k^t / Z  N(y; c + a (m_k - c), diag(b sigma_k)^2).

Two objectives:

* `fit_nll`: the mean negative log-likelihood of the ground truth. With r = y - c and
  d_k = m_k - c, the squared standardised residual of joint j in kernel k is
  Q = (E - 2 a X + a^2 D) / b^2, where E = sum_xyz (r / sigma)^2, X = sum r d / sigma^2
  and D = sum (d / sigma)^2 do not depend on the parameters: the NLL and its exact
  gradient cost O(N K J) per step (L-BFGS-B over log b, a and log t).
* `fit_calibration`: the calibration error of mdm.evaluate.uncertainty, per joint. For a
  given temperature joint j's marginal depends on (a_j, b_j) alone: a grid over the pairs,
  then a finer one around each joint's best, for each of TEMPERATURES (the one with the
  lowest mean error is kept); the same random draws for every candidate (common random
  numbers, so the error is a smooth function of the parameters).

`groups` ties joints to one (a, b) per group (e.g. torso / arms / legs), for when one per
joint would overfit. Pure numpy and scipy.
"""

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from mdm.checkpoint.recalibration import Recalibration
from mdm.evaluate import radius_coverage, uncertainty
from mdm.model.mixture import WEIGHT_RANGE

OBJECTIVES = ("calibration", "nll")
SAMPLES = 200  # as the calibration error is measured (mdm/evaluate/distribution_report.py)
# Down to 0.05: the calibration error measures the spread of the draws around their
# median, which the spread between kernel means keeps wide, so it can favour small widths.
COARSE_WIDTHS = np.exp(np.linspace(np.log(0.05), np.log(4.0), 11))  # ratio 1.55 per step
COARSE_SHRINKS = np.linspace(0.0, 1.0, 5)
TEMPERATURES = (1.0, 2.0, 4.0)
FINE_STEPS = 5  # per joint and parameter, spanning one coarse step either side
BOUNDS = {"log_width": (np.log(0.02), np.log(50.0)), "shrink": (0.0, 2.0),
          "log_temperature": (np.log(0.1), np.log(20.0))}


def tie_matrix(num_joints, groups=None):
    """(J, G) 0/1 matrix: joint j takes the parameters of its group (identity without
    groups; a joint in no group gets its own)."""
    if not groups:
        return np.eye(num_joints)
    columns = [np.isin(np.arange(num_joints), list(joints)) for joints in groups.values()]
    grouped = np.any(columns, axis=0)
    columns += [np.arange(num_joints) == j for j in np.flatnonzero(~grouped)]
    return np.stack(columns, axis=1).astype(np.float64)


def log_weights_of(weights):
    """log of the weights clipped as the mixture clips them (mdm/model/mixture.py)."""
    return np.log(np.clip(np.asarray(weights, np.float64), *WEIGHT_RANGE))


def residual_terms(means_mm, sigmas_mm, weights, targets_mm):
    """The parameter-free pieces of the NLL: E, X, D (N, K, J) and the kernels' log
    normaliser at width 1, (N, K)."""
    centre = radius_coverage.most_probable(means_mm, weights)  # (N, J, 3)
    offsets = (targets_mm - centre)[:, None] / sigmas_mm  # r / sigma
    spreads = (means_mm - centre[:, None]) / sigmas_mm  # d / sigma
    log_norm = -np.log(sigmas_mm).sum(axis=(-2, -1)) \
        - 0.5 * uncertainty.LOG_2PI * means_mm[0, 0].size
    return (np.sum(offsets ** 2, -1), np.sum(offsets * spreads, -1), np.sum(spreads ** 2, -1),
            log_norm)


def nll_and_gradient(params, terms, log_weights, tie):
    """Mean NLL at params = [log b (G), a (G), log t] and its gradient."""
    groups = tie.shape[1]
    log_width, shrink = tie @ params[:groups], tie @ params[groups:2 * groups]
    temperature = np.exp(params[-1])
    energy, cross, spread, log_norm = terms
    inverse_square = np.exp(-2.0 * log_width)
    squares = (energy - 2.0 * shrink * cross + shrink ** 2 * spread) * inverse_square
    tempered = log_weights * temperature
    tempered_weights = softmax(tempered, axis=1)
    log_terms = tempered - logsumexp(tempered, axis=1, keepdims=True) + log_norm \
        - 0.5 * squares.sum(-1) - 3.0 * log_width.sum()
    nll = -logsumexp(log_terms, axis=1)
    responsibility = softmax(log_terms, axis=1)  # (N, K)
    d_width = -np.einsum("nk,nkj->j", responsibility, squares - 3.0)
    d_shrink = -np.einsum("nk,nkj->j", responsibility,
                          (cross - shrink * spread) * inverse_square)
    mean_log_weight = np.sum(tempered_weights * log_weights, axis=1, keepdims=True)
    d_temperature = -np.sum(responsibility * (log_weights - mean_log_weight)) * temperature
    gradient = np.concatenate([tie.T @ d_width, tie.T @ d_shrink, [d_temperature]])
    return float(nll.mean()), gradient / len(nll)


def fit_nll(means_mm, sigmas_mm, weights, targets_mm, groups=None):
    """The Recalibration minimising the mean NLL; (N, K, J, 3) kernels, (N, J, 3)
    targets, weights (N, K)."""
    terms = residual_terms(means_mm, sigmas_mm, weights, targets_mm)
    tie = tie_matrix(means_mm.shape[2], groups)
    groups_count = tie.shape[1]
    start = np.concatenate([np.zeros(groups_count), np.ones(groups_count), [0.0]])
    bounds = [BOUNDS["log_width"]] * groups_count + [BOUNDS["shrink"]] * groups_count \
        + [BOUNDS["log_temperature"]]
    result = minimize(nll_and_gradient, start, args=(terms, log_weights_of(weights), tie),
                      jac=True, method="L-BFGS-B", bounds=bounds)
    return Recalibration({}, np.exp(tie @ result.x[:groups_count]),
                         tie @ result.x[groups_count:2 * groups_count],
                         float(np.exp(result.x[-1])))


def shared_draws(means_mm, sigmas_mm, weights, temperature, seed, num_samples=SAMPLES):
    """The pieces of `num_samples` draws per pose from the mixture at `temperature`:
    the most probable mean c (N, 1, J, 3), and per draw d_k = m_k - c and sigma_k eps
    (N, S, J, 3), so that a draw at (a, b) is c + a d_k + b sigma_k eps."""
    rng = np.random.default_rng(seed)
    centre = radius_coverage.most_probable(means_mm, weights)[:, None]
    tempered = softmax(log_weights_of(weights) * temperature, axis=1)
    kernel = uncertainty.pick_kernels(tempered, rng.random((len(weights), num_samples)))
    chosen = np.arange(len(weights))[:, None], kernel
    noise = sigmas_mm[chosen] * rng.standard_normal(means_mm[chosen].shape)
    return centre, means_mm[chosen] - centre, noise


def calibration_errors(draws, targets_mm, joint_shrink, joint_widths):
    """Calibration error (J,) of each joint from `shared_draws` at per-joint a and b (J,)."""
    centre, offsets, noise = draws
    samples = centre + np.asarray(joint_shrink)[:, None] * offsets \
        + np.asarray(joint_widths)[:, None] * noise
    levels = uncertainty.default_levels()
    observed = uncertainty.calibration_curve(samples, targets_mm, levels)
    return uncertainty.expected_calibration_error(observed, levels)[0]


def _grid_search(draws, targets_mm, candidates, tie):
    """candidates (C, 2, G): per group (a, b) -> the best (2, G) per group and the per-joint
    errors (J,) there."""
    per_joint = np.stack([calibration_errors(draws, targets_mm, tie @ a, tie @ b)
                          for a, b in candidates])  # (C, J)
    per_group = per_joint @ tie / tie.sum(axis=0)
    best = np.argmin(per_group, axis=0)
    columns = np.arange(tie.shape[1])
    chosen = candidates[best, :, columns].T  # (2, G)
    return chosen, calibration_errors(draws, targets_mm, tie @ chosen[0], tie @ chosen[1])


def fit_calibration(means_mm, sigmas_mm, weights, targets_mm, groups=None, seed=0):
    """The Recalibration minimising each joint's (or group's mean) calibration error, and
    the fitted calibration errors (J,)."""
    tie = tie_matrix(means_mm.shape[2], groups)
    groups_count = tie.shape[1]
    shrinks, widths = np.meshgrid(COARSE_SHRINKS, COARSE_WIDTHS, indexing="ij")
    coarse = np.repeat(np.stack([shrinks.ravel(), widths.ravel()], 1)[:, :, None],
                       groups_count, axis=2)
    fits = []
    for temperature in TEMPERATURES:
        draws = shared_draws(means_mm, sigmas_mm, weights, temperature, seed)
        chosen, errors = _grid_search(draws, targets_mm, coarse, tie)
        fits.append((errors.mean(), temperature, draws, chosen))
    _, temperature, draws, (shrink, width) = min(fits, key=lambda fit: fit[0])
    steps = np.linspace(-1.0, 1.0, FINE_STEPS)
    shrink_step = COARSE_SHRINKS[1] - COARSE_SHRINKS[0]
    width_ratio = COARSE_WIDTHS[1] / COARSE_WIDTHS[0]
    fine = np.stack([np.stack([np.maximum(shrink + da * shrink_step, 0.0),
                               width * width_ratio ** db])
                     for da in steps for db in steps])
    (shrink, width), errors = _grid_search(draws, targets_mm, fine, tie)
    return Recalibration({}, tie @ width, tie @ shrink, temperature), errors
