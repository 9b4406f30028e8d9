"""Released TF1 checkpoints (docs/faithfulness.md §5) load into the Keras model and give the same
mixture as the release's own graph.

The release's graph is rebuilt here with tf.compat.v1, following its mix_den_model.py
(variable names, max-norm by tf.clip_by_norm, BN with epsilon 1e-3, concatenated
[means, scales, mixing] read back by a reshape to (48 + 2, K)), with a small linear_size
and random weights, and saved with tf.compat.v1.train.Saver together with the training
state the release saved (global_step, learning_rate, Adam slots).
"""

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from mdm import infer
from mdm.checkpoint import release_format
from mdm.checkpoint.loading import load_model
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data import splits
from mdm.data.normalization import NormStats
from mdm.data.synthetic import h36m_writer
from mdm.evaluate import modes
from mdm.serve.lifter import Lifter

STEP = 4338038
LINEAR_SIZE = 24
NUM_LAYERS = 2
K = 5
EPSILON = 1e-3  # tf.layers.batch_normalization's default, which the release used


class ReleaseReplica:
    """The release's forward graph in a live session: `mixture(inputs)` returns its
    (means (N, K, 48), scales (N, K), weights (N, K)) with dropout off, BN at test time."""

    def __init__(self, directory, seed=0):
        self.graph = tf.Graph()
        rng = np.random.default_rng(seed)
        with self.graph.as_default():
            self.inputs = tf.compat.v1.placeholder(tf.float32, [None, 32])
            self.keep_prob = tf.compat.v1.placeholder(tf.float32, [])
            with tf.compat.v1.variable_scope("linear_model"):
                self.components = self._network(rng)
            self._training_state()
            self.session = tf.compat.v1.Session(graph=self.graph)
            self.session.run(tf.compat.v1.global_variables_initializer())
            saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables())
            self.path = saver.save(self.session, os.path.join(directory, "checkpoint"),
                                   global_step=STEP)

    def _network(self, rng):
        def variable(name, shape):
            value = rng.normal(0.0, 1.0, shape) * np.sqrt(2.0 / shape[0])
            return tf.compat.v1.get_variable(name, initializer=tf.constant(value, tf.float32))

        def linear(x, weight, bias, shape, clip=True):
            w, b = variable(weight, shape), variable(bias, shape[1:])
            return tf.matmul(x, tf.clip_by_norm(w, 1) if clip else w) + b

        def unit(x, weight, bias, shape, bn_name):
            y = _batch_norm(linear(x, weight, bias, shape), bn_name, rng)
            return tf.compat.v1.nn.dropout(tf.nn.relu(y), keep_prob=self.keep_prob)

        size = LINEAR_SIZE
        y = unit(self.inputs, "w1", "b1", [32, size], "batch_normalization")
        for i in range(NUM_LAYERS):
            with tf.compat.v1.variable_scope(f"two_linear_{i}"):
                h = unit(y, f"w2_{i}", f"b2_{i}", [size, size], f"batch_normalization1{i}")
                y = y + unit(h, f"w3_{i}", f"b3_{i}", [size, size], f"batch_normalization2{i}")
        mu = linear(y, "w4", "b4", [size, 48 * K])
        sigma = tf.nn.elu(linear(y, "w5", "b5", [size, K])) + 1
        alpha = tf.nn.softmax(linear(y, "w6", "b6", [size, K], clip=False), axis=1)
        return tf.concat([mu, sigma, alpha], axis=1)

    def _training_state(self):
        global_step = tf.compat.v1.Variable(0, trainable=False, name="global_step")
        learning_rate = tf.compat.v1.Variable(1e-3, trainable=False, name="learning_rate")
        loss = tf.reduce_sum(self.components ** 2)
        tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(loss, global_step=global_step)

    def mixture(self, inputs):
        flat = self.session.run(self.components, {self.inputs: inputs, self.keep_prob: 1.0})
        components = flat.reshape(len(flat), 48 + 2, K)  # the release's read-back
        return components[:, :48, :].transpose(0, 2, 1), components[:, 48], components[:, 49]


def _batch_norm(y, name, rng):
    size = int(y.shape[1])
    with tf.compat.v1.variable_scope(name):
        values = {"gamma": rng.uniform(0.5, 1.5, size), "beta": rng.normal(0, 0.2, size),
                  "moving_mean": rng.normal(0, 0.5, size),
                  "moving_variance": rng.uniform(0.5, 2.0, size)}
        # The moving averages are not trainable in TF1 either (no Adam slots).
        v = {key: tf.compat.v1.get_variable(key, initializer=tf.constant(value, tf.float32),
                                            trainable=not key.startswith("moving"))
             for key, value in values.items()}
    return tf.nn.batch_normalization(y, v["moving_mean"], v["moving_variance"], v["beta"],
                                     v["gamma"], EPSILON)


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    directory = tmp_path_factory.mktemp("release")
    release = ReleaseReplica(str(directory))
    yield release
    release.session.close()


