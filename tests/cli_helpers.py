"""Running predict_3dpose_mdm.py in a fresh process, as a user would, for the tests."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, env_extra=None):
    """The command's CompletedProcess (CPU only, TensorFlow's own logging quiet);
    `env_extra` sets variables, or removes those given as None."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for name, value in (env_extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, os.path.join(REPO, "predict_3dpose_mdm.py"), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def error_line(result):
    """The one `error:` line a failed command ends with (and no traceback)."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), result.stderr
    return lines[-1]
