"""Per-action evaluation of the mixture (docs/faithfulness.md §3).

For every test frame and hypothesis: un-normalise the means, root at 0, MPJPE over the
evaluation joints. Columns: `best` (min over K, the paper's number), `most_probable`
(argmax mixing weight), `mixture_mean` (the mean pose of the mixture) and, on
Human3.6M, the oracle-free selections of mdm.evaluate.oracle_free (`multi_view`,
`multi_view_fused`, `temporal`). An action's error is the mean over its frames; the
headline is the mean over actions.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from mdm.core import skeleton
from mdm.evaluate import metrics, oracle_free, report
from mdm.model.missing_joints import corrupt_missing_joints

EVAL_BATCH_SIZE = 4096  # poses per inference call
# Fixed so that every evaluation of a --miss_num model sees the same corrupted inputs.
EVAL_CORRUPTION_SEED = 1234
ALL_FRAMES = "All frames"


def make_predictor(model, jit_compile=True):
    """A compiled inference function: (B, 32) -> (means, scales, weights)."""
    return tf.function(lambda inputs: model(inputs, training=False), jit_compile=jit_compile)


def predict_mixture(predictor, inputs, batch_size=EVAL_BATCH_SIZE):
    """Mixture parameters of every row of (N, 32) `inputs`, in batches of `batch_size`
    (the last one smaller), as numpy (means (N, K, D), scales (N, K), weights (N, K))."""
    inputs = np.asarray(inputs, np.float32)
    parts = [predictor(tf.constant(inputs[start:start + batch_size]))
             for start in range(0, len(inputs), batch_size)]
    return tuple(np.concatenate([part[i].numpy() for part in parts]) for i in range(3))


def evaluation_inputs(stats, poses_2d, miss_num):
    """Normalised inputs, corrupted with the fixed seed when the model uses --miss_num."""
    inputs = stats.normalize_inputs(poses_2d)
    if miss_num:
        inputs = corrupt_missing_joints(tf.constant(inputs), miss_num,
                                        EVAL_CORRUPTION_SEED).numpy()
    return inputs


def hypotheses_mm(stats, means, predict_14):
    """(N, K, D) normalised means -> (N, K, 17, 3) root-centred millimetres."""
    return stats.unnormalize_targets(means, predict_14)


def frame_errors(hypotheses, weights, ground_truth, predict_14, procrustes, selections=None):
    """Per-frame error (mm) of every column: the oracle best-of-K, the most probable
    hypothesis, the mixture mean and, with `selections` (mdm.evaluate.oracle_free), the
    oracle-free choices. hypotheses (N, K, 17, 3) mm, weights (N, K)."""
    joints = skeleton.eval_joints(predict_14)
    chosen = selections.chosen if selections else {}
    poses = {name: pose[:, joints] for name, pose in selections.poses.items()} \
        if selections else {}
    return metrics.hypothesis_errors(hypotheses[:, :, joints], weights,
                                     ground_truth[:, joints], procrustes=procrustes,
                                     chosen=chosen, poses=poses)


@dataclasses.dataclass(frozen=True)
class EvaluationDetails:
    """What an evaluation produced besides the table."""

    mixture_params: tuple  # (means (N, K, D), scales (N, K), weights (N, K)), normalised
    parameters: oracle_free.Parameters = None  # the oracle-free columns' weights, if any
    single_view_rows: int = 0  # rows whose multi_view choice fell back to most probable


def evaluate(predictor, stats, pose_set, config, procrustes=None, train_set=None):
    """Per-action results {action: {column: mm}} (with 'Average') and EvaluationDetails.

    With `train_set` (Human3.6M), the oracle-free columns are added: multi_view,
    multi_view_fused and temporal, whose weights are chosen on `train_set` only.
    """
    procrustes = config.procrustes if procrustes is None else procrustes
    inputs = evaluation_inputs(stats, pose_set.poses_2d, config.miss_num)
    mixture_params = predict_mixture(predictor, inputs)
    means, _, weights = mixture_params
    hypotheses = hypotheses_mm(stats, means, config.predict_14)
    selections, parameters = None, None
    if train_set is not None:
        parameters = choose_selection_parameters(predictor, stats, train_set, config)
        selections = oracle_free.select(hypotheses, weights, pose_set,
                                        oracle_free.load_rotations(pose_set, config),
                                        parameters)
    errors = frame_errors(hypotheses, weights, pose_set.poses_3d, config.predict_14,
                          procrustes, selections)
    # --evaluateActionWise False pools every frame into one row (docs/faithfulness.md §6).
    groups = (pose_set.actions() if config.evaluate_action_wise
              else np.full(len(pose_set), ALL_FRAMES))
    details = EvaluationDetails(mixture_params, parameters,
                                selections.single_view_rows if selections else 0)
    return report.aggregate_by_action(errors, groups), details


def choose_selection_parameters(predictor, stats, train_set, config):
    """The oracle-free strategies' weights (oracle_free.Parameters), chosen on a seeded
    subset of whole training sequences (never the test subjects)."""
    subset = oracle_free.training_subset(train_set)
    means, _, weights = predict_mixture(
        predictor, evaluation_inputs(stats, subset.poses_2d, config.miss_num))
    hypotheses = hypotheses_mm(stats, means, config.predict_14)
    return oracle_free.choose_parameters(hypotheses, weights, subset,
                                         oracle_free.load_rotations(subset, config))


def protocol_name(procrustes):
    return "Protocol #2 (Procrustes-aligned)" if procrustes else "Protocol #1"
