"""Do a cross-fit's fold models spread their kernels like the checkpoint they stand in for?

A recalibration rescales the kernels it was fitted on (a width per joint or group, a
shrink, a temperature). How broad a run's kernels are is a trait of the training run,
not of the person it predicts: three 5-epoch runs of one recipe gave, on the same frames
of S8, the same four narrowest kernels within 11 % and a broadest one of median std 90,
143 and 324 mm, and each run's spread differed by at most 1.25x between two people
(README, "What the recalibration reaches"). So a fit made on fold models carries over to
the checkpoint only if its kernels look like theirs; `mdm.calibrate` compares them on the
same frames (a fold's held-out subjects, predicted by both) and says when they differ.

The comparison: each frame's kernels ranked from the narrowest to the broadest by their
std in mm (mean over the predicted coordinates), the median over frames for each rank,
and the checkpoint's medians over the fold's, per rank. Kernel indices are not
comparable between runs (which index becomes the broad one is up to training), ranks
are.
"""

import numpy as np

# A rank's median std this many times the fold's, or its inverse, counts as a mismatch.
# (Between the runs above, on S8 and S1: 1.6 to 4.4 at the broadest rank; one run on two
# people: at most 1.25 at any rank.)
MISMATCH_RATIO = 1.5


def spread_by_rank(sigmas_mm):
    """(K,) mm: the median over frames of each frame's k-th narrowest kernel std, from
    per-coordinate stds (N, K, J, 3)."""
    sigmas_mm = np.asarray(sigmas_mm, np.float64)
    per_kernel = sigmas_mm.reshape(sigmas_mm.shape[0], sigmas_mm.shape[1], -1).mean(axis=-1)
    return np.median(np.sort(per_kernel, axis=1), axis=0)


def compare(checkpoint_sigmas_mm, fold_sigmas_mm):
    """{checkpoint_mm, fold_mm, ratio (checkpoint / fold) per rank, mismatch} for the
    stds of the checkpoint and of a fold model on the same frames."""
    checkpoint = spread_by_rank(checkpoint_sigmas_mm)
    fold = spread_by_rank(fold_sigmas_mm)
    ratio = checkpoint / fold
    mismatch = bool(np.any((ratio > MISMATCH_RATIO) | (ratio < 1.0 / MISMATCH_RATIO)))
    return {"checkpoint_mm": checkpoint.tolist(), "fold_mm": fold.tolist(),
            "ratio": ratio.tolist(), "mismatch": mismatch}


def describe(comparison, fold_dir, subjects):
    """One line for the log; a warning's wording when the spreads differ."""
    line = (f"kernel std by rank, median mm, on subjects {list(subjects)}: checkpoint "
            f"{_mm(comparison['checkpoint_mm'])}, fold {fold_dir} "
            f"{_mm(comparison['fold_mm'])}")
    if comparison["mismatch"]:
        line += (f"; WARNING: a rank differs by more than {MISMATCH_RATIO}x, so the fit "
                 "made on this fold may not carry over to the checkpoint")
    return line


def _mm(values):
    return "/".join(f"{value:.0f}" for value in values)
