"""The architecture of --test/--sample and of a resumed training comes from the
checkpoint directory's config.json (mdm.checkpoint.loading.with_saved_architecture)."""

import dataclasses

import pytest

from mdm.checkpoint import loading
from mdm.checkpoint import store as checkpoint_store
from mdm.core.config import Config
from mdm.core.errors import UserError

TRAINED = Config(linear_size=16, num_layers=1, num_models=3, residual=False)


@pytest.fixture
def directory(tmp_path):
    checkpoint_store.write_config(str(tmp_path), TRAINED)
    return str(tmp_path)


def test_flags_left_at_default_take_the_recorded_architecture(directory):
    config = loading.with_saved_architecture(Config(epochs=3), set(), directory)
    assert config.architecture() == TRAINED.architecture()
    assert config.epochs == 3  # the rest untouched


def test_explicit_flags_that_agree_are_kept(directory):
    given = Config(linear_size=16, num_layers=1)
    config = loading.with_saved_architecture(given, {"linear_size", "num_layers"}, directory)
    assert config.architecture() == TRAINED.architecture()


def test_explicit_contradicting_flags_are_named_in_one_line(directory):
    given = Config(linear_size=64, num_layers=1, num_models=5)
    with pytest.raises(UserError) as caught:
        loading.with_saved_architecture(given, {"linear_size", "num_layers"}, directory)
    # num_models contradicts too, but the user did not give it: it is taken silently.
    assert str(caught.value) == (
        f"the checkpoints in {directory} were trained with other architecture flags: "
        "--linear_size=64 (checkpoint: 16)")


def test_without_config_json_the_flags_stand(tmp_path):
    given = Config(linear_size=64)
    assert loading.with_saved_architecture(given, {"linear_size"}, str(tmp_path)) == given


def test_miss_num_is_recorded_but_not_imposed(directory):
    config = loading.with_saved_architecture(
        dataclasses.replace(Config(), miss_num=2), {"miss_num"}, directory)
    assert config.miss_num == 2


def test_training_follows_its_own_record_else_the_load_dir(tmp_path, directory):
    fresh = str(tmp_path / "fresh")
    assert loading.training_source_directory(Config(train_dir=fresh)) == fresh
    assert loading.training_source_directory(
        Config(train_dir=fresh, load_dir=directory)) == directory
    # A train_dir with its own config.json resumes: its record wins over --load_dir.
    assert loading.training_source_directory(
        Config(train_dir=directory, load_dir=fresh)) == directory
