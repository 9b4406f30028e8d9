"""The Lifter API: numbers against an independent numpy forward pass of the network,
missing joints, input checks and sampling from the predicted mixture."""

import itertools
import warnings

import numpy as np
import pytest

from mdm.checkpoint import store as checkpoint_store
from mdm.core import skeleton
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data.normalization import NormStats
from mdm.model import mixture
from mdm.model.network import build_model
from mdm.serve.keypoint_files import INPUT_NAMES
from mdm.serve.lifter import Lifter, MissingJointsWarning
import numpy_network

STEP = 11
K = 5


def _random_stats(rng):
    pose_2d = rng.uniform(300.0, 700.0, (16, 2))
    pose_3d = rng.normal(0.0, 300.0, (17, 3))
    poses_3d = pose_3d + rng.normal(0.0, 80.0, (200, 17, 3))
    poses_3d[:, 0] = 0.0  # root-centred
    return NormStats.from_training(pose_2d + rng.normal(0.0, 40.0, (200, 16, 2)), poses_3d)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint in this project's format (as training writes it), random weights and
    BN statistics, with its directory and NormStats."""
    directory = str(tmp_path_factory.mktemp("checkpoint"))
    rng = np.random.default_rng(0)
    config = Config(linear_size=32, num_layers=1, num_models=K)
    model = build_model(config, 48)
    for variable in model.variables:
        if variable.path.endswith(("gamma", "moving_variance")):
            variable.assign(rng.uniform(0.5, 2.0, variable.shape))
        elif variable.path.endswith(("beta", "moving_mean")):
            variable.assign(rng.normal(0.0, 0.3, variable.shape))
    stats = _random_stats(rng)
    checkpoint_store.write_config(directory, config)
    checkpoint_store.CheckpointStore(directory, model, stats=stats).save(STEP, 1)
    return directory, stats


@pytest.fixture(scope="module")
def lifter(trained):
    return Lifter.load(trained[0], STEP)


def expected(lifter, pixels, missing=None):
    """Sorted hypotheses in mm computed with numpy only."""
    stats = lifter.stats
    z = (pixels - stats.mean_2d) / stats.std_2d
    if missing is not None:
        z[missing] = 0.0
    means, scales, weights = numpy_network.forward(numpy_network.weights_of(lifter.model),
                                                   z.reshape(len(z), 32), K)
    order = np.argsort(-weights, axis=1)
    means = np.take_along_axis(means, order[..., None], 1).reshape(len(z), K, 16, 3)
    poses = np.zeros((len(z), K, 17, 3))
    poses[:, :, 1:] = means * stats.std_3d[1:] + stats.mean_3d[1:]
    scales = np.take_along_axis(scales, order, 1)
    spread = np.concatenate([np.zeros((1, 3)), stats.std_3d[1:]])
    return {"poses": poses, "weights": np.take_along_axis(weights, order, 1), "scales": scales,
            "scales_mm": scales[..., None, None] * spread, "kernel_index": order}


def assert_matches(result, want):
    np.testing.assert_allclose(result.poses, want["poses"], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(result.weights, want["weights"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.scales, want["scales"], rtol=1e-5)
    np.testing.assert_allclose(result.scales_mm, want["scales_mm"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.kernel_index, want["kernel_index"])


def _pixels(lifter, count, seed=1):
    rng = np.random.default_rng(seed)
    return lifter.stats.mean_2d + rng.normal(0.0, 1.0, (count, 16, 2)) * lifter.stats.std_2d


def test_predict_matches_numpy(lifter):
    pixels = _pixels(lifter, 4)
    result = lifter.predict(pixels)
    assert result.poses.shape == (4, K, 17, 3) and not result.missing.any()
    assert_matches(result, expected(lifter, pixels))
    assert np.all(np.diff(result.weights, axis=1) <= 0)
    assert np.ptp(result.poses) > 100.0  # hypotheses in mm, not degenerate


def test_single_flat_and_mpii_layouts_agree(lifter):
    pose = _pixels(lifter, 1)[0]
    mpii = np.array([pose[INPUT_NAMES.index(name)] for name in skeleton.SH_NAMES])
    want = expected(lifter, pose[None])
    for keypoints, order in ((pose, "h36m"), (pose.reshape(32), "h36m"), (mpii, "mpii"),
                             (mpii[None].tolist(), "mpii")):
        assert_matches(lifter.predict(keypoints, order), want)


def test_missing_joints_are_normalised_to_zero(lifter):
    pixels = _pixels(lifter, 2)
    missing = np.zeros((2, 16), bool)
    missing[0, INPUT_NAMES.index("LWrist")] = True
    missing[1, [INPUT_NAMES.index("RKnee"), INPUT_NAMES.index("RElbow")]] = True
    given = pixels.copy()
    given[missing] = np.nan
    given[1, INPUT_NAMES.index("RElbow"), 0] = 5.0  # one NaN coordinate is enough
    with pytest.warns(MissingJointsWarning,
                      match=r"not trained for missing joints \(--miss_num 0\)"):
        result = lifter.predict(given)
    np.testing.assert_array_equal(result.missing, missing)
    assert_matches(result, expected(lifter, pixels, missing))


@pytest.mark.parametrize("miss_num, count, warns", [(0, 1, True), (1, 2, True), (2, 2, False)])
def test_missing_joint_warning_follows_miss_num(lifter, miss_num, count, warns):
    informed = Lifter(lifter.model, lifter.stats, lifter.config, miss_num=miss_num)
    pixels = _pixels(lifter, 1)
    pixels[0, [INPUT_NAMES.index("LFoot"), INPUT_NAMES.index("LWrist")][:count]] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        informed.predict(pixels)
    assert [issubclass(w.category, MissingJointsWarning) for w in caught] == ([True] if warns
                                                                            else [])


def _with_nan(names):
    def corrupt(pixels):
        pixels[0, [INPUT_NAMES.index(n) for n in names]] = np.nan
        return pixels
    return corrupt


@pytest.mark.parametrize("make, message", [
    (_with_nan(["Hip"]), r"root joint \(Hip\) is missing"),
    (_with_nan(["Thorax"]), "Thorax missing; only limb joints"),
    (_with_nan(["RKnee", "LFoot", "LWrist"]), "3 limb joints missing"),
    (lambda p: np.zeros((17, 2)), "17 joints per pose"),
    (lambda p: np.zeros((2, 16, 3)), r"shape \(2, 16, 3\)"),
    (lambda p: np.zeros((0, 16, 2)), "no keypoints"),
    (lambda p: np.full((16, 2), "1"), "must be numbers"),
    (lambda p: [[1.0, 2.0]] * 15 + [[1.0]], "ragged"),
    (lambda p: np.where(np.arange(32).reshape(16, 2) == 3, np.inf, p[0]), "infinite"),
])
def test_bad_input_is_refused(lifter, make, message):
    with pytest.raises(UserError, match=message):
        lifter.predict(make(_pixels(lifter, 2)))


def test_bad_arguments_are_refused(lifter):
    with pytest.raises(UserError, match="unknown joint order"):
        lifter.predict(_pixels(lifter, 1), joint_order="coco")
    with pytest.raises(UserError, match="num_samples"):
        lifter.predict(_pixels(lifter, 1), num_samples=-1)
    with pytest.raises(UserError, match="seed must be a non-negative integer up to"):
        lifter.predict(_pixels(lifter, 1), num_samples=2, seed=2 ** 40)


def test_samples_follow_the_predicted_mixture(lifter):
    num_samples = 20000
    result = lifter.predict(_pixels(lifter, 1), num_samples=num_samples, seed=3)
    samples = result.samples[0]
    assert samples.shape == (num_samples, 17, 3)
    weights = result.weights[0][:, None, None]
    mean = np.sum(weights * result.poses[0], axis=0)
    second = np.sum(weights * (result.scales_mm[0] ** 2 + result.poses[0] ** 2), axis=0)
    variance = second - mean ** 2
    np.testing.assert_array_equal(samples[:, 0], 0.0)  # the root stays at 0
    standard_error = np.sqrt(variance[1:] / num_samples)
    assert np.all(np.abs(samples[:, 1:].mean(0) - mean[1:]) < 5 * standard_error + 1e-6)
    np.testing.assert_allclose(samples[:, 1:].var(0), variance[1:], rtol=0.08)


def test_sampling_is_seeded(lifter):
    pixels = _pixels(lifter, 2)
    first = lifter.predict(pixels, num_samples=5, seed=7).samples
    np.testing.assert_array_equal(first, lifter.predict(pixels, num_samples=5, seed=7).samples)
    assert not np.allclose(first, lifter.predict(pixels, num_samples=5, seed=8).samples)
    assert first.shape == (2, 5, 17, 3)


def test_sample_mixture_kernel_frequencies_and_spreads():
    weights = np.array([[0.1, 0.6, 0.3]], np.float32)
    scales = np.array([[0.5, 1.0, 2.0]], np.float32)
    means = np.arange(3, dtype=np.float32)[None, :, None] * np.full((1, 3, 48), 100.0, np.float32)
    draws = mixture.sample_mixture(means, scales, weights, 20000, seed=0).numpy()[0]
    kernel = np.rint(draws.mean(1) / 100.0).astype(int)
    np.testing.assert_allclose(np.bincount(kernel, minlength=3) / len(draws), weights[0],
                               atol=0.02)
    for k in range(3):
        np.testing.assert_allclose((draws[kernel == k] - means[0, k]).std(), scales[0, k],
                                   rtol=0.03)


def test_save_and_reload(lifter, tmp_path):
    path = lifter.save(str(tmp_path), 21)
    assert path.endswith("checkpoint-21")
    reloaded = Lifter.load(str(tmp_path))
    pixels = _pixels(lifter, 3)
    np.testing.assert_array_equal(reloaded.predict(pixels).poses, lifter.predict(pixels).poses)


def test_load_errors(trained, tmp_path):
    with pytest.raises(UserError, match="no checkpoint in"):
        Lifter.load(str(tmp_path))
    with pytest.raises(UserError, match=f"no checkpoint-99 .*available steps: {STEP}"):
        Lifter.load(trained[0], 99)
    (tmp_path / "checkpoint-3.index").write_bytes(b"")
    (tmp_path / "checkpoint-3.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        Lifter.load(str(tmp_path))


def test_statistics_come_from_the_checkpoint(lifter, trained):
    for name, value in trained[1].as_arrays().items():
        np.testing.assert_array_equal(getattr(lifter.stats, name), value)


def test_predict_sequence_is_the_cheapest_path_over_all_paths(lifter):
    """The temporal path equals an exhaustive search over all K^T kernel sequences of
    -log a + smoothness * MPJPE between consecutive frames."""
    rng = np.random.default_rng(7)
    keypoints = rng.uniform(300.0, 700.0, (4, 16, 2))
    hypotheses = lifter.predict(keypoints)
    for smoothness in (0.0, 0.02, 1.0):
        path = lifter.predict_sequence(keypoints, smoothness=smoothness)

        def cost(ranks):
            total = -np.log(np.clip([hypotheses.weights[t, r] for t, r in enumerate(ranks)],
                                    1e-8, None)).sum()
            for t in range(1, len(ranks)):
                step = hypotheses.poses[t, ranks[t]] - hypotheses.poses[t - 1, ranks[t - 1]]
                total += smoothness * np.linalg.norm(step, axis=-1).mean()
            return total

        best = min(itertools.product(range(K), repeat=len(keypoints)), key=cost)
        frames = np.arange(len(keypoints))
        np.testing.assert_allclose(path.poses, hypotheses.poses[frames, best])
        np.testing.assert_array_equal(path.kernel, hypotheses.kernel_index[frames, best])
        np.testing.assert_allclose(path.probability, hypotheses.weights[frames, best])


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_predict_multiview_picks_the_most_consistent_combination(lifter):
    rng = np.random.default_rng(8)
    keypoints = rng.uniform(300.0, 700.0, (3, 2, 16, 2))  # 3 cameras, 2 instants
    rotations = [_rotation(rng) for _ in range(3)]
    result = lifter.predict_multiview(keypoints, rotations)
    views = [lifter.predict(k) for k in keypoints]
    for n in range(2):
        world = [views[v].poses[n] @ rotations[v] for v in range(3)]
        combo = min(itertools.product(range(K), repeat=3), key=lambda c: sum(
            np.linalg.norm(world[a][c[a]] - world[b][c[b]], axis=-1).mean()
            for a, b in itertools.combinations(range(3), 2)))
        fused = np.mean([world[v][c] for v, c in enumerate(combo)], axis=0)
        for v in range(3):
            np.testing.assert_allclose(result.poses[v, n], views[v].poses[n, combo[v]])
            np.testing.assert_array_equal(result.kernel[v, n], views[v].kernel_index[n, combo[v]])
            np.testing.assert_allclose(result.fused[v, n], fused @ rotations[v].T, atol=1e-6)
        np.testing.assert_allclose(result.fused_world[n], fused, atol=1e-6)


def test_predict_multiview_refuses_mismatched_views(lifter):
    keypoints = np.full((2, 1, 16, 2), 500.0)
    with pytest.raises(UserError, match="2 views need 2 3x3 rotations"):
        lifter.predict_multiview(keypoints, [np.eye(3)])
