"""Flags declared once (mdm/core/options.py): the Config fields become the absl flags of
predict_3dpose_mdm.py, with the release's names, and parsed flags become a Config."""

import dataclasses
import pathlib

import pytest
from absl import flags

from mdm import cli
from mdm.core import options
from mdm.core.config import RELEASE_DATA_DIR, Config
from mdm.core.errors import UserError

REPO = pathlib.Path(__file__).resolve().parents[1]

# The release's flags (docs/faithfulness.md §6): their names must not change.
RELEASE_FLAGS = {
    "learning_rate", "dropout", "batch_size", "epochs", "camera_frame", "max_norm",
    "batch_norm", "predict_14", "use_sh", "action", "linear_size", "num_layers", "residual",
    "procrustes", "evaluateActionWise", "cameras_path", "data_dir", "train_dir", "load_dir",
    "sample", "test", "use_cpu", "load", "miss_num", "use_fp16",
}


def parsed(*args):
    """A fresh FlagValues with the Config flags, parsed from `args` as the script does."""
    flag_values = flags.FlagValues()
    cli.define_config_flags(Config, flag_values)
    flag_values(cli.normalize_boolean_args(["prog", *args], flag_values))
    return flag_values


def test_every_config_field_is_a_flag_with_the_release_name():
    names = cli.define_config_flags(Config, flags.FlagValues())
    assert len(names) == len(set(names)) == len(dataclasses.fields(Config))
    assert RELEASE_FLAGS <= set(names)


def test_default_flags_give_the_default_config():
    config = cli.config_from_flags(Config, parsed())
    # The one flag whose default is the release's: the entry script falls back from it.
    assert config.data_dir == RELEASE_DATA_DIR
    assert dataclasses.replace(config, data_dir=Config.data_dir) == Config()


def test_release_boolean_form_and_renamed_field():
    config = cli.config_from_flags(Config, parsed(
        "--test", "True", "--evaluateActionWise", "False", "--predict_14", "1",
        "--residual", "false", "--nouse_sh"))
    assert (config.test, config.evaluate_action_wise, config.predict_14) == (True, False, True)
    assert (config.residual, config.use_sh) == (False, False)


def test_values_of_every_type():
    config = cli.config_from_flags(Config, parsed(
        "--learning_rate", "0.01", "--epochs", "3", "--action", "Walking",
        "--train_subjects", "1,5", "--distribute", "mirrored"))
    assert config.learning_rate == 0.01 and config.epochs == 3 and config.action == "Walking"
    assert config.train_subjects == (1, 5) and config.distribute == "mirrored"


def test_list_flag_of_non_integers_is_one_line_naming_it():
    with pytest.raises(UserError, match=r"^--test_subjects takes integers"):
        cli.config_from_flags(Config, parsed("--test_subjects", "9,eleven"))


def test_explicit_fields_are_the_flags_given():
    flag_values = parsed("--linear_size", "64", "--evaluateActionWise", "False")
    assert cli.explicit_fields(Config, flag_values) == {"linear_size", "evaluate_action_wise"}


def test_help_ends_with_the_declared_range():
    flag_values = parsed()
    assert flag_values["epochs"].help.endswith("[at least 1]")
    assert flag_values["dropout"].help.endswith("[in (0, 1]]")
    assert flag_values["miss_num"].help.endswith("[0, 1 or 2]")
    assert flag_values["distribute"].help.endswith("the global batch")  # enums list their own


def test_range_texts():
    spec = options.OptionSpec("h", at_least=0, at_most=9)
    assert spec.range_text() == "between 0 and 9"
    assert spec.violation(10) == "between 0 and 9" and spec.violation(9) is None
    assert options.OptionSpec("h", above=0).violation(0) == "above 0"
    assert options.OptionSpec("h", choices=("", "a", "b")).range_text() == "empty, a or b"
    assert options.OptionSpec("h").violation(float("nan")) == "a finite number"


