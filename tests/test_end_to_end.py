"""Synthetic data -> train one short epoch -> checkpoint -> --test reproduces the
numbers -> --sample writes PNGs; and the command line's answers to bad input."""

import json
import os

import numpy as np
import pytest
from cli_helpers import error_line, run_cli

pytestmark = pytest.mark.slow  # every test here runs the command line in a subprocess

SMALL_NET = ["--linear_size", "32", "--num_layers", "1", "--batch_size", "32",
             "--verbose", "0", "--jit_compile=false"]


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(12, 3)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    train_dir = str(tmp_path_factory.mktemp("train"))
    result = run_cli("--data_dir", data_dir, "--train_dir", train_dir, "--epochs", "1",
                     *SMALL_NET)
    assert result.returncode == 0, result.stderr
    return train_dir


def _step(train_dir):
    names = [n for n in os.listdir(train_dir) if n.startswith("checkpoint-") and
             n.endswith(".index")]
    assert len(names) == 1, names
    return int(names[0][len("checkpoint-"):-len(".index")])


def test_training_writes_checkpoint_log_summary_and_results(trained):
    step = _step(trained)
    # 5 subjects x 15 actions x 2 sequences x 4 cameras x 12 frames, batch 32, remainder dropped
    assert step == (5 * 15 * 2 * 4 * 12) // 32
    assert os.path.isfile(os.path.join(trained, "checkpoint"))
    assert os.path.isfile(os.path.join(trained, "config.json"))
    log_text = open(os.path.join(trained, "log", "log.txt")).read()
    assert "Average" in log_text
    assert os.listdir(os.path.join(trained, "summary"))
    with open(os.path.join(trained, "results.json")) as handle:
        results = json.load(handle)
    assert results["metadata"]["step"] == step


def test_test_mode_reproduces_training_evaluation(trained, data_dir):
    step = _step(trained)
    result = run_cli("--data_dir", data_dir, "--train_dir", trained, "--test", "True",
                     "--load", str(step), "--load_dir", trained, *SMALL_NET)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(trained, "results.json")) as handle:
        during_training = json.load(handle)["results"]
    with open(os.path.join(trained, f"results_test_{step}_p1.json")) as handle:
        tested = json.load(handle)["results"]
    for action, columns in during_training.items():
        for column, value in columns.items():
            np.testing.assert_allclose(tested[action][column], value, rtol=1e-5)
    assert tested["Average"]["best"] <= tested["Average"]["most_probable"] + 1e-6


def test_procrustes_lowers_every_column(trained, data_dir):
    step = _step(trained)
    if not os.path.isfile(os.path.join(trained, f"results_test_{step}_p1.json")):
        # Protocol #1 comes from test_test_mode_reproduces_training_evaluation when it ran
        # first on this worker's `trained`; otherwise from a run here.
        assert run_cli("--data_dir", data_dir, "--train_dir", trained, "--test", "True",
                       "--load", str(step), "--load_dir", trained,
                       *SMALL_NET).returncode == 0
    result = run_cli("--data_dir", data_dir, "--train_dir", trained, "--test", "True",
                     "--load", str(step), "--load_dir", trained, "--procrustes", "True",
                     *SMALL_NET)
    assert result.returncode == 0, result.stderr
    p1 = json.load(open(os.path.join(trained, f"results_test_{step}_p1.json")))["results"]
    p2 = json.load(open(os.path.join(trained, f"results_test_{step}_p2.json")))["results"]
    for column in ("best", "most_probable", "mixture_mean"):
        assert p2["Average"][column] < p1["Average"][column]


def test_sample_mode_writes_figures(trained, data_dir):
    step = _step(trained)
    result = run_cli("--data_dir", data_dir, "--train_dir", trained, "--sample", "True",
                     "--load", str(step), "--load_dir", trained, "--sample_figures", "1",
                     *SMALL_NET)
    assert result.returncode == 0, result.stderr
    figures = os.listdir(os.path.join(trained, "samples_sh"))
    # SittingDown: 2 test subjects x 2 sequences x 4 cameras, one figure each.
    assert len(figures) == 16
    assert all(name.endswith(".png") for name in figures)


def _assert_one_line_error(result, *fragments):
    line = error_line(result)
    for fragment in fragments:
        assert fragment in line


def test_missing_data_dir(tmp_path):
    result = run_cli("--data_dir", str(tmp_path / "nowhere"), "--train_dir", str(tmp_path / "t"))
    _assert_one_line_error(result, "data directory not found", "3d-pose-baseline")


def test_missing_cameras(data_dir, tmp_path):
    result = run_cli("--data_dir", data_dir, "--cameras_path", str(tmp_path / "c.h5"),
                     "--train_dir", str(tmp_path / "t"))
    _assert_one_line_error(result, "cameras file not found")


def test_unknown_checkpoint_lists_available(trained, data_dir):
    step = _step(trained)
    result = run_cli("--data_dir", data_dir, "--test", "True", "--load", "999999",
                     "--load_dir", trained, "--train_dir", trained, *SMALL_NET)
    _assert_one_line_error(result, "checkpoint-999999", str(step))


def test_architecture_mismatch_is_named(trained, data_dir):
    step = _step(trained)
    result = run_cli("--data_dir", data_dir, "--test", "True", "--load", str(step),
                     "--load_dir", trained, "--train_dir", trained, "--linear_size", "64",
                     "--num_layers", "1")
    _assert_one_line_error(result, "--linear_size=64")


def test_unknown_action(data_dir, tmp_path):
    result = run_cli("--data_dir", data_dir, "--action", "Dancing", "--train_dir",
                     str(tmp_path / "t"))
    _assert_one_line_error(result, "unknown --action 'Dancing'")


@pytest.mark.parametrize("value", ["3", "-1"])
def test_miss_num_out_of_range(value, tmp_path):
    result = run_cli("--miss_num", value, "--train_dir", str(tmp_path / "t"))
    _assert_one_line_error(result, "--miss_num")


def test_malformed_h5_names_file_and_dataset(data_dir, tmp_path):
    import shutil

    import h5py
    broken = tmp_path / "broken"
    shutil.copytree(data_dir, broken)
    victim = broken / "S1" / "MyPoses" / "3D_positions" / "Walking.h5"
    with h5py.File(victim, "w") as handle:
        handle["positions"] = np.zeros((96, 4))
    result = run_cli("--data_dir", str(broken), "--train_dir", str(tmp_path / "t"),
                     "--action", "Walking")
    _assert_one_line_error(result, "Walking.h5", "3D_positions")
