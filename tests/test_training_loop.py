"""Training in-process: exact resume from a checkpoint, seeded reproducibility, the
learning-rate schedule, and the stop on a non-finite loss."""

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import error_line, run_cli
from training_helpers import tiny_config

from mdm.checkpoint import store as checkpoint_store
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data.normalization import NormStats
from mdm.train import divergence
from mdm.train import loop as training_loop
from mdm.train.optimizer import learning_rate_schedule


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 5)


def final_weights(train_dir):
    step = checkpoint_store.available_steps(train_dir)[-1]
    reader = tf.train.load_checkpoint(os.path.join(train_dir, f"checkpoint-{step}"))
    names = sorted(name for name, _ in tf.train.list_variables(os.path.join(
        train_dir, f"checkpoint-{step}")) if "VARIABLE_VALUE" in name and "save_counter" not in name)
    return step, {name: reader.get_tensor(name) for name in names}


def results(train_dir):
    with open(os.path.join(train_dir, "results.json")) as handle:
        return json.load(handle)["results"]


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(data_dir, tmp_path):
    straight = tiny_config(data_dir, tmp_path / "straight", miss_num=1)
    training_loop.train(straight)
    resumed = tiny_config(data_dir, tmp_path / "resumed", miss_num=1)
    training_loop.train(dataclasses.replace(resumed, epochs=1))
    training_loop.train(resumed)
    step_a, weights_a = final_weights(straight.train_dir)
    step_b, weights_b = final_weights(resumed.train_dir)
    assert step_a == step_b
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_array_equal(weights_a[name], weights_b[name], err_msg=name)
    assert results(straight.train_dir) == results(resumed.train_dir)


@pytest.mark.slow
def test_steps_per_execution_trains_the_same_steps(data_dir, tmp_path):
    """--steps_per_execution 3 with 10 steps per epoch (320 Walking samples / 32): every
    epoch still takes exactly its 10 batches, so the run equals the one-step run."""
    one = tiny_config(data_dir, tmp_path / "one")
    three = tiny_config(data_dir, tmp_path / "three", steps_per_execution=3)
    for config in (one, three):
        training_loop.train(config)
    step_one, weights_one = final_weights(one.train_dir)
    step_three, weights_three = final_weights(three.train_dir)
    assert step_one == step_three == 20
    assert checkpoint_store.available_steps(three.train_dir) == [10, 20]
    for name in weights_one:
        np.testing.assert_allclose(weights_three[name], weights_one[name], rtol=1e-5,
                                   atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_every_epoch_dataset_shares_one_copy_of_the_data(data_dir, tmp_path, monkeypatch):
    """One fit() per epoch builds one dataset per epoch; they must all gather from the same
    tensors (a copy per epoch grew memory by ~0.25 GB an epoch on real Human3.6M)."""
    seen = []
    original = training_loop.distributed_training_dataset

    def recording(strategy, inputs, targets, *args, **kwargs):
        seen.append((inputs, targets))
        return original(strategy, inputs, targets, *args, **kwargs)

    monkeypatch.setattr(training_loop, "distributed_training_dataset", recording)
    training_loop.train(tiny_config(data_dir, tmp_path / "t", epochs=3))
    assert len(seen) == 3
    for inputs, targets in seen:
        assert isinstance(inputs, tf.Tensor) and isinstance(targets, tf.Tensor)
        assert inputs is seen[0][0] and targets is seen[0][1]


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_differs(data_dir, tmp_path):
    first = tiny_config(data_dir, tmp_path / "a", epochs=1)
    second = tiny_config(data_dir, tmp_path / "b", epochs=1)
    other = tiny_config(data_dir, tmp_path / "c", epochs=1, seed=8)
    for config in (first, second, other):
        training_loop.train(config)
    assert results(first.train_dir) == results(second.train_dir)
    assert results(first.train_dir) != results(other.train_dir)


@pytest.mark.slow
def test_nothing_to_do_when_already_trained(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path / "done", epochs=1)
    training_loop.train(config)
    steps = checkpoint_store.available_steps(config.train_dir)
    assert training_loop.train(config) is None
    assert checkpoint_store.available_steps(config.train_dir) == steps


def test_learning_rate_follows_release_decay():
    schedule = learning_rate_schedule(Config())
    for step in (0, 1, 50000, 100000, 4338038):
        np.testing.assert_allclose(float(schedule(step)), 1e-3 * 0.96 ** (step / 100000),
                                   rtol=1e-5)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path / "nan", epochs=1)
    training_loop.train(config)
    good_step, good_weights = final_weights(config.train_dir)
    exploding = dataclasses.replace(config, epochs=2, learning_rate=1e36)
    with pytest.raises(UserError, match=r"non-finite loss by step \d+.*checkpoint-%d" % good_step):
        training_loop.train(exploding)
    step, weights = final_weights(config.train_dir)
    assert step == good_step
    for name, value in good_weights.items():
        np.testing.assert_array_equal(weights[name], value)
        assert np.all(np.isfinite(value))


