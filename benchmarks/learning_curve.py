"""The learning curve of a training run: every epoch's checkpoint tested with every column.

  python benchmarks/learning_curve.py --run_dir T --out_dir E -- --data_dir /tmp/h36m \
      --train_subjects 1,5,6,7 --test_subjects 8

For each checkpoint in T (train with --max_to_keep 0 to keep one per epoch) that E has no
results for yet, runs `predict_3dpose_mdm.py --test True --load N --load_dir T
--train_dir E` with the flags after `--` (so T, which may still be training, is only
read), then prints one Markdown row per epoch: the average of every column (Protocol #1,
or #2 with --protocol p2). Already tested checkpoints are not run again, so
the script can be called while the training goes on.
"""

import argparse
import json
import os
import subprocess
import sys

from mdm.checkpoint.store import available_steps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLUMNS = ("best", "most_probable", "mixture_mean", "multi_view", "multi_view_fused",
           "temporal")


def results_path(out_dir, step, protocol):
    return os.path.join(out_dir, f"results_test_{step}_{protocol}.json")


def test_checkpoint(run_dir, out_dir, step, flags):
    command = [sys.executable, os.path.join(REPO, "predict_3dpose_mdm.py"), *flags,
               "--test", "True", "--load_dir", run_dir, "--load", str(step),
               "--train_dir", out_dir, "--verbose", "0"]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)


def table(run_dir, out_dir, protocol):
    """Markdown rows: epoch, step, then each column's average in mm."""
    rows = ["| epoch | step | " + " | ".join(COLUMNS) + " |",
            "| --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |"]
    steps = available_steps(run_dir)
    for epoch, step in enumerate(steps, start=1):
        path = results_path(out_dir, step, protocol)
        if not os.path.isfile(path):
            continue
        with open(path) as handle:
            average = json.load(handle)["results"]["Average"]
        rows.append(f"| {epoch} | {step} | "
                    + " | ".join(f"{average[column]:.1f}" for column in COLUMNS) + " |")
    return "\n".join(rows)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ours, flags = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", required=True, help="the training run (only read)")
    parser.add_argument("--out_dir", required=True, help="where the test results go")
    parser.add_argument("--table_only", action="store_true", help="test nothing new")
    parser.add_argument("--protocol", choices=("p1", "p2"), default="p1",
                        help="p2: Protocol #2 (--procrustes True)")
    args = parser.parse_args(ours)
    protocol = args.protocol
    if protocol == "p2":
        flags = [*flags, "--procrustes", "True"]
    if os.path.realpath(args.run_dir) == os.path.realpath(args.out_dir):
        parser.error("--out_dir must differ from --run_dir (which is only read)")
    os.makedirs(args.out_dir, exist_ok=True)
    if not args.table_only:
        for step in available_steps(args.run_dir):
            if not os.path.isfile(results_path(args.out_dir, step, protocol)):
                test_checkpoint(args.run_dir, args.out_dir, step, flags)
    print(table(args.run_dir, args.out_dir, protocol))
    return 0


if __name__ == "__main__":
    sys.exit(main())
