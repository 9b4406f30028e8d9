"""How good the mixture is as a distribution, not only as a set of K guesses.

The network's mixture has K isotropic Gaussians in the normalised output space:
component k has mean mu_k (D,) and one scale s_k. Coordinate d is un-normalised as
x_d = z_d * std_d + mean_d, so in millimetres component k is a diagonal Gaussian with
mean mu_k * std + mean and per-coordinate standard deviation s_k * std_d
(`means_to_mm`, `sigmas_to_mm`). Coordinates with std_d = 0 (the root joint, always 0)
carry no distribution and must be left out before these functions are called.

Measured here: the negative log-likelihood of the ground truth in millimetre units, the
best-of-S error of samples, and calibration by the definition of Pierzchlewicz et al.
(2023, cGNF): how often the ground truth lies inside the q-quantile of the samples'
spread around their median.

Pure numpy (plus scipy.special); nothing here imports TensorFlow. Functions take a chunk
of rows and return per-row values or counts, so a caller can stream a test set.
"""

import numpy as np
from scipy.special import logsumexp

# Rows of the (rows, K, D) log-density computed at once: bounds temporaries to ~tens of MB.
ROWS_PER_CHUNK = 16384
LOG_2PI = np.log(2.0 * np.pi)


def means_to_mm(means_normalised, coordinate_mean_mm, coordinate_std_mm):
    """Component means (N, K, D) normalised -> mm, with the data's mean and std (D,)."""
    return np.asarray(means_normalised) * coordinate_std_mm + coordinate_mean_mm


def sigmas_to_mm(scales_normalised, coordinate_std_mm):
    """Component scales (N, K) normalised -> per-coordinate std (N, K, D) mm."""
    return np.asarray(scales_normalised)[..., None] * np.asarray(coordinate_std_mm)


def negative_log_likelihood_mm(means_mm, sigmas_mm, weights, targets_mm):
    """-log p(target) under the diagonal-Gaussian mixture in mm units, (N,) nats.

    means_mm, sigmas_mm: (N, K, D), sigmas the per-coordinate std in mm (all > 0);
    weights: (N, K), rows summing to 1 (zeros allowed); targets_mm: (N, D).
    The density is per mm**D, so the value depends on the units (mm, not m).
    Computed with a log-sum-exp over components: finite even for sigmas so small that
    every component's density underflows.
    """
    means_mm, sigmas_mm = np.asarray(means_mm), np.asarray(sigmas_mm)
    weights, targets_mm = np.asarray(weights), np.asarray(targets_mm)
    if means_mm.shape != sigmas_mm.shape or means_mm.shape[:2] != weights.shape \
            or targets_mm.shape != (means_mm.shape[0], means_mm.shape[2]):
        raise ValueError(f"shapes means {means_mm.shape}, sigmas {sigmas_mm.shape}, "
                         f"weights {weights.shape}, targets {targets_mm.shape} disagree")
    if not np.all(sigmas_mm > 0):
        raise ValueError("sigmas must be > 0 (drop the root's zero-std coordinates)")
    nll = np.empty(len(weights), dtype=np.float64)
    for begin in range(0, len(weights), ROWS_PER_CHUNK):
        rows = slice(begin, begin + ROWS_PER_CHUNK)
        nll[rows] = _chunk_nll(means_mm[rows], sigmas_mm[rows], weights[rows],
                               targets_mm[rows])
    return nll


def _chunk_nll(means, sigmas, weights, targets):
    """`negative_log_likelihood_mm` of one chunk, in float64."""
    sigmas = sigmas.astype(np.float64)
    standardised = (targets[:, None, :].astype(np.float64) - means) / sigmas
    log_density = -0.5 * np.sum(standardised ** 2 + LOG_2PI, axis=-1) \
        - np.sum(np.log(sigmas), axis=-1)  # (n, K)
    with np.errstate(divide="ignore"):  # a zero weight is log 0 = -inf: that term drops
        log_weights = np.log(weights.astype(np.float64))
    return -logsumexp(log_weights + log_density, axis=1)


def nll_summary(nll, num_coordinates):
    """Mean NLL in nats per pose and per coordinate (per pose / D) from (N,) values."""
    per_pose = float(np.mean(nll))
    return {"nats_per_pose": per_pose, "nats_per_coordinate": per_pose / num_coordinates}


