"""The trained models shipped in models/: each loads from the repository alone (no data),
lifts the example pose to what an independent numpy forward pass of its stored float16
weights gives (hypotheses, weights and the per-joint radius, recalibrated by the model's
recalibration.json where it ships one), and through `python -m mdm.infer` to the same
numbers as the API."""

import json
import os

import numpy as np
import pytest

import numpy_network
from numpy_radius import numpy_radius
from cli_helpers import REPO
from mdm import infer
from mdm.checkpoint import store as checkpoint_store
from mdm.core import skeleton
from mdm.serve import keypoint_files
from mdm.serve.lifter import Lifter

MODELS = os.path.join(REPO, "models")
EXAMPLE = os.path.join(REPO, "examples", "pose_2d.json")
SHIPPED = sorted(name for name in (os.listdir(MODELS) if os.path.isdir(MODELS) else [])
                 if os.path.isfile(os.path.join(MODELS, name, "config.json")))
MAX_MODEL_BYTES = 20 * 2 ** 20
RECALIBRATION = "recalibration.json"


def test_a_model_ships():
    assert SHIPPED, "models/ holds no model"


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    directory = os.path.join(MODELS, request.param)
    return directory, Lifter.load(directory)


def test_model_directory_is_small_and_documented(shipped):
    directory, lifter = shipped
    files = os.listdir(directory)
    assert sum(os.path.getsize(os.path.join(directory, f)) for f in files) < MAX_MODEL_BYTES
    assert checkpoint_store.available_steps(directory) == []  # weights only, no Adam state
    with open(os.path.join(directory, "MODEL.md")) as handle:
        card = handle.read()
    assert f"checkpoint-{lifter.config.load}" in card and "predict_3dpose_mdm.py" in card


def _numpy_outputs(directory, lifter):
    """(the example's Hypotheses from the API, the numpy forward pass of the stored
    weights (means, scales, weights), the stored statistics)."""
    weights, stats = numpy_network.read_package(
        os.path.join(directory, f"checkpoint-{lifter.config.load}.npz"))
    keypoints, order = keypoint_files.read_keypoints(EXAMPLE)
    pixels = keypoint_files.to_model_order(keypoints, order or keypoint_files.H36M)
    result = lifter.predict(keypoints, order or keypoint_files.H36M)
    inputs = ((pixels - stats["mean_2d"]) / stats["std_2d"])
    outputs = numpy_network.forward(weights, inputs.reshape(1, 32), lifter.num_models)
    return result, outputs, stats


def _recalibration_of(directory):
    """(the shipped JSON's checkpoint step, (widths, shrinks, temperature) read by joint
    name), or None."""
    path = os.path.join(directory, RECALIBRATION)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        record = json.load(handle)
    names = skeleton.H36M17_NAMES[1:]
    return record["checkpoint"], (np.array([record["joint_factors"][name] for name in names]),
                                  np.array([record["joint_shrink"][name] for name in names]),
                                  record["temperature"])


def test_example_pose_matches_numpy_on_the_stored_weights(shipped):
    directory, lifter = shipped
    result, (means, _, mixing), stats = _numpy_outputs(directory, lifter)
    order_k = np.argsort(-mixing, axis=1)
    np.testing.assert_allclose(result.weights, np.take_along_axis(mixing, order_k, 1),
                               rtol=1e-4, atol=1e-6)
    joints = means[0, order_k[0]].reshape(lifter.num_models, 16, 3)
    mm = joints * stats["std_3d"][1:] + stats["mean_3d"][1:]
    np.testing.assert_allclose(result.poses[0, :, 1:], mm, rtol=1e-4, atol=0.05)
    np.testing.assert_array_equal(result.poses[0, :, 0], 0.0)
    # A human body: every hypothesis spans a plausible height (head above the feet).
    extent = np.ptp(result.poses[0], axis=1).max(axis=-1)
    assert np.all((extent > 800) & (extent < 2500)), extent


def test_radius_matches_numpy_with_the_shipped_recalibration(shipped):
    """The radius of the example pose: numpy draws from the stored weights' mixture,
    recalibrated by the shipped file (fitted for the shipped step, and said so in
    MODEL.md) or raw where the model ships none."""
    directory, lifter = shipped
    result, outputs, stats = _numpy_outputs(directory, lifter)
    shipped_fit = _recalibration_of(directory)
    recalibrated = None
    if shipped_fit is None:
        assert lifter.recalibration is None
    else:
        step, recalibrated = shipped_fit
        assert step == lifter.config.load and lifter.recalibration is not None
        with open(os.path.join(directory, "MODEL.md")) as handle:
            assert RECALIBRATION in handle.read()
    std_3d = stats["std_3d"][1:]
    np.testing.assert_allclose(result.radius_mm[:, 1:],
                               numpy_radius(outputs, std_3d, 0.9, 0, recalibrated),
                               rtol=2e-3, atol=0.05)
    keypoints, order = keypoint_files.read_keypoints(EXAMPLE)
    raw = Lifter.load(directory, recalibrate=False).predict(
        keypoints, order or keypoint_files.H36M).radius_mm
    np.testing.assert_allclose(raw[:, 1:], numpy_radius(outputs, std_3d, 0.9, 0),
                               rtol=2e-3, atol=0.05)


def test_infer_command_lifts_the_example_like_the_api(shipped, tmp_path, capsys):
    directory, lifter = shipped
    out = tmp_path / "pose_3d.json"
    assert infer.main(["--load_dir", directory, "--input", EXAMPLE, "--output", str(out)]) == 0
    with open(out) as handle:
        written = json.load(handle)
    keypoints, order = keypoint_files.read_keypoints(EXAMPLE)
    result = lifter.predict(keypoints, order or keypoint_files.H36M)
    hypotheses = written["poses"][0]["hypotheses"]
    np.testing.assert_allclose([h["joints_3d"] for h in hypotheses], result.poses[0], rtol=1e-9)
    np.testing.assert_allclose([h["weight"] for h in hypotheses], result.weights[0], rtol=1e-7)
    assert "1 pose(s) x 5 hypotheses" in capsys.readouterr().out
