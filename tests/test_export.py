"""The serving SavedModel: reloaded with tf.saved_model.load in a fresh process, it gives
the Python API's numbers from raw pixels."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf

from mdm import infer
from mdm.core import skeleton
from mdm.core.config import Config
from mdm.core.errors import UserError
from mdm.data.normalization import NormStats
from mdm.model.network import build_model
from mdm.serve import export, keypoint_files
from mdm.serve.keypoint_files import INPUT_NAMES
from mdm.serve.lifter import Lifter
from lifter_helpers import save_random_lifter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    served = tf.saved_model.load(sys.argv[1])
    lift = served.signatures["serving_default"]
    outputs = lift(keypoints_2d=tf.constant(np.load(sys.argv[2]), tf.float32))
    np.savez(sys.argv[3], **{name: value.numpy() for name, value in outputs.items()})
""")


@pytest.fixture(scope="module")
def lifter_dir(tmp_path_factory):
    return save_random_lifter(str(tmp_path_factory.mktemp("checkpoint")), seed=6, step=9)


@pytest.fixture(scope="module")
def lifter(lifter_dir):
    return Lifter.load(lifter_dir)


def _pixels(lifter):
    """Four poses in whole pixels (exact in float32), the last with a missing wrist."""
    rng = np.random.default_rng(0)
    pixels = np.round(lifter.stats.mean_2d + rng.normal(0, 1, (4, 16, 2)) * lifter.stats.std_2d)
    pixels[3, INPUT_NAMES.index("LWrist")] = np.nan
    return pixels


def assert_same_as_api(outputs, want):
    np.testing.assert_allclose(outputs["poses_3d"], want.poses, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(outputs["weights"], want.weights, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(outputs["scales"], want.scales, rtol=1e-6)
    np.testing.assert_allclose(outputs["scales_mm"], want.scales_mm, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(outputs["kernel_index"], want.kernel_index)
    np.testing.assert_array_equal(outputs["missing"], want.missing)
    # The same seeded draws in the graph as in Lifter.predict (mdm/model/radius.py).
    np.testing.assert_allclose(outputs["radius_mm"], want.radius_mm, rtol=1e-4, atol=1e-3)


def _mpii(pixels):
    return pixels[:, [INPUT_NAMES.index(name) for name in skeleton.SH_NAMES]]



def serve_in_fresh_process(saved, tmp_path):
    """Run the SavedModel on tmp_path/pixels.npy with plain TensorFlow in a new process;
    its outputs land in tmp_path/served.npz."""
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, saved, str(tmp_path / "pixels.npy"),
         str(tmp_path / "served.npz")],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""))
    assert result.returncode == 0, result.stderr

@pytest.mark.slow
def test_cli_export_reloads_in_a_fresh_process(capsys, lifter_dir, lifter, tmp_path):
    """--export next to an MPII-order --input: the SavedModel takes that order."""
    pixels = _pixels(lifter)
    path = keypoint_files.write_keypoints_json(str(tmp_path / "in.json"), _mpii(pixels), "mpii")
    saved = str(tmp_path / "served")
    assert infer.main(["--load_dir", lifter_dir, "--input", path, "--output",
                       str(tmp_path / "out.npz"), "--export", saved]) == 0
    assert "SavedModel written" in capsys.readouterr().out
    np.save(tmp_path / "pixels.npy", _mpii(pixels).astype(np.float32))
    serve_in_fresh_process(saved, tmp_path)
    with pytest.warns(UserWarning):
        want = lifter.predict(pixels)
    with np.load(tmp_path / "served.npz") as outputs:
        assert_same_as_api(outputs, want)
        assert outputs["poses_3d"].shape == (4, 3, 17, 3)
    with open(os.path.join(saved, export.EXPORT_CONFIG)) as handle:
        assert json.load(handle)["inputs"]["keypoints_2d"]["joint_order"] == "mpii"


def test_api_export_and_its_config(lifter, tmp_path):
    saved = export.export_saved_model(lifter, str(tmp_path / "served"))
    pixels = _pixels(lifter)[:3]
    lift = tf.saved_model.load(saved).signatures[export.SIGNATURE]
    outputs = {k: v.numpy() for k, v in lift(keypoints_2d=tf.constant(pixels, tf.float32)).items()}
    assert_same_as_api(outputs, lifter.predict(pixels))
    with open(os.path.join(saved, export.EXPORT_CONFIG)) as handle:
        config = json.load(handle)
    assert config["signature"] == "serving_default"
    assert config["inputs"]["keypoints_2d"]["joint_order"] == "h36m"
    assert config["inputs"]["keypoints_2d"]["joint_names"] == list(INPUT_NAMES)
    assert config["output_joint_names"] == list(skeleton.H36M17_NAMES)
    assert config["num_hypotheses"] == 3 and config["architecture"]["linear_size"] == 32
    for name, value in lifter.stats.as_arrays().items():
        np.testing.assert_array_equal(config["normalization"][name], value)