def _assert_stops_keeping(config, good_step, good_weights, message):
    with pytest.raises(UserError, match=message) as stopped:
        training_loop.train(config)
    assert f"the last good checkpoint is checkpoint-{good_step} in {config.train_dir}" in str(
        stopped.value)
    assert checkpoint_store.available_steps(config.train_dir) == [good_step]
    step, weights = final_weights(config.train_dir)
    assert step == good_step
    for name, value in good_weights.items():
        np.testing.assert_array_equal(weights[name], value)
    assert results(config.train_dir) == good_results(config.train_dir)


def good_results(train_dir):
    with open(os.path.join(train_dir, "good_results.json")) as handle:
        return json.load(handle)["results"]


@pytest.fixture(scope="module")
def trained_one_epoch(data_dir, tmp_path_factory):
    config = tiny_config(data_dir, tmp_path_factory.mktemp("one_epoch") / "t", epochs=1)
    training_loop.train(config)
    shutil.copy(os.path.join(config.train_dir, "results.json"),
                os.path.join(config.train_dir, "good_results.json"))
    return config


@pytest.fixture
def one_good_epoch(trained_one_epoch, tmp_path):
    """A copy of a one-epoch train_dir, set to go on for 2 epochs at --learning_rate 1e6."""
    train_dir = str(tmp_path / "diverging")
    shutil.copytree(trained_one_epoch.train_dir, train_dir)
    config = dataclasses.replace(trained_one_epoch, train_dir=train_dir, epochs=3,
                                 learning_rate=1e6)
    return (config, *final_weights(train_dir))


@pytest.mark.slow
def test_absurd_poses_stop_before_the_save(one_good_epoch):
    """--learning_rate 1e6 keeps this small network's loss finite and moderate (~800 nats)
    while its poses are ~1e14 mm: the run stops before that epoch's checkpoint."""
    config, good_step, good_weights = one_good_epoch
    _assert_stops_keeping(config, good_step, good_weights,
                          r"training stopped: the model diverged: mean joint error [0-9.e+]+ mm "
                          r"on training samples \(above 10 m\) by step %d " % (2 * good_step))


@pytest.mark.slow
def test_absurd_loss_stops_and_keeps_last_good_checkpoint(one_good_epoch, monkeypatch):
    """A loss above the ceiling stops the run at that reading, before the pose check (the
    ceiling lowered here to between this network's healthy ~87 and diverged ~800 nats; larger
    networks reach the 1e30 clip, measured in mdm/train/divergence.py)."""
    config, good_step, good_weights = one_good_epoch
    monkeypatch.setattr(divergence, "LOSS_CEILING", 300.0)
    _assert_stops_keeping(config, good_step, good_weights,
                          r"training stopped: the loss diverged to [0-9.e+]+ \(above 3e\+02\) "
                          r"by step %d .*; try a lower --learning_rate" % (2 * good_step))


