"""Detector files (COCO-17, OpenPose BODY_25, h36m17) written from the synthetic dataset:
reading, confidences, the derived joints and the camera normalisation, against
independent numpy computations."""

import json

import numpy as np
import pytest

from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.serve import camera_norm, derived_joints, detector_examples, detector_formats
from mdm.serve.keypoint_files import INPUT_NAMES

COCO = detector_formats.COCO_NAMES
OPENPOSE = detector_formats.OPENPOSE25_NAMES


@pytest.fixture(scope="module")
def coco():
    """(12, 17, 3) COCO keypoints with scores of a synthetic walk in a 1080p camera."""
    return detector_examples.synthetic_coco(frames=12, seed=3)


def _write_csv(path, rows):
    path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    return str(path)


def test_every_coco_layout_reads_the_same(coco, tmp_path):
    paths = [detector_examples.write_coco_results(str(tmp_path / "results.json"), coco),
             detector_examples.write_mmpose_predictions(str(tmp_path / "mmpose.json"), coco),
             _write_csv(tmp_path / "rows.csv", coco.reshape(len(coco), -1))]
    np.save(tmp_path / "yolo.npy", coco)
    paths.append(str(tmp_path / "yolo.npy"))
    annotations = {"images": [{"id": i} for i in range(len(coco))],
                   "annotations": [{"image_id": i, "keypoints": pose.reshape(-1).tolist()}
                                   for i, pose in enumerate(coco)]}
    (tmp_path / "annotations.json").write_text(json.dumps(annotations))
    paths.append(str(tmp_path / "annotations.json"))
    (tmp_path / "plain.json").write_text(json.dumps({"joint_order": "coco",
                                                     "keypoints_2d": coco.tolist()}))
    paths.append(str(tmp_path / "plain.json"))
    for path in paths:
        read = detector_formats.read_detections(path, "coco")
        np.testing.assert_allclose(read.keypoints, coco[..., :2], err_msg=path)
        np.testing.assert_allclose(read.scores, coco[..., 2], err_msg=path)
        assert read.joint_order == "coco" and len(read) == len(coco)


def test_openpose_folder_in_natural_frame_order(coco, tmp_path):
    body = detector_examples.coco_to_openpose(coco)
    folder = tmp_path / "frames"
    folder.mkdir()
    for frame, pose in enumerate(body):  # frame_2 must come before frame_10
        document = {"version": 1.3, "people": [{"pose_keypoints_2d": pose.reshape(-1).tolist()}]}
        (folder / f"frame_{frame}.json").write_text(json.dumps(document))
    read = detector_formats.read_detections(str(folder), "openpose25")
    np.testing.assert_allclose(read.keypoints, body[..., :2])
    assert read.frames[:3] == ("frame_0.json", "frame_1.json", "frame_2.json")
    one = detector_formats.read_detections(str(folder / "frame_5.json"), "openpose25")
    np.testing.assert_allclose(one.keypoints[0], body[5, :, :2])
    neck = (coco[:, COCO.index("left_shoulder"), :2] + coco[:, COCO.index("right_shoulder"), :2]) / 2
    np.testing.assert_allclose(read.keypoints[:, OPENPOSE.index("Neck")], neck, atol=1e-3)


def test_the_most_confident_person_and_empty_frames(coco, tmp_path):
    other = coco[0].copy()
    other[:, 2] = 0.2
    entries = [{"image_id": 7, "keypoints": other.reshape(-1).tolist(), "score": 0.3},
               {"image_id": 7, "keypoints": coco[1].reshape(-1).tolist(), "score": 0.9}]
    annotations = {"images": [{"id": 3}, {"id": 7}], "annotations": entries}
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    read = detector_formats.read_detections(str(tmp_path / "a.json"), "coco")
    assert read.frames == (3, 7)
    assert np.isnan(read.keypoints[0]).all() and (read.scores[0] == 0).all()
    np.testing.assert_allclose(read.keypoints[1], coco[1, :, :2])


