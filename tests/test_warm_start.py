"""Training from another directory's checkpoint (--load N --load_dir D into a new
--train_dir; mdm/checkpoint/warm_start.py, docs/faithfulness.md §5, §11): continuing equals
an uninterrupted run, --fresh_optimizer and the authors' TF1 checkpoints give the weights
with a fresh Adam, the statistics come from the run's own data, and every mistake is one
clear error that leaves the directories as they were."""

import dataclasses
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from test_release_format import ReleaseReplica
from training_helpers import tiny_config

from mdm.checkpoint import release_format
from mdm.checkpoint import store as checkpoint_store
from mdm.checkpoint.loading import load_model
from mdm.core.errors import UserError
from mdm.data import splits
from mdm.data.normalization import NormStats
from mdm.train import loop as training_loop

pytestmark = pytest.mark.slow  # every test here trains


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 5)


def checkpoint_values(train_dir, step=None):
    """(step, {variable key: value}) of a checkpoint of this project (default: the latest)."""
    step = step or checkpoint_store.available_steps(train_dir)[-1]
    path = os.path.join(train_dir, f"checkpoint-{step}")
    reader = tf.train.load_checkpoint(path)
    names = [name for name, _ in tf.train.list_variables(path)
             if "VARIABLE_VALUE" in name and "save_counter" not in name]
    return step, {name: reader.get_tensor(name) for name in names}


@pytest.fixture(scope="module")
def first(data_dir, tmp_path_factory):
    """One epoch (checkpoint-10) to start other runs from; the tests only read it."""
    config = tiny_config(data_dir, tmp_path_factory.mktemp("warm_start") / "first", epochs=1)
    training_loop.train(config)
    return config


@pytest.fixture
def starting_state(monkeypatch):
    """What the model and optimizer hold when the first epoch of a run begins."""
    seen = {}
    original = training_loop._fit_one_epoch  # pylint: disable=protected-access

    def recording(model, strategy, inputs, targets, config, epoch, callbacks):
        if not seen:
            seen.update(epoch=epoch, iterations=int(model.optimizer.iterations.numpy()),
                        weights=release_format.model_weights(model))
            seen["weights"] = {path: v.numpy() for path, v in seen["weights"].items()}
        return original(model, strategy, inputs, targets, config, epoch, callbacks)

    monkeypatch.setattr(training_loop, "_fit_one_epoch", recording)
    return seen


def latest_model_weights(config):
    """{path below the model: value} of the latest checkpoint of config.train_dir."""
    model, _ = load_model(config.train_dir, 0, config)
    return {path: v.numpy() for path, v in release_format.model_weights(model).items()}


def assert_same_weights(got, expected):
    assert set(got) == set(expected)
    for path, value in expected.items():
        np.testing.assert_array_equal(got[path], value, err_msg=path)


def test_continuing_in_another_directory_equals_an_uninterrupted_run(data_dir, tmp_path):
    straight = tiny_config(data_dir, tmp_path / "straight", miss_num=1)
    straight_history = training_loop.train(straight)
    half = tiny_config(data_dir, tmp_path / "half", miss_num=1, epochs=1)
    training_loop.train(half)
    continued = tiny_config(data_dir, tmp_path / "continued", miss_num=1,
                            load_dir=half.train_dir, load=10)
    continued_history = training_loop.train(continued)
    assert checkpoint_store.available_steps(continued.train_dir) == [20]
    np.testing.assert_array_equal(continued_history.history["loss"],
                                  straight_history.history["loss"][1:])
    step_a, weights_a = checkpoint_values(straight.train_dir)
    step_b, weights_b = checkpoint_values(continued.train_dir)
    assert step_a == step_b == 20 and weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_array_equal(weights_b[name], weights_a[name], err_msg=name)
    assert checkpoint_store.available_steps(half.train_dir) == [10]  # only read


