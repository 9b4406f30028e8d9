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

* the per-joint radius around the most probable hypothesis (mdm/model/radius.py) for
  p = 0.5, 0.9 and 0.95, and how often it holds the ground truth, per joint group.

With a recalibration file for the checkpoint (mdm/checkpoint/recalibration.py) and
--recalibrate True (the default), every figure is of the recalibrated mixture and the
files are named *_recalibrated; --recalibrate False measures the network's raw spread.

Frames: every FRAME_STRIDE-th test frame (consecutive 50 Hz frames are nearly the same
pose, and sorting 200 samples per joint of every frame is the slow part).
"""

import json
import logging
import os

import numpy as np

from mdm.checkpoint import recalibration
from mdm.core import skeleton
from mdm.core.atomic import atomic_write
from mdm.evaluate import radius_coverage, reliability_figure, uncertainty
from mdm.model import mixture

LOG = logging.getLogger(__name__)
FRAME_STRIDE = 4
SAMPLES = 200
FEW_SAMPLES = 5
SAMPLE_SEED = 0
ROWS_PER_CHUNK = 1024  # (rows, 200, 16, 3) float32 samples at once: ~40 MB


def predicted_mm(stats, mixture_params, predict_14, adjustment=None):
    """Kernel means (N, K, J, 3), per-coordinate stds (N, K, J, 3) in mm over the J
    predicted joints, and weights (N, K), of the mixture recalibrated by `adjustment`
    (mixture.Adjustment; None: the network's)."""
    means, scales, weights = mixture_params
    joints = skeleton.output_joints(predict_14)
    means_mm = stats.unnormalize_targets(means, predict_14)[:, :, joints]
    std_mm = output_spread(stats, predict_14).reshape(-1, 3)
    # Clipped as the mixture clips them: a scale can underflow to 0 in float32.
    scales = np.clip(np.asarray(scales, np.float64), *mixture.SCALE_RANGE)
    sigmas_mm = scales[:, :, None, None] * std_mm
    weights = np.asarray(weights, np.float64)
    if adjustment is None:
        return means_mm, sigmas_mm, weights
    shape = means_mm.shape
    adjusted = mixture.adjusted_kernels(means_mm.reshape(*shape[:2], -1),
                                        sigmas_mm.reshape(*shape[:2], -1), weights, adjustment)
    return adjusted[0].numpy().reshape(shape), adjusted[1].numpy().reshape(shape), \
        adjusted[2].numpy()


def output_spread(stats, predict_14):
    """(D,) mm per normalised unit of each flat output coordinate (the training std)."""
    return np.asarray(stats.std_3d, np.float64)[skeleton.output_joints(predict_14)].ravel()


def joint_groups(predict_14):
    """The reliability diagram's groups over the predicted joints; None for --predict_14,
    whose 14-joint set has other indices (overall figures only)."""
    return None if predict_14 else reliability_figure.h36m17_joint_groups(root_dropped=True)


def measure_all(mixture_params, stats, targets_mm, predict_14, mpjpe_scale, adjustment=None):
    """`measure` plus the radius coverage, for normalised mixture parameters and the
    mixture.Adjustment that recalibrates them (None: raw)."""
    means_mm, sigmas_mm, weights = predicted_mm(stats, mixture_params, predict_14, adjustment)
    figures, levels, observed = measure(means_mm, sigmas_mm, weights, targets_mm, mpjpe_scale,
                                        np.random.default_rng(SAMPLE_SEED))
    groups = joint_groups(predict_14) or {}
    figures["radius"] = radius_coverage.measure(
        *mixture_params, means_mm, targets_mm, output_spread(stats, predict_14), groups,
        adjustment)
    return figures, levels, observed


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
    for rows, samples in uncertainty.sample_chunks(means_mm, sigmas_mm, weights, SAMPLES, rng,
                                                   ROWS_PER_CHUNK):
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
    train_dir (with `_recalibrated` before the suffix when a recalibration is applied);
    returns the figures."""
    params = tuple(np.asarray(a)[::FRAME_STRIDE] for a in mixture_params)
    joints = skeleton.output_joints(config.predict_14)
    recal = recalibration.load_for(config.load_dir or config.train_dir, config.load,
                                   config.predict_14, config.recalibrate)
    targets = np.asarray(pose_set.poses_3d, np.float64)[::FRAME_STRIDE][:, joints]
    scale = len(joints) / len(skeleton.eval_joints(config.predict_14))
    figures, levels, observed = measure_all(params, stats, targets, config.predict_14, scale,
                                            recal.adjustment if recal else None)
    figures.update(frame_stride=FRAME_STRIDE, num_models=config.num_models,
                   checkpoint=config.load, calibration_levels=levels.tolist(),
                   calibration_observed=observed.tolist(),
                   recalibration=recal.record if recal else None)
    tag = f"{config.load}_recalibrated" if recal else f"{config.load}"
    with atomic_write(os.path.join(config.train_dir, f"uncertainty_{tag}.json")) as handle:
        json.dump(figures, handle, indent=1)
    draw_reliability(os.path.join(config.train_dir, f"reliability_{tag}.png"), levels, observed,
                     joint_groups(config.predict_14),
                     f"K = {config.num_models}, checkpoint-{config.load}"
                     f"{', recalibrated' if recal else ''}: calibration error "
                     f"{figures['calibration_error']:.3f}")
    LOG.info("the mixture as a distribution (%d frames, every %d-th%s):\n%s\n%s",
             figures["frames"], FRAME_STRIDE, ", recalibrated" if recal else "",
             format_figures(figures), format_radius(figures["radius"]))
    return figures


def draw_reliability(path, levels, observed, groups, title):
    """The reliability diagram of per-joint curves (J, Q), one curve per group."""
    curves = (reliability_figure.group_curves(observed, groups) if groups
              else {"overall": uncertainty.overall_curve(observed)})
    return reliability_figure.draw_reliability_diagram(path, levels, curves, title=title)


def format_radius(radius_figures):
    """Observed coverage of each nominal level's radius, one line per level."""
    lines = []
    for level, groups in radius_figures["observed"].items():
        values = ", ".join(f"{name} {value:.3f}" for name, value in groups.items())
        lines.append(f"  radius p = {level}: observed {values}; mean radius "
                     f"{radius_figures['mean_radius_mm'][level]:.1f} mm")
    return "\n".join(lines)


def format_figures(figures):
    """The report's scalar figures, one per line."""
    return "\n".join(f"  {name:32s} {value:.4g}" for name, value in figures.items()
                     if isinstance(value, float))
