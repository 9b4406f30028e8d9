"""Pose error metrics in millimetres (docs/faithfulness.md §3 and §8).

Everything here is numpy on arrays of poses `(..., J, 3)` and is vectorised over frames
and hypotheses: the only Python loop is over large chunks of frames in
`hypothesis_errors`, which bounds memory and lets the chunks run on several threads
(numpy's batched SVD and element-wise kernels release the GIL).
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Columns of `hypothesis_errors`: the paper's best-of-K number, then the two estimates a
# user without ground truth can pick (docs/faithfulness.md §3, last bullet).
ERROR_COLUMNS = ("best", "most_probable", "mixture_mean")

# 3DPCK threshold and AUC thresholds of the MPI-INF-3DHP protocol (docs/faithfulness.md §8).
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.arange(0, 151, 5)

# Frames per chunk in `hypothesis_errors`: with K = 5 and 17 joints one float64 pose
# array of a chunk is ~33 MB, so a worker's temporaries stay in the low hundreds of MB.
_CHUNK_FRAMES = 16384
_MAX_WORKERS = 8


def joint_errors(pred, gt):
    """Euclidean distance of every joint: `(..., J, 3)` x `(..., J, 3)` -> `(..., J)`.

    The two arrays broadcast against each other, e.g. hypotheses `(N, K, J, 3)` against
    ground truth `(N, 1, J, 3)`.
    """
    diff = np.asarray(pred) - np.asarray(gt)
    # einsum over the 3 coordinates is ~10x faster than np.linalg.norm's reduction here.
    return np.sqrt(np.einsum("...c,...c->...", diff, diff))


def mpjpe(pred, gt):
    """Mean per-joint position error, `(..., J, 3)` x `(..., J, 3)` -> `(...)`."""
    return joint_errors(pred, gt).mean(axis=-1)


def procrustes_align(pred, gt):
    """Align `pred` to `gt` by the best similarity transform (Protocol #2, docs/faithfulness.md §3).

    Finds rotation R (det +1, no reflection), scale s and translation t minimising
    sum_j |s R p_j + t - g_j|^2 over the J joints, and returns the aligned poses
    s R p_j + t with the broadcast shape of `pred` and `gt` (`(..., J, 3)`).

    Umeyama (1991) / Kabsch with the sign fix, with poses stored as rows:
      P, G    = pred, gt minus their centroids (J x 3)
      H       = P^T G = U S V^T                        (3 x 3 cross-covariance, SVD)
      D       = diag(1, 1, det(U) det(V))              (flips the weakest axis if U V^T
                                                        would be a reflection)
      aligned = s P U D V^T + mean(G),  s = trace(S D) / |P|_F^2
    (rows: p R^T = p U D V^T). This is the release's `compute_similarity_transform`
    of 3d-pose-baseline, written for batches.

    Degenerate input: if `pred` has no spread (all joints at one point) no rotation or
    scale is defined; we take s = 0, so every joint maps to the centroid of `gt`, which
    is also the least-squares optimum for a collapsed pose. If `gt` has no spread, H = 0
    and the result is again that centroid, i.e. `gt` itself. Neither case gives NaN.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    pred_centroid = _centroid(pred)
    gt_centroid = _centroid(gt)
    pred_centred = pred - pred_centroid
    gt_centred = gt - gt_centroid
    # matmul broadcasts, so a gt of shape (N, 1, J, 3) is never copied K times.
    cross_cov = np.swapaxes(pred_centred, -1, -2) @ gt_centred
    u, singular, vt = np.linalg.svd(cross_cov)
    reflection_fix = np.where(_det3(u) * _det3(vt) < 0, -1.0, 1.0)
    u[..., :, 2] *= reflection_fix[..., None]  # U D
    singular[..., 2] *= reflection_fix  # S D
    rotation_rows = u @ vt  # U D V^T acts on row vectors
    scale = _safe_scale(singular.sum(axis=-1), pred_centred, pred_centroid)
    return scale[..., None, None] * (pred_centred @ rotation_rows) + gt_centroid


def _centroid(poses):
    """Mean joint `(..., 1, 3)` of `(..., J, 3)` poses (einsum: ~4x faster than mean)."""
    return np.einsum("...jc->...c", poses)[..., None, :] / poses.shape[-2]


def _det3(matrices):
    """Determinant of `(..., 3, 3)` matrices as a triple product (faster than LU here)."""
    return np.sum(matrices[..., 0, :] * np.cross(matrices[..., 1, :], matrices[..., 2, :]),
                  axis=-1)


def _safe_scale(trace_sd, pred_centred, pred_centroid):
    """s = trace(S D) / |P|^2, or 0 where the pose's spread is only rounding noise."""
    spread = np.einsum("...jc,...jc->...", pred_centred, pred_centred)
    # Centring leaves residues of about eps * |centroid| per coordinate; a spread below
    # (a generous multiple of) that means all joints coincide.
    num_coords = pred_centred.shape[-2] * pred_centred.shape[-1]
    rounding = (100 * np.finfo(np.float64).eps) ** 2 * num_coords
    noise_floor = rounding * (1.0 + np.sum(pred_centroid**2, axis=(-2, -1)))
    degenerate = spread <= noise_floor
    return np.where(degenerate, 0.0, trace_sd / np.where(degenerate, 1.0, spread))


def mixture_mean_pose(hypotheses, weights):
    """Mean of the mixture, sum_k w_k mu_k: `(N, K, J, 3)`, `(N, K)` -> `(N, J, 3)`.

    Weights are renormalised to sum to 1 so that clipped or rounded mixing coefficients
    still give a pose (docs/faithfulness.md §2 clips a to [1e-8, 1] in the loss).
    """
    weights = np.asarray(weights, dtype=np.float64)
    totals = weights.sum(axis=-1, keepdims=True)
    weights = weights / np.where(totals > 0, totals, 1.0)
    return np.einsum("nk,nkjc->njc", weights, hypotheses)


def hypothesis_errors(hypotheses, weights, gt, procrustes=False, per_joint=False,
                      chosen=None, poses=None, chunk_frames=_CHUNK_FRAMES, workers=None):
    """Errors of K hypotheses per frame, in the units of the poses (mm).

    hypotheses: `(N, K, J, 3)`; weights: `(N, K)` mixing coefficients; gt: `(N, J, 3)`.
    Returns a dict with the keys of `ERROR_COLUMNS`, each `(N,)` (MPJPE per frame), or
    `(N, J)` per-joint errors with `per_joint=True` (for `pck` / `auc`):
      best           the hypothesis with the lowest MPJPE (the paper's number, §3);
                     per joint, that hypothesis' errors (not a joint-wise minimum)
      most_probable  the hypothesis with the largest weight (first one on ties)
      mixture_mean   the pose sum_k w_k hyp_k
    More columns, e.g. of selection strategies (mdm.evaluate.selection): `chosen` maps a
    column to `(N,)` indices of the hypothesis it picks per frame, `poses` maps a column
    to `(N, J, 3)` poses it proposes (measured like the mixture mean).
    With `procrustes=True` every hypothesis and every proposed pose is aligned to gt
    by `procrustes_align` before measuring (Protocol #2). Frames are processed in
    chunks of `chunk_frames` on `workers` threads (default: one per CPU, at most 8).
    """
    hypotheses, weights, gt = _check_hypothesis_shapes(hypotheses, weights, gt)
    num_frames, _, num_joints, _ = hypotheses.shape
    chosen, poses = dict(chosen or {}), dict(poses or {})
    columns = list(ERROR_COLUMNS) + list(chosen) + list(poses)
    outputs = {name: np.empty((num_frames, num_joints)) for name in columns}

    step = max(1, int(chunk_frames))

    def run_chunk(start):
        stop = min(start + step, num_frames)
        rows = slice(start, stop)
        chunk = _chunk_joint_errors(hypotheses[rows], weights[rows], gt[rows], procrustes,
                                    {name: index[rows] for name, index in chosen.items()},
                                    {name: pose[rows] for name, pose in poses.items()})
        for name in columns:
            outputs[name][rows] = chunk[name]

    starts = range(0, num_frames, step)
    workers = min(workers or _default_workers(), max(1, len(starts)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run_chunk, starts))  # list() re-raises a worker's exception
    if per_joint:
        return outputs
    return {name: errors.mean(axis=-1) for name, errors in outputs.items()}


def _default_workers():
    """One thread per CPU, at most `_MAX_WORKERS` (each holds ~250 MB of temporaries)."""
    return max(1, min(os.cpu_count() or 1, _MAX_WORKERS))


def _check_hypothesis_shapes(hypotheses, weights, gt):
    """Arrays with matching (N, K, J, 3), (N, K), (N, J, 3) shapes, or ValueError."""
    hypotheses, weights, gt = np.asarray(hypotheses), np.asarray(weights), np.asarray(gt)
    if hypotheses.ndim != 4 or hypotheses.shape[-1] != 3:
        raise ValueError(f"hypotheses must be (N, K, J, 3), got {hypotheses.shape}")
    n, k, j, _ = hypotheses.shape
    if weights.shape != (n, k):
        raise ValueError(f"weights must be {(n, k)}, got {weights.shape}")
    if gt.shape != (n, j, 3):
        raise ValueError(f"gt must be {(n, j, 3)}, got {gt.shape}")
    return hypotheses, weights, gt


def _chunk_joint_errors(hypotheses, weights, gt, procrustes, chosen, poses):
    """Per-joint errors `(n, J)` of each column for one chunk of frames."""
    hypotheses = hypotheses.astype(np.float64, copy=False)
    gt = gt.astype(np.float64, copy=False)
    poses = dict(mixture_mean=mixture_mean_pose(hypotheses, weights), **poses)
    if procrustes:
        hypotheses = procrustes_align(hypotheses, gt[:, None])
    errors = joint_errors(hypotheses, gt[:, None])  # (n, K, J)
    frames = np.arange(len(errors))
    chosen = dict(best=errors.mean(axis=-1).argmin(axis=1),
                  most_probable=np.argmax(weights, axis=1), **chosen)
    columns = {name: errors[frames, index] for name, index in chosen.items()}
    for name, pose in poses.items():
        pose = pose.astype(np.float64, copy=False)
        columns[name] = joint_errors(procrustes_align(pose, gt) if procrustes else pose, gt)
    return columns


def pck(joint_errs, threshold=PCK_THRESHOLD_MM):
    """Percentage (0-100) of joint errors at or below `threshold` (3DPCK, docs/faithfulness.md §8)."""
    joint_errs = np.asarray(joint_errs)
    return 100.0 * np.count_nonzero(joint_errs <= threshold) / joint_errs.size


def auc(joint_errs, thresholds=AUC_THRESHOLDS_MM):
    """Mean of `pck` over `thresholds`, as a percentage (MPI-INF-3DHP AUC, docs/faithfulness.md §8).

    Sorting once and counting with searchsorted avoids a (errors x thresholds) array.
    """
    sorted_errs = np.sort(np.asarray(joint_errs), axis=None)
    counts = np.searchsorted(sorted_errs, np.asarray(thresholds, dtype=np.float64),
                             side="right")
    return float(100.0 * np.mean(counts / sorted_errs.size))