def test_fresh_optimizer_takes_the_weights_and_restarts_adam(data_dir, first, tmp_path,
                                                             starting_state):
    expected = latest_model_weights(first)
    tuned = tiny_config(data_dir, tmp_path / "tuned", epochs=1, load_dir=first.train_dir,
                        fresh_optimizer=True)
    training_loop.train(tuned)
    assert starting_state["epoch"] == 0 and starting_state["iterations"] == 0
    assert_same_weights(starting_state["weights"], expected)
    # Step restarted at 0: one epoch of 10 steps is checkpoint-10, not checkpoint-20.
    assert checkpoint_store.available_steps(tuned.train_dir) == [10]


def test_release_checkpoint_gives_its_weights_and_a_fresh_adam(data_dir, tmp_path,
                                                               starting_state):
    replica = ReleaseReplica(str(tmp_path / "release"))
    replica.session.close()
    names = release_format.release_name_map(2)
    reader = tf.train.load_checkpoint(replica.path)
    tuned = tiny_config(data_dir, tmp_path / "tuned", epochs=1, num_layers=2,
                        load_dir=str(tmp_path / "release"))
    training_loop.train(tuned)
    assert starting_state["epoch"] == 0 and starting_state["iterations"] == 0
    assert set(starting_state["weights"]) == set(names)
    for path, value in starting_state["weights"].items():
        np.testing.assert_array_equal(value, reader.get_tensor(names[path]), err_msg=path)
    assert checkpoint_store.available_steps(tuned.train_dir) == [10]


def test_statistics_come_from_the_new_training_data(synthetic_h36m, first, tmp_path):
    other_data = synthetic_h36m(8, 6)
    tuned = tiny_config(other_data, tmp_path / "tuned", epochs=2, load_dir=first.train_dir)
    training_loop.train(tuned)
    train_set = splits.load_splits(tuned)[0]
    expected = NormStats.from_training(train_set.poses_2d, train_set.poses_3d)
    old = checkpoint_store.saved_stats(os.path.join(first.train_dir, "checkpoint-10"))
    new = checkpoint_store.saved_stats(os.path.join(tuned.train_dir, "checkpoint-20"))
    for name in ("mean_2d", "std_2d", "mean_3d", "std_3d"):
        np.testing.assert_allclose(getattr(new, name), getattr(expected, name), rtol=1e-12)
    assert not np.allclose(new.mean_2d, old.mean_2d)


def test_train_dir_with_checkpoints_resumes_from_its_own(data_dir, first, tmp_path, caplog,
                                                         starting_state):
    own = tiny_config(data_dir, tmp_path / "own", epochs=1, seed=8)
    training_loop.train(own)
    own_weights = latest_model_weights(own)
    starting_state.clear()
    with caplog.at_level(logging.WARNING, logger="mdm"):
        training_loop.train(dataclasses.replace(own, epochs=2, load_dir=first.train_dir))
    assert "already has checkpoints: resuming from its own" in caplog.text
    assert starting_state["epoch"] == 1 and starting_state["iterations"] == 10
    assert_same_weights(starting_state["weights"], own_weights)
    assert checkpoint_store.available_steps(own.train_dir) == [10, 20]


@pytest.mark.parametrize("change, message", [
    (dict(load=999), r"no checkpoint-999 in .*first \(available steps: 10\)"),
    (dict(load_dir="missing"), r"no checkpoint in .*missing \(no such directory\)"),
    (dict(linear_size=32), r"other architecture flags: --linear_size=32 \(checkpoint: 24\)"),
    (dict(epochs=1), r"was trained for 1 epochs and --epochs 1 is the total to reach"),
    (dict(load_dir="", load=10), r"--load 10: .*tuned has no checkpoint to start from"),
])
def test_mistakes_are_one_clear_error(data_dir, first, tmp_path, change, message):
    values = dict(load_dir=first.train_dir, epochs=2)
    values.update({key: (str(tmp_path / value) if key == "load_dir" and value else value)
                   for key, value in change.items()})
    tuned = tiny_config(data_dir, tmp_path / "tuned", **values)
    with pytest.raises(UserError, match=message):
        training_loop.train(tuned)
    assert checkpoint_store.available_steps(tuned.train_dir) == []
    assert checkpoint_store.available_steps(first.train_dir) == [10]
