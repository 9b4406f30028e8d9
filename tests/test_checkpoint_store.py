"""mdm.checkpoint.store: saving and restoring a tiny model with its normalisation statistics,
listing steps, and the architecture check (docs/faithfulness.md §1, §5)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_array_equal

from mdm.checkpoint import store as checkpoint_store
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data.normalization import NormStats
from mdm.model.network import build_model

CONFIG = Config(linear_size=16, num_layers=1, num_models=3)


def _stats(seed):
    rng = np.random.default_rng(seed)
    return NormStats(mean_2d=rng.normal(size=(16, 2)) * 100, std_2d=rng.uniform(1, 50, (16, 2)),
                     mean_3d=rng.normal(size=(17, 3)) * 100, std_3d=rng.uniform(1, 50, (17, 3)))


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        low = 0.1 if "variance" in variable.path else -1.0
        variable.assign(rng.uniform(low, 1.0, size=tuple(variable.shape)).astype("float32"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("ckpt"))
    model = build_model(CONFIG, 48)
    _randomise(model, 0)
    stats = _stats(0)
    store = checkpoint_store.CheckpointStore(directory, model, stats=stats, max_to_keep=5)
    paths = {step: store.save(step, epoch) for step, epoch in ((5, 1), (20, 3), (100, 7))}
    weights = {w.path: w.numpy().copy() for w in model.weights}
    return directory, paths, weights, stats


def _restored(saved, seed=1):
    directory, _, weights, _ = saved
    model = build_model(CONFIG, 48)
    _randomise(model, seed)
    assert not np.array_equal(model.weights[0].numpy(), weights[model.weights[0].path])
    store = checkpoint_store.CheckpointStore(directory, model)  # no statistics, no optimizer
    path = checkpoint_store.checkpoint_path(directory, 100)
    epoch = store.restore(path, partial=True)
    return model, store, path, epoch


def test_restore_gives_stats_epoch_and_top_level_layers(saved):
    directory, paths, weights, stats = saved
    model, store, path, epoch = _restored(saved)
    assert path == paths[100] == os.path.join(directory, "checkpoint-100")
    assert epoch == 7
    restored = store.stats()
    for name in ("mean_2d", "std_2d", "mean_3d", "std_3d"):
        assert_array_equal(getattr(restored, name), getattr(stats, name))
        assert getattr(restored, name).dtype == np.float64


def test_restore_gives_identical_weights_everywhere(saved):
    # Regression: residual blocks kept in a plain list were invisible to tf.train.Checkpoint.
    _, _, weights, _ = saved
    model, _, _, _ = _restored(saved)
    assert len(model.weights) == len(weights)
    for variable in model.weights:  # residual blocks and BN moving statistics included
        assert_array_equal(variable.numpy(), weights[variable.path], err_msg=variable.path)
    # The model computes with the restored weights.
    x = np.random.default_rng(2).normal(size=(2, 32)).astype(np.float32)
    reference = build_model(CONFIG, 48)
    reference.set_weights([weights[w.path] for w in reference.weights])
    assert_array_equal(model(x)[0].numpy(), reference(x)[0].numpy())


def test_checkpoint_file_holds_every_model_variable(saved):
    paths = saved[1]
    model = build_model(CONFIG, 48)
    stored = [tuple(shape) for name, shape in tf.train.list_variables(paths[100])
              if name.startswith("model/") and "seed" not in name]
    assert len(stored) == len(model.weights)
    assert sorted(stored) == sorted(tuple(w.shape) for w in model.weights)


def test_miss_num_seed_state_is_checkpointed(tmp_path):
    # The training store (the one given an optimizer) carries the generator states.
    model = build_model(Config(linear_size=16, num_layers=0, miss_num=1), 48)
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=optimizer, jit_compile=False)
    optimizer.build(model.trainable_variables)
    store = checkpoint_store.CheckpointStore(str(tmp_path), model, optimizer, stats=_stats(4))
    model.miss_seed.state.assign(np.array([42, 17], dtype=model.miss_seed.state.dtype))
    path = store.save(3, 1)
    model.miss_seed.state.assign(np.array([42, 0], dtype=model.miss_seed.state.dtype))
    store.restore(path)
    assert_array_equal(np.asarray(model.miss_seed.state.numpy()), [42, 17])


@pytest.mark.parametrize("overrides", [dict(num_layers=2), dict(linear_size=32)])
def test_restore_into_another_architecture_fails(saved, overrides):
    directory, paths, _, _ = saved
    settings = dict(linear_size=16, num_layers=1, num_models=3)
    settings.update(overrides)
    model = build_model(Config(**settings), 48)
    store = checkpoint_store.CheckpointStore(directory, model)
    with pytest.raises((AssertionError, ValueError, tf.errors.OpError)):
        store.restore(paths[100], partial=True)


@pytest.mark.slow
def test_resume_restores_optimizer_state(tmp_path):
    def make():
        model = build_model(CONFIG, 48)
        optimizer = keras.optimizers.Adam(1e-3)
        model.compile(optimizer=optimizer, jit_compile=False)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    model, optimizer = make()
    rng = np.random.default_rng(5)
    batch = (tf.constant(rng.normal(size=(8, 32)), tf.float32),
             tf.constant(rng.normal(size=(8, 48)), tf.float32))
    for _ in range(3):
        model.train_step(batch)
    store = checkpoint_store.CheckpointStore(str(tmp_path), model, optimizer, _stats(5))
    path = store.save(int(optimizer.iterations.numpy()), 2)
    saved_slots = [v.numpy().copy() for v in optimizer.variables]
    saved_weights = [w.numpy().copy() for w in model.weights]

    model2, optimizer2 = make()
    store2 = checkpoint_store.CheckpointStore(str(tmp_path), model2, optimizer2)
    assert store2.restore(path) == 2
    assert int(optimizer2.iterations.numpy()) == 3
    assert len(optimizer2.variables) == len(saved_slots)
    for variable, value in zip(optimizer2.variables, saved_slots):
        assert_array_equal(variable.numpy(), value)
    for variable, value in zip(model2.weights, saved_weights):
        assert_array_equal(variable.numpy(), value)


def test_restore_an_older_step(saved):
    directory = saved[0]
    model = build_model(CONFIG, 48)
    store = checkpoint_store.CheckpointStore(directory, model)
    assert store.restore(checkpoint_store.checkpoint_path(directory, 5), partial=True) == 1


def test_available_steps_sorted_numerically(saved, tmp_path):
    directory, _, _, _ = saved
    assert checkpoint_store.available_steps(directory) == [5, 20, 100]
    assert checkpoint_store.available_steps(str(tmp_path)) == []
    # An index without its data file is not a complete checkpoint.
    (tmp_path / "checkpoint-7.index").write_bytes(b"")
    (tmp_path / "checkpoint-9.index").write_bytes(b"")
    (tmp_path / "checkpoint-9.data-00000-of-00001").write_bytes(b"")
    (tmp_path / "checkpoint-x.index").write_bytes(b"")
    assert checkpoint_store.available_steps(str(tmp_path)) == [9]


def test_missing_step_lists_the_available_ones(saved, tmp_path):
    directory, _, _, _ = saved
    with pytest.raises(UserError) as info:
        checkpoint_store.checkpoint_path(directory, 4338038)
    message = str(info.value)
    assert "4338038" in message and directory in message
    assert "5, 20, 100" in message
    with pytest.raises(UserError, match="none"):
        checkpoint_store.checkpoint_path(str(tmp_path), 1)


def test_max_to_keep(tmp_path):
    model = build_model(CONFIG, 48)
    store = checkpoint_store.CheckpointStore(str(tmp_path), model, stats=_stats(3), max_to_keep=2)
    for step in (1, 2, 3):
        store.save(step, step)
    assert checkpoint_store.available_steps(str(tmp_path)) == [2, 3]


def test_check_architecture_names_differing_flags(tmp_path):
    directory = str(tmp_path / "run")
    checkpoint_store.check_architecture(directory, CONFIG)  # no config.json yet: accepted
    checkpoint_store.write_config(directory, CONFIG)
    assert os.path.isfile(os.path.join(directory, "config.json"))
    checkpoint_store.check_architecture(directory, CONFIG)
    # Flags that are not architecture may differ.
    checkpoint_store.check_architecture(directory, Config(linear_size=16, num_layers=1, num_models=3,
                                                     learning_rate=0.5, dropout=1.0))
    other = Config(linear_size=32, num_layers=1, num_models=3, residual=False)
    with pytest.raises(UserError) as info:
        checkpoint_store.check_architecture(directory, other)
    message = str(info.value)
    assert "linear_size" in message and "residual" in message
    assert "num_layers" not in message and "num_models" not in message
    assert "32" in message and "16" in message
    with pytest.raises(UserError, match="predict_14"):
        checkpoint_store.check_architecture(directory, Config(linear_size=16, num_layers=1,
                                                         num_models=3, predict_14=True))
