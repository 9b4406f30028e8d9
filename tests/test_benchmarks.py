"""The benchmark scripts run end to end and write every figure the Performance section
names, the release's step measured in the same process; the bias-drift and seed-spread
comparisons run both implementations. Smoke tests only: tests never assert a time."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import REPO

pytestmark = pytest.mark.slow  # every test here starts a subprocess

BENCH_KEYS = ("train_samples_per_s_b64", "train_samples_per_s_large", "eval_seconds",
              "eval_seconds_all_columns", "eval_all_columns_ratio",
              "infer_ms_b1", "infer_ms_b1024", "prep_seconds_cold", "prep_seconds_cached",
              "peak_rss_mb", "device", "tensorflow", "command", "plain_keras_samples_per_s_b64",
              "speedup_vs_release_b64", "release_samples_per_s_b64", "release_ms_per_step_b64")
PRECISION_KEYS = ("train_samples_per_s_b64_bf16", "train_samples_per_s_large_bf16",
                  "speedup_vs_release_b64_bf16", "speedup_bf16_vs_float32_large", "cpu")
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


def test_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.sh with MDM_USE_CPU=True, made small: the bench with XLA and
    one mixed precision (the others take the same path), a training and its test, all in
    one JSON."""
    out = tmp_path / "check"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MDM_USE_CPU="True", MDM_CHECK_STEPS="4",
               MDM_CHECK_WIDTH="16", MDM_CHECK_FRAMES="8",
               MDM_CHECK_PRECISIONS="float32,mixed_bfloat16")
    result = subprocess.run(["bash", os.path.join(REPO, "benchmarks", "gpu_check.sh"), "",
                             str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr + result.stdout
    with open(out / "gpu_check.json") as handle:
        report = json.load(handle)
    bench = _check_figures(out / "bench.json", BENCH_KEYS + PRECISION_KEYS)
    assert report["bench"] == bench and bench["data"] == "synthetic"
    assert "train_samples_per_s_b64_xla" in bench and bench["timed_steps"] == 4
    assert "train_samples_per_s_b64_fp16" not in bench  # only the precisions asked for
    assert set(bench["cpu"]) == {"model", "flags"}
    assert math.isfinite(report["test"]["results"]["Average"]["multi_view_fused"])
    assert set(report["seconds"]) == {"bench", "train_one_epoch", "test", "total"}
    again = subprocess.run(["bash", os.path.join(REPO, "benchmarks", "gpu_check.sh"), "",
                            str(out)], cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "exists" in again.stderr  # nothing written over


def test_bench_refuses_an_unknown_precision(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench.py"),
                             "--precisions", "float32,bfloat16"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "unknown bfloat16" in result.stderr


SEEDS = ("3", "4")


def test_seed_spread_summary_matches_numpy(tmp_path, synthetic_h36m):
    """Two seeds (the fewest a spread needs): the summary against numpy."""
    out = tmp_path / "seeds.json"
    _run_script("seed_spread.py", "--data_dir", synthetic_h36m(8, 5), "--work_dir",
                str(tmp_path / "work"), "--seeds", "3,4", "--train_subjects", "1,5,6,7,8",
                "--test_subjects", "9,11", "--linear_size", "16", "--json", str(out))
    with open(out) as handle:
        figures = json.load(handle)
    for column in ("best", "most_probable"):
        project = np.array([figures["seeds"][s]["project"][column] for s in SEEDS])
        release = np.array([figures["seeds"][s]["release"][column] for s in SEEDS])
        summary = figures["summary"][column]
        np.testing.assert_allclose([summary["project_mean"], summary["release_std"]],
                                   [project.mean(), release.std(ddof=1)])
        np.testing.assert_allclose(summary["difference"], (project - release).mean())
        np.testing.assert_allclose(summary["difference_se_paired"],
                                   (project - release).std(ddof=1) / np.sqrt(len(SEEDS)))
        unpaired = np.sqrt((project.var(ddof=1) + release.var(ddof=1)) / len(SEEDS))
        np.testing.assert_allclose(summary["difference_se_unpaired"], unpaired)
    assert len(set(figures["seeds"][s]["project"]["best"] for s in SEEDS)) == len(SEEDS)


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


def test_learning_curve_tests_each_checkpoint_once(tmp_path, tiny_trained_dir, synthetic_h36m):
    out_dir = tmp_path / "curve"
    flags = ["--", "--data_dir", synthetic_h36m(8, 2), "--action", "Walking"]
    first = _run_script("learning_curve.py", "--run_dir", tiny_trained_dir, "--out_dir",
                        str(out_dir), *flags)
    [row] = [line for line in first.stdout.splitlines() if line.startswith("| 1 |")]
    [results] = list(out_dir.glob("results_test_*_p1.json"))
    with open(results) as handle:
        average = json.load(handle)["results"]["Average"]
    assert row == "| 1 | " + results.name.split("_")[2] + " | " + " | ".join(
        f"{average[c]:.1f}" for c in ("best", "most_probable", "mixture_mean", "multi_view",
                                      "multi_view_fused", "temporal")) + " |"
    again = _run_script("learning_curve.py", "--run_dir", tiny_trained_dir, "--out_dir",
                        str(out_dir), *flags)
    assert "predict_3dpose_mdm.py" not in again.stdout  # nothing tested twice


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
