"""predict_3dpose_mdm.py as a user runs it: flag checks before TensorFlow loads, defaults
that point inside the repository, quiet start-up, one line on Ctrl-C."""

import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import REPO, error_line, finish_cli, run_cli, start_cli


TINY = {"linear_size": 16, "num_layers": 1, "batch_size": 32, "epochs": 1, "verbose": 0,
        "action": "Walking"}


def flags_of(values):
    """Command-line arguments for a dict of Config fields."""
    return [arg for name, value in values.items() for arg in (f"--{name}", str(value))]


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 2)


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
def test_test_mode_defaults_to_the_train_dir_and_says_which_checkpoint(data_dir, tiny_trained_dir):
    # Neither --load_dir nor --load: the latest checkpoint of --train_dir, named in the log.
    result = run_cli("--data_dir", data_dir, "--train_dir", tiny_trained_dir, "--test", "True",
                     *flags_of(TINY))
    assert result.returncode == 0, result.stderr
    step = latest_step(tiny_trained_dir)
    assert (f"--load 0: using the latest checkpoint in {tiny_trained_dir}, checkpoint-{step}"
            in result.stderr)
    assert os.path.isfile(os.path.join(tiny_trained_dir, f"results_test_{step}_p1.json"))


@pytest.mark.slow
def test_test_mode_takes_the_architecture_from_config_json(data_dir, tiny_trained_dir):
    # No --linear_size 16 --num_layers 1: the checkpoint's config.json says so.
    result = run_cli("--data_dir", data_dir, "--train_dir", tiny_trained_dir, "--test", "True",
                     "--action", "Walking", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    assert "architecture from config.json: --linear_size=16, --num_layers=1" in result.stderr


@pytest.mark.slow
def test_only_explicit_contradicting_architecture_flags_are_refused(data_dir, tiny_trained_dir):
    result = run_cli("--data_dir", data_dir, "--train_dir", tiny_trained_dir, "--sample", "True",
                     "--action", "Walking", "--linear_size", "64", "--num_layers", "1")
    assert error_line(result) == (
        f"error: the checkpoints in {tiny_trained_dir} were trained with other architecture "
        "flags: --linear_size=64 (checkpoint: 16)")


@pytest.mark.slow
def test_resumed_training_takes_the_architecture_and_logs_one_line_per_epoch(
        data_dir, tiny_trained_dir, tmp_path):
    train_dir = tmp_path / "resumed"
    shutil.copytree(tiny_trained_dir, train_dir)
    before = latest_step(str(train_dir))
    # Architecture flags and --verbose left at their defaults; stdout is a pipe.
    result = run_cli("--data_dir", data_dir, "--train_dir", str(train_dir), "--epochs", "2",
                     "--batch_size", "32", "--action", "Walking")
    assert result.returncode == 0, result.stderr
    assert latest_step(str(train_dir)) == 2 * before
    assert "architecture from config.json" in result.stderr
    # Keras's verbose=2: one line per epoch, no progress bar redrawn with \r or \b.
    assert "\r" not in result.stdout and "\b" not in result.stdout
    assert "Epoch 2/2" in result.stdout


def is_log_line(line):
    return re.match(r"^\d\d:\d\d:\d\d (INFO|WARNING) ", line) is not None


@pytest.mark.slow
def test_no_tensorflow_start_up_noise_before_an_error(data_dir, tmp_path):
    # TF_CPP_MIN_LOG_LEVEL not set by the user: the command line quiets TensorFlow itself.
    result = run_cli("--data_dir", data_dir, "--train_dir", str(tmp_path / "empty"),
                     "--test", "True", env_extra={"TF_CPP_MIN_LOG_LEVEL": None})
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == f"error: no checkpoint in {tmp_path / 'empty'}"
    assert all(is_log_line(line) for line in lines[:-1]), result.stderr


@pytest.mark.slow
def test_ctrl_c_names_the_last_checkpoint_and_how_to_resume(data_dir, tmp_path):
    train_dir = tmp_path / "interrupted"
    args = ["--data_dir", data_dir, "--train_dir", str(train_dir), "--epochs", "1000",
            *flags_of({name: value for name, value in TINY.items() if name != "epochs"})]
    # As from a terminal: a shell running the tests in the background (`pytest &`) ignores
    # SIGINT, an ignored signal stays ignored across exec, and Python then installs no
    # KeyboardInterrupt handler. A handler set here is reset to the default in the child.
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = start_cli(*args, env_extra={"TF_CPP_MIN_LOG_LEVEL": None})
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    deadline = time.monotonic() + 300
    while not glob.glob(str(train_dir / "checkpoint-*.index")):
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    result = finish_cli(process)
    assert result.returncode == 130, result.stderr
    lines = result.stderr.splitlines()
    # The per-epoch evaluation table may come before the interrupt; the error is one line.
    errors = [line for line in lines if line.startswith("error:")]
    assert lines[-1] in errors, result.stderr
    kept = latest_step(str(train_dir))
    command = shlex.join(["python", os.path.join(REPO, "predict_3dpose_mdm.py"), *args])
    assert errors == [f"error: interrupted; the last checkpoint kept is "
                      f"{train_dir / f'checkpoint-{kept}'}; resume with: {command}"], \
        result.stderr


def quiet_env():
    """The user's environment without TF_CPP_MIN_LOG_LEVEL: the command quiets itself."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


@pytest.mark.slow
def test_infer_error_after_tensorflow_loads_is_one_line(tmp_path):
    pose = tmp_path / "pose.json"
    pose.write_text(json.dumps([[100.0 + 10 * joint, 200.0 + 5 * joint] for joint in range(16)]))
    result = subprocess.run(
        [sys.executable, "-m", "mdm.infer", "--load_dir", str(tmp_path / "none"), "--input",
         str(pose), "--output", str(tmp_path / "out.json")],
        cwd=REPO, env=quiet_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: no checkpoint in {tmp_path / 'none'} "
                                          "(no such directory)"]


@pytest.mark.slow
def test_preprocessing_error_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "preprocessing.py", "--dataset_path", str(tmp_path / "none")],
        cwd=REPO, env=quiet_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), \
        result.stderr


def test_synthetic_help_describes_both_formats(capsys):
    from mdm import synthetic
    with pytest.raises(SystemExit) as exit_:
        synthetic.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--format h36m (default)" in text and "3d-pose-baseline layout" in text
    assert "--format mpi_inf_3dhp" in text and "preprocessing.py" in text
    assert "TS1-TS6" in text and "S1-S8" in text
