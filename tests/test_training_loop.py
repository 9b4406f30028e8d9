"""Training in-process: exact resume from a checkpoint, seeded reproducibility, the
learning-rate schedule, and the stop on a non-finite loss."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from mdm.checkpoint import store as checkpoint_store
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.train import loop as training_loop
from mdm.train.optimizer import learning_rate_schedule


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 5)


def tiny_config(data_dir, train_dir, **overrides):
    values = dict(data_dir=data_dir, train_dir=str(train_dir), linear_size=24, num_layers=1,
                  batch_size=32, epochs=2, verbose=0, jit_compile=False, seed=7,
                  action="Walking")
    values.update(overrides)
    return Config(**values)


def final_weights(train_dir):
    step = checkpoint_store.available_steps(train_dir)[-1]
    reader = tf.train.load_checkpoint(os.path.join(train_dir, f"checkpoint-{step}"))
    names = sorted(name for name, _ in tf.train.list_variables(os.path.join(
        train_dir, f"checkpoint-{step}")) if "VARIABLE_VALUE" in name and "save_counter" not in name)
    return step, {name: reader.get_tensor(name) for name in names}


def results(train_dir):
    with open(os.path.join(train_dir, "results.json")) as handle:
        return json.load(handle)["results"]


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


def test_same_seed_same_numbers_other_seed_differs(data_dir, tmp_path):
    first = tiny_config(data_dir, tmp_path / "a", epochs=1)
    second = tiny_config(data_dir, tmp_path / "b", epochs=1)
    other = tiny_config(data_dir, tmp_path / "c", epochs=1, seed=8)
    for config in (first, second, other):
        training_loop.train(config)
    assert results(first.train_dir) == results(second.train_dir)
    assert results(first.train_dir) != results(other.train_dir)


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
