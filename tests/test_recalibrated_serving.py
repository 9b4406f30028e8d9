"""The recalibration and the per-joint radius where a user meets them: Lifter (against
numpy draws and quantiles), `python -m mdm.infer` outputs, the SavedModel, and
`python -m mdm.calibrate` end to end on the synthetic set."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from numpy.testing import assert_allclose

from mdm import calibrate, infer
from mdm.checkpoint import recalibration
from mdm.core.errors import UserError
from mdm.serve import export
from mdm.serve.lifter import Lifter
from lifter_helpers import save_random_lifter
from numpy_radius import numpy_radius as numpy_radius_of

STEP = 3
FACTORS = np.linspace(0.5, 2.0, 16)
SHRINK = np.linspace(0.2, 1.2, 16)
TEMPERATURE = 2.0


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A tiny K = 3 checkpoint with a recalibration.json fitted for its step."""
    directory = save_random_lifter(str(tmp_path_factory.mktemp("recalibrated")), seed=11,
                                   step=STEP)
    recalibration.write_record(directory, recalibration.make_record(
        STEP, FACTORS, False, SHRINK, TEMPERATURE, objective="nll",
        calibration_subjects=[7]))
    return directory


@pytest.fixture(scope="module")
def lifters(checkpoint_dir):
    return Lifter.load(checkpoint_dir), Lifter.load(checkpoint_dir, recalibrate=False)


