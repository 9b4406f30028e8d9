"""Evaluation on the MPI-INF-3DHP test set (docs/faithfulness.md §8), e.g. of a Human3.6M-trained
checkpoint: 3DPCK at 150 mm, AUC over thresholds 0-150 mm in 5 mm steps and MPJPE, over
the evaluation joints (the 17; the 14 predicted ones with --predict_14), per scene (GS, noGS, Outdoor) and
over all frames, for the best-of-K and the most probable hypothesis (docs/faithfulness.md §3).

The 2D input is normalised with the checkpoint's training statistics ("checkpoint", the
Human3.6M ones for a Human3.6M model) or, as the release did, with the mean and std of
the MPI-INF-3DHP 2D input itself ("mpi"); "both" reports the two. The 3D statistics are
always the checkpoint's: the network's outputs live in its training space.
"""

import dataclasses
import logging
import os

import numpy as np

from mdm.checkpoint.loading import load_model, with_resolved_checkpoint
from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.data import mpi_inf_3dhp_npz
from mdm.evaluate import metrics, prediction, report

LOG = logging.getLogger(__name__)
NORM_CHOICES = ("checkpoint", "mpi", "both")
COLUMNS = metrics.ERROR_COLUMNS[:2]  # best of K and most probable: the release's MPI table
METRICS = ("pck", "auc", "mpjpe")
ALL_ROW = "All"


def mpi_input_stats(stats, poses_2d):
    """`stats` with the 2D mean and std of `poses_2d` (N, 16, 2) px, the release's choice."""
    poses_2d = np.asarray(poses_2d, np.float64)
    return dataclasses.replace(stats, mean_2d=poses_2d.mean(axis=0), std_2d=poses_2d.std(axis=0))


def stats_for(choice, stats, poses_2d):
    return mpi_input_stats(stats, poses_2d) if choice == "mpi" else stats


def predict_hypotheses(predictor, stats, poses_2d, config):
    """(N, K, 17, 3) root-centred mm hypotheses and (N, K) mixing weights."""
    inputs = prediction.evaluation_inputs(stats, poses_2d, config.miss_num)
    means, _, weights = prediction.predict_mixture(predictor, inputs)
    return prediction.hypotheses_mm(stats, means, config.predict_14), weights


def joint_errors(predictor, stats, pose_set, config):
    """{column: (N, J) per-joint errors in mm} over the evaluation joints."""
    hypotheses, weights = predict_hypotheses(predictor, stats, pose_set.poses_2d, config)
    joints = skeleton.eval_joints(config.predict_14)
    errors = metrics.hypothesis_errors(hypotheses[:, :, joints], weights,
                                       pose_set.poses_3d[:, joints],
                                       procrustes=config.procrustes, per_joint=True)
    return {column: errors[column] for column in COLUMNS}


def scene_rows(scenes):
    """Scenes present, in the paper's order (others sorted after), then "All"."""
    present = set(np.asarray(scenes).tolist())
    known = [scene for scene in mpi_inf_3dhp_npz.SCENE_ORDER if scene in present]
    return known + sorted(present - set(known)) + [ALL_ROW]


def scene_table(errors_by_column, scenes):
    """{row: {"<column>_pck" | "_auc" | "_mpjpe": value}}: PCK and AUC in %, MPJPE in mm,
    each over every (frame, joint) of the row's frames; "All" pools every frame."""
    scenes = np.asarray(scenes)
    table = {}
    for row in scene_rows(scenes):
        mask = np.ones(len(scenes), bool) if row == ALL_ROW else scenes == row
        table[row] = {}
        for column, errors in errors_by_column.items():
            chosen = np.asarray(errors)[mask]
            values = (metrics.pck(chosen), metrics.auc(chosen), float(chosen.mean()))
            table[row].update({f"{column}_{name}": value
                               for name, value in zip(METRICS, values)})
    return table


def evaluate_mpi(predictor, stats, pose_set, config):
    """The per-scene table of `pose_set` (an MPI-INF-3DHP test PoseSet)."""
    return scene_table(joint_errors(predictor, stats, pose_set, config), pose_set.actions())


def format_mpi_table(table, title=None):
    """Fixed-width text: a column group per hypothesis choice (PCK and AUC in %, MPJPE in
    mm), rows = scenes then All."""
    groups = [column for column in COLUMNS if f"{column}_pck" in next(iter(table.values()))]
    cell = 7
    group_width = len(METRICS) * cell
    lines = [title] if title else []
    lines.append(" " * 9 + "".join(g.replace("_", " ").center(group_width) for g in groups))
    lines.append("Scene".ljust(9) + "".join(
        metric.upper().rjust(cell) for _ in groups for metric in METRICS))
    rule = "-" * len(lines[-1])
    lines.append(rule)
    for row, values in table.items():
        if row == ALL_ROW:
            lines.append(rule)
        lines.append(row.ljust(9) + "".join(
            f"{values[f'{group}_{metric}']:.1f}".rjust(cell) for group in groups
            for metric in METRICS))
    return "\n".join(lines) + "\n"


def norm_choices(choice):
    if choice not in NORM_CHOICES:
        raise UserError(f"--mpi_norm_stats must be one of {', '.join(NORM_CHOICES)} "
                        f"(got {choice!r})")
    return ["checkpoint", "mpi"] if choice == "both" else [choice]


def run_cross_dataset_test(config):
    """Evaluate checkpoint `config.load` (0 = latest) on `config.mpi_test_npz`; log the
    tables and write `<train_dir>/results_mpi_<step>_<stats>_<p1|p2>.{json,csv}`. Returns
    {stats choice: table}."""
    choices = norm_choices(config.mpi_norm_stats)
    config = with_resolved_checkpoint(config)
    model, stats = load_model(config.load_dir, config.load, config)
    _, test_set = mpi_inf_3dhp_npz.load_mpi_splits(config, need_train=False)
    predictor = prediction.make_predictor(model, config.jit_compile)
    tables = {}
    for choice in choices:
        table = evaluate_mpi(predictor, stats_for(choice, stats, test_set.poses_2d), test_set,
                             config)
        title = (f"MPI-INF-3DHP test set, checkpoint-{config.load}, 2D normalised with "
                 f"{choice} statistics, {prediction.protocol_name(config.procrustes)}: "
                 f"PCK@{metrics.PCK_THRESHOLD_MM:.0f}mm %, AUC %, MPJPE mm")
        LOG.info("\n%s", format_mpi_table(table, title))
        protocol = "p2" if config.procrustes else "p1"
        prefix = os.path.join(config.train_dir, f"results_mpi_{config.load}_{choice}_{protocol}")
        report.write_results(prefix, table, {
            "checkpoint": config.load, "load_dir": config.load_dir or config.train_dir,
            "test_npz": os.path.abspath(config.mpi_test_npz), "input_statistics": choice,
            "protocol": prediction.protocol_name(config.procrustes),
            "pck_threshold_mm": metrics.PCK_THRESHOLD_MM,
            "auc_thresholds_mm": metrics.AUC_THRESHOLDS_MM, "frames": len(test_set),
            "joints": len(skeleton.eval_joints(config.predict_14)), "miss_num": config.miss_num})
        tables[choice] = table
    return tables
