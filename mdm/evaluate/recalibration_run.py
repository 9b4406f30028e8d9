"""`python -m mdm.calibrate`'s work: predict on held-out and test subjects, fit the
recalibration with both objectives, measure raw and recalibrated mixtures.

Held out = whole subjects a checkpoint did not train on: frames of a trained 50 Hz
sequence are nearly the trained frames themselves, so fitting on them would under-estimate
the spread new people need. Either the recalibrated checkpoint's own held-out subjects
(one fold), or a k-fold over subjects: each fold's checkpoint, trained without some
subjects, predicts them; the predictions are pooled in millimetres and the fit is written
for a checkpoint trained on all of them (cross-fitting: its miscalibration on new people
is taken to be the folds' one, which needs its kernels to spread like theirs; the report
compares them, kernel_spread.py).
"""

import dataclasses
import hashlib
import json
import os
from typing import NamedTuple

import numpy as np

from mdm.checkpoint import loading, recalibration, release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.core import skeleton
from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError
from mdm.data import splits
from mdm.evaluate import distribution_report, kernel_spread, prediction, recalibration_fit

VARIANTS = ("raw",) + recalibration_fit.OBJECTIVES
# The calibration objective draws 200 samples per frame and candidate factor: fitted on at
# most this many frames, evenly spread over the held-out ones (the error's sampling noise
# is then about 0.003).
CALIBRATION_FIT_FRAMES = 4096
# Leaving one fold out measures it on at most this many of its frames, evenly spread.
LEAVE_ONE_OUT_FRAMES = 8192


class Fold(NamedTuple):
    """A checkpoint directory (its latest checkpoint, or the recalibrated one) and the
    subjects it did not train on, whose predictions the fit pools."""

    load_dir: str
    subjects: tuple


def load_checkpoint(config):
    """(config with load/load_dir resolved and the saved architecture, model, stats)."""
    config = loading.with_resolved_checkpoint(config)
    path = checkpoint_store.checkpoint_path(config.load_dir, config.load)
    if release_format.checkpoint_format(path) == release_format.RELEASE:
        raise UserError(f"{path} is a released TF1 checkpoint without statistics: keep a "
                        "copy with its statistics first (Lifter.load(...).save(dir, step))")
    config = loading.with_saved_architecture(config, set(), config.load_dir)
    model, stats = loading.load_model(config.load_dir, config.load, config)
    return config, model, stats


def predict(predictor, stats, pose_set, config, stride, cache_path):
    """Normalised mixture parameters and ground truth (N, J, 3) mm over the predicted
    joints, every `stride`-th frame; kept in `cache_path` (.npz) for a rerun."""
    if os.path.isfile(cache_path):
        with np.load(cache_path) as cached:
            return tuple(cached[name] for name in ("means", "scales", "weights")), \
                cached["targets"]
    rows = np.arange(0, len(pose_set), stride)
    inputs = prediction.evaluation_inputs(stats, pose_set.poses_2d[rows], config.miss_num)
    params = prediction.predict_mixture(predictor, inputs)
    joints = skeleton.output_joints(config.predict_14)
    targets = np.asarray(pose_set.poses_3d, np.float64)[rows][:, joints]
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    with atomic_write(cache_path, "wb") as handle:
        np.savez(handle, means=params[0], scales=params[1], weights=params[2], targets=targets)
    return params, targets


def _cache_path(cache_dir, config, subjects, stride):
    """The predictions of checkpoint config.load of config.load_dir on `subjects`, named
    by the directory (its base name and a hash of its absolute path: folds of a k-fold
    share one cache), the step, the subjects, the 2D input and the stride."""
    where = os.path.abspath(config.load_dir)
    tag = f"{os.path.basename(where)}-{hashlib.sha1(where.encode()).hexdigest()[:8]}"
    source = f"sh-{config.sh_dir}" if config.use_sh else "gt"
    names = "_".join(str(s) for s in subjects)
    return os.path.join(cache_dir, f"mixture_{tag}_{config.load}_S{names}_{source}"
                                   f"_every{stride}.npz")


