"""tf.distribute: replicas see exactly the single-device batches, and a mirrored run on
two logical CPUs takes the same steps as a one-device run at the same global batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mdm import distribution, pipeline
from mdm.config import Config
from mdm.errors import UserError

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
    strategy = distribution.make_strategy("mirrored", ["/cpu:0"])
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
    assert distribution.is_chief() is chief


def test_mirrored_two_devices_matches_one_device():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, os.path.join(HERE, "distributed_run.py")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    single, mirrored = runs["single"], runs["mirrored"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4)
    assert single["losses"][0] != single["losses"][-1]  # it trained
    for got, expected in zip(mirrored["outputs"], single["outputs"]):  # means, scales, weights
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("strategy", ["mirrored", "multi_worker"])
def test_command_line_trains_under_each_strategy(strategy, tmp_path):
    from cli_helpers import run_cli
    from mdm import synthetic

    data_dir = tmp_path / "data"
    synthetic.write_synthetic_h36m(str(data_dir), frames_per_sequence=8, seed=1)
    train_dir = tmp_path / "train"
    result = run_cli("--data_dir", str(data_dir), "--train_dir", str(train_dir),
                     "--distribute", strategy, "--action", "Walking", "--epochs", "1",
                     "--linear_size", "16", "--num_layers", "1", "--batch_size", "32",
                     "--verbose", "0", env_extra={"TF_CONFIG": None})
    assert result.returncode == 0, result.stderr
    assert f"{strategy} strategy over 1 replicas" in result.stderr
    assert (train_dir / "checkpoint-10.index").is_file()  # 320 samples / 32
    assert (train_dir / "results.json").is_file()
