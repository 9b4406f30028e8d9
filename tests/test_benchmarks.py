"""The benchmark scripts run end to end and write every figure the performance issue
names, the release's step measured in the same process; the bias-drift comparison runs
both implementations. Smoke tests only: tests never assert a time."""

import json
import math
import os
import subprocess
import sys

import pytest
from cli_helpers import REPO

pytestmark = pytest.mark.slow  # every test here starts a subprocess

BENCH_KEYS = ("train_samples_per_s_b64", "train_samples_per_s_large", "eval_seconds",
              "eval_seconds_all_columns", "eval_all_columns_ratio",
              "infer_ms_b1", "infer_ms_b1024", "prep_seconds_cold", "prep_seconds_cached",
              "peak_rss_mb", "device", "tensorflow", "command", "plain_keras_samples_per_s_b64",
              "speedup_vs_release_b64", "release_samples_per_s_b64", "release_ms_per_step_b64")
BREAKDOWN_KEYS = ("matmul_ms_forward_xW", "matmul_ms_input_grad_transpose_b",
                  "matmul_ms_input_grad_linear_ops", "train_step_ms_all_features",
                  "train_step_ms_no_max_norm_bn_dropout", "adam_update_ms", "step_matmul_ms",
                  "speedup_vs_release_matmul_only", "release_ms", "speedup_vs_release_train_step")


def _run_script(name, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", name), *args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def _check_figures(path, keys):
    with open(path) as handle:
        figures = json.load(handle)
    for key in keys:
        assert key in figures, key
        if isinstance(figures[key], float):
            assert math.isfinite(figures[key]) and figures[key] > 0, (key, figures[key])
    return figures


def test_bench_writes_every_figure(tmp_path, synthetic_h36m):
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    os.symlink(synthetic_h36m(16, 0), work_dir / "synthetic")  # used instead of generating
    out = tmp_path / "bench.json"
    result = _run_script("bench.py", "--work_dir", str(work_dir), "--json", str(out),
                         "--steps", "4", "--large_batch", "128", "--skip_xla", "--rounds", "1")
    figures = _check_figures(out, BENCH_KEYS)
    assert figures["data"] == "synthetic" and figures["timed_steps"] == 4
    assert "train_samples_per_s_b64_xla" not in figures  # --skip_xla
    assert "eval_seconds" in result.stdout  # the printed table


def test_step_breakdown_writes_every_figure(tmp_path):
    out = tmp_path / "breakdown.json"
    _run_script("step_breakdown.py", "--json", str(out), "--repeats", "1")
    figures = _check_figures(out, BREAKDOWN_KEYS)
    assert figures["batch_size"] == 64 and figures["step_matmul_gflop"] > 1.0


def test_bias_drift_compares_both_implementations(tmp_path, synthetic_h36m):
    data_dir = synthetic_h36m(8, 5)
    out = tmp_path / "drift.json"
    _run_script("bias_drift.py", "--data_dir", data_dir, "--work_dir", str(tmp_path / "work"),
                "--train_subjects", "1,5,6,7,8", "--test_subjects", "9,11",
                "--linear_size", "16", "--lag_samples", "64", "--json", str(out))
    with open(out) as handle:
        figures = json.load(handle)
    for name in ("project", "release"):
        assert len(figures[name]["lag"]) == 5 and len(figures[name]["bias_grad_rms"]) == 5
        assert math.isfinite(figures[name]["mpjpe_p1"]["best"])
        assert all(value > 0 for value in figures[name]["bias_grad_rms"].values())
        # Rounding noise of an analytically zero gradient, at the same weights in both.
        check = figures["gradient_check"][name]
        assert len(check) == 5 and all(0 < value < 1e-3 for value in check.values())


def test_detector_inputs_measures_every_table(tmp_path, synthetic_h36m):
    from lifter_helpers import save_tiny_lifter

    data = synthetic_h36m(16, 0)
    common = ("--data_dir", data, "--cache_dir", str(tmp_path / "cache"))
    fit = json.loads(_run_script("detector_inputs.py", *common, "--fit").stdout)
    assert set(fit) == {"sh", "gt"} and set(fit["sh"]) == {"Spine", "Thorax", "Head", "Hip"}
    out = tmp_path / "tables.json"
    _run_script("detector_inputs.py", *common, "--load_dir",
                save_tiny_lifter(str(tmp_path / "model")), "--json", str(out))
    tables = json.load(open(out))
    derivation = tables["derivation"]
    # h36m17 only drops Neck/Nose: the native input exactly.
    assert derivation["h36m17 (sh rules)"] == derivation["native SH (16 joints)"]
    assert len(tables["camera"]) == 6 and set(tables["camera"]["x3.0 in 3840x2160"]) == {
        "none", "pose", "video", "focal"}
    assert "one limb joint missing" in tables["missing"]
