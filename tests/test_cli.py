"""predict_3dpose_mdm.py as a user runs it: flag checks before TensorFlow loads, defaults
that point inside the repository, quiet start-up, one line on Ctrl-C."""

import os
import subprocess
import sys

import pytest
from cli_helpers import REPO

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