def _poses_the_cli_refuses_or_takes(lifter):
    """Each pose alone: (pixels (9, 16, 2) float32, whether Lifter.predict accepts it)."""
    pixels = np.repeat(_pixels(lifter)[:1], 9, axis=0)
    gone = {1: ["Hip"], 2: ["LKnee", "LWrist", "RFoot"], 3: ["Head"], 5: ["LWrist", "RKnee"],
            7: ["Thorax", "LElbow"], 8: ["RFoot"]}
    for pose, names in gone.items():
        pixels[pose, [INPUT_NAMES.index(name) for name in names]] = np.nan
    pixels[4, INPUT_NAMES.index("Spine"), 0] = np.inf    # not a missing joint: a bad number
    pixels[6, INPUT_NAMES.index("RElbow"), 1] = np.nan   # half a joint is a missing joint
    pixels = pixels.astype(np.float32)
    accepted = []
    for pose in pixels:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lifter.predict(pose)
            accepted.append(True)
        except UserError:
            accepted.append(False)
    return pixels, np.array(accepted)


@pytest.mark.slow
def test_saved_model_flags_the_poses_the_cli_refuses(lifter, tmp_path):
    """Plain tf.saved_model.load in a fresh process: `valid` is False exactly where
    Lifter.predict refuses the pose, whose poses_3d, weights and scales are then NaN; the
    other rows are the API's numbers."""
    pixels, accepted = _poses_the_cli_refuses_or_takes(lifter)
    assert accepted.tolist() == [True, False, False, False, False, True, True, False, True]
    saved = export.export_saved_model(lifter, str(tmp_path / "served"))
    np.save(tmp_path / "pixels.npy", pixels)
    serve_in_fresh_process(saved, tmp_path)
    with np.load(tmp_path / "served.npz") as served:
        outputs = dict(served)
    assert outputs["valid"].dtype == bool
    np.testing.assert_array_equal(outputs["valid"], accepted)
    for name in ("poses_3d", "weights", "scales", "scales_mm"):
        assert np.isnan(outputs[name][~accepted]).all(), name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = lifter.predict(pixels[accepted])
    assert_same_as_api({name: value[accepted] for name, value in outputs.items()}, want)
    with open(os.path.join(saved, export.EXPORT_CONFIG)) as handle:
        described = json.load(handle)["outputs"]
    assert "valid" in described and "NaN" in described["valid"]


def test_export_refuses_a_non_empty_directory(lifter, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not empty"):
        export.export_saved_model(lifter, str(tmp_path))
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_predict_14_model(tmp_path):
    """With --predict_14 the joints not predicted sit at their training mean (as the
    release's unNormalizeData), in the API and in the SavedModel alike."""
    rng = np.random.default_rng(8)
    poses_3d = rng.normal(0.0, 200.0, (50, 17, 3))
    poses_3d[:, 0] = 0.0
    stats = NormStats.from_training(rng.uniform(300, 700, (50, 16, 2)), poses_3d)
    config = Config(linear_size=16, num_layers=1, num_models=2, predict_14=True)
    lifter = Lifter(build_model(config, 42), stats, config)
    pixels = stats.mean_2d + rng.normal(0.0, 1.0, (2, 16, 2)) * stats.std_2d
    want = lifter.predict(pixels)
    fixed = [skeleton.H36M17_NAMES.index(name) for name in ("Spine", "Neck/Nose")]
    np.testing.assert_allclose(want.poses[:, :, fixed], np.broadcast_to(
        stats.mean_3d[fixed], (2, 2, 2, 3)), rtol=1e-12)
    np.testing.assert_array_equal(want.poses[:, :, 0], 0.0)
    np.testing.assert_array_equal(want.scales_mm[:, :, fixed + [0]], 0.0)
    lift = tf.saved_model.load(export.export_saved_model(lifter, str(tmp_path / "s")))
    outputs = lift.signatures[export.SIGNATURE](keypoints_2d=tf.constant(pixels, tf.float32))
    assert_same_as_api({k: v.numpy() for k, v in outputs.items()}, want)