def held_out_prediction(config, fold, stride, cache_dir, loaded=None):
    """The checkpoint of fold.load_dir (config.load if it is config.load_dir, else its
    latest) predicting every `stride`-th frame of fold.subjects, which it did not train
    on: (normalised mixture parameters, targets (N, J, 3) mm, its statistics, its config).
    `loaded`: config.load_dir's (config, model, stats) if already loaded."""
    if os.path.abspath(fold.load_dir) == os.path.abspath(config.load_dir):
        fold_config, model, stats = loaded or load_checkpoint(config)
    else:
        fold_config, model, stats = load_checkpoint(dataclasses.replace(
            config, load_dir=fold.load_dir, load=0))
    if fold_config.predict_14 != config.predict_14:
        raise UserError(f"{fold.load_dir} predicts {'14' if fold_config.predict_14 else '16'}"
                        f" joints, {config.load_dir} does not: the folds must predict the "
                        "same joints")
    params, targets = predict(prediction.make_predictor(model, jit_compile=False), stats,
                              _frames_of(fold_config, fold.subjects), fold_config, stride,
                              _cache_path(cache_dir, fold_config, fold.subjects, stride))
    return params, targets, stats, fold_config


def held_out_kernels(config, fold, stride, cache_dir, loaded=None):
    """(means, sigmas) (N, K, J, 3) mm, weights (N, K), targets (N, J, 3) mm, and the step
    of `held_out_prediction`."""
    params, targets, stats, fold_config = held_out_prediction(config, fold, stride,
                                                              cache_dir, loaded)
    return _kernels_mm(params, targets, stats, config) + (fold_config.load,)


def _kernels_mm(params, targets, stats, config):
    """(means, sigmas, weights, targets) in mm from a prediction's normalised parameters."""
    return distribution_report.predicted_mm(stats, params, config.predict_14) + (targets,)


def _frames_of(config, subjects):
    """The PoseSet of `subjects` with config's data settings; a UserError if it is empty."""
    pose_set = splits.load_splits(dataclasses.replace(config, test_subjects=subjects),
                                  need_train=False)[1]
    if pose_set is None or not len(pose_set):
        raise UserError(f"no frames of subjects {list(subjects)} in {config.data_dir}")
    return pose_set


def held_out_folds(config, folds, stride, cache_dir, say, loaded=None):
    """`held_out_prediction` of every fold, its kernels in mm with the targets
    ((means, sigmas, weights, targets) per fold), and a record of each fold."""
    predicted, kernels, records = [], [], []
    for fold in folds:
        params, targets, stats, fold_config = held_out_prediction(config, fold, stride,
                                                                  cache_dir, loaded)
        say(f"held out: {len(targets)} frames of subjects {list(fold.subjects)} "
            f"predicted by {fold.load_dir} checkpoint-{fold_config.load}")
        predicted.append((params, targets, stats))
        kernels.append(_kernels_mm(params, targets, stats, config))
        records.append({"load_dir": os.path.abspath(fold.load_dir),
                        "checkpoint": fold_config.load, "subjects": list(fold.subjects),
                        "frames": len(targets)})
    return predicted, kernels, records


def compare_kernel_spreads(config, loaded, folds, fold_kernels, stride, cache_dir, say):
    """kernel_spread.compare of checkpoint config.load (`loaded`: its config, model,
    stats) and each fold model of another directory, on that fold's held-out frames (the
    checkpoint's predictions cached like the folds'): a list of records."""
    results = []
    for fold, (_, fold_sigmas, _, _) in zip(folds, fold_kernels):
        if os.path.abspath(fold.load_dir) == os.path.abspath(config.load_dir):
            continue  # the checkpoint's own held-out subjects: the same kernels
        own_sigmas = held_out_kernels(config, Fold(config.load_dir, fold.subjects), stride,
                                      cache_dir, loaded)[1]
        comparison = kernel_spread.compare(own_sigmas, fold_sigmas)
        say(kernel_spread.describe(comparison, fold.load_dir, fold.subjects))
        results.append(dict(comparison, load_dir=os.path.abspath(fold.load_dir),
                            subjects=list(fold.subjects)))
    return results


