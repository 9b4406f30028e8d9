"""tf.distribute: replicas see exactly the single-device batches, and a mirrored run on
two logical CPUs takes the same steps as a one-device run at the same global batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data import pipeline
from mdm.train import distribute

pytestmark = pytest.mark.slow  # every test here trains models, most in subprocesses

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("pipelines, replicas", [(1, 2), (2, 2), (2, 4), (4, 4)])
def test_replica_slices_reassemble_the_global_batch(pipelines, replicas):
    batch = 8
    index_batches, _ = pipeline._index_batches(40, batch, seed=5, epochs=2, first_epoch=0)
    global_batches = [b.numpy() for b in index_batches]
    pieces = []
    for pipeline_id in range(pipelines):
        context = tf.distribute.InputContext(num_input_pipelines=pipelines,
                                             input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=replicas)
        pieces.append([b.numpy() for b in pipeline.replica_index_batches(
            index_batches, batch, context)])
    local = replicas // pipelines
    for step, expected in enumerate(global_batches):
        replica_rows = [pieces[p][step * local + r] for p in range(pipelines)
                        for r in range(local)]
        np.testing.assert_array_equal(np.concatenate(replica_rows), expected)


def test_global_batch_must_split_evenly():
    strategy = distribute.make_strategy("mirrored", ["/cpu:0"])
    data, steps = pipeline.distributed_training_dataset(
        strategy, np.zeros((10, 32)), np.zeros((10, 48)), 4, seed=0, epochs=1)
    assert steps == 2  # one replica: the plain pipeline


def test_unknown_strategy_is_a_user_error():
    with pytest.raises(UserError, match="--distribute"):
        Config(distribute="ring").validate()


@pytest.mark.parametrize("task, chief", [
    ({}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker",
                                                                  "index": 0}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief",
                                                                  "index": 0}}, True),
])
def test_only_the_chief_writes(monkeypatch, task, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps(task))
    assert distribute.is_chief() is chief


def _run_script(mode, tf_config=None):
    """Start distributed_run.py in `mode` (a Popen whose stdout ends with the JSON)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, os.path.join(HERE, "distributed_run.py"), mode],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process):
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


def _assert_same_training(run, single):
    np.testing.assert_allclose(run["losses"], single["losses"], rtol=1e-4)
    assert single["losses"][0] != single["losses"][-1]  # it trained
    for got, expected in zip(run["outputs"], single["outputs"]):  # means, scales, weights
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_mirrored_two_devices_matches_one_device():
    runs = _finish(_run_script("mirrored"))
    single, mirrored = runs["single"], runs["mirrored"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    _assert_same_training(mirrored, single)


def _worker_config(workers, index):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_worker_processes_match_one_device():
    """Two real processes on localhost form a MultiWorkerMirroredStrategy cluster from
    TF_CONFIG; each worker's losses and trained model equal a one-device run's."""
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = [_run_script("worker", json.loads(_worker_config(workers, index)))
                 for index in range(2)]
    single = _finish(_run_script("single"))["single"]
    for process in processes:
        worker = _finish(process)["worker"]
        assert worker["replicas"] == 2
        _assert_same_training(worker, single)


@pytest.mark.parametrize("strategy", ["mirrored", "multi_worker"])
def test_command_line_trains_under_each_strategy(strategy, tmp_path):
    from cli_helpers import run_cli

    from mdm.data.synthetic import h36m_writer

    data_dir = tmp_path / "data"
    h36m_writer.write_synthetic_h36m(str(data_dir), frames_per_sequence=8, seed=1)
    train_dir = tmp_path / "train"
    result = run_cli("--data_dir", str(data_dir), "--train_dir", str(train_dir),
                     "--distribute", strategy, "--action", "Walking", "--epochs", "1",
                     "--linear_size", "16", "--num_layers", "1", "--batch_size", "32",
                     "--verbose", "0", env_extra={"TF_CONFIG": None})
    assert result.returncode == 0, result.stderr
    assert f"{strategy} strategy over 1 replicas" in result.stderr
    assert (train_dir / "checkpoint-10.index").is_file()  # 320 samples / 32
    assert (train_dir / "results.json").is_file()


def test_two_worker_command_lines_share_train_dir_and_match_one_process(tmp_path):
    """Two `--distribute multi_worker` processes with one train_dir: both finish, only
    the chief writes there, and the results equal those of a one-process run."""
    from cli_helpers import finish_cli, run_cli, start_cli

    from mdm.data.synthetic import h36m_writer

    data_dir = tmp_path / "data"
    h36m_writer.write_synthetic_h36m(str(data_dir), frames_per_sequence=8, seed=1)
    flags = ["--data_dir", str(data_dir), "--action", "Walking", "--epochs", "2",
             "--linear_size", "16", "--num_layers", "1", "--batch_size", "32",
             "--dropout", "1.0", "--verbose", "0"]  # keep prob 1: masks differ per replica
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    shared = tmp_path / "shared"
    processes = [start_cli(*flags, "--train_dir", str(shared), "--distribute", "multi_worker",
                           env_extra={"TF_CONFIG": _worker_config(workers, index)})
                 for index in range(2)]
    single = run_cli(*flags, "--train_dir", str(tmp_path / "single"),
                     env_extra={"TF_CONFIG": None})
    assert single.returncode == 0, single.stderr
    chief, worker = (finish_cli(process) for process in processes)
    assert chief.returncode == 0 and worker.returncode == 0, chief.stderr + worker.stderr
    assert "multi_worker strategy over 2 replicas" in chief.stderr
    assert "epoch 2" in chief.stderr and "Average" not in worker.stderr
    assert sorted(os.listdir(shared / "log")) == ["log.txt"]
    assert "saved" in (shared / "log" / "log.txt").read_text()
    assert (shared / "checkpoint-20.index").is_file()  # 2 epochs of 320 samples / 32
    with open(shared / "results.json") as handle:
        distributed_results = json.load(handle)
    with open(tmp_path / "single" / "results.json") as handle:
        single_results = json.load(handle)
    assert distributed_results.keys() == single_results.keys()
    for action, columns in single_results["results"].items():
        for column, value in columns.items():
            np.testing.assert_allclose(distributed_results["results"][action][column], value,
                                       rtol=1e-3)