@pytest.fixture(scope="module")
def config():
    return Config(linear_size=LINEAR_SIZE, num_layers=NUM_LAYERS, jit_compile=False)


def _inputs(count=7, seed=1):
    return np.random.default_rng(seed).normal(0.0, 1.0, (count, 32)).astype(np.float32)


def test_saved_file_is_the_release_layout(replica):
    names = dict(tf.train.list_variables(replica.path))
    assert names["linear_model/w4"] == [LINEAR_SIZE, 48 * K]
    assert "linear_model/two_linear_1/batch_normalization21/moving_variance" in names
    assert {"global_step", "learning_rate", "beta1_power", "linear_model/w1/Adam_1"} <= set(names)
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        assert os.path.isfile(replica.path + suffix)
    assert release_format.checkpoint_format(replica.path) == release_format.RELEASE


def test_mixture_matches_the_release_graph(replica, config):
    model = release_format.load_release_model(replica.path, config)
    inputs = _inputs()
    expected = replica.mixture(inputs)
    got = [t.numpy() for t in model(tf.constant(inputs), training=False)]
    assert np.std(expected[0]) > 0.05 and np.std(expected[2]) > 0.01  # not degenerate
    for name, want, have in zip(("means", "scales", "weights"), expected, got):
        np.testing.assert_allclose(have, want, atol=1e-5, rtol=0, err_msg=name)


def test_every_model_weight_is_covered(replica, config):
    model = release_format.load_release_model(replica.path, config)
    weights = release_format.model_weights(model)
    names = release_format.release_name_map(NUM_LAYERS)
    reader = tf.train.load_checkpoint(replica.path)
    assert set(weights) == set(names)
    # 2 + 4 (stem) + 2 blocks x 2 units x 6 + 3 heads x 2
    assert len(weights) == 6 + NUM_LAYERS * 12 + 6
    for path, variable in weights.items():
        np.testing.assert_array_equal(variable.numpy(), reader.get_tensor(names[path]))


def test_architecture_read_from_shapes(replica):
    assert release_format.release_architecture(replica.path) == {
        "linear_size": LINEAR_SIZE, "num_layers": NUM_LAYERS, "num_models": K,
        "predict_14": False, "batch_norm": True, "residual": True, "max_norm": True}


def test_other_flags_are_named(replica):
    wrong = Config(linear_size=32, num_layers=1)
    with pytest.raises(UserError, match=r"--linear_size=32 \(checkpoint: 24\).*"
                                        r"--num_layers=1 \(checkpoint: 2\)"):
        release_format.load_release_model(replica.path, wrong)


def _variables(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(path)}