def _pixels(lifter, count=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(lifter.stats.mean_2d + rng.normal(0, 1, (count, 16, 2)) * lifter.stats.std_2d)


def numpy_radius(lifter, pixels, coverage, seed, recalibrated, kernel=None):
    """The radius of the network's mixture for `pixels`, recalibrated by hand with
    FACTORS, SHRINK and TEMPERATURE when `recalibrated` (tests/numpy_radius.py)."""
    z = ((pixels - lifter.stats.mean_2d) / lifter.stats.std_2d).reshape(len(pixels), 32)
    outputs = [t.numpy() for t in lifter.model(z.astype(np.float32), training=False)]
    return numpy_radius_of(outputs, lifter.stats.std_3d[1:].reshape(16, 3), coverage, seed,
                           (FACTORS, SHRINK, TEMPERATURE) if recalibrated else None, kernel)


def test_recalibrated_spread_and_radius_equal_numpy(lifters):
    recalibrated, raw = lifters
    assert recalibrated.recalibration is not None and raw.recalibration is None
    pixels = _pixels(raw)
    after, before = recalibrated.predict(pixels, seed=2), raw.predict(pixels, seed=2)
    assert_allclose(after.poses, before.poses)
    assert_allclose(after.scales_mm[:, :, 1:], before.scales_mm[:, :, 1:]
                    * FACTORS[None, None, :, None], rtol=1e-6)
    assert after.coverage == 0.9 and np.all(after.radius_mm[:, 0] == 0)
    assert_allclose(after.radius_mm[:, 1:], numpy_radius(raw, pixels, 0.9, 2, True),
                    rtol=1e-3, atol=1e-3)
    assert_allclose(before.radius_mm[:, 1:], numpy_radius(raw, pixels, 0.9, 2, False),
                    rtol=1e-3, atol=1e-3)
    wider = recalibrated.predict(pixels, seed=2, coverage=0.99).radius_mm
    assert np.all(wider[:, 1:] > after.radius_mm[:, 1:])
    without = recalibrated.predict(pixels, seed=2, coverage=None)  # no draws for a radius
    assert without.radius_mm is None and "radius_mm" not in without.as_arrays()
    assert_allclose(without.poses, after.poses)
    assert_allclose(without.weights, after.weights)
    with pytest.raises(UserError, match="coverage must be a probability"):
        raw.predict_sequence(pixels, coverage=None)  # a path's radius is its output
    with pytest.raises(UserError, match="coverage must be a probability"):
        raw.predict(pixels, coverage=1.0)


def test_sequence_and_views_take_the_radius_around_their_choice(lifters):
    lifter = lifters[0]
    pixels = _pixels(lifter, 6, seed=3)
    path = lifter.predict_sequence(pixels, smoothness=0.5, seed=1)
    hypotheses = lifter.predict(pixels, seed=1)
    assert path.radius_mm.shape == (6, 17)
    raw = lifters[1]
    assert_allclose(path.radius_mm[:, 1:], numpy_radius(raw, pixels, 0.9, 1, True,
                                                        path.kernel), rtol=1e-3, atol=1e-3)
    same = path.kernel == hypotheses.kernel_index[:, 0]
    assert_allclose(path.radius_mm[same], hypotheses.radius_mm[same])
    views = lifter.predict_multiview(np.stack([pixels, pixels[::-1]]), [np.eye(3)] * 2)
    assert views.radius_mm.shape == (2, 6, 17)
    assert_allclose(views.radius_mm[0, :, 1:], numpy_radius(raw, pixels, 0.9, 0, True,
                                                            views.kernel[0]),
                    rtol=1e-3, atol=1e-3)


def test_a_recalibration_of_another_step_is_not_applied(checkpoint_dir, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(checkpoint_dir, copy)
    record = recalibration.read_record(copy)
    recalibration.write_record(copy, dict(record, checkpoint=STEP + 1), replace=True)
    assert Lifter.load(copy).recalibration is None


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_infer_output_carries_the_radius(capsys, checkpoint_dir, lifters, tmp_path, suffix):
    pixels = _pixels(lifters[0], 4, seed=5)
    source = str(tmp_path / "poses.npy")
    np.save(source, pixels)
    output = str(tmp_path / f"out{suffix}")
    assert infer.main(["--load_dir", checkpoint_dir, "--input", source, "--output", output,
                       "--coverage", "0.8", "--seed", "3", "--select", "temporal"]) == 0
    assert "recalibrated spread" in capsys.readouterr().out
    want = lifters[0].predict(pixels, seed=3, coverage=0.8)
    path = lifters[0].predict_sequence(pixels, coverage=0.8, seed=3)
    if suffix == ".json":
        document = json.load(open(output))
        assert document["coverage"] == 0.8 and document["recalibration"]["checkpoint"] == STEP
        assert_allclose([pose["radius_mm"] for pose in document["poses"]], want.radius_mm,
                        rtol=1e-6)
        assert_allclose([pose["temporal_path"]["radius_mm"] for pose in document["poses"]],
                        path.radius_mm, rtol=1e-6)
    else:
        with np.load(output) as written:
            assert_allclose(written["radius_mm"], want.radius_mm)
            assert_allclose(written["path_radius_mm"], path.radius_mm)
            assert json.loads(str(written["metadata"]))["coverage"] == 0.8


def test_infer_recalibrate_false_and_bad_coverage(capsys, checkpoint_dir, lifters, tmp_path):
    pixels = _pixels(lifters[1], 2)
    source = str(tmp_path / "poses.npy")
    np.save(source, pixels)
    output = str(tmp_path / "raw.npz")
    assert infer.main(["--load_dir", checkpoint_dir, "--input", source, "--output", output,
                       "--recalibrate", "False"]) == 0
    with np.load(output) as written:
        assert_allclose(written["radius_mm"], lifters[1].predict(pixels).radius_mm)
        assert json.loads(str(written["metadata"]))["recalibration"] is None
    capsys.readouterr()
    assert infer.main(["--load_dir", checkpoint_dir, "--input", source, "--output", output,
                       "--coverage", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: --coverage must be a probability")


def test_saved_model_gives_the_recalibrated_spread_and_radius(lifters, tmp_path):
    lifter = lifters[0]
    saved = export.export_saved_model(lifter, str(tmp_path / "served"), coverage=0.95, seed=4)
    pixels = _pixels(lifter, 3)
    lift = tf.saved_model.load(saved).signatures[export.SIGNATURE]
    outputs = {k: v.numpy() for k, v in lift(keypoints_2d=tf.constant(pixels, tf.float32)).items()}
    want = lifter.predict(pixels, seed=4, coverage=0.95)
    assert_allclose(outputs["scales_mm"], want.scales_mm, rtol=1e-5, atol=1e-4)
    assert_allclose(outputs["radius_mm"], want.radius_mm, rtol=1e-4, atol=1e-3)
    with open(os.path.join(saved, export.EXPORT_CONFIG)) as handle:
        config = json.load(handle)
    assert config["coverage"] == 0.95 and config["radius_seed"] == 4
    assert config["recalibration"]["joint_factors"]["RWrist"] == pytest.approx(FACTORS[-1])
    assert config["recalibration"]["joint_shrink"]["RWrist"] == pytest.approx(SHRINK[-1])
    assert config["recalibration"]["temperature"] == TEMPERATURE


@pytest.mark.parametrize("args, message", [
    (["--calibration_subjects", "9", "--test_subjects", "9"], "both calibration and test"),
    (["--calibration_subjects", "x"], "takes subject numbers"),
    (["--calibration_subjects", ","], "names no subject"),
    ([], "either --calibration_subjects or --folds"),
    (["--calibration_subjects", "9", "--folds", "a:9"], "either --calibration_subjects"),
    (["--folds", "a"], "takes DIR:SUBJECTS"),
    (["--folds", "a:"], "takes DIR:SUBJECTS"),
    (["--folds", "a:x"], "takes subject numbers"),
    (["--folds", "a:9", "./a:9,1"], "same directory twice"),
    (["--folds", "a:9", "b:8", "--test_subjects", "8"], "both calibration and test"),
    (["--calibration_subjects", "9"], "recalibration.json exists .*--replace True"),
    (["--calibration_subjects", "9", "--leave_one_out", "True"], "two or more folds"),
    (["--folds", "a:9", "--leave_one_out", "True"], "two or more folds"),
])
def test_calibrate_refuses_bad_flags_before_any_work(capsys, checkpoint_dir, args, message):
    assert calibrate.main(["--load_dir", checkpoint_dir, "--data_dir", "nowhere", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert pytest.importorskip("re").search(message, err[0]), err[0]


@pytest.mark.slow
def test_calibrate_end_to_end_on_synthetic_data(capsys, monkeypatch, synthetic_h36m,
                                                tiny_trained_dir, tmp_path):
    """Fit on synthetic subject 9, measure on 11: the file names the step, subjects and
    objective; the report has raw and recalibrated figures; loaders apply it."""
    from mdm.evaluate import recalibration_run

    monkeypatch.setattr(recalibration_run, "CALIBRATION_FIT_FRAMES", 128)  # time only
    copy = str(tmp_path / "model")
    shutil.copytree(tiny_trained_dir, copy)
    data_dir = synthetic_h36m(8, 2)
    assert calibrate.main(["--load_dir", copy, "--data_dir", data_dir,
                           "--calibration_subjects", "9", "--test_subjects", "11",
                           "--objective", "nll"]) == 0
    record = recalibration.read_record(copy)
    step = Lifter.load(copy, recalibrate=False).config.load
    assert record["checkpoint"] == step and record["calibration_subjects"] == [9]
    assert record["objective"] == "nll" and "--objective nll" in record["command"]
    with open(os.path.join(copy, f"recalibration_report_{step}_joint.json")) as handle:
        report = json.load(handle)
    assert set(report["test"]) == {"raw", "nll", "calibration"}
    for figures in report["test"].values():
        assert set(figures["radius"]["observed"]) == {"0.5", "0.9", "0.95"}
    assert os.path.isfile(os.path.join(copy, f"reliability_{step}_raw.png"))
    assert_allclose(Lifter.load(copy).recalibration.joint_factors,
                    list(record["joint_factors"].values()))
    capsys.readouterr()
    assert calibrate.main(["--load_dir", copy, "--data_dir", data_dir,
                           "--calibration_subjects", "9"]) == 1
    assert "exists" in capsys.readouterr().err


def numpy_nll(means_mm, sigmas_mm, weights, targets_mm, record):
    """Mean NLL (nats per pose, mm) of the recalibrated mixture `record`, from its formula."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    width = np.array(list(record["joint_factors"].values()))[:, None]
    shrink = np.array(list(record["joint_shrink"].values()))[:, None]
    centre = means_mm[np.arange(len(means_mm)), np.argmax(weights, axis=1)][:, None]
    log_weights = record["temperature"] * np.log(np.clip(weights, 1e-8, 1.0))
    log_weights -= logsumexp(log_weights, axis=1, keepdims=True)
    log_kernels = norm.logpdf(targets_mm[:, None], centre + shrink * (means_mm - centre),
                              width * sigmas_mm).sum(axis=(2, 3))
    return -logsumexp(log_weights + log_kernels, axis=1).mean()


@pytest.mark.slow
def test_calibrate_pools_the_folds_of_a_k_fold(capsys, monkeypatch, synthetic_h36m,
                                               tiny_trained_dir, tmp_path):
    """Two fold directories (copies of one model), each predicting its own held-out
    subject: the written NLL fit is the fit to that model's predictions on both subjects
    at once, and the record names every fold. Leaving one fold out fits on the other and
    measures this one: against the fit on the other subject alone and the NLL from the
    formula."""
    from mdm.core.config import Config
    from mdm.evaluate import recalibration_fit, recalibration_run

    monkeypatch.setattr(recalibration_run, "CALIBRATION_FIT_FRAMES", 128)  # time only:
    monkeypatch.setattr(recalibration_fit, "TEMPERATURES", (1.0,))  # three fits of the
    monkeypatch.setattr(recalibration_fit, "COARSE_WIDTHS", np.array([0.5, 1.0, 2.0]))  # grid
    monkeypatch.setattr(recalibration_fit, "COARSE_SHRINKS", np.array([0.5, 1.0]))
    monkeypatch.setattr(recalibration_run, "LEAVE_ONE_OUT_FRAMES", 50)  # every k-th frame
    data_dir = synthetic_h36m(8, 2)
    copies = {name: str(tmp_path / name) for name in ("target", "no9", "no11")}
    for copy in copies.values():
        shutil.copytree(tiny_trained_dir, copy)
    assert calibrate.main(["--load_dir", copies["target"], "--data_dir", data_dir,
                           "--objective", "nll", "--leave_one_out", "True", "--folds",
                           f"{copies['no9']}:9", f"{copies['no11']}:11"]) == 0
    record = recalibration.read_record(copies["target"])
    assert record["calibration_subjects"] == [9, 11]
    assert [fold["subjects"] for fold in record["folds"]] == [[9], [11]]
    assert [fold["load_dir"] for fold in record["folds"]] == [copies["no9"], copies["no11"]]
    assert sum(fold["frames"] for fold in record["folds"]) == record["frames"]
    with open(os.path.join(copies["target"],
                           f"recalibration_report_{record['checkpoint']}_joint.json")) as handle:
        spreads = json.load(handle)["kernel_spread"]  # copies of one run: the same kernels
    assert [spread["subjects"] for spread in spreads] == [[9], [11]]
    for spread in spreads:
        assert_allclose(spread["checkpoint_mm"], spread["fold_mm"], rtol=1e-6)
        assert not spread["mismatch"]
    assert "WARNING" not in capsys.readouterr().out

    config = recalibration_run.load_checkpoint(Config(data_dir=data_dir,
                                                      load_dir=tiny_trained_dir))[0]
    predicted = {subjects: recalibration_run.held_out_kernels(
        config, recalibration_run.Fold(tiny_trained_dir, subjects), calibrate.FRAME_STRIDE,
        str(tmp_path / "cache"))[:4] for subjects in ((9, 11), (9,), (11,))}
    *kernels, targets = predicted[9, 11]
    assert len(targets) == record["frames"]
    together = recalibration_fit.fit_nll(*kernels, targets)
    assert_allclose(list(record["joint_factors"].values()), together.joint_factors, rtol=1e-5)
    assert_allclose(list(record["joint_shrink"].values()), together.joint_shrink, rtol=1e-5)
    assert record["temperature"] == pytest.approx(together.temperature, rel=1e-5)

    with open(os.path.join(copies["target"],
                           f"recalibration_report_{record['checkpoint']}_joint.json")) as handle:
        left_out = json.load(handle)["leave_one_out"]
    assert [entry["subjects"] for entry in left_out] == [[9], [11]]
    for entry, held, other in zip(left_out, ((9,), (11,)), ((11,), (9,))):
        alone = recalibration_fit.fit_nll(*predicted[other])
        fitted = entry["fitted"]["nll"]
        assert_allclose(list(fitted["joint_factors"].values()), alone.joint_factors, rtol=1e-5)
        assert fitted["temperature"] == pytest.approx(alone.temperature, rel=1e-5)
        every = -(-len(predicted[held][3]) // 50)
        assert every > 1  # the cap is exercised
        rows = [array[::every] for array in predicted[held]]
        assert entry["frames"] == len(rows[3])
        identity = dict(fitted, joint_factors={name: 1.0 for name in fitted["joint_factors"]},
                        joint_shrink={name: 1.0 for name in fitted["joint_shrink"]},
                        temperature=1.0)
        for variant, used in (("nll", fitted), ("calibration", entry["fitted"]["calibration"]),
                              ("raw", identity)):
            assert entry[variant]["nll_nats_per_pose"] == pytest.approx(
                numpy_nll(*rows, used), rel=1e-5), variant
            assert 0.0 <= entry[variant]["radius"]["observed"]["0.9"]["overall"] <= 1.0


def test_calibrate_ends_with_a_warning_when_a_fold_spreads_differently(
        capsys, monkeypatch, checkpoint_dir, tmp_path):
    """The per-fold comparison scrolls past during a long run: the last lines name the
    fold models whose kernels differ from the checkpoint's."""
    import shutil

    from mdm.evaluate import recalibration_run

    copy = str(tmp_path / "model")
    shutil.copytree(checkpoint_dir, copy)
    os.remove(recalibration.record_path(copy))
    fitted = recalibration.read_record(checkpoint_dir)
    spreads = [{"load_dir": "/runs/no9", "mismatch": True},
               {"load_dir": "/runs/no11", "mismatch": False}]
    monkeypatch.setattr(recalibration_run, "fit_and_measure", lambda *args: {
        "kernel_spread": spreads, "fitted": {"calibration": fitted}})
    assert calibrate.main(["--load_dir", copy, "--data_dir", str(tmp_path),
                           "--folds", "/runs/no9:9", "/runs/no11:11"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "WARNING" in last and "/runs/no9 " in last and "/runs/no11" not in last
    spreads[0]["mismatch"] = False
    os.remove(recalibration.record_path(copy))
    assert calibrate.main(["--load_dir", copy, "--data_dir", str(tmp_path),
                           "--folds", "/runs/no9:9", "/runs/no11:11"]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_folds_must_predict_the_joints_of_the_recalibrated_checkpoint(monkeypatch, tmp_path):
    """A fold checkpoint predicting 14 joints cannot serve a 16-joint model: one line."""
    from mdm.core.config import Config
    from mdm.evaluate import recalibration_run

    target = Config(load_dir=str(tmp_path / "all"), load=5, predict_14=False)
    monkeypatch.setattr(recalibration_run, "load_checkpoint", lambda config: (
        dataclasses.replace(config, load=7, predict_14=True), None, None))
    with pytest.raises(UserError, match="predicts 14 joints.*same joints"):
        recalibration_run.held_out_kernels(
            target, recalibration_run.Fold(str(tmp_path / "no9"), (9,)), 4, str(tmp_path))