def test_scores_below_the_threshold_are_missing(coco):
    detections = detector_formats.from_array(coco, "coco")
    for threshold in (0.0, 0.3, 0.95):
        kept = derived_joints.apply_min_confidence(detections, threshold)
        gone = (coco[..., 2] < threshold) | (coco[..., 2] <= 0)
        np.testing.assert_array_equal(np.isnan(kept).any(-1), gone)
        np.testing.assert_allclose(kept[~gone], coco[..., :2][~gone])
    zero = coco.copy()
    zero[0, 3, 2] = 0.0  # "not found", even with no threshold
    assert np.isnan(derived_joints.apply_min_confidence(
        detector_formats.from_array(zero, "coco"), 0.0)[0, 3]).all()


def _expected_model_joints(points, rules):
    """The derivation rules written out for COCO, joint by joint."""
    get = lambda name: points[:, COCO.index(name)]  # noqa: E731
    hip = (get("left_hip") + get("right_hip")) / 2
    s = (get("left_shoulder") + get("right_shoulder")) / 2
    coefficients = derived_joints.DERIVATION_RULES[rules]
    derived = {name: s + a * (s - hip) + b * (get("nose") - s)
               for name, (a, b) in coefficients.items()}
    table = {"Hip": hip, "RHip": get("right_hip"), "RKnee": get("right_knee"),
             "RFoot": get("right_ankle"), "LHip": get("left_hip"), "LKnee": get("left_knee"),
             "LFoot": get("left_ankle"), "LShoulder": get("left_shoulder"),
             "LElbow": get("left_elbow"), "LWrist": get("left_wrist"),
             "RShoulder": get("right_shoulder"), "RElbow": get("right_elbow"),
             "RWrist": get("right_wrist"), **derived}
    return np.stack([table[name] for name in INPUT_NAMES], axis=1)


@pytest.mark.parametrize("rules", ["sh", "gt"])
def test_coco_and_openpose_derivations(coco, rules):
    points = coco[..., :2]
    want = _expected_model_joints(points, rules)
    np.testing.assert_allclose(derived_joints.to_model_joints(points, "coco", rules), want)
    body = detector_examples.coco_to_openpose(coco)[..., :2]
    np.testing.assert_allclose(derived_joints.to_model_joints(body, "openpose25", rules),
                               want, atol=1e-3)  # its Neck/MidHip are the rounded midpoints


def test_face_fallbacks_and_what_a_missing_joint_takes_with_it(coco):
    points = coco[..., :2].copy()
    points[0, COCO.index("nose")] = np.nan  # the eyes' midpoint stands in
    eyes = points[0, [COCO.index("left_eye"), COCO.index("right_eye")]].mean(axis=0)
    moved = points.copy()
    moved[0, COCO.index("nose")] = eyes
    np.testing.assert_allclose(derived_joints.to_model_joints(points, "coco")[0],
                               derived_joints.to_model_joints(moved, "coco")[0])
    points[1, COCO.index("left_hip")] = np.nan
    points[2, [COCO.index(n) for n in COCO[:5]]] = np.nan  # no face at all
    model = derived_joints.to_model_joints(points, "coco")
    gone = lambda frame: [INPUT_NAMES[j] for j in np.flatnonzero(np.isnan(model[frame]).any(-1))]  # noqa: E731
    assert gone(1) == ["Hip", "LHip", "Spine", "Thorax", "Head"] and gone(2) == ["Spine", "Thorax", "Head"]
    assert "root joint (Hip)" in derived_joints.missing_joint_problem(gone(1))
    assert "Spine, Thorax, Head missing" in derived_joints.missing_joint_problem(gone(2))


def test_h36m17_drops_neck_nose():
    points = np.random.default_rng(0).uniform(0, 1000, (3, 17, 2))
    np.testing.assert_array_equal(derived_joints.to_model_joints(points, "h36m17"),
                                  np.delete(points, skeleton.H36M17_NAMES.index("Neck/Nose"), 1))


