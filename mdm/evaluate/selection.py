"""Choosing one hypothesis per frame without ground truth.

Two sources of evidence replace the ground truth that "best of K" (oracle) evaluation
uses:

* other cameras: Human3.6M films every instant from 4 views, and the views' correct
  hypotheses, rotated into world axes, agree (`multi_view_select`);
* time: a pose moves little between consecutive frames, so a path through the
  hypotheses that is both probable and smooth is preferred (`viterbi_path`).

Conventions: poses are float millimetres, root-relative, `(..., J, 3)`; hypotheses
`(N, K, J, 3)`; mixing weights `(N, K)`. A camera with rotation R maps world to camera
as X_cam = R (X_world - T), so a root-relative camera-frame pose P (J, 3) is P @ R in
world axes and P_world @ R.T back in the camera frame. MPJPE is the mean over all J
joints of the Euclidean distance (the root, identically 0, counts as a joint, as in
the rest of the project).

Pure numpy; nothing here imports TensorFlow.
"""

import dataclasses
import itertools

import numpy as np

# Cost-table cells (groups x K**V combinations) computed at once: bounds memory to a
# few tens of MB whatever the number of groups.
COMBINATIONS_PER_CHUNK = 1 << 20
# Rows whose K x K hypothesis distances are computed at once (temporaries of
# rows * K * K * J * 3 floats).
ROWS_PER_CHUNK = 4096
# -log of a zero weight would be infinite; the clip keeps every path finite.
MIN_WEIGHT = 1e-8


@dataclasses.dataclass(frozen=True)
class MultiViewSelection:
    """What `multi_view_select` chose.

    chosen: (N,) int, index of the chosen hypothesis in each row.
    fused: (N, J, 3) mm, the mean of the group's chosen poses (in world axes), rotated
        into each row's camera frame; for single-view rows, the chosen pose itself.
    single_view: (N,) bool, rows whose group has one view (chosen = most probable).
    """

    chosen: np.ndarray
    fused: np.ndarray
    single_view: np.ndarray


def pairwise_mpjpe(poses_a, poses_b):
    """MPJPE between every pose of `poses_a` (..., K, J, 3) and of `poses_b` (..., L, J, 3).

    Returns (..., K, L) in the poses' units (mm).
    """
    diff = poses_a[..., :, None, :, :] - poses_b[..., None, :, :, :]
    return np.sqrt(np.einsum("...c,...c->...", diff, diff)).mean(axis=-1)


def to_world_axes(poses_cam, rotations):
    """Camera-frame poses (..., J, 3) -> world axes, P @ R, with rotations (..., 3, 3).

    The leading axes broadcast as in `np.matmul`.
    """
    return poses_cam @ rotations


def to_camera_axes(poses_world, rotations):
    """World-axes poses (..., J, 3) -> camera frame, P @ R.T (inverse of `to_world_axes`)."""
    return poses_world @ np.swapaxes(rotations, -1, -2)


