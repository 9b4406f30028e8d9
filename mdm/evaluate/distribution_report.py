"""`--test True --uncertainty True`: the predicted mixture measured as a distribution.

The network predicts K isotropic Gaussians in the normalised output space; un-normalising
coordinate d (x = z * std_d + mean_d) makes kernel k a diagonal Gaussian in millimetres
with per-coordinate std s_k * std_d. Over the predicted joints (the root is exactly 0 and
carries no density), this reports:

* the negative log-likelihood of the ground truth, nats per pose and per coordinate;
* minMPJPE@N: the best of N draws from the mixture (N = 200 as in the sampling
  literature, and N = 5), next to the best of the K kernel means, on the same frames;
* calibration as defined by Pierzchlewicz et al. 2023 (cGNF): for each quantile level
  q, the fraction of ground-truth joints closer to the per-joint median of 200 samples
  than the q-quantile of the samples' distances; its expected calibration error (mean
  |observed - q|, median over joints), and the reliability diagram as a PNG.

Frames: every FRAME_STRIDE-th test frame (consecutive 50 Hz frames are nearly the same
pose, and sorting 200 samples per joint of every frame is the slow part).
"""

import json
import logging
import os

import numpy as np

from mdm.core import skeleton
from mdm.core.atomic import atomic_write
from mdm.evaluate import reliability_figure, uncertainty

LOG = logging.getLogger(__name__)
FRAME_STRIDE = 4
SAMPLES = 200
FEW_SAMPLES = 5
SAMPLE_SEED = 0
ROWS_PER_CHUNK = 1024  # (rows, 200, 16, 3) float32 samples at once: ~40 MB


def predicted_mm(stats, means, scales, predict_14):
    """Kernel means (N, K, J, 3) and per-coordinate stds (N, K, J, 3) in mm, over the
    J predicted joints."""
    joints = skeleton.output_joints(predict_14)
    means_mm = stats.unnormalize_targets(means, predict_14)[:, :, joints]
    std_mm = np.asarray(stats.std_3d, np.float64)[joints]
    sigmas_mm = np.asarray(scales, np.float64)[:, :, None, None] * std_mm
    return means_mm, sigmas_mm


def measure(means_mm, sigmas_mm, weights, targets_mm, mpjpe_scale, rng):
    """Every figure of the report for (N, K, J, 3) kernels and (N, J, 3) ground truth.

    `mpjpe_scale` turns a mean over the predicted joints into the evaluation's MPJPE
    (whose joint set may include the root, whose error is 0)."""
    n, k, j, _ = means_mm.shape
    flat = (n, k, j * 3)
    nll = uncertainty.negative_log_likelihood_mm(
        means_mm.reshape(flat), sigmas_mm.reshape(flat), weights, targets_mm.reshape(n, -1))
    levels = uncertainty.default_levels()
    counts = np.zeros((j, len(levels)), np.int64)
    best_of = {SAMPLES: [], FEW_SAMPLES: []}
    for start in range(0, n, ROWS_PER_CHUNK):
        rows = slice(start, start + ROWS_PER_CHUNK)
        samples = uncertainty.sample_mixture_mm(
            means_mm[rows].reshape(-1, k, j * 3), sigmas_mm[rows].reshape(-1, k, j * 3),
            weights[rows], SAMPLES, rng).reshape(-1, SAMPLES, j, 3)
        counts += uncertainty.calibration_counts(samples, targets_mm[rows], levels)
        for count in best_of:
            best_of[count].append(uncertainty.min_mpjpe_of_samples(samples[:, :count],
                                                                   targets_mm[rows]))
    observed = counts / n
    per_joint_ece, median_ece = uncertainty.expected_calibration_error(observed, levels)
    kernel_errors = np.linalg.norm(means_mm - targets_mm[:, None], axis=-1).mean(axis=-1)
    figures = {
        "frames": int(n), "nll_nats_per_pose": float(nll.mean()),
        "nll_nats_per_coordinate": float(nll.mean() / (j * 3)),
        f"min_mpjpe_{SAMPLES}_samples_mm": float(np.concatenate(best_of[SAMPLES]).mean()
                                                  * mpjpe_scale),
        f"min_mpjpe_{FEW_SAMPLES}_samples_mm": float(np.concatenate(best_of[FEW_SAMPLES]).mean()
                                                      * mpjpe_scale),
        f"best_of_{k}_kernels_mm": float(kernel_errors.min(axis=1).mean() * mpjpe_scale),
        "calibration_error": median_ece,
        "calibration_error_per_joint": per_joint_ece.tolist(),
    }
    return figures, levels, observed


def run(mixture_params, stats, pose_set, config):
    """Measure, log, and write uncertainty_<step>.json and reliability_<step>.png to
    train_dir; returns the figures."""
    means, scales, weights = (np.asarray(a)[::FRAME_STRIDE] for a in mixture_params)
    joints = skeleton.output_joints(config.predict_14)
    means_mm, sigmas_mm = predicted_mm(stats, means, scales, config.predict_14)
    targets = np.asarray(pose_set.poses_3d, np.float64)[::FRAME_STRIDE][:, joints]
    scale = len(joints) / len(skeleton.eval_joints(config.predict_14))
    figures, levels, observed = measure(means_mm, sigmas_mm, weights, targets, scale,
                                        np.random.default_rng(SAMPLE_SEED))
    figures.update(frame_stride=FRAME_STRIDE, num_models=config.num_models,
                   checkpoint=config.load, calibration_levels=levels.tolist(),
                   calibration_observed=observed.tolist())
    prefix = os.path.join(config.train_dir, f"uncertainty_{config.load}")
    with atomic_write(prefix + ".json") as handle:
        json.dump(figures, handle, indent=1)
    groups = reliability_figure.h36m17_joint_groups(root_dropped=True)
    if config.predict_14:
        groups = None  # the 14-joint set has other indices: overall curve only
    curves = (reliability_figure.group_curves(observed, groups) if groups
              else {"overall": uncertainty.overall_curve(observed)})
    reliability_figure.draw_reliability_diagram(
        prefix.replace("uncertainty_", "reliability_") + ".png", levels, curves,
        title=f"K = {config.num_models}, checkpoint-{config.load}: "
              f"calibration error {figures['calibration_error']:.3f}")
    LOG.info("the mixture as a distribution (%d frames, every %d-th):\n%s", figures["frames"],
             FRAME_STRIDE, format_figures(figures))
    return figures


def format_figures(figures):
    """The report's scalar figures, one per line."""
    return "\n".join(f"  {name:32s} {value:.4g}" for name, value in figures.items()
                     if isinstance(value, float))
