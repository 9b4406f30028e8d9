"""predict_3dpose_mdm.py as a user runs it: flag checks before TensorFlow loads, defaults
that point inside the repository, quiet start-up, one line on Ctrl-C."""

import os
import subprocess
import sys

import pytest
from cli_helpers import REPO, run_cli

from mdm.core.config import Config

TINY = {"linear_size": 16, "num_layers": 1, "batch_size": 32, "epochs": 1, "verbose": 0,
        "action": "Walking"}


def flags_of(values):
    """Command-line arguments for a dict of Config fields."""
    return [arg for name, value in values.items() for arg in (f"--{name}", str(value))]


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 2)


@pytest.fixture(scope="module")
def trained_dir(data_dir, tmp_path_factory):
    """A tiny model trained for one epoch: its train_dir, with config.json."""
    from mdm.train import loop as training_loop
    train_dir = str(tmp_path_factory.mktemp("trained"))
    training_loop.train(Config(data_dir=data_dir, train_dir=train_dir, **TINY))
    return train_dir


def latest_step(train_dir):
    from mdm.checkpoint import store
    return store.available_steps(train_dir)[-1]

# Runs the script as __main__ and then says whether TensorFlow was ever imported.
_RUN_AND_REPORT_TF = """
import runpy, sys
sys.argv = ["predict_3dpose_mdm.py", *sys.argv[1:]]
try:
    runpy.run_path("predict_3dpose_mdm.py", run_name="__main__")
except SystemExit as exit_:
    status = exit_.code
print("tensorflow imported:", "tensorflow" in sys.modules)
sys.exit(status)
"""


def run_reporting_tf(*args):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", _RUN_AND_REPORT_TF, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_out_of_range_flags_fail_before_tensorflow_loads(tmp_path):
    result = run_reporting_tf("--max_to_keep", "-1", "--sample_figures", "-1",
                              "--learning_rate", "nan", "--epochs", "0",
                              "--train_dir", str(tmp_path / "t"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: --learning_rate must be a finite number (got nan)",
        "error: --epochs must be at least 1 (got 0)",
        "error: --sample_figures must be at least 1 (got -1)",
        "error: --max_to_keep must be at least 0 (0 keeps all) (got -1)"]
    assert "tensorflow imported: False" in result.stdout
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_a_bad_flag_is_exactly_one_line(tmp_path):
    result = run_reporting_tf("--learning_rate", "inf", "--train_dir", str(tmp_path / "t"))
    assert result.returncode == 1
    assert result.stderr == "error: --learning_rate must be a finite number (got inf)\n"


@pytest.mark.slow
def test_test_mode_defaults_to_the_train_dir_and_says_which_checkpoint(data_dir, trained_dir):
    # Neither --load_dir nor --load: the latest checkpoint of --train_dir, named in the log.
    result = run_cli("--data_dir", data_dir, "--train_dir", trained_dir, "--test", "True",
                     *flags_of(TINY))
    assert result.returncode == 0, result.stderr
    step = latest_step(trained_dir)
    assert (f"--load 0: using the latest checkpoint in {trained_dir}, checkpoint-{step}"
            in result.stderr)
    assert os.path.isfile(os.path.join(trained_dir, f"results_test_{step}_p1.json"))