def multi_view_select(hypotheses, weights, rotations, group_ids, probability_weight=0.0):
    """One hypothesis per row, chosen by agreement between views of the same instant.

    hypotheses: (N, K, J, 3) mm, camera frame. weights: (N, K). rotations: (N, 3, 3),
    each row's camera R. group_ids: (N,) int; rows sharing an id are views of one
    instant (ids need not be sorted or contiguous). For a group of V >= 2 views, the
    chosen combination (one hypothesis per view) minimises the sum over the V(V-1)/2
    view pairs of the MPJPE between the two chosen poses in world axes, searched over
    all K**V combinations, plus `probability_weight` (mm per nat) times the sum over
    the views of -log(mixing weight) of the chosen hypothesis: with 0, agreement alone
    decides, which favours kernels that are vague in the same way in every view.
    Groups of one view fall back to the most probable hypothesis.
    Returns a `MultiViewSelection`.
    """
    hypotheses, weights = _check_hypotheses(hypotheses, weights)
    num_rows, num_hyp = weights.shape
    rotations = np.asarray(rotations, dtype=hypotheses.dtype)
    group_ids = np.asarray(group_ids)
    if rotations.shape != (num_rows, 3, 3) or group_ids.shape != (num_rows,):
        raise ValueError(f"rotations {rotations.shape} / group_ids {group_ids.shape} "
                         f"do not match {num_rows} rows")
    chosen = np.argmax(weights, axis=1)
    fused = hypotheses[np.arange(num_rows), chosen].copy()
    single_view = np.ones(num_rows, dtype=bool)
    for rows in _groups_of_equal_size(group_ids):
        num_views = rows.shape[1]
        if num_hyp ** num_views > COMBINATIONS_PER_CHUNK:
            raise ValueError(f"{num_hyp}**{num_views} combinations per group is too many")
        groups_per_chunk = max(1, COMBINATIONS_PER_CHUNK // num_hyp ** num_views)
        for start in range(0, len(rows), groups_per_chunk):
            chunk = rows[start:start + groups_per_chunk]
            unary = probability_weight * -np.log(np.clip(weights[chunk], MIN_WEIGHT, None))
            picks, fused_cam = _select_views(hypotheses[chunk], rotations[chunk], unary)
            chosen[chunk] = picks
            fused[chunk] = fused_cam
        single_view[rows.ravel()] = False
    return MultiViewSelection(chosen=chosen, fused=fused, single_view=single_view)


def _groups_of_equal_size(group_ids):
    """Yield, for each group size V >= 2, the (G, V) row indices of its G groups.

    Within a group, rows keep their original order.
    """
    _, group_of_row, sizes = np.unique(group_ids, return_inverse=True, return_counts=True)
    rows_by_group = np.argsort(group_of_row.ravel(), kind="stable")
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for size in np.unique(sizes):
        if size >= 2:
            groups = np.flatnonzero(sizes == size)
            yield rows_by_group[first[groups][:, None] + np.arange(size)]


def _select_views(hypotheses_cam, rotations, unary):
    """Best combination for G groups of V views.

    hypotheses_cam: (G, V, K, J, 3) mm; rotations (G, V, 3, 3); unary (G, V, K) mm, the
    cost of choosing each hypothesis on its own.
    Returns picks (G, V) int and the fused pose in each view's camera frame (G, V, J, 3).
    """
    num_groups, num_views, num_hyp = hypotheses_cam.shape[:3]
    # (G, V, K*J, 3) @ (G, V, 3, 3): one matmul per view, ~5x faster than broadcasting R
    # along K.
    world = to_world_axes(hypotheses_cam.reshape(num_groups, num_views, -1, 3), rotations)
    world = world.reshape(hypotheses_cam.shape)
    # cost[g, k_0, ..., k_{V-1}] = sum over view pairs (a, b) of D_ab[g, k_a, k_b]:
    # each pair's (G, K, K) table is broadcast along the other views' axes.
    cost = np.zeros((num_groups,) + (num_hyp,) * num_views, dtype=world.dtype)
    for view_a, view_b in itertools.combinations(range(num_views), 2):
        shape = [num_groups] + [1] * num_views
        shape[1 + view_a] = shape[1 + view_b] = num_hyp
        cost += pairwise_mpjpe(world[:, view_a], world[:, view_b]).reshape(shape)
    for view in range(num_views):
        shape = [num_groups] + [1] * num_views
        shape[1 + view] = num_hyp
        cost += unary[:, view].reshape(shape).astype(cost.dtype)
    best = cost.reshape(num_groups, -1).argmin(axis=1)
    picks = np.stack(np.unravel_index(best, (num_hyp,) * num_views), axis=1)
    chosen_world = world[np.arange(num_groups)[:, None], np.arange(num_views), picks]
    mean_world = chosen_world.mean(axis=1, keepdims=True)
    return picks, to_camera_axes(mean_world, rotations)


def viterbi_path(hypotheses, weights, sequence_ids, smoothness):
    """Most probable smooth path through the hypotheses of each sequence.

    hypotheses: (N, K, J, 3) mm. weights: (N, K). sequence_ids: (N,); each sequence's
    rows must be contiguous and in time order (contiguity is checked, ValueError
    otherwise; time order cannot be and is the caller's promise). smoothness: lambda,
    in nats per mm. Per sequence, the path (k_t) minimises
        sum_t -log(max(w_t[k_t], 1e-8)) + lambda * MPJPE(pose_t[k_t], pose_{t-1}[k_{t-1}]).
    Returns chosen (N,) int.
    """
    hypotheses, weights = _check_hypotheses(hypotheses, weights)
    starts, lengths = sequence_blocks(sequence_ids)
    unary = -np.log(np.clip(weights, MIN_WEIGHT, None))
    if smoothness == 0:
        return np.argmin(unary, axis=1)
    transition = transition_mpjpe(hypotheses, starts)
    return viterbi_from_costs(unary, transition, starts, lengths, smoothness)


def sequence_blocks(sequence_ids):
    """First row (S,) and length (S,) of each contiguous run of equal `sequence_ids`.

    Raises ValueError when a sequence's rows are split into more than one run.
    """
    ids = np.asarray(sequence_ids)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError(f"sequence_ids must be a non-empty 1-D array, got {ids.shape}")
    starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
    if len(np.unique(ids[starts])) != len(starts):
        raise ValueError("each sequence's rows must be contiguous (and in time order); "
                         "sort the rows by (sequence, frame) first")
    lengths = np.diff(np.append(starts, len(ids)))
    return starts, lengths


def transition_mpjpe(hypotheses, starts):
    """MPJPE from each previous-frame hypothesis to each current one, (N, K, K) mm.

    Entry [n, l, k] is MPJPE(hypotheses[n - 1, l], hypotheses[n, k]); rows that start a
    sequence (`starts`) have no predecessor and hold 0.
    """
    num_rows, num_hyp = hypotheses.shape[:2]
    transition = np.zeros((num_rows, num_hyp, num_hyp), dtype=hypotheses.dtype)
    for begin in range(1, num_rows, ROWS_PER_CHUNK):
        end = min(begin + ROWS_PER_CHUNK, num_rows)
        transition[begin:end] = pairwise_mpjpe(hypotheses[begin - 1:end - 1],
                                               hypotheses[begin:end])
    transition[starts] = 0
    return transition


def viterbi_from_costs(unary, transition, starts, lengths, smoothness):
    """Viterbi over precomputed costs, all sequences advanced together one step at a time.

    unary: (N, K) nats; transition: (N, K, K) mm (see `transition_mpjpe`); starts,
    lengths: (S,) from `sequence_blocks`. Returns chosen (N,) int.
    """
    # Longest sequences first: the sequences still running at step t are then a prefix.
    by_length = np.argsort(-lengths, kind="stable")
    starts, lengths = starts[by_length], lengths[by_length]
    running = np.searchsorted(-lengths, -np.arange(lengths[0]), side="left")
    back = np.zeros(unary.shape, dtype=np.min_scalar_type(unary.shape[1]))
    total = unary[starts].astype(np.float64)  # (S, K) best cost of a path ending in k
    for t in range(1, lengths[0]):
        live = running[t]
        rows = starts[:live] + t
        # via[s, l, k]: best path to l at t-1, then the step l -> k.
        via = total[:live, :, None] + smoothness * transition[rows]
        best_prev = via.argmin(axis=1)
        back[rows] = best_prev
        total[:live] = np.take_along_axis(via, best_prev[:, None, :], axis=1)[:, 0]
        total[:live] += unary[rows]
    chosen = np.empty(len(unary), dtype=np.int64)
    chosen[starts + lengths - 1] = total.argmin(axis=1)
    for t in range(lengths[0] - 1, 0, -1):
        rows = starts[:running[t]] + t
        chosen[rows - 1] = back[rows, chosen[rows]]
    return chosen


def choose_smoothness(hypotheses, weights, sequence_ids, ground_truth, candidates):
    """Grid search of the Viterbi smoothness lambda; run it on training subjects only.

    hypotheses (N, K, J, 3) mm, weights (N, K), sequence_ids (N,) as for
    `viterbi_path`, ground_truth (N, J, 3) mm, candidates: iterable of lambdas.
    Returns (best lambda, {lambda: mean MPJPE in mm of the Viterbi-chosen poses});
    ties go to the earlier candidate.
    """
    hypotheses, weights = _check_hypotheses(hypotheses, weights)
    starts, lengths = sequence_blocks(sequence_ids)
    unary = -np.log(np.clip(weights, MIN_WEIGHT, None))
    transition = transition_mpjpe(hypotheses, starts)  # shared by every candidate
    errors = pairwise_mpjpe(hypotheses, np.asarray(ground_truth)[:, None])[..., 0]
    rows = np.arange(len(errors))
    error_of = {}
    for smoothness in candidates:
        chosen = viterbi_from_costs(unary, transition, starts, lengths, smoothness)
        error_of[smoothness] = float(errors[rows, chosen].mean())
    best = min(error_of, key=error_of.get)
    return best, error_of


def _check_hypotheses(hypotheses, weights):
    """As float arrays (float32 at least), checking (N, K, J, 3) against (N, K)."""
    hypotheses = np.asarray(hypotheses)
    hypotheses = hypotheses.astype(np.result_type(hypotheses.dtype, np.float32), copy=False)
    weights = np.asarray(weights, dtype=np.float64)
    if hypotheses.ndim != 4 or hypotheses.shape[-1] != 3 or weights.shape != hypotheses.shape[:2]:
        raise ValueError(f"hypotheses {hypotheses.shape} must be (N, K, J, 3) and weights "
                         f"{weights.shape} (N, K)")
    return hypotheses, weights
