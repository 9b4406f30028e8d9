"""The release's non-training modes: `--test True` (evaluate a checkpoint) and
`--sample True` (draw the hypotheses, docs/faithfulness.md §7)."""

import dataclasses
import logging
import os

import numpy as np

from mdm.checkpoint.loading import load_model
from mdm.data import cameras as cams
from mdm.data import splits
from mdm.evaluate import distribution_report, figures, prediction, report, selection

LOG = logging.getLogger(__name__)
SAMPLE_ACTION = "SittingDown"
SAMPLE_SEED = 42


def run_test(config):
    """Evaluate checkpoint `config.load`; log the table and write results files."""
    model, stats = load_model(config.load_dir or config.train_dir, config.load, config)
    train_set, test_set, _ = splits.load_splits(config)
    predictor = prediction.make_predictor(model, config.jit_compile)
    results, details = prediction.evaluate(predictor, stats, test_set, config,
                                           train_set=train_set)
    protocol = prediction.protocol_name(config.procrustes)
    title = f"checkpoint-{config.load}, subjects {list(config.test_subjects)}, {protocol}, mm"
    LOG.info("\n%s%s", report.format_table(results, title=title), _footer(details, test_set))
    suffix = "p2" if config.procrustes else "p1"
    prefix = os.path.join(config.train_dir, f"results_test_{config.load}_{suffix}")
    paths = report.write_results(prefix, results, {
        "checkpoint": config.load, "load_dir": config.load_dir or config.train_dir,
        "protocol": protocol, "test_subjects": list(config.test_subjects),
        "use_sh": config.use_sh, "miss_num": config.miss_num,
        "temporal_smoothness": details.parameters.smoothness,
        "multi_view_prior": details.parameters.view_prior,
        "parameters_chosen_on": {"subjects": list(config.train_subjects),
                                 "frames": details.parameters.training_frames},
        "multi_view_single_view_rows": details.single_view_rows})
    LOG.info("results written to %s", ", ".join(paths))
    if config.uncertainty:
        distribution_report.run(details.mixture_params, stats, test_set, config)
    return results


def _footer(details, test_set):
    """What the oracle-free columns mean, under the table."""
    chosen = details.parameters
    return (f"best: oracle (closest of K to the ground truth). Without ground truth: "
            f"multi_view, one hypothesis per camera, the views' most consistent combination "
            f"(prior {chosen.view_prior:g} mm per nat; {details.single_view_rows} of "
            f"{len(test_set)} rows had no other view and use the most probable hypothesis); "
            f"multi_view_fused, the mean of those, per camera; temporal, Viterbi path per "
            f"stream (smoothness {chosen.smoothness:g} per mm). Both weights were chosen on "
            f"{chosen.training_frames} frames of the training subjects.\n")


def _sample_frames(pose_set, per_stream):
    """For every stream, `per_stream` of its samples in a seeded random order."""
    rng = np.random.default_rng(SAMPLE_SEED)
    chosen = []
    for stream_id in range(len(pose_set.streams)):
        rows = np.flatnonzero(pose_set.stream_index == stream_id)
        chosen.append(rng.permutation(rows)[:per_stream])
    return np.concatenate(chosen) if chosen else np.zeros(0, int)


def run_sample(config):
    """Draw the 2D input, ground truth and K hypotheses of SittingDown test frames."""
    model, stats = load_model(config.load_dir or config.train_dir, config.load, config)
    action = SAMPLE_ACTION if config.action == "All" else config.action
    sample_config = dataclasses.replace(config, action=action)
    _, test_set, _ = splits.load_splits(sample_config, need_train=False)
    rows = _sample_frames(test_set, config.sample_figures)
    subset = test_set.subset(rows)
    predictor = prediction.make_predictor(model, config.jit_compile)
    inputs = prediction.evaluation_inputs(stats, subset.poses_2d, config.miss_num)
    means, _, weights = prediction.predict_mixture(predictor, inputs)
    hypotheses = prediction.hypotheses_mm(stats, means, config.predict_14)
    camera_table = cams.load_cameras(config.resolved_cameras_path(),
                                     sorted({s.subject for s in test_set.streams}))
    out_dir = os.path.join(config.train_dir, "samples_sh" if config.use_sh else "samples_gt")
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for row in range(len(subset)):
        stream = subset.streams[subset.stream_index[row]]
        camera = camera_table[stream.subject][stream.camera]
        rotate = (lambda poses, cam=camera: selection.to_world_axes(poses, cam.R)
                  if config.camera_frame else poses)
        name = (f"S{stream.subject}_{stream.sequence.replace(' ', '_')}_{camera.name}_"
                f"frame{subset.frame_index[row]:05d}.png")
        paths.append(figures.draw_hypotheses_figure(
            os.path.join(out_dir, name), subset.poses_2d[row], rotate(hypotheses[row]),
            weights=weights[row], gt_3d=rotate(subset.poses_3d[row]),
            title=f"S{stream.subject} {stream.sequence} camera {camera.name} "
                  f"frame {subset.frame_index[row]}"))
    LOG.info("wrote %d figures to %s", len(paths), out_dir)
    return paths
