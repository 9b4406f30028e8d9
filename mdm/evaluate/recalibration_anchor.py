"""Carrying a cross-fit over to the checkpoint through people both trained on
(`python -m mdm.calibrate --folds ... --anchor_subjects 1`).

A fit on the fold models' held-out people sets widths, shrinks and a temperature for the
fold models' kernels. The checkpoint is another training run and spreads its kernels
otherwise (kernel_spread.py), so the same numbers give it another coverage. On anchor
subjects, which the checkpoint and every fold model trained on, both predict the same
frames; the fold models' calibration curve there under the fit (per joint) is what the
fit does to a model of this recipe on people it trained on. The checkpoint's own fit then
aims at that curve instead of the diagonal, so that the fit does to the checkpoint what
it did to the fold models, on people they trained on and, by the same token, on new
ones. Measured with a run that did not train on S8 standing in for the checkpoint:
README, "What the recalibration reaches".
"""

import numpy as np

from mdm.evaluate import recalibration_fit

DRAW_SEED = 0  # the fits' seed (recalibration_fit.fit_calibration)


def curve_under(kernels, recal=None):
    """The calibration curve (J, Q) of (means, sigmas, weights, targets) in mm under
    Recalibration `recal` (None: raw), with the draws the fit uses."""
    means_mm, sigmas_mm, weights, targets_mm = kernels
    ones = np.ones(means_mm.shape[2])
    shrink, widths, temperature = (ones, ones, 1.0) if recal is None else (
        recal.joint_shrink, recal.joint_factors, recal.temperature)
    draws = recalibration_fit.shared_draws(means_mm, sigmas_mm, weights, temperature,
                                           DRAW_SEED)
    return recalibration_fit.observed_curve(draws, targets_mm, shrink, widths)


def distance(kernels, curve, recal=None):
    """Per joint (J,), the mean |difference| of the curve under `recal` from `curve`."""
    return np.abs(curve_under(kernels, recal) - curve).mean(axis=-1)


def target_curve(fold_kernels, recal):
    """The fold models' mean curve (J, Q) under `recal`, each on the anchor frames."""
    return np.mean([curve_under(kernels, recal) for kernels in fold_kernels], axis=0)


def anchored_fit(checkpoint_kernels, curve, groups=None):
    """The checkpoint's Recalibration whose curve on the anchor frames is nearest `curve`,
    and the remaining distance per joint (J,)."""
    return recalibration_fit.fit_calibration(*checkpoint_kernels, groups,
                                             seed=DRAW_SEED, target_curve=curve)