def _save_tf1(arrays, directory):
    """Write `arrays` under their names with tf.compat.v1.train.Saver."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = {name: tf.compat.v1.Variable(value, name=f"v{i}")
                     for i, (name, value) in enumerate(arrays.items())}
        session.run(tf.compat.v1.global_variables_initializer())
        saver = tf.compat.v1.train.Saver(variables)
        return saver.save(session, os.path.join(directory, "checkpoint"), global_step=STEP)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update({"linear_model/w7": np.zeros((3, 3), np.float32)}),
     "unexpected in the checkpoint: linear_model/w7"),
    (lambda a: a.pop("linear_model/two_linear_1/batch_normalization21/moving_variance"),
     "missing from the checkpoint: "
     "linear_model/two_linear_1/batch_normalization21/moving_variance"),
    (lambda a: a.update({"linear_model/b5": np.zeros(4, np.float32)}),
     r"shape mismatch: linear_model/b5 is \[4\] in the checkpoint but \[5\] in the model"),
])
def test_mismatches_are_refused_by_name(replica, config, tmp_path, change, message):
    arrays = _variables(replica.path)
    change(arrays)
    path = _save_tf1(arrays, str(tmp_path))
    with pytest.raises(UserError, match=message):
        release_format.load_release_model(path, config)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "checkpoint-5.index").write_bytes(b"not an index")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        release_format.checkpoint_format(str(tmp_path / "checkpoint-5"))


def _numpy_stats(pose_set):
    """Per-dimension mean and std of the training split, computed here with numpy."""
    poses_2d = pose_set.poses_2d.astype(np.float64)
    poses_3d = pose_set.poses_3d.astype(np.float64)
    return poses_2d.mean(0), poses_2d.std(0), poses_3d.mean(0), poses_3d.std(0)


def _numpy_hypotheses_mm(means, mean_3d, std_3d):
    """(N, K, 48) normalised -> (N, K, 17, 3) mm, the root (joint 0) at 0."""
    poses = np.zeros(means.shape[:2] + (17, 3))
    poses[:, :, 1:] = means.reshape(means.shape[:2] + (16, 3)) * std_3d[1:] + mean_3d[1:]
    return poses


@pytest.fixture(scope="module")
def test_mode(replica, config, tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("data"))
    h36m_writer.write_synthetic_h36m(data_dir, frames_per_sequence=4, seed=5)
    work = str(tmp_path_factory.mktemp("work"))
    return dataclasses.replace(config, data_dir=data_dir, train_dir=work, test=True, verbose=0,
                               load_dir=os.path.dirname(replica.path), load=STEP)


def test_test_mode_on_a_release_checkpoint(replica, test_mode):
    results = modes.run_test(test_mode)
    train_set, test_set, _ = splits.load_splits(test_mode)
    mean_2d, std_2d, mean_3d, std_3d = _numpy_stats(train_set)
    inputs = ((test_set.poses_2d - mean_2d) / std_2d).reshape(len(test_set), 32)
    means, _, weights = replica.mixture(inputs.astype(np.float32))
    hypotheses = _numpy_hypotheses_mm(means, mean_3d, std_3d)
    errors = np.linalg.norm(hypotheses - test_set.poses_3d[:, None], axis=-1).mean(-1)
    actions = test_set.actions()
    best = [errors[actions == a].min(1).mean() for a in np.unique(actions)]
    top = errors[np.arange(len(errors)), weights.argmax(1)]
    most_probable = [top[actions == a].mean() for a in np.unique(actions)]
    np.testing.assert_allclose(results["Average"]["best"], np.mean(best), rtol=1e-5)
    np.testing.assert_allclose(results["Average"]["most_probable"], np.mean(most_probable),
                               rtol=1e-5)


def test_load_model_computes_training_statistics(test_mode):
    _, stats = load_model(test_mode.load_dir, test_mode.load, test_mode)
    train_set, _, _ = splits.load_splits(test_mode)
    for have, want in zip((stats.mean_2d, stats.std_2d, stats.mean_3d, stats.std_3d),
                          _numpy_stats(train_set)):
        np.testing.assert_allclose(have, want, rtol=1e-10)


def test_lifter_on_a_release_checkpoint(replica):
    rng = np.random.default_rng(2)
    stats = NormStats.from_training(rng.normal(500, 80, (40, 16, 2)),
                                    rng.normal(0, 150, (40, 17, 3)))
    lifter = Lifter.load(os.path.dirname(replica.path), STEP, stats=stats)
    pixels = rng.normal(500, 80, (3, 16, 2))
    result = lifter.predict(pixels)
    z = ((pixels - stats.mean_2d) / stats.std_2d).reshape(3, 32).astype(np.float32)
    means, scales, weights = replica.mixture(z)
    order = np.argsort(-weights, axis=1)
    want = _numpy_hypotheses_mm(np.take_along_axis(means, order[..., None], 1),
                                stats.mean_3d, stats.std_3d)
    np.testing.assert_allclose(result.poses, want, atol=1e-3)
    np.testing.assert_allclose(result.weights, np.take_along_axis(weights, order, 1), atol=1e-6)
    np.testing.assert_allclose(result.scales, np.take_along_axis(scales, order, 1), atol=1e-5)
    assert lifter.miss_num == 0


def test_lifter_needs_statistics_for_a_release_checkpoint(replica):
    with pytest.raises(UserError, match="holds no normalisation statistics.*--data_dir"):
        Lifter.load(os.path.dirname(replica.path), STEP)


@pytest.mark.slow
def test_infer_cli_on_a_release_checkpoint(capsys, replica, test_mode, tmp_path):
    pixels = np.random.default_rng(3).normal(500, 100, (2, 16, 2))
    np.save(tmp_path / "in.npy", pixels)
    load_dir = os.path.dirname(replica.path)
    args = ["--load_dir", load_dir, "--input", str(tmp_path / "in.npy"),
            "--output", str(tmp_path / "out.npz")]
    assert infer.main(args) == 1
    assert "--data_dir" in capsys.readouterr().err
    assert infer.main(args + ["--data_dir", test_mode.data_dir]) == 0
    mean_2d, std_2d, mean_3d, std_3d = _numpy_stats(splits.load_splits(test_mode)[0])
    means, _, weights = replica.mixture(((pixels - mean_2d) / std_2d).reshape(2, 32))
    order = np.argsort(-weights, axis=1)
    want = _numpy_hypotheses_mm(np.take_along_axis(means, order[..., None], 1), mean_3d, std_3d)
    with np.load(tmp_path / "out.npz") as saved:
        np.testing.assert_allclose(saved["poses_3d"], want, atol=1e-3)


def test_truncated_data_file_is_refused(replica, config, tmp_path):
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(replica.path + suffix, tmp_path / f"checkpoint-{STEP}{suffix}")
    data = tmp_path / f"checkpoint-{STEP}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        release_format.load_release_model(str(tmp_path / f"checkpoint-{STEP}"), config)
