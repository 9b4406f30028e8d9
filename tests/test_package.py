"""Packaged models (mdm.checkpoint.package, `python -m mdm.package`): float16 storage
restored as float32, found by --load like a checkpoint, loadable everywhere a checkpoint
is (Lifter, --test, training from it), and nothing ever written over."""

import contextlib
import io
import json
import os
import shutil

import numpy as np
import pytest

import numpy_network
from cli_helpers import error_line, run_cli
from mdm import package as package_cli
from mdm.checkpoint import package
from mdm.checkpoint import store as checkpoint_store
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.model.network import build_model
from mdm.serve.lifter import Lifter


@pytest.fixture(scope="module")
def packaged(tiny_trained_dir, tmp_path_factory):
    """(directory, step, printed report) of the tiny checkpoint packaged by the command."""
    out = str(tmp_path_factory.mktemp("packaged") / "tiny")
    status, printed = _run_package(["--load_dir", tiny_trained_dir, "--out", out,
                                    "--probe_poses", "500"])
    assert status == 0
    step = checkpoint_store.available_steps(tiny_trained_dir)[-1]
    return out, step, printed


def _run_package(argv):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = package_cli.main(argv)
    return status, printed.getvalue()


def _pixels(stats, count, seed=3):
    rng = np.random.default_rng(seed)
    return stats.mean_2d + rng.normal(0.0, 1.0, (count, 16, 2)) * stats.std_2d


def test_package_holds_float16_weights_and_the_statistics(packaged, tiny_trained_dir):
    directory, step, _ = packaged
    original = Lifter.load(tiny_trained_dir, step)
    with np.load(os.path.join(directory, f"checkpoint-{step}.npz")) as archive:
        weights = {name[len("weights/"):]: archive[name] for name in archive.files
                   if name.startswith("weights/")}
        stats = {name: archive[f"normalization/{name}"] for name in package.STATS_NAMES}
    assert {value.dtype for value in weights.values()} == {np.dtype(np.float16)}
    float32 = numpy_network.weights_of(original.model)
    assert set(weights) == set(float32)
    for name, value in weights.items():
        np.testing.assert_array_equal(value, float32[name].astype(np.float16))
    np.testing.assert_array_equal(stats["std_3d"], original.stats.std_3d)
    with open(os.path.join(directory, "config.json")) as handle:
        assert json.load(handle) == json.load(open(os.path.join(tiny_trained_dir, "config.json")))


def test_packaged_lifter_matches_numpy_on_the_float16_weights(packaged):
    directory, step, _ = packaged
    lifter = Lifter.load(directory)  # --load 0 finds the package's step
    assert lifter.config.load == step and lifter.model.weights[0].dtype == "float32"
    weights, _ = numpy_network.read_package(os.path.join(directory, f"checkpoint-{step}.npz"))
    pixels = _pixels(lifter.stats, 20)
    inputs = ((pixels - lifter.stats.mean_2d) / lifter.stats.std_2d).reshape(20, 32)
    means, scales, mixing = numpy_network.forward(weights, inputs, lifter.num_models)
    got = lifter.mixture_parameters(pixels, np.zeros((20, 16), bool))
    np.testing.assert_allclose(got[0], means, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], scales, rtol=1e-4)
    np.testing.assert_allclose(got[2], mixing, rtol=1e-4, atol=1e-6)


def test_reported_float16_difference_is_what_it_says(packaged, tiny_trained_dir):
    directory, step, printed = packaged
    report = json.loads(printed[printed.index("{"):])["float16_vs_float32_mm"]
    original, restored = Lifter.load(tiny_trained_dir, step), Lifter.load(directory, step)
    again = package_cli.compare(original, restored, 500)
    assert report == pytest.approx(again)
    assert 0.0 < report["max_abs_mm"] < 50.0 and report["mean_abs_mm"] < report["max_abs_mm"]


def test_steps_list_the_package_for_loading_but_not_for_resuming(packaged):
    directory, step, _ = packaged
    assert checkpoint_store.loadable_steps(directory) == [step]
    assert checkpoint_store.available_steps(directory) == []
    assert checkpoint_store.checkpoint_path(directory, step).endswith(f"checkpoint-{step}")


def test_nothing_is_written_over(packaged, tiny_trained_dir, capsys):
    directory, step, _ = packaged
    before = {name: os.path.getmtime(os.path.join(directory, name))
              for name in os.listdir(directory)}
    status, _ = _run_package(["--load_dir", tiny_trained_dir, "--out", directory])
    assert status == 1
    assert "is not empty" in capsys.readouterr().err
    assert before == {name: os.path.getmtime(os.path.join(directory, name))
                      for name in os.listdir(directory)}
    model = Lifter.load(directory).model
    with pytest.raises(UserError, match="exists; it is not replaced"):
        package.write_package(model, Lifter.load(directory).stats,
                              os.path.join(directory, f"checkpoint-{step}"))


@pytest.mark.parametrize("argv, message", [
    (["--load_dir", "/nonexistent/run", "--out", "x"], "config.json not found"),
    (["--load_dir", ".", "--out", "x", "--probe_poses", "0"], "--probe_poses must be"),
])
def test_bad_arguments_give_one_error_line(argv, message, capsys):
    assert package_cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_package_of_another_architecture_is_refused(packaged, tmp_path):
    directory, step, _ = packaged
    wider = build_model(Config(linear_size=32, num_layers=1), 48)
    with pytest.raises(UserError, match="shape"):
        package.restore_package(wider, os.path.join(directory, f"checkpoint-{step}"))
    deeper = build_model(Config(linear_size=16, num_layers=2), 48)
    with pytest.raises(UserError, match="missing weights: two_linear_1"):
        package.restore_package(deeper, os.path.join(directory, f"checkpoint-{step}"))


def test_damaged_package_gives_one_error_line(packaged, tmp_path):
    directory, step, _ = packaged
    damaged = tmp_path / "damaged"
    shutil.copytree(directory, damaged)
    (damaged / f"checkpoint-{step}.npz").write_bytes(b"not a numpy archive")
    with pytest.raises(UserError, match="cannot read the model package"):
        Lifter.load(str(damaged))


@pytest.mark.slow
def test_test_mode_and_training_start_from_a_package(packaged, synthetic_h36m, tmp_path):
    directory, step, _ = packaged
    data = synthetic_h36m(8, 2)
    tested = run_cli("--data_dir", data, "--load_dir", directory, "--train_dir",
                     str(tmp_path / "test_out"), "--test", "True", "--action", "Walking",
                     "--verbose", "0")
    assert tested.returncode == 0, tested.stderr
    assert f"using the latest checkpoint in {directory}, checkpoint-{step}" in tested.stderr
    tuned = run_cli("--data_dir", data, "--load_dir", directory, "--train_dir",
                    str(tmp_path / "tuned"), "--epochs", "1", "--action", "Walking",
                    "--batch_size", "32", "--verbose", "0")
    assert tuned.returncode == 0, tuned.stderr
    assert "starting from the packaged model" in tuned.stderr
    assert checkpoint_store.available_steps(str(tmp_path / "tuned"))
    resumed = run_cli("--data_dir", data, "--load_dir", directory, "--train_dir",
                      str(tmp_path / "none"), "--load", str(step + 1), "--epochs", "1")
    assert f"no checkpoint-{step + 1}" in error_line(resumed)