@pytest.mark.slow
def test_command_line_run_with_a_huge_learning_rate_exits_1(data_dir, tmp_path):
    result = run_cli("--data_dir", data_dir, "--train_dir", str(tmp_path), "--action",
                     "Walking", "--epochs", "2", "--linear_size", "24", "--num_layers", "1",
                     "--batch_size", "32", "--verbose", "0", "--learning_rate", "1e6")
    assert result.returncode == 1
    assert re.fullmatch(r"error: training stopped: the model diverged: mean joint error "
                        r"[0-9.e+]+ mm on training samples \(above 10 m\) by step 10 \(the "
                        r"last good checkpoint is no checkpoint in "
                        rf"{re.escape(str(tmp_path))}\); try a lower --learning_rate",
                        error_line(result)), result.stderr
    assert checkpoint_store.available_steps(str(tmp_path)) == []
    assert not os.path.exists(tmp_path / "results.json")


def test_loss_ceiling():
    assert divergence.loss_problem(35.0) is None and divergence.loss_problem(-80.0) is None
    assert divergence.loss_problem(9999.0) is None
    assert divergence.loss_problem(1.3e5) == "the loss diverged to 1.3e+05 (above 1e+04)"
    assert divergence.loss_problem(float("nan")) == "non-finite loss"
    assert divergence.loss_problem(float("-inf")) == "non-finite loss"


def test_error_probe_is_the_best_hypothesis_mean_joint_error():
    """Against numpy on a spread of rows: hypothesis 0 is off by `offset` mm per joint
    (mean over 16 non-root joints), hypothesis 1 by much more, so the best is 0."""
    rng = np.random.default_rng(3)
    poses_3d = rng.normal(0.0, 200.0, (3000, 17, 3))
    poses_3d[:, 0] = 0.0
    stats = NormStats.from_training(rng.normal(500.0, 50.0, (3000, 16, 2)), poses_3d)
    targets = stats.normalize_targets(poses_3d)
    inputs = np.zeros((3000, 32), np.float32)
    inputs[:, 0] = np.arange(3000)  # the predictor below finds each row's target by it

    def predictor(batch, offset):
        rows = batch.numpy()[:, 0].astype(int)
        shift = np.zeros((len(rows), 2, 48))
        shift[:, 0, 0] = offset / stats.std_3d[1, 0]  # RHip x moved by `offset` mm
        shift[:, 1] = 1e7  # ~1e9 mm: never the best
        means = targets[rows][:, None] + shift
        return tf.constant(means), tf.ones((len(rows), 2)), tf.fill((len(rows), 2), 0.5)

    probe = divergence.ErrorProbe(stats, inputs, targets, predict_14=False)
    assert len(probe.inputs) == divergence.PROBE_SAMPLES
    assert probe.inputs[0, 0] == 0 and probe.inputs[-1, 0] == 2999
    for offset in (0.0, 170.0, 1.7e6):
        error = probe.error_mm(lambda batch: predictor(batch, offset))
        np.testing.assert_allclose(error, offset / 17, rtol=1e-9, atol=1e-9)
    assert probe.problem(lambda batch: predictor(batch, 170.0)) is None
    assert probe.problem(lambda batch: predictor(batch, 1.7e6)) == (
        "the model diverged: mean joint error 1e+05 mm on training samples (above 10 m)")
    assert probe.problem(lambda batch: predictor(batch, np.nan)) == "non-finite predicted poses"


def test_no_test_subjects_trains_on_all_without_an_evaluation(data_dir, tmp_path, caplog):
    """--test_subjects "" (e.g. training on every subject that has 3D): checkpoints, no
    per-epoch evaluation, and the test split is never read."""
    config = tiny_config(data_dir, tmp_path / "all", epochs=1, train_subjects=(1, 5, 6, 7, 8),
                         test_subjects=())
    with caplog.at_level("INFO"):
        training_loop.train(config)
    assert checkpoint_store.available_steps(config.train_dir)
    assert not os.path.exists(os.path.join(config.train_dir, "results.json"))
    assert "no test subjects: training without a per-epoch evaluation" in caplog.text
    assert "test split" not in caplog.text
    for mode in ("test", "sample"):
        with pytest.raises(UserError, match="--test_subjects is empty"):
            dataclasses.replace(config, **{mode: True}).validate()
