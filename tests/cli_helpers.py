"""Running predict_3dpose_mdm.py in a fresh process, as a user would, for the tests."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_cli(*args, env_extra=None):
    """Start the command (CPU only, TensorFlow's own logging quiet) and return its Popen;
    `env_extra` sets variables, or removes those given as None."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for name, value in (env_extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.Popen([sys.executable, os.path.join(REPO, "predict_3dpose_mdm.py"), *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish_cli(process, timeout=600):
    """Wait for a started command; its CompletedProcess."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_cli(*args, env_extra=None):
    """The command's CompletedProcess (see start_cli)."""
    return finish_cli(start_cli(*args, env_extra=env_extra))


def error_line(result):
    """The one `error:` line a failed command ends with (and no traceback)."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]