# Every constrained field, a value outside its range and the line a user then sees.
VIOLATIONS = {
    "learning_rate": (float("nan"), "--learning_rate must be a finite number (got nan)"),
    "dropout": (1.5, "--dropout must be in (0, 1] (a keep probability, 1 = no dropout) "
                     "(got 1.5)"),
    "batch_size": (0, "--batch_size must be at least 1 (got 0)"),
    "epochs": (0, "--epochs must be at least 1 (got 0)"),
    "miss_num": (3, "--miss_num must be 0, 1 or 2 (got 3)"),
    "linear_size": (0, "--linear_size must be at least 1 (got 0)"),
    "num_layers": (-1, "--num_layers must be at least 0 (got -1)"),
    "num_models": (0, "--num_models must be at least 1 (got 0)"),
    "steps_per_execution": (0, "--steps_per_execution must be at least 1 (got 0)"),
    "precision": ("bfloat16", "--precision must be float32, mixed_bfloat16 or mixed_float16 "
                              "(got 'bfloat16')"),
    "distribute": ("ring", "--distribute must be empty, mirrored or multi_worker "
                           "(got 'ring')"),
    "load": (-3, "--load must be at least 0 (got -3)"),
    "sample_figures": (-1, "--sample_figures must be at least 1 (got -1)"),
    "seed": (-1, "--seed must be between 0 and 4294967295 (got -1)"),
    "verbose": (3, "--verbose must be 0, 1 or 2 (got 3)"),
    "max_to_keep": (-1, "--max_to_keep must be at least 0 (0 keeps all) (got -1)"),
    "dataset": ("mpii", "--dataset must be h36m or mpi_inf_3dhp (got 'mpii')"),
    "mpi_norm_stats": ("none", "--mpi_norm_stats must be checkpoint, mpi or both "
                               "(got 'none')"),
}


def constrained_fields():
    return {field.name for field in options.option_fields(Config)
            if options.spec_of(field).range_text() or field.type is float}


def test_the_violation_table_covers_every_constrained_field():
    assert set(VIOLATIONS) == constrained_fields()


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_each_violation_is_one_line_naming_the_flag(name):
    value, message = VIOLATIONS[name]
    with pytest.raises(UserError) as caught:
        Config(**{name: value}).validate()
    assert str(caught.value) == message


@pytest.mark.parametrize("name, value", [
    ("learning_rate", float("inf")), ("learning_rate", -1e-3), ("learning_rate", 0.0),
    ("dropout", 0.0), ("dropout", float("nan")), ("seed", 2**32)])
def test_other_values_outside_the_range(name, value):
    with pytest.raises(UserError, match=f"^--{name} must be "):
        Config(**{name: value}).validate()


def test_every_violation_gets_its_own_line():
    config = Config(**{name: value for name, (value, _) in VIOLATIONS.items()})
    with pytest.raises(UserError) as caught:
        config.validate()
    assert str(caught.value).splitlines() == [
        VIOLATIONS[field.name][1] for field in options.option_fields(Config)
        if field.name in VIOLATIONS]


@pytest.mark.parametrize("name, value", [
    ("max_to_keep", 0), ("dropout", 1.0), ("num_layers", 0), ("load", 7), ("seed", 0),
    ("verbose", 0), ("distribute", "")])
def test_values_at_the_edge_of_the_range_are_accepted(name, value):
    Config(**{name: value}).validate()


def test_default_directories_are_inside_the_repository_and_ignored():
    config = cli.config_from_flags(Config, parsed())
    assert config.train_dir == "experiments/mdm" and config.load_dir == ""  # = train_dir
    ignored = (REPO / ".gitignore").read_text().split()
    assert "/experiments/" in ignored


def test_readme_flag_table_lists_every_flag():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Command line"):readme.index("## Evaluation")]
    missing = [name for name in cli.define_config_flags(Config, flags.FlagValues())
               if f"`--{name}`" not in section]
    assert missing == []


class FakeStdout:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("args, tty, expected", [
    ((), True, 1), ((), False, 2), (("--verbose", "1"), False, 1),
    (("--verbose", "0"), True, 0)])
def test_verbose_left_at_default_depends_on_the_terminal(args, tty, expected):
    assert cli.progress_verbose(parsed(*args)["verbose"], FakeStdout(tty)) == expected