def test_camera_normalisations(coco):
    rng = np.random.default_rng(1)
    mean_2d = rng.uniform(400, 600, (16, 2))
    pixels = derived_joints.to_model_joints(coco[..., :2], "coco")
    hip, thorax = INPUT_NAMES.index("Hip"), INPUT_NAMES.index("Thorax")
    reference = np.linalg.norm(mean_2d[thorax] - mean_2d[hip])
    scale, offset = camera_norm.similarity(pixels, mean_2d, "pose")
    mapped = camera_norm.apply(pixels, scale, offset)
    np.testing.assert_allclose(np.linalg.norm(mapped[:, thorax] - mapped[:, hip], axis=-1),
                               reference)
    np.testing.assert_allclose(mapped[:, hip], np.tile(mean_2d[hip], (len(coco), 1)))
    scale, offset = camera_norm.similarity(pixels, mean_2d, "video")
    torso = np.linalg.norm(pixels[:, thorax] - pixels[:, hip], axis=-1)
    np.testing.assert_allclose(scale, reference / np.median(torso))
    np.testing.assert_allclose(scale[0] * np.median(pixels[:, hip], axis=0) + offset[0],
                               mean_2d[hip])
    scale, offset = camera_norm.similarity(pixels, mean_2d, "focal", 1500.0, (960.0, 540.0))
    np.testing.assert_allclose(camera_norm.apply(pixels, scale, offset),
                               camera_norm.H36M_FOCAL_PX / 1500.0 * (pixels - [960.0, 540.0])
                               + camera_norm.H36M_CENTRE_PX)
    scale, offset = camera_norm.similarity(pixels, mean_2d, "none")
    np.testing.assert_array_equal(camera_norm.apply(pixels, scale, offset), pixels)


def test_pose_normalisation_undoes_any_resize_and_shift(coco):
    mean_2d = np.random.default_rng(2).uniform(400, 600, (16, 2))
    pixels = derived_joints.to_model_joints(coco[..., :2], "coco")
    for mode in ("pose", "video"):
        base = camera_norm.apply(pixels, *camera_norm.similarity(pixels, mean_2d, mode))
        for factor, shift in ((0.5, (-100.0, 40.0)), (3.0, (1200.0, 700.0))):
            moved = factor * pixels + np.array(shift)
            again = camera_norm.apply(moved, *camera_norm.similarity(moved, mean_2d, mode))
            np.testing.assert_allclose(again, base, rtol=1e-9, atol=1e-6)


BAD_JSON = [
    ("wrong count", [{"image_id": 0, "keypoints": [1.0] * 50}], "holds 50 numbers; coco needs 51"),
    ("strings", [{"image_id": 0, "keypoints": ["1"] * 51}], '"1" is not a number'),
    ("no id", [{"keypoints": [1.0] * 51}], 'without "image_id"'),
    ("unknown list", [{"pose": []}], "neither COCO results"),
    ("mmpose shape", [{"instances": [{"keypoints": [[1, 2]] * 16}]}], r"frame 0: keypoints of shape \(16, 2\)"),
    ("people not list", {"people": 3}, '"people" must be a list'),
    ("array shape", [[1.0, 2.0]] * 16, r"the coco order has 17 joints"),
    ("other order", {"joint_order": "h36m", "keypoints_2d": [[1.0, 2.0]] * 16},
     "its 'joint_order' is 'h36m', not 'coco'"),
]


@pytest.mark.parametrize("name, content, message", BAD_JSON, ids=[b[0] for b in BAD_JSON])
def test_bad_files_name_the_file_and_the_problem(tmp_path, name, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(UserError, match=message) as caught:
        detector_formats.read_detections(str(path), "coco")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_bad_folders(tmp_path):
    with pytest.raises(UserError, match="no .json files"):
        detector_formats.read_detections(str(tmp_path), "openpose25")
    with pytest.raises(UserError, match="read as OpenPose JSON"):
        detector_formats.read_detections(str(tmp_path), "coco")
    (tmp_path / "f_1.json").write_text(json.dumps({"people": []}))
    (tmp_path / "f_2.json").write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match=r"f_2.json: not an OpenPose frame"):
        detector_formats.read_detections(str(tmp_path), "openpose25")
    with pytest.raises(UserError, match="input not found"):
        detector_formats.read_detections(str(tmp_path / "none.json"), "coco")


def test_null_values_are_missing_without_a_warning(tmp_path, recwarn):
    (tmp_path / "f.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [None] * 75}]}))
    read = detector_formats.read_detections(str(tmp_path / "f.json"), "openpose25")
    assert np.isnan(derived_joints.apply_min_confidence(read, 0.0)).all()
    assert not recwarn.list
