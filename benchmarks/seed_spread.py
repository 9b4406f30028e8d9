"""Faithfulness as a distribution: this project and the release's TF1 graph trained at
several seeds, best-of-K error compared by its mean and spread (docs/faithfulness.md §12).

  python benchmarks/seed_spread.py --data_dir /tmp/h36m --work_dir /tmp/seeds \
      --seeds 42,1,2,3,4 --json seeds.json

For each seed both implementations train for --epochs on the same batches from the same
initial weights (benchmarks/bias_drift.py: this project's training loop, and the release's
graph rebuilt in tf.compat.v1 by benchmarks/release_graph.py), with the release's
defaults unless told otherwise (K = 5, keep probability 0.5, the biases in front of batch
norm), then both are evaluated on the test subjects (Protocol #1, mean of the action
means). Seeds change the initial weights, the batch order and the dropout masks.

Reported per implementation: mean, sample standard deviation, and per column; then the
difference of the means (project - release) with its standard error, two ways:
unpaired, sqrt(s_p^2 / n + s_r^2 / n), and paired over seeds (the two runs of a seed share
their initial weights and batches), the standard deviation of the per-seed differences
over sqrt(n).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
from bias_drift import add_run_arguments, evaluate, train_one, write_json  # the script's own folder

from mdm.checkpoint.loading import load_model

IMPLEMENTATIONS = ("project", "release")
COLUMNS = ("best", "most_probable")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # The release's defaults: stacked-hourglass input, K = 5, keep probability 0.5.
    add_run_arguments(parser, use_sh="True", num_models=5, dropout=0.5)
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    # bias_drift's config: the release's layers in both runs, no extra measurements.
    args.remove_pre_bn_bias = "False"
    return args


def run_seed(args, seed):
    """{implementation: {column: mm}} for one seed (reused when already measured)."""
    record = os.path.join(args.work_dir, f"seed_{seed}.json")
    if os.path.isfile(record):
        with open(record) as handle:
            return json.load(handle)
    errors = {}
    seed_args = argparse.Namespace(**dict(vars(args), seed=seed,
                                          work_dir=os.path.join(args.work_dir, f"seed_{seed}")))
    for name in IMPLEMENTATIONS:
        config, path, _, _, test_set = train_one(seed_args, name)
        model, stats = load_model(os.path.dirname(path), int(path.rsplit("-", 1)[1]), config)
        errors[name] = evaluate(model, stats, test_set, config)
        print(f"seed {seed} {name}: {json.dumps(errors[name])}", flush=True)
    with open(record, "w") as handle:
        json.dump(errors, handle)
    return errors


def summarise(per_seed):
    """Means, spreads and the difference of the means, per column (see the docstring)."""
    summary = {}
    for column in COLUMNS:
        values = {name: np.array([errors[name][column] for errors in per_seed.values()])
                  for name in IMPLEMENTATIONS}
        count = len(per_seed)
        spread = {name: float(np.std(v, ddof=1)) if count > 1 else math.nan
                  for name, v in values.items()}
        paired = values["project"] - values["release"]
        summary[column] = {
            **{f"{name}_mean": float(v.mean()) for name, v in values.items()},
            **{f"{name}_std": spread[name] for name in IMPLEMENTATIONS},
            "difference": float(paired.mean()),
            "difference_se_unpaired": math.sqrt(sum(s ** 2 for s in spread.values()) / count),
            "difference_se_paired": (float(np.std(paired, ddof=1) / math.sqrt(count))
                                     if count > 1 else math.nan),
        }
    return summary


def main(argv=None):
    args = parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    os.makedirs(args.work_dir, exist_ok=True)
    per_seed = {str(seed): run_seed(args, seed) for seed in seeds}
    figures = {"command": " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
               "seeds": per_seed, "summary": summarise(per_seed)}
    print(json.dumps(figures["summary"], indent=1))
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
