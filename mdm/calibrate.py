"""Command line: fit the mixture's recalibration (per joint a width and a shrink of the
kernel means toward the most probable one, and a temperature on the weights) on held-out
subjects, and measure it on test subjects.

    python -m mdm.calibrate --load_dir D --data_dir /tmp/h36m --calibration_subjects 7 \
        --test_subjects 8 --objective calibration
    python -m mdm.calibrate --load_dir ALL --data_dir /tmp/h36m --test_subjects 8 \
        --folds NO1:1 NO5:5 NO6:6 NO7:7

The calibration subjects must be subjects the checkpoint did not train on: whole
subjects, not frames of trained sequences (at 50 Hz a held-out frame is nearly a
trained one, so a frame hold-out would look better calibrated than new people are).
With --folds (a k-fold over subjects), each DIR:SUBJECTS names a checkpoint directory
trained without SUBJECTS; their predictions on them are pooled and the fit is written
for --load_dir's checkpoint, trained on all of them; --leave_one_out True also fits on
all folds but one and measures on that one, for each fold: what a fit on other people
gives a new person.
Both objectives are fitted (mdm/evaluate/recalibration_fit.py); the one named by
--objective is written to <load_dir>/recalibration.json (mdm/checkpoint/recalibration.py),
which Lifter, `python -m mdm.infer`, the SavedModel export and `--test --uncertainty` then
apply to that checkpoint. With --test_subjects, the raw and both recalibrated mixtures are
measured there (mdm/evaluate/distribution_report.py: NLL, calibration error, coverage of
the per-joint radii) into <report_dir>/recalibration_report_<step>_<granularity>.json, with a
reliability diagram for each.

Mistakes in the flags end with one line `error: ...` and exit status 1.
"""

import argparse
import os
import shlex
import sys
import time

from mdm.cli import exit_on_user_error, import_tensorflow_quietly
from mdm.core.errors import UserError

OBJECTIVES = ("calibration", "nll")  # mdm.evaluate.recalibration_fit.OBJECTIVES
GRANULARITIES = ("joint", "group")
# Every 4th frame, as --test --uncertainty measures (at 50 Hz neighbours nearly repeat).
FRAME_STRIDE = 4


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m mdm.calibrate",
        description="Fit the recalibration of the predicted spread on held-out subjects "
                    "and write recalibration.json next to the checkpoint.")
    parser.add_argument("--load_dir", required=True, help="directory of the checkpoints")
    parser.add_argument("--load", type=int, default=0, help="checkpoint step (0 = latest)")
    parser.add_argument("--data_dir", required=True, help="Human3.6M data directory")
    parser.add_argument("--calibration_subjects", default="",
                        help="subjects to fit on, e.g. 7: subjects the checkpoint did NOT "
                             "train on (or --folds)")
    parser.add_argument("--folds", nargs="+", default=[], metavar="DIR:SUBJECTS",
                        help="k-fold over subjects instead of --calibration_subjects: "
                             "checkpoint directories, each with the subjects it did NOT "
                             "train on (e.g. exp/no7:7 exp/no6:6); their latest checkpoints "
                             "predict those subjects, pooled")
    parser.add_argument("--leave_one_out", type=_boolean, default=False,
                        metavar="{True,False}",
                        help="with two or more --folds: also fit on all folds but one and "
                             "measure on that one, for each (how the fit holds for a new "
                             "person; into the report)")
    parser.add_argument("--test_subjects", default="",
                        help="subjects to measure before/after on, e.g. 8 (optional)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="calibration",
                        help="what the written recalibration minimises (both are fitted and "
                             "measured)")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="joint",
                        help="a width and shrink per joint, or per joint group (torso, arms, "
                             "legs)")
    parser.add_argument("--use_sh", type=_boolean, default=True, metavar="{True,False}",
                        help="2D input: stacked-hourglass detections (the model's training "
                             "input) or ground-truth projections")
    parser.add_argument("--sh_dir", default="", help="detection folder under S<n>/")
    parser.add_argument("--cache_dir", default="",
                        help="prepared data cache (default: <report_dir>/cache)")
    parser.add_argument("--report_dir", default="",
                        help="where the report and reliability diagrams go (default: "
                             "--load_dir)")
    parser.add_argument("--fit_stride", type=int, default=FRAME_STRIDE,
                        help="fit on every n-th frame of the calibration subjects")
    parser.add_argument("--test_stride", type=int, default=FRAME_STRIDE,
                        help="measure on every n-th frame of the test subjects (default: "
                             "as --test --uncertainty)")
    parser.add_argument("--replace", type=_boolean, default=False, metavar="{True,False}",
                        help="overwrite an existing recalibration.json")
    return parser


