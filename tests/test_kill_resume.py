"""Training survives SIGKILL at any moment: the same command, run again, continues from
the last complete checkpoint and ends where an uninterrupted run ends.

The kills are real (the process sends itself SIGKILL at a named point through
mdm.core.faults); these tests are marked `slow`: `pytest -m "not slow"` skips them locally,
CI runs them.
"""

import glob
import json
import os
import signal

import numpy as np
import pytest
from cli_helpers import run_cli

pytestmark = pytest.mark.slow
EPOCHS = 3
STEPS_PER_EPOCH = (5 * 2 * 4 * 8) // 32  # 5 subjects x 2 sequences x 4 cameras x 8 frames


@pytest.fixture(scope="module")
def data_dir(synthetic_h36m):
    return synthetic_h36m(8, 11)


def train(data_dir, train_dir, fault=None):
    return run_cli("--data_dir", data_dir, "--train_dir", str(train_dir), "--action", "Walking",
                   "--epochs", str(EPOCHS), "--linear_size", "24", "--num_layers", "1",
                   "--batch_size", "32", "--verbose", "0", "--miss_num", "1", "--seed", "3",
                   env_extra={"MDM_FAULT_INJECTION": fault})


def steps_on_disk(train_dir):
    names = glob.glob(os.path.join(train_dir, "checkpoint-*.index"))
    return sorted(int(os.path.basename(n)[len("checkpoint-"):-len(".index")]) for n in names)


def final_results(train_dir):
    with open(os.path.join(train_dir, "results.json")) as handle:
        payload = json.load(handle)
    return payload["metadata"]["step"], payload["results"]


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    train_dir = tmp_path_factory.mktemp("straight")
    result = train(data_dir, train_dir)
    assert result.returncode == 0, result.stderr
    return final_results(str(train_dir))


def assert_same_end(train_dir, uninterrupted):
    step, results = final_results(str(train_dir))
    assert step == EPOCHS * STEPS_PER_EPOCH == uninterrupted[0]
    for action, columns in uninterrupted[1].items():
        for column, value in columns.items():
            np.testing.assert_allclose(results[action][column], value, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("fault, complete_epochs", [
    (f"batch:{STEPS_PER_EPOCH + 3}", 1),   # mid-epoch 2
    ("evaluation:2", 2),                   # during the evaluation after epoch 2
    ("checkpoint_written:2", 2),           # files of epoch 2 written, state file not yet
])
def test_kill_then_rerun_ends_like_uninterrupted_run(data_dir, tmp_path, uninterrupted,
                                                     fault, complete_epochs):
    killed = train(data_dir, tmp_path, fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert steps_on_disk(tmp_path)[-1] == complete_epochs * STEPS_PER_EPOCH
    resumed = train(data_dir, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {complete_epochs})" in resumed.stderr  # "resuming from ... (epoch N)"
    assert_same_end(tmp_path, uninterrupted)


def test_damaged_latest_checkpoint_falls_back_to_previous(data_dir, tmp_path, uninterrupted):
    killed = train(data_dir, tmp_path, "evaluation:2")
    assert killed.returncode == -signal.SIGKILL
    latest = steps_on_disk(tmp_path)[-1]
    data_file = glob.glob(os.path.join(tmp_path, f"checkpoint-{latest}.data-*"))[0]
    with open(data_file, "r+b") as handle:  # what a crash mid-write can leave behind
        handle.truncate(os.path.getsize(data_file) // 2)
    resumed = train(data_dir, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"cannot resume from {os.path.join(str(tmp_path), f'checkpoint-{latest}')}" in (
        resumed.stderr)
    assert "(epoch 1)" in resumed.stderr
    assert_same_end(tmp_path, uninterrupted)
