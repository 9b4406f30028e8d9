"""`python -m mdm.infer`: file formats and joint orders in, hypotheses and samples out,
figures, and one clear error line for every bad input a user can give."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from mdm import infer
from mdm.core import skeleton
from mdm.core.errors import UserError
from mdm.serve import keypoint_files
from mdm.serve.keypoint_files import INPUT_NAMES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "examples", "pose_2d.json")


def run(capsys, *args):
    status = infer.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _poses(lifter, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return lifter.stats.mean_2d + rng.normal(0.0, 1.0, (count, 16, 2)) * lifter.stats.std_2d


def test_example_json_to_json_matches_the_api(capsys, lifter_dir, lifter, tmp_path):
    output = str(tmp_path / "out.json")
    status, out, _ = run(capsys, "--load_dir", lifter_dir, "--input", EXAMPLE, "--output", output)
    assert status == 0 and "1 pose(s) x 5 hypotheses" in out
    document = json.load(open(output))
    want = lifter.predict(keypoint_files.read_keypoints(EXAMPLE)[0])
    hypotheses = document["poses"][0]["hypotheses"]
    np.testing.assert_allclose([h["joints_3d"] for h in hypotheses], want.poses[0], rtol=1e-12)
    np.testing.assert_allclose([h["weight"] for h in hypotheses], want.weights[0], rtol=1e-7)
    np.testing.assert_allclose([h["scale"] for h in hypotheses], want.scales[0], rtol=1e-7)
    assert [h["kernel"] for h in hypotheses] == want.kernel_index[0].tolist()
    assert [h["rank"] for h in hypotheses] == [1, 2, 3, 4, 5]
    assert document["joint_names"] == list(skeleton.H36M17_NAMES)
    assert document["units"] == "mm" and document["frame"] == "camera"


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_select_temporal_writes_the_path_of_the_api(capsys, lifter_dir, lifter, tmp_path,
                                                      suffix):
    poses = _poses(lifter, count=6, seed=3)
    source = str(tmp_path / "video.npy")
    np.save(source, poses)
    output = str(tmp_path / f"out{suffix}")
    status, _, _ = run(capsys, "--load_dir", lifter_dir, "--input", source, "--output", output,
                       "--select", "temporal", "--smoothness", "0.05")
    assert status == 0
    want = lifter.predict_sequence(poses, smoothness=0.05)
    if suffix == ".npz":
        written = np.load(output)
        np.testing.assert_allclose(written["path_pose_3d"], want.poses, rtol=1e-12)
        np.testing.assert_array_equal(written["path_kernel"], want.kernel)
        np.testing.assert_allclose(written["path_probability"], want.probability, rtol=1e-7)
    else:
        document = json.load(open(output))
        assert document["select"] == "temporal" and document["smoothness"] == 0.05
        paths = [pose["temporal_path"] for pose in document["poses"]]
        np.testing.assert_allclose([p["joints_3d"] for p in paths], want.poses, rtol=1e-12)
        assert [p["kernel"] for p in paths] == want.kernel.tolist()


def _write_csv(path, poses, header=None):
    rows = [",".join("" if np.isnan(v) else repr(float(v)) for v in pose.reshape(32))
            for pose in poses]
    with open(path, "w") as handle:
        handle.write("\n".join(([header] if header else []) + rows) + "\n")


def test_formats_and_joint_orders_agree(capsys, lifter_dir, lifter, tmp_path):
    poses = _poses(lifter)
    mpii = poses[:, [INPUT_NAMES.index(name) for name in skeleton.SH_NAMES]]
    np.save(tmp_path / "h36m.npy", poses)
    _write_csv(tmp_path / "h36m.csv", poses, header=",".join(
        f"{name}_{axis}" for name in INPUT_NAMES for axis in "xy"))
    _write_csv(tmp_path / "mpii.csv", mpii)
    keypoint_files.write_keypoints_json(str(tmp_path / "mpii.json"), mpii, "mpii")
    want = lifter.predict(poses)
    cases = (("h36m.npy", []), ("h36m.csv", []), ("mpii.csv", ["--joint_order", "mpii"]),
             ("mpii.json", []))
    for name, extra in cases:
        output = str(tmp_path / f"{name}.npz")
        status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", str(tmp_path / name),
                             "--output", output, *extra)
        assert status == 0, err
        with np.load(output) as saved:
            np.testing.assert_allclose(saved["poses_3d"], want.poses, rtol=1e-12, err_msg=name)
            np.testing.assert_array_equal(saved["weights"], want.weights)
            np.testing.assert_array_equal(saved["kernel_index"], want.kernel_index)


def test_single_pose_rows_csv(capsys, lifter_dir, lifter, tmp_path):
    pose = _poses(lifter, 1)[0]
    np.savetxt(tmp_path / "one.csv", pose, delimiter=",")
    status, _, _ = run(capsys, "--load_dir", lifter_dir, "--input", str(tmp_path / "one.csv"),
                       "--output", str(tmp_path / "one.npz"))
    assert status == 0
    np.testing.assert_allclose(np.load(tmp_path / "one.npz")["poses_3d"],
                               lifter.predict(pose).poses, rtol=1e-12)


def test_single_pose_rows_csv_with_an_empty_field_for_a_missing_joint(capsys, lifter_dir,
                                                                     lifter, tmp_path):
    """The 16-row format marks a missing joint with an empty `,` row: it stays row 13 of
    16 (read as NaN) instead of vanishing and leaving 15 joints."""
    pose = _poses(lifter, 1)[0]
    wrist = INPUT_NAMES.index("LWrist")
    lines = ["," if joint == wrist else f"{x:.17g},{y:.17g}" for joint, (x, y) in enumerate(pose)]
    (tmp_path / "one.csv").write_text("\n".join(lines) + "\n")
    array, _ = keypoint_files.read_keypoints(str(tmp_path / "one.csv"))
    assert array.shape == (16, 2)
    assert np.isnan(array[wrist]).all() and not np.isnan(np.delete(array, wrist, 0)).any()
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", str(tmp_path / "one.csv"),
                         "--output", str(tmp_path / "one.npz"))
    assert status == 0, err
    missing = pose.copy()
    missing[wrist] = np.nan
    with pytest.warns(UserWarning):
        want = lifter.predict(missing)
    with np.load(tmp_path / "one.npz") as saved:
        np.testing.assert_allclose(saved["poses_3d"], want.poses, rtol=1e-12)
        np.testing.assert_array_equal(saved["missing"][0], np.arange(16) == wrist)


def test_samples_are_seeded_and_match_the_api(capsys, lifter_dir, lifter, tmp_path):
    poses = _poses(lifter, 2)
    np.save(tmp_path / "in.npy", poses)
    outputs = []
    for run_index, seed in enumerate((1, 1, 2)):
        output = str(tmp_path / f"s{run_index}.npz")
        status, _, _ = run(capsys, "--load_dir", lifter_dir, "--input", str(tmp_path / "in.npy"),
                           "--output", output, "--num_samples", "6", "--seed", str(seed))
        assert status == 0
        outputs.append(np.load(output)["samples"])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.allclose(outputs[0], outputs[2])
    np.testing.assert_allclose(outputs[0], lifter.predict(poses, num_samples=6, seed=1).samples,
                               rtol=1e-12)


def test_missing_joint_warns_and_plots(capsys, lifter_dir, lifter, tmp_path):
    poses = _poses(lifter, 2)
    poses[1, INPUT_NAMES.index("RWrist")] = np.nan
    _write_csv(tmp_path / "in.csv", poses)
    output, plots = str(tmp_path / "out.json"), tmp_path / "plots"
    status, out, err = run(capsys, "--load_dir", lifter_dir, "--input", str(tmp_path / "in.csv"),
                           "--output", output, "--plot", str(plots))
    assert status == 0
    assert err.startswith("warning: 1 pose(s) have missing joints")
    document = json.load(open(output))
    assert document["poses"][1]["missing_joints"] == ["RWrist"]
    assert document["poses"][0]["missing_joints"] == []
    clean = poses.copy()
    clean[1, INPUT_NAMES.index("RWrist")] = lifter.stats.mean_2d[INPUT_NAMES.index("RWrist")]
    want = lifter.predict(clean)  # the mean pixel normalises to 0, as a missing joint does
    np.testing.assert_allclose(document["poses"][1]["hypotheses"][0]["joints_3d"],
                               want.poses[1, 0], rtol=1e-6, atol=1e-4)
    assert sorted(os.listdir(plots)) == ["pose_00000.png", "pose_00001.png"]
    assert "2 figure(s)" in out


def _json(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _limbs_missing(names):
    pose = keypoint_files.synthetic_example().tolist()
    for name in names:
        pose[INPUT_NAMES.index(name)] = [None, None]
    return pose


BAD_INPUTS = [
    ("shape.npy", np.zeros((16, 3)), r"shape \(16, 3\)"),
    ("joints.json", np.zeros((17, 2)).tolist(), "17 joints per pose"),
    ("text.csv", "1,2,abc\n", "line 1, column 3: 'abc' is not a number"),
    ("empty.json", "", "the file is empty"),
    ("bad.json", "[[1, 2],", "not valid JSON"),
    ("strings.json", [["1", "2"]] * 16, '"1" is not a number'),
    ("limbs.json", _limbs_missing(["LKnee", "LWrist", "RFoot"]), "3 limb joints missing"),
    ("root.json", _limbs_missing(["Hip"]), r"root joint \(Hip\) is missing"),
    ("object.json", {"poses": []}, '"keypoints_2d" field'),
    ("names.json", {"keypoints_2d": [[0, 0]] * 16, "joint_order": "h36m",
                    "joint_names": list(skeleton.SH_NAMES)}, '"joint_names" do not match'),
    ("ragged.csv", "1,2\n3\n", "rows have different numbers of columns"),
    ("poses.txt", "1 2", "unknown input format .txt"),
]


@pytest.mark.parametrize("name, content, message", BAD_INPUTS)
def test_bad_input_gives_one_error_line(capsys, lifter_dir, tmp_path, name, content, message):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, content)
    else:
        _json(path, content)
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input", str(path),
                         "--output", str(tmp_path / "out.json"))
    assert status == 1
    assert_one_error_line(err, message)


def assert_one_error_line(err, message):
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]


@pytest.mark.parametrize("args, message", [
    ([], "nothing to do"),
    (["--input", EXAMPLE], "needs --output"),
    (["--input", EXAMPLE, "--output", "out.csv"], "unknown output format .csv"),
    (["--input", EXAMPLE, "--output", EXAMPLE + "/out.json"], "is a file, not a directory"),
    (["--input", EXAMPLE, "--output", "o.json", "--joint_order", "mpii"], "contradicts"),
    (["--input", EXAMPLE, "--output", "o.json", "--num_samples", "-2"], "--num_samples"),
    (["--num_samples", "3"], "nothing to do"),
    (["--input", EXAMPLE, "--output", "o.json", "--smoothness", "0.1"], "goes with --select"),
    (["--input", EXAMPLE, "--output", "o.json", "--select", "temporal", "--smoothness", "nan"],
     "--smoothness must be"),
])
def test_bad_arguments_give_one_error_line(capsys, lifter_dir, args, message):
    status, _, err = run(capsys, "--load_dir", lifter_dir, *args)
    assert status == 1
    assert_one_error_line(err, message)


def test_pickled_npy_is_refused(capsys, lifter_dir, tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    status, _, err = run(capsys, "--load_dir", lifter_dir, "--input",
                         str(tmp_path / "objects.npy"), "--output", str(tmp_path / "o.npz"))
    assert status == 1
    assert_one_error_line(err, "not a numeric .npy array")


def test_missing_checkpoint_gives_one_error_line(capsys, tmp_path):
    status, _, err = run(capsys, "--load_dir", str(tmp_path / "none"), "--input", EXAMPLE,
                         "--output", str(tmp_path / "o.json"))
    assert status == 1
    assert_one_error_line(err, "no checkpoint in")


def test_module_entry_point_exits_non_zero_without_traceback(lifter_dir, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "mdm.infer", "--load_dir", lifter_dir, "--input",
         str(tmp_path / "empty.csv"), "--output", str(tmp_path / "o.json")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    expected = f"error: {tmp_path / 'empty.csv'}: the file is empty"
    assert result.stderr.strip().splitlines() == [expected]


def test_example_file_is_small_and_regenerates(tmp_path):
    # Byte equality is not asserted: mdm.synthetic's motion model may still change.
    regenerated = keypoint_files.write_example_pose(str(tmp_path / "pose.json"))
    for path in (EXAMPLE, regenerated):
        assert os.path.getsize(path) < 10_000
        keypoints, order = keypoint_files.read_keypoints(path)
        assert order == "h36m" and keypoints.shape == (16, 2)
        assert np.all((keypoints > 0) & (keypoints < 1000))  # inside the synthetic image
        height = keypoints[:, 1].max() - keypoints[:, 1].min()
        assert 100 < height < 1000  # a whole person a few metres from the camera


def test_output_directory_is_made_and_a_file_in_the_way_refused(tmp_path):
    nested = tmp_path / "new" / "dir" / "out.json"
    keypoint_files.check_output_path(str(nested))
    assert nested.parent.is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    with pytest.raises(UserError, match="is a file, not a directory"):
        keypoint_files.check_output_path(str(blocker / "out.json"))
    assert blocker.read_text() == "mine"
