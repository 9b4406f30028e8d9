"""`python -m mdm.calibrate`'s work: predict on held-out and test subjects, fit the
recalibration with both objectives, measure raw and recalibrated mixtures.

Held out = whole subjects the checkpoint did not train on (one fold of a k-fold over
subjects): frames of a trained 50 Hz sequence are nearly the trained frames themselves,
so fitting on them would under-estimate the spread new people need.
"""

import json
import os

import numpy as np

from mdm.checkpoint import loading, recalibration, release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.core import skeleton
from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError
from mdm.data import splits
from mdm.evaluate import distribution_report, prediction, recalibration_fit

VARIANTS = ("raw",) + recalibration_fit.OBJECTIVES
# The calibration objective draws 200 samples per frame and candidate factor: fitted on at
# most this many frames, evenly spread over the held-out ones (the error's sampling noise
# is then about 0.003).
CALIBRATION_FIT_FRAMES = 4096


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
    with atomic_write(cache_path, "wb") as handle:
        np.savez(handle, means=params[0], scales=params[1], weights=params[2], targets=targets)
    return params, targets


def _cache_path(report_dir, config, subjects, stride):
    names = "_".join(str(s) for s in subjects)
    return os.path.join(report_dir, "cache", f"mixture_{config.load}_S{names}_every{stride}.npz")


def fit(params, targets, stats, config, granularity):
    """{objective: Recalibration}; the calibration objective on at most
    CALIBRATION_FIT_FRAMES of the rows (it draws 200 samples per row and candidate)."""
    means_mm, sigmas_mm, weights = distribution_report.predicted_mm(stats, params,
                                                                    config.predict_14)
    groups = distribution_report.joint_groups(config.predict_14) if granularity == "group" \
        else None
    if granularity == "group" and groups is None:
        raise UserError("--granularity group needs the 16 predicted joints (not --predict_14)")
    every = calibration_rows(len(targets))
    calibrated, _ = recalibration_fit.fit_calibration(
        means_mm[every], sigmas_mm[every], weights[every], targets[every], groups)
    return {"nll": recalibration_fit.fit_nll(means_mm, sigmas_mm, weights, targets, groups),
            "calibration": calibrated}


def calibration_rows(count):
    """The rows the calibration objective is fitted on: every k-th, at most
    CALIBRATION_FIT_FRAMES."""
    return slice(None, None, max(1, -(-count // CALIBRATION_FIT_FRAMES)))


def fit_and_measure(config, granularity, fit_stride, test_stride, report_dir, say):
    """Fit on config.train_subjects (every `fit_stride`-th frame), measure on
    config.test_subjects (if any, every `test_stride`-th); writes the report and
    reliability diagrams to `report_dir`, returns the report."""
    config, model, stats = load_checkpoint(config)
    held_out, test_set, _ = splits.load_splits(config, need_train=True)
    predictor = prediction.make_predictor(model, jit_compile=False)
    params, targets = predict(predictor, stats, held_out, config, fit_stride, _cache_path(
        report_dir, config, config.train_subjects, fit_stride))
    say(f"fitting on {len(targets)} frames of subjects {list(config.train_subjects)} "
        f"(the calibration objective on "
        f"{len(range(len(targets))[calibration_rows(len(targets))])})")
    fitted = fit(params, targets, stats, config, granularity)
    names = [skeleton.H36M17_NAMES[j] for j in skeleton.output_joints(config.predict_14)]
    report = {"checkpoint": config.load, "load_dir": config.load_dir,
              "calibration_subjects": list(config.train_subjects),
              "test_subjects": list(config.test_subjects), "granularity": granularity,
              "joint_names": names, "fitted": {}, "test": {}}
    for objective, recal in fitted.items():
        say(f"{objective}: temperature {recal.temperature:.3f}; width, shrink " + ", ".join(
            f"{n} {f:.3f} {a:.3f}" for n, f, a in zip(names, recal.joint_factors,
                                                       recal.joint_shrink)))
        report["fitted"][objective] = recalibration.make_record(
            config.load, recal.joint_factors, config.predict_14, recal.joint_shrink,
            recal.temperature,
            calibration_subjects=list(config.train_subjects), objective=objective,
            granularity=granularity,
            frames=len(targets) if objective == "nll"
            else len(range(len(targets))[calibration_rows(len(targets))]))
    if test_set is not None and len(test_set):
        test_params, test_targets = predict(predictor, stats, test_set, config, test_stride,
                                            _cache_path(report_dir, config,
                                                        config.test_subjects, test_stride))
        report["test"] = measure_variants(test_params, test_targets, stats, config, fitted,
                                          report_dir, say)
        report["test_frame_stride"] = test_stride
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, f"recalibration_report_{config.load}_{granularity}.json")
    with atomic_write(path) as handle:
        json.dump(report, handle, indent=1)
    say(f"report written to {path}")
    return report


def measure_variants(params, targets, stats, config, fitted, report_dir, say):
    """{"raw" | objective: distribution_report figures} on the test subjects, and a
    reliability diagram for each."""
    scale = targets.shape[1] / len(skeleton.eval_joints(config.predict_14))
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
