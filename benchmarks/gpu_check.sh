#!/usr/bin/env bash
# Every GPU figure the README asks for, in one call (under 8 minutes on one GPU):
#   1. the training benchmark: batch 64 and 1024, float32 and mixed precision (float16 and
#      bfloat16), --steps_per_execution 20, XLA, against the release's step, plus the
#      evaluation and inference figures (benchmarks/bench.py);
#   2. one short real-data training (1 epoch of one action, S1,5,6,7) and its test on S8
#      with every column, timed.
# It installs nothing: run it after the README's GPU install line.
#
#   bash benchmarks/gpu_check.sh DATA_DIR OUT_DIR        # on the GPU
#   MDM_USE_CPU=True bash benchmarks/gpu_check.sh DATA_DIR OUT_DIR   # the same on the CPU
#
# DATA_DIR: Human3.6M in the 3d-pose-baseline layout, or "" for the synthetic set.
# OUT_DIR must not exist yet (nothing is written over); OUT_DIR/gpu_check.json holds it all.
# MDM_CHECK_STEPS (300), MDM_CHECK_ACTION (Walking), MDM_CHECK_WIDTH (1024),
# MDM_CHECK_FRAMES (40 frames per synthetic sequence) and MDM_CHECK_PRECISIONS
# (float32,mixed_float16,mixed_bfloat16) make it smaller for a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="${1-}"
out="${2:-gpu_check}"
use_cpu="${MDM_USE_CPU:-False}"
steps="${MDM_CHECK_STEPS:-300}"
action="${MDM_CHECK_ACTION:-Walking}"
width="${MDM_CHECK_WIDTH:-1024}"
frames="${MDM_CHECK_FRAMES:-40}"
precisions="${MDM_CHECK_PRECISIONS:-float32,mixed_float16,mixed_bfloat16}"
if [ -e "$out" ]; then
  echo "error: $out exists; give a new output directory (nothing is written over)" >&2
  exit 1
fi
mkdir -p "$out"
if [ "$use_cpu" = "True" ]; then export CUDA_VISIBLE_DEVICES=""; fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") \
  > "$out/nvidia_smi.txt" 2>&1

if [ -n "$data_dir" ]; then
  data_args=(--data_dir "$data_dir" --train_subjects 1,5,6,7 --test_subjects 8)
  bench_data=(--data_dir "$data_dir")
else
  python -m mdm.synthetic --out "$out/synthetic" --frames_per_sequence "$frames" > "$out/synthetic.log" 2>&1
  data_args=(--data_dir "$out/synthetic")
  bench_data=(--work_dir "$out/bench_work")
  mkdir -p "$out/bench_work" && ln -s "$(cd "$out/synthetic" && pwd)" "$out/bench_work/synthetic"
fi

seconds() { date +%s.%N; }
t0=$(seconds)
python benchmarks/bench.py "${bench_data[@]}" --steps "$steps" --rounds 1 --linear_size "$width" \
  --precisions "$precisions" --json "$out/bench.json" > "$out/bench.log" 2>&1
t1=$(seconds)
common=("${data_args[@]}" --action "$action" --train_dir "$out/train" --use_cpu "$use_cpu"
        --linear_size "$width" --remove_pre_bn_bias True --verbose 2)
python predict_3dpose_mdm.py "${common[@]}" --epochs 1 > "$out/train.log" 2>&1
t2=$(seconds)
python predict_3dpose_mdm.py "${common[@]}" --test True > "$out/test.log" 2>&1
t3=$(seconds)

python - "$out" "$t0" "$t1" "$t2" "$t3" <<'EOF'
import glob, json, os, sys
out, t0, t1, t2, t3 = sys.argv[1], *map(float, sys.argv[2:])
with open(os.path.join(out, "bench.json")) as handle:
    report = {"bench": json.load(handle)}
[test_file] = glob.glob(os.path.join(out, "train", "results_test_*_p1.json"))
with open(test_file) as handle:
    report["test"] = json.load(handle)
with open(os.path.join(out, "nvidia_smi.txt")) as handle:
    report["nvidia_smi"] = handle.read().strip()
report["seconds"] = {"bench": t1 - t0, "train_one_epoch": t2 - t1, "test": t3 - t2,
                     "total": t3 - t0}
with open(os.path.join(out, "gpu_check.json"), "w") as handle:
    json.dump(report, handle, indent=2)
print(json.dumps(report["seconds"]))
EOF
echo "wrote $out/gpu_check.json"