def _boolean(text):
    words = {"true": True, "1": True, "false": False, "0": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")
    return words[text.lower()]


def _subjects(text, flag):
    try:
        subjects = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--{flag} takes subject numbers, e.g. 7 or 7,8 (got {text!r})") \
            from None
    return subjects


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return exit_on_user_error(lambda: run(args, argv))


def run(args, argv=None):
    folds = _folds(args)
    test = _subjects(args.test_subjects, "test_subjects")
    if min(args.fit_stride, args.test_stride) < 1:
        raise UserError("--fit_stride and --test_stride must be at least 1")
    if args.leave_one_out and len(folds) < 2:
        raise UserError("--leave_one_out needs --folds with two or more folds")
    calibration = sorted({subject for _, subjects in folds for subject in subjects})
    if set(calibration) & set(test):
        raise UserError(f"subjects {sorted(set(calibration) & set(test))} are both "
                        "calibration and test subjects")
    from mdm.checkpoint import recalibration

    recalibration.check_writable(args.load_dir, args.replace)  # before hours of work
    import_tensorflow_quietly()
    from mdm.evaluate import recalibration_run

    report_dir = args.report_dir or args.load_dir
    started = time.time()
    report = recalibration_run.fit_and_measure(
        _data_config(args, test, report_dir),
        [recalibration_run.Fold(*fold) for fold in folds], args.granularity,
        args.fit_stride, args.test_stride, report_dir, _say, args.leave_one_out)
    record = dict(report["fitted"][args.objective], command=shlex.join(
        ["python", "-m", "mdm.calibrate", *(sys.argv[1:] if argv is None else argv)]))
    path = recalibration.write_record(args.load_dir, record, replace=args.replace)
    _say(f"{path} written ({args.objective}, {args.granularity}); "
         f"{time.time() - started:.0f} s in all")
    differing = [spread["load_dir"] for spread in report["kernel_spread"] if spread["mismatch"]]
    if differing:
        _say(f"WARNING: the kernels of {', '.join(differing)} spread differently from the "
             "checkpoint's (kernel std by rank, above): the fit may not carry over to it")
    return report


def _folds(args):
    """[(checkpoint directory, subjects)] from --calibration_subjects or --folds."""
    if bool(args.folds) == bool(args.calibration_subjects.strip()):
        raise UserError("give either --calibration_subjects or --folds")
    if not args.folds:
        subjects = _subjects(args.calibration_subjects, "calibration_subjects")
        if not subjects:
            raise UserError("--calibration_subjects names no subject")
        return [(args.load_dir, subjects)]
    folds = []
    for text in args.folds:
        directory, colon, subjects = text.rpartition(":")
        subjects = _subjects(subjects, "folds") if colon else ()
        if not directory or not subjects:
            raise UserError(f"--folds takes DIR:SUBJECTS, e.g. exp/no7:7 (got {text!r})")
        folds.append((directory, subjects))
    pairs = [(os.path.abspath(d), s) for d, subjects in folds for s in subjects]
    if len(set(pairs)) < len(pairs):
        raise UserError("--folds names a subject of the same directory twice")
    return folds


def _data_config(args, test, report_dir):
    from mdm.core.config import Config

    return Config(data_dir=args.data_dir, test_subjects=test,
                  use_sh=args.use_sh, sh_dir=args.sh_dir, train_dir=report_dir,
                  load_dir=args.load_dir, load=args.load,
                  cache_dir=args.cache_dir or os.path.join(report_dir, "cache"))


def _say(message):
    print(time.strftime("%H:%M:%S"), message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