def _pooled(kernels):
    """Per-fold (means, sigmas, weights, targets) concatenated over the folds."""
    return [np.concatenate(arrays) for arrays in zip(*kernels)]


def fit(means_mm, sigmas_mm, weights, targets, groups):
    """{objective: Recalibration} from kernels in mm; the calibration objective on at most
    CALIBRATION_FIT_FRAMES of the rows (it draws 200 samples per row and candidate)."""
    every = calibration_rows(len(targets))
    calibrated, _ = recalibration_fit.fit_calibration(
        means_mm[every], sigmas_mm[every], weights[every], targets[every], groups)
    return {"nll": recalibration_fit.fit_nll(means_mm, sigmas_mm, weights, targets, groups),
            "calibration": calibrated}


def calibration_rows(count):
    """The rows the calibration objective is fitted on: every k-th, at most
    CALIBRATION_FIT_FRAMES."""
    return evenly_spread(count, CALIBRATION_FIT_FRAMES)


def evenly_spread(count, most):
    """Every k-th of `count` rows, at most `most` of them (a slice)."""
    return slice(None, None, max(1, -(-count // most)))


def leave_one_out(config, folds, predicted, kernels, groups, say):
    """How a fit on other people holds for a new one: for each fold, both objectives
    fitted on the other folds' pooled kernels, and the raw and both fits measured on this
    fold's predictions (at most LEAVE_ONE_OUT_FRAMES frames); `predicted` and `kernels`
    as `held_out_folds` gives them. A list of {subjects, load_dir, frames, fitted:
    {objective: record}, raw / objective: distribution_report figures}."""
    results = []
    for held, (fold, (params, targets, stats)) in enumerate(zip(folds, predicted)):
        fitted = fit(*_pooled(k for i, k in enumerate(kernels) if i != held), groups)
        rows = evenly_spread(len(targets), LEAVE_ONE_OUT_FRAMES)
        scale = _mpjpe_scale(targets, config)
        entry = {"subjects": list(fold.subjects), "load_dir": os.path.abspath(fold.load_dir),
                 "frames": len(targets[rows]), "fitted": {
                     objective: recalibration.make_record(
                         config.load, recal.joint_factors, config.predict_14,
                         recal.joint_shrink, recal.temperature)
                     for objective, recal in fitted.items()}}
        for variant in VARIANTS:
            entry[variant] = distribution_report.measure_all(
                tuple(p[rows] for p in params), stats, targets[rows], config.predict_14,
                scale, fitted[variant].adjustment if variant in fitted else None)[0]
            say(f"left out subjects {list(fold.subjects)}, {variant} fitted on the other "
                f"folds ({entry['frames']} frames):\n"
                f"{distribution_report.format_figures(entry[variant])}\n"
                f"{distribution_report.format_radius(entry[variant]['radius'])}")
        results.append(entry)
    return results


def _mpjpe_scale(targets, config):
    """A mean over the predicted joints -> the evaluation's MPJPE (whose joint set may
    include the root, whose error is 0)."""
    return targets.shape[1] / len(skeleton.eval_joints(config.predict_14))


def fit_and_measure(config, folds, granularity, fit_stride, test_stride, report_dir, say,
                    leave_out=False):
    """Fit on the held-out subjects of `folds` (Fold: a checkpoint directory and subjects
    it did not train on; every `fit_stride`-th frame, pooled), for checkpoint config.load
    of config.load_dir; measure that checkpoint on config.test_subjects (if any, every
    `test_stride`-th frame) and, with `leave_out`, each fold fitted on the others
    (`leave_one_out`). Writes the report and reliability diagrams to `report_dir`,
    returns the report."""
    config, model, stats = load_checkpoint(config)
    groups = distribution_report.joint_groups(config.predict_14) if granularity == "group" \
        else None
    if granularity == "group" and groups is None:
        raise UserError("--granularity group needs the 16 predicted joints (not --predict_14)")
    cache_dir = os.path.join(report_dir, "cache")
    predicted, fold_kernels, fold_records = held_out_folds(
        config, folds, fit_stride, cache_dir, say, (config, model, stats))
    spreads = compare_kernel_spreads(config, (config, model, stats), folds, fold_kernels,
                                     fit_stride, cache_dir, say)
    *kernels, targets = _pooled(fold_kernels)
    calibration_frames = len(range(len(targets))[calibration_rows(len(targets))])
    say(f"fitting on {len(targets)} frames (the calibration objective on "
        f"{calibration_frames})")
    fitted = fit(*kernels, targets, groups)
    subjects = sorted({s for fold in folds for s in fold.subjects})
    names = [skeleton.H36M17_NAMES[j] for j in skeleton.output_joints(config.predict_14)]
    report = {"checkpoint": config.load, "load_dir": config.load_dir,
              "calibration_subjects": subjects, "folds": fold_records,
              "test_subjects": list(config.test_subjects), "granularity": granularity,
              "joint_names": names, "kernel_spread": spreads, "fitted": {}, "test": {}}
    for objective, recal in fitted.items():
        say(f"{objective}: temperature {recal.temperature:.3f}; width, shrink " + ", ".join(
            f"{n} {f:.3f} {a:.3f}" for n, f, a in zip(names, recal.joint_factors,
                                                       recal.joint_shrink)))
        report["fitted"][objective] = recalibration.make_record(
            config.load, recal.joint_factors, config.predict_14, recal.joint_shrink,
            recal.temperature, calibration_subjects=subjects, folds=fold_records,
            objective=objective, granularity=granularity,
            frames=len(targets) if objective == "nll" else calibration_frames)
    if config.test_subjects:
        test_params, test_targets = predict(
            prediction.make_predictor(model, jit_compile=False), stats,
            _frames_of(config, config.test_subjects), config,
            test_stride, _cache_path(cache_dir, config, config.test_subjects, test_stride))
        report["test"] = measure_variants(test_params, test_targets, stats, config, fitted,
                                          report_dir, say)
        report["test_frame_stride"] = test_stride
    if leave_out:
        report["leave_one_out"] = leave_one_out(config, folds, predicted, fold_kernels,
                                                groups, say)
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, f"recalibration_report_{config.load}_{granularity}.json")
    with atomic_write(path) as handle:
        json.dump(report, handle, indent=1)
    say(f"report written to {path}")
    return report


def measure_variants(params, targets, stats, config, fitted, report_dir, say):
    """{"raw" | objective: distribution_report figures} on the test subjects, and a
    reliability diagram for each."""
    scale = _mpjpe_scale(targets, config)
    results = {}
    for variant in VARIANTS:
        figures, levels, observed = distribution_report.measure_all(
            params, stats, targets, config.predict_14, scale,
            fitted[variant].adjustment if variant in fitted else None)
        results[variant] = dict(figures, calibration_observed=observed.tolist(),
                                calibration_levels=levels.tolist())
        distribution_report.draw_reliability(
            os.path.join(report_dir, f"reliability_{config.load}_{variant}.png"), levels,
            observed, distribution_report.joint_groups(config.predict_14),
            f"subjects {list(config.test_subjects)}, {variant}: calibration error "
            f"{figures['calibration_error']:.3f}")
        say(f"test subjects {list(config.test_subjects)}, {variant} ({len(targets)} frames):\n"
            f"{distribution_report.format_figures(figures)}\n"
            f"{distribution_report.format_radius(figures['radius'])}")
    return results
