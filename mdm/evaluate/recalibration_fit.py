"""Fitting per-joint factors on the mixture's spread, on frames the model did not train on.

The kernels are diagonal Gaussians in millimetres: kernel k's std of coordinate d is
s_k std_d (mdm/evaluate/uncertainty.py). A factor f_j multiplies the std of joint j's 3
coordinates in every kernel. Two objectives, each minimised over the log-factors:

* `fit_nll`: the mean negative log-likelihood of the ground truth. The squared
  standardised residuals A_nkj = sum_c ((y - mu_k) / (s_k std))^2 do not depend on f, so
  log N_k(f) = log N_k(1) - 0.5 sum_j A_nkj (f_j^-2 - 1) - 3 sum_j log f_j, and the NLL and
  its gradient cost O(N K J) per step (L-BFGS; the joints are coupled through the mixture).
* `fit_calibration`: the calibration error of mdm.evaluate.uncertainty, per joint. Joint
  j's marginal depends on f_j alone, so each joint is a one-dimensional search: a log grid,
  then a finer one around the best, all joints at once, the same random draws for every
  candidate (common random numbers, so the error is a smooth function of f).

`groups` ties joints to one factor per group (e.g. mdm.evaluate.reliability_figure's
torso / arms / legs), for when one factor per joint would overfit.

Pure numpy and scipy.
"""

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from mdm.evaluate import uncertainty

OBJECTIVES = ("calibration", "nll")
SAMPLES = 200  # as the calibration error is measured (mdm/evaluate/distribution_report.py)
ROWS_PER_CHUNK = 1024
# Down to 0.02: the calibration error measures the spread of the draws around their
# median, which the spread between kernel means keeps wide, so it can favour small factors.
COARSE_FACTORS = np.exp(np.linspace(np.log(0.02), np.log(4.0), 21))  # ratio 1.30 per step
FINE_STEPS = 7  # per joint, spanning one coarse step either side: ratio 1.09


def tie_matrix(num_joints, groups=None):
    """(J, G) 0/1 matrix: joint j takes the factor of its group (identity without groups;
    a joint in no group gets its own factor)."""
    if not groups:
        return np.eye(num_joints)
    columns = [np.isin(np.arange(num_joints), list(joints)) for joints in groups.values()]
    grouped = np.any(columns, axis=0)
    columns += [np.arange(num_joints) == j for j in np.flatnonzero(~grouped)]
    return np.stack(columns, axis=1).astype(np.float64)


def squared_residuals(means_mm, sigmas_mm, targets_mm):
    """A (N, K, J): sum over x, y, z of ((target - mean) / sigma)^2, and the kernels' log
    density at factor 1, (N, K) without the weights."""
    standardised = (targets_mm[:, None] - means_mm) / sigmas_mm
    squares = np.sum(standardised ** 2, axis=-1)
    log_density = -0.5 * squares.sum(-1) - np.log(sigmas_mm).sum(axis=(-2, -1)) \
        - 0.5 * uncertainty.LOG_2PI * means_mm[0, 0].size
    return squares, log_density


def nll_and_gradient(log_factors, squares, log_density, log_weights):
    """Mean NLL over poses at per-joint log-factors t (J,), and its gradient dNLL/dt."""
    inverse_square = np.exp(-2.0 * log_factors)
    log_terms = log_weights + log_density - 0.5 * np.einsum(
        "nkj,j->nk", squares, inverse_square - 1.0) - 3.0 * log_factors.sum()
    nll = -logsumexp(log_terms, axis=1)
    responsibility = softmax(log_terms, axis=1)  # (N, K)
    gradient = -np.einsum("nk,nkj->j", responsibility, squares * inverse_square - 3.0)
    return float(nll.mean()), gradient / len(nll)


def fit_nll(means_mm, sigmas_mm, weights, targets_mm, groups=None):
    """Per-joint factors (J,) minimising the mean NLL; (N, K, J, 3) kernels, (N, J, 3)
    targets, weights (N, K)."""
    squares, log_density = squared_residuals(means_mm, sigmas_mm, targets_mm)
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.asarray(weights, np.float64))
    tie = tie_matrix(squares.shape[-1], groups)

    def objective(tied):
        value, gradient = nll_and_gradient(tie @ tied, squares, log_density, log_weights)
        return value, tie.T @ gradient

    result = minimize(objective, np.zeros(tie.shape[1]), jac=True, method="L-BFGS-B")
    return np.exp(tie @ result.x)


def per_joint_calibration_error(means_mm, sigmas_mm, weights, targets_mm, joint_factors,
                                seed=0, num_samples=SAMPLES):
    """Calibration error (J,) of each joint with the factors (J,) applied, from
    `num_samples` draws per pose with a fixed `seed` (the same draws for any factors)."""
    levels = uncertainty.default_levels()
    counts = np.zeros((means_mm.shape[2], len(levels)), np.int64)
    sigmas_mm = sigmas_mm * np.asarray(joint_factors)[:, None]
    for rows, samples in uncertainty.sample_chunks(means_mm, sigmas_mm, weights, num_samples,
                                                   np.random.default_rng(seed), ROWS_PER_CHUNK):
        counts += uncertainty.calibration_counts(samples, targets_mm[rows], levels)
    per_joint, _ = uncertainty.expected_calibration_error(counts / len(means_mm), levels)
    return per_joint


def fit_calibration(means_mm, sigmas_mm, weights, targets_mm, groups=None, seed=0):
    """Per-joint factors (J,) minimising each joint's (or group's mean) calibration error.
    Returns (factors, the fitted calibration errors (J,))."""
    num_joints = means_mm.shape[2]
    tie = tie_matrix(num_joints, groups)

    def errors_of(group_factors):  # (G,) -> per-group mean calibration error (G,)
        per_joint = per_joint_calibration_error(means_mm, sigmas_mm, weights, targets_mm,
                                                tie @ group_factors, seed)
        return (tie.T @ per_joint) / tie.sum(axis=0)

    def search(candidates):  # (C, G) candidate factors -> the best per group
        errors = np.stack([errors_of(row) for row in candidates])
        best = np.argmin(errors, axis=0)
        columns = np.arange(candidates.shape[1])
        return candidates[best, columns], errors[best, columns]

    groups_count = tie.shape[1]
    coarse, _ = search(np.repeat(COARSE_FACTORS[:, None], groups_count, axis=1))
    step = COARSE_FACTORS[1] / COARSE_FACTORS[0]
    fine = coarse[None] * step ** np.linspace(-1.0, 1.0, FINE_STEPS)[:, None]
    factors, _ = search(fine)
    joint_factors = tie @ factors
    return joint_factors, per_joint_calibration_error(means_mm, sigmas_mm, weights, targets_mm,
                                                      joint_factors, seed)
