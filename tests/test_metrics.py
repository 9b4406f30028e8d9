"""mdm.evaluate.metrics against independent numpy / scipy computations."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from mdm.evaluate import metrics

NUM_JOINTS = 17


def random_poses(rng, *shape):
    """Poses `(*shape, 17, 3)` in mm with a human-like spread (~300 mm)."""
    return rng.normal(scale=300.0, size=shape + (NUM_JOINTS, 3))


def reference_align(pred, gt):
    """One-frame Protocol #2 by scipy's Kabsch (proper rotations only) and the
    closed-form least-squares scale for that rotation."""
    pred_centred = pred - pred.mean(axis=0)
    gt_mean = gt.mean(axis=0)
    gt_centred = gt - gt_mean
    rotation, _ = Rotation.align_vectors(gt_centred, pred_centred)
    rotated = rotation.apply(pred_centred)
    scale = np.sum(gt_centred * rotated) / np.sum(pred_centred**2)
    return scale * rotated + gt_mean


def test_joint_errors_and_mpjpe_match_a_loop():
    rng = np.random.default_rng(0)
    pred, gt = random_poses(rng, 4, 3), random_poses(rng, 4, 1)
    expected = np.zeros((4, 3, NUM_JOINTS))
    for n in range(4):
        for k in range(3):
            for j in range(NUM_JOINTS):
                expected[n, k, j] = np.sqrt(np.sum((pred[n, k, j] - gt[n, 0, j]) ** 2))
    assert_allclose(metrics.joint_errors(pred, gt), expected, rtol=1e-12)
    assert_allclose(metrics.mpjpe(pred, gt), expected.mean(axis=-1), rtol=1e-12)


def test_procrustes_recovers_a_known_similarity_transform():
    rng = np.random.default_rng(1)
    gt = random_poses(rng, 50)
    rotations = Rotation.random(50, random_state=2).as_matrix()
    scales = rng.uniform(0.3, 3.0, size=50)
    shifts = rng.normal(scale=1000.0, size=(50, 1, 3))
    # pred = s R gt + t; aligning pred back onto gt must undo it exactly.
    pred = scales[:, None, None] * np.einsum("nab,njb->nja", rotations, gt) + shifts
    assert metrics.mpjpe(pred, gt).min() > 1.0
    assert_allclose(metrics.procrustes_align(pred, gt), gt, atol=1e-8)


def test_procrustes_matches_scipy_kabsch_per_frame():
    rng = np.random.default_rng(3)
    gt = random_poses(rng, 40)
    pred = 0.8 * gt + random_poses(rng, 40) / 3.0
    pred[:20, :, 0] *= -1  # mirrored: the unconstrained optimum would be a reflection
    expected = np.stack([reference_align(p, g) for p, g in zip(pred, gt)])
    assert_allclose(metrics.procrustes_align(pred, gt), expected, atol=1e-6)
    # Make sure the sign fix really was exercised.
    reflections = [np.linalg.det(orthogonal_procrustes(p - p.mean(0), g - g.mean(0))[0]) < 0
                   for p, g in zip(pred[:20], gt[:20])]
    assert any(reflections)


def test_procrustes_does_not_reflect():
    rng = np.random.default_rng(4)
    gt = random_poses(rng, 10)
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    aligned = metrics.procrustes_align(mirrored, gt)
    assert metrics.mpjpe(aligned, gt).min() > 10.0
    # The fitted linear map (rows: aligned_c = mirrored_c @ M) has a positive determinant.
    for source, target in zip(mirrored, aligned):
        linear_map = np.linalg.lstsq(source - source.mean(0), target - target.mean(0),
                                     rcond=None)[0]
        assert np.linalg.det(linear_map) > 0


def test_procrustes_broadcasts_hypotheses_against_one_gt():
    rng = np.random.default_rng(5)
    gt = random_poses(rng, 6)
    hypotheses = gt[:, None] + random_poses(rng, 6, 4) / 5.0
    batched = metrics.procrustes_align(hypotheses, gt[:, None])
    assert batched.shape == (6, 4, NUM_JOINTS, 3)
    for k in range(4):
        assert_allclose(batched[:, k], metrics.procrustes_align(hypotheses[:, k], gt),
                        atol=1e-9)


def test_procrustes_degenerate_poses_give_the_gt_centroid_not_nan():
    rng = np.random.default_rng(6)
    gt = random_poses(rng, 3)
    collapsed = np.broadcast_to(rng.normal(size=(3, 1, 3)) * 1e3, gt.shape)
    aligned = metrics.procrustes_align(collapsed, gt)
    assert np.all(np.isfinite(aligned))
    assert_allclose(aligned, np.broadcast_to(gt.mean(axis=1, keepdims=True), gt.shape),
                    atol=1e-9)
    # A collapsed ground truth: the best fit is that point, i.e. gt itself.
    flat_gt = np.broadcast_to(np.array([[[5.0, -3.0, 900.0]]]), gt.shape)
    assert_allclose(metrics.procrustes_align(gt, flat_gt), flat_gt, atol=1e-9)


def offset_hypotheses(gt, offsets):
    """Hypotheses gt + offsets[k] (the same vector at every joint): MPJPE_k = |offset_k|."""
    return gt[:, None] + np.asarray(offsets, dtype=np.float64)[None, :, None, :]


OFFSETS = [(30, 0, 0), (0, 10, 0), (0, 0, 50), (-20, 0, 0), (0, 40, 0)]
WEIGHTS = [[0.1, 0.2, 0.5, 0.1, 0.1], [0.6, 0.1, 0.1, 0.1, 0.1]]


def test_hypothesis_errors_columns_on_a_hand_built_case():
    gt = random_poses(np.random.default_rng(7), 2)
    errors = metrics.hypothesis_errors(offset_hypotheses(gt, OFFSETS), WEIGHTS, gt)
    assert_allclose(errors["best"], [10.0, 10.0])
    assert_allclose(errors["most_probable"], [50.0, 30.0])
    # Mixture mean offsets: 0.1*(30,0,0) + 0.2*(0,10,0) + 0.5*(0,0,50) + 0.1*(-20,0,0)
    # + 0.1*(0,40,0) = (1, 6, 25); and (18 - 2, 1 + 4, 5) = (16, 5, 5).
    assert_allclose(errors["mixture_mean"], [np.sqrt(662.0), np.sqrt(306.0)])


def test_hypothesis_errors_per_joint_and_procrustes():
    gt = random_poses(np.random.default_rng(8), 2)
    hypotheses = offset_hypotheses(gt, OFFSETS)
    per_joint = metrics.hypothesis_errors(hypotheses, WEIGHTS, gt, per_joint=True)
    assert per_joint["best"].shape == (2, NUM_JOINTS)
    assert_allclose(per_joint["most_probable"], [[50.0] * NUM_JOINTS, [30.0] * NUM_JOINTS])
    # Pure translations vanish under Protocol #2.
    aligned = metrics.hypothesis_errors(hypotheses, WEIGHTS, gt, procrustes=True)
    for column in metrics.ERROR_COLUMNS:
        assert_allclose(aligned[column], 0.0, atol=1e-9)


def test_best_is_chosen_by_mpjpe_not_joint_by_joint():
    gt = np.zeros((1, NUM_JOINTS, 3))
    spiky = np.full((NUM_JOINTS, 3), [100.0, 0, 0])
    spiky[0] = 0.0  # perfect on one joint, 100 mm elsewhere
    steady = np.full((NUM_JOINTS, 3), [10.0, 0, 0])
    hypotheses = np.stack([spiky, steady])[None]
    per_joint = metrics.hypothesis_errors(hypotheses, [[0.5, 0.5]], gt, per_joint=True)
    assert_allclose(per_joint["best"], [[10.0] * NUM_JOINTS])
    assert_allclose(per_joint["most_probable"][0, :2], [0.0, 100.0])  # tie -> first


def test_hypothesis_errors_match_a_per_frame_loop_across_chunks():
    rng = np.random.default_rng(9)
    gt = random_poses(rng, 23)
    hypotheses = gt[:, None] + random_poses(rng, 23, 5) / 4.0
    weights = rng.dirichlet(np.ones(5), size=23)
    got = metrics.hypothesis_errors(hypotheses, weights, gt, procrustes=True,
                                    chunk_frames=4, workers=3)
    for n in range(23):
        per_hypothesis = [np.mean(np.linalg.norm(reference_align(h, gt[n]) - gt[n], axis=1))
                          for h in hypotheses[n]]
        mean_pose = np.tensordot(weights[n], hypotheses[n], axes=1)
        mixture = np.mean(np.linalg.norm(reference_align(mean_pose, gt[n]) - gt[n], axis=1))
        assert_allclose(got["best"][n], min(per_hypothesis), rtol=1e-8)
        assert_allclose(got["most_probable"][n], per_hypothesis[np.argmax(weights[n])],
                        rtol=1e-8)
        assert_allclose(got["mixture_mean"][n], mixture, rtol=1e-8)


def test_hypothesis_errors_accepts_float32_and_rejects_bad_shapes():
    rng = np.random.default_rng(10)
    gt = random_poses(rng, 3)
    hypotheses = gt[:, None] + random_poses(rng, 3, 2) / 10.0
    weights = np.full((3, 2), 0.5)
    as_float32 = metrics.hypothesis_errors(hypotheses.astype(np.float32),
                                           weights.astype(np.float32), gt.astype(np.float32))
    as_float64 = metrics.hypothesis_errors(hypotheses, weights, gt)
    assert_allclose(as_float32["best"], as_float64["best"], rtol=1e-5)
    with pytest.raises(ValueError, match="weights"):
        metrics.hypothesis_errors(hypotheses, weights[:, :1], gt)
    with pytest.raises(ValueError, match="gt"):
        metrics.hypothesis_errors(hypotheses, weights, gt[:, :16])


def test_pck_counts_errors_at_or_below_the_threshold():
    errors = np.array([[0.0, 50.0, 100.0], [150.0, 200.0, 149.9]])
    assert metrics.pck(errors) == pytest.approx(100.0 * 5 / 6)
    assert metrics.pck(errors, threshold=50.0) == pytest.approx(100.0 * 2 / 6)


def test_auc_is_the_mean_pck_over_0_to_150_mm():
    errors = np.array([0.0, 60.0, 200.0, 1000.0])
    # Thresholds 0, 5, ..., 150: 12 of them (0..55) see 1 of 4 joints, 19 (60..150) see 2.
    assert metrics.auc(errors) == pytest.approx((12 * 25.0 + 19 * 50.0) / 31)
    assert metrics.auc(errors, thresholds=[60.0]) == pytest.approx(metrics.pck(errors, 60.0))