def sample_mixture_mm(means_mm, sigmas_mm, weights, num_samples, rng):
    """Draw `num_samples` from each row's mixture: (N, S, D) in the means' units.

    means_mm, sigmas_mm: (N, K, D); weights (N, K); rng: a `numpy.random.Generator`.
    Call per chunk of rows with the same Generator to stream a large test set.
    """
    means_mm, sigmas_mm = np.asarray(means_mm), np.asarray(sigmas_mm)
    component = pick_kernels(weights, rng.random((len(weights), num_samples)))[..., None]
    mean = np.take_along_axis(means_mm, component, axis=1)
    sigma = np.take_along_axis(sigmas_mm, component, axis=1)
    noise = rng.standard_normal(mean.shape, dtype=np.float64)
    return (mean + sigma * noise).astype(np.result_type(means_mm, np.float32), copy=False)


def pick_kernels(weights, uniform):
    """(N, S) kernel indices drawn by inverse CDF from weights (N, K) and uniforms (N, S):
    the number of cumulative weights at or below u."""
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64), axis=1)
    cumulative /= cumulative[:, -1:]  # rows that sum to 1 up to rounding
    component = (uniform[:, :, None] >= cumulative[:, None, :]).sum(axis=-1)
    return np.minimum(component, cumulative.shape[1] - 1)


def sample_chunks(means_mm, sigmas_mm, weights, num_samples, rng, rows_per_chunk):
    """Yield (rows, samples (n, S, J, 3)) over chunks of `rows_per_chunk` poses, from
    kernels (N, K, J, 3), weights (N, K) and one Generator (`sample_mixture_mm`)."""
    n, k, j, _ = means_mm.shape
    for start in range(0, n, rows_per_chunk):
        rows = slice(start, start + rows_per_chunk)
        yield rows, sample_mixture_mm(
            means_mm[rows].reshape(-1, k, j * 3), sigmas_mm[rows].reshape(-1, k, j * 3),
            weights[rows], num_samples, rng).reshape(-1, num_samples, j, 3)


def min_mpjpe_of_samples(samples, targets):
    """Best-of-S MPJPE: samples (N, S, J, 3), targets (N, J, 3) mm -> (N,) mm."""
    diff = np.asarray(samples) - np.asarray(targets)[:, None]
    per_sample = np.sqrt(np.einsum("...c,...c->...", diff, diff)).mean(axis=-1)
    return per_sample.min(axis=1)


def default_levels():
    """Quantile levels q = 0, 0.05, ..., 1 (21 values), as in cGNF."""
    return np.linspace(0.0, 1.0, 21)


def calibration_counts(samples, targets, levels):
    """Per joint and level, how many poses have their ground truth inside the quantile.

    samples: (N, S, J, 3) mm; targets: (N, J, 3) mm; levels: (Q,) in [0, 1].
    For each pose and joint: the coordinate-wise median of the S samples, the samples'
    distances to it, and the ground truth's distance to it; the ground truth counts at
    level q when its distance is strictly below the samples' q-quantile (linear
    interpolation, as `np.quantile`). Returns (J, Q) int64 counts over the N poses; add
    the counts of several chunks and divide by the total N for `calibration_curve`.
    Leave out the root joint: all its distances are 0, so it is never counted.
    """
    samples, targets = np.asarray(samples), np.asarray(targets)
    median = np.median(samples, axis=1)  # (N, J, 3)
    sample_distances = np.linalg.norm(samples - median[:, None], axis=-1)  # (N, S, J)
    target_distances = np.linalg.norm(targets - median, axis=-1)  # (N, J)
    thresholds = np.quantile(sample_distances, levels, axis=1)  # (Q, N, J)
    inside = target_distances[None] < thresholds
    return inside.sum(axis=1).T.astype(np.int64)


def calibration_curve(samples, targets, levels):
    """Observed fraction inside each quantile, (J, Q); see `calibration_counts`.

    A calibrated distribution gives observed(q) ~= q. Because the quantiles are of S
    samples, observed(0) and 1 - observed(1) are each about 1/(S + 1) (the ground truth
    closer to the median than every sample / farther than every sample), not exactly 0.
    """
    return calibration_counts(samples, targets, levels) / len(targets)


def overall_curve(observed):
    """All joints pooled: the mean of the per-joint curves (J, Q) -> (Q,)."""
    return np.asarray(observed).mean(axis=0)


def expected_calibration_error(observed, levels):
    """ECE = mean over levels of |observed(q) - q| per joint, and its median over joints.

    observed: (J, Q) (or (Q,) for one curve); levels: (Q,).
    Returns (per-joint ECE (J,), median over joints as float).
    """
    per_joint = np.abs(np.atleast_2d(observed) - np.asarray(levels)).mean(axis=-1)
    return per_joint, float(np.median(per_joint))
