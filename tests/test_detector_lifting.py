"""Lifting detector files frame by frame: flags for frames the model cannot lift, the
temporal path cut at them, the camera normalisation, and the command line with its
animation and one error line per bad input."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from mdm import infer
from mdm.evaluate import selection
from mdm.serve import camera_norm, derived_joints, detector_examples, detector_formats
from mdm.serve.detector_lifting import DEFAULT_MIN_CONFIDENCE, DetectorOptions
from mdm.serve.progress import Progress

# A model trained without --miss_num warns about missing joints; the tests that mean it say so.
pytestmark = pytest.mark.filterwarnings("ignore:.*missing joints:UserWarning")
COCO = detector_formats.COCO_NAMES
FRAMES = 10


@pytest.fixture(scope="module")
def coco():
    return detector_examples.synthetic_coco(frames=FRAMES, seed=5)


def _expected_inputs(lifter, coco, mode, threshold=DEFAULT_MIN_CONFIDENCE):
    """The model-order input an independent reading of the rules gives, normalised."""
    keypoints = coco[..., :2].copy()
    keypoints[coco[..., 2] < threshold] = np.nan
    pixels = derived_joints.to_model_joints(keypoints, "coco")
    return camera_norm.apply(pixels, *camera_norm.similarity(pixels, lifter.stats.mean_2d, mode))


def test_lifting_a_coco_video_equals_lifting_its_normalised_model_input(lifter, coco):
    detections = detector_formats.from_array(coco, "coco")
    with pytest.warns(UserWarning, match="missing joints"):  # the occluded wrist
        lifted = lifter.predict_detections(detections, DetectorOptions(min_confidence=0.3))
        want = lifter.predict(_expected_inputs(lifter, coco, "pose", 0.3))
    assert lifted.valid.all() and lifted.camera_mode == "pose"
    np.testing.assert_allclose(lifted.hypotheses.poses, want.poses, rtol=1e-10)
    np.testing.assert_array_equal(lifted.hypotheses.kernel_index, want.kernel_index)
    hidden = coco[:, COCO.index("left_wrist"), 2] < 0.3
    assert hidden.any()
    np.testing.assert_array_equal(lifted.hypotheses.missing[:, 12], hidden)  # LWrist


def test_resized_and_shifted_video_lifts_the_same(lifter, coco):
    """The point of the camera normalisation: a 3x larger image, elsewhere, same poses."""
    moved = coco.copy()
    moved[..., :2] = 3.0 * coco[..., :2] + [250.0, -80.0]
    for options in (DetectorOptions(camera_norm="pose"), DetectorOptions(camera_norm="video")):
        base = lifter.predict_detections(detector_formats.from_array(coco, "coco"), options)
        again = lifter.predict_detections(detector_formats.from_array(moved, "coco"), options)
        np.testing.assert_allclose(again.hypotheses.poses, base.hypotheses.poses, atol=1e-6)


def test_frames_that_cannot_be_lifted_are_flagged_and_cut_the_path(lifter, coco):
    broken = coco.copy()
    broken[2, COCO.index("left_hip"), 2] = 0.01  # no root
    broken[5, [COCO.index(n) for n in ("left_knee", "right_knee", "left_ankle")], 2] = 0.0
    broken[7, :, 2] = 0.0  # nobody
    lifted = lifter.predict_detections(detector_formats.from_array(broken, "coco"),
                                       DetectorOptions(camera_norm="pose"), temporal=True,
                                       smoothness=0.05)
    np.testing.assert_array_equal(np.flatnonzero(~lifted.valid), [2, 5, 7])
    assert "root joint (Hip)" in lifted.problems[2]
    assert "3 limb joints missing" in lifted.problems[5]
    assert "no person detected" in lifted.problems[7]
    assert np.isnan(lifted.hypotheses.poses[[2, 5, 7]]).all()
    assert (lifted.hypotheses.kernel_index[[2, 5, 7]] == -1).all()
    good = lifted.valid
    want = lifter.predict(_expected_inputs(lifter, broken, "pose")[good])
    np.testing.assert_allclose(lifted.hypotheses.poses[good], want.poses, rtol=1e-10)
    # The path: one Viterbi per run of valid frames (0-1, 3-4, 6, 8-9), none through a flag.
    runs = np.array([0, 0, 1, 1, 2, 3, 3])
    rank = selection.viterbi_path(want.poses, want.weights, runs, 0.05)
    chosen = want.poses[np.arange(len(rank)), rank]
    np.testing.assert_allclose(lifted.path["path_pose_3d"][good], chosen, rtol=1e-10)
    assert np.isnan(lifted.path["path_pose_3d"][~good]).all()
    assert (lifted.path["path_kernel"][~good] == -1).all()


def test_nothing_liftable_is_one_error(lifter, coco):
    empty = coco.copy()
    empty[..., 2] = 0.0
    with pytest.raises(Exception, match=r"none of the 10 frame\(s\) can be lifted \(frame 0: "
                                        "no person detected"):
        lifter.predict_detections(detector_formats.from_array(empty, "coco"))


def run(capsys, *args):
    status = infer.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_command_line_openpose_folder_to_json_and_gif(capsys, lifter_dir, lifter, coco,
                                                      tmp_path):
    body = detector_examples.coco_to_openpose(coco)
    body[4, :, 2] = 0.0  # a frame without anybody
    detector_examples.write_openpose_frames(str(tmp_path / "frames"), body)
    output, movie = tmp_path / "out.json", tmp_path / "out.gif"
    status, out, err = run(capsys, "--load_dir", lifter_dir, "--input", str(tmp_path / "frames"),
                           "--joint_order", "openpose25", "--select", "temporal",
                           "--output", str(output), "--animation", str(movie))
    assert status == 0, err
    assert "warning: 1 of 10 frame(s) cannot be lifted" in err
    assert f"animation of {FRAMES} frame(s)" in out
    document = json.load(open(output))
    assert document["camera_norm"] == "video" and document["joint_order"] == "openpose25"
    assert document["frames_flagged"] == 1
    poses = document["poses"]
    assert poses[4]["valid"] is False and "no person" in poses[4]["problem"]
    assert poses[0]["frame"] == "video_000000000000_keypoints.json"
    want = lifter.predict_detections(
        detector_formats.read_detections(str(tmp_path / "frames"), "openpose25"),
        temporal=True)
    np.testing.assert_allclose(poses[3]["temporal_path"]["joints_3d"],
                               want.path["path_pose_3d"][3], rtol=1e-10)
    np.testing.assert_allclose([h["joints_3d"] for h in poses[0]["hypotheses"]],
                               want.hypotheses.poses[0], rtol=1e-10)
    with Image.open(movie) as image:
        assert image.n_frames == FRAMES


def test_command_line_focal_normalisation(capsys, lifter_dir, lifter, coco, tmp_path):
    path = detector_examples.write_coco_results(str(tmp_path / "coco.json"), coco)
    output = tmp_path / "out.npz"
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", path, "--joint_order",
                         "coco", "--focal_length", "1500", "--image_size", "1920x1080",
                         "--min_confidence", "0.5", "--output", str(output))
    assert status == 0, err
    pixels = derived_joints.to_model_joints(
        np.where(coco[..., 2:] < 0.5, np.nan, coco[..., :2]), "coco")
    model_input = camera_norm.H36M_FOCAL_PX / 1500 * (pixels - [960, 540]) \
        + camera_norm.H36M_CENTRE_PX
    with pytest.warns(UserWarning):
        want = lifter.predict(model_input)
    with np.load(output) as saved:
        np.testing.assert_allclose(saved["poses_3d"], want.poses, rtol=1e-10)
        np.testing.assert_allclose(saved["camera_scale"], camera_norm.H36M_FOCAL_PX / 1500)
        assert json.loads(str(saved["metadata"]))["camera_norm"] == "focal"
        assert saved["valid"].all()


def _assert_one_error_line(err, message):
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("extra, message", [
    (["--joint_order", "h36m", "--min_confidence", "0.2"], "--min_confidence goes with"),
    (["--joint_order", "coco", "--min_confidence", "2"], "between 0 and 1"),
    (["--joint_order", "coco", "--focal_length", "1500"], "go together"),
    (["--joint_order", "coco", "--focal_length", "1500", "--image_size", "1920by1080"],
     "--image_size must be WIDTHxHEIGHT"),
    (["--joint_order", "coco", "--camera_norm", "focal"], "needs --focal_length"),
    (["--joint_order", "coco", "--animation", "out.avi"], "unknown animation format .avi"),
    (["--joint_order", "coco", "--fps", "0"], "--fps must be"),
    (["--joint_order", "coco", "--export", "saved"], "--export takes the h36m or mpii"),
])
def test_bad_arguments_give_one_error_line(capsys, lifter_dir, coco, tmp_path, extra, message):
    path = detector_examples.write_coco_results(str(tmp_path / "coco.json"), coco)
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", path,
                         "--output", str(tmp_path / "o.json"), *extra)
    assert status == 1
    _assert_one_error_line(err, message)


@pytest.mark.parametrize("content, message", [
    ({"people": [{"pose_keypoints_2d": [0.0] * 74}]}, "holds 74 numbers; openpose25 needs 75"),
    ({"people": [{"pose_keypoints_2d": [0.0] * 75}]}, "none of the 1 frame(s) can be lifted"),
    ("{", "not valid JSON"),
])
def test_bad_openpose_files_give_one_error_line(capsys, lifter_dir, tmp_path, content, message):
    path = tmp_path / "frame.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", str(path),
                         "--joint_order", "openpose25", "--output", str(tmp_path / "o.json"))
    assert status == 1
    _assert_one_error_line(err, message)


def test_progress_bar_only_on_long_inputs():
    stream = io.StringIO()
    bar = Progress(100, "frames", stream=stream, force=True)
    bar.update(50)
    bar.close()
    assert stream.getvalue() == "\rframes [" + "#" * 15 + "." * 15 + "] 50/100\n"
    quiet = io.StringIO()
    short = Progress(10, "frames", stream=quiet, force=True)
    short.update(5)
    short.close()
    not_a_terminal = Progress(100, "frames", stream=quiet)
    not_a_terminal.update(5)
    assert quiet.getvalue() == ""


def test_example_files_read_and_are_small():
    root = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples", "detectors")
    coco = detector_formats.read_detections(os.path.join(root, "coco_walk.json"), "coco")
    body = detector_formats.read_detections(os.path.join(root, "openpose_walk"), "openpose25")
    assert len(coco) == len(body) == 40
    np.testing.assert_allclose(body.keypoints[:, detector_formats.OPENPOSE25_NAMES.index("Nose")],
                               coco.keypoints[:, COCO.index("nose")])
    sizes = [os.path.getsize(os.path.join(dirpath, name))
             for dirpath, _, names in os.walk(root) for name in names]
    assert sum(sizes) < 150_000


def test_mp4_without_ffmpeg_is_one_error_line(capsys, lifter_dir, coco, tmp_path):
    from matplotlib import animation as writers

    if writers.writers.is_available("ffmpeg"):
        pytest.skip("ffmpeg is installed here: .mp4 is written")
    path = detector_examples.write_coco_results(str(tmp_path / "coco.json"), coco)
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", path, "--joint_order",
                         "coco", "--output", str(tmp_path / "o.json"), "--animation",
                         str(tmp_path / "o.mp4"))
    assert status == 1
    _assert_one_error_line(err, "writing .mp4 needs ffmpeg, which is not installed; use .gif")
    assert not (tmp_path / "o.json").exists()  # refused before any work
