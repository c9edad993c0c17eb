#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU, nvcc and a python3 with torch (no network
# needed). Configures the cuda preset, builds, runs the [gpu] tests, the microbenchmarks and a
# profiled quickstart, and prints a summary. Budget: under 10 minutes on one H100/H200.
#   scripts/gpu_check.sh                 everything
# Env: MEGABENCH_GPU_CHECK_OUT  where logs and JSON go (default build/cuda/gpu_check)
#      MEGABENCH_MICRO_FILTER   benchmark filter (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${MEGABENCH_GPU_CHECK_OUT:-build/cuda/gpu_check}"
mkdir -p "$OUT"
declare -A STATUS
say() { echo "[gpu_check] $*"; }
step() {  # step NAME TIMEOUT_S CMD...: runs CMD with a timeout, logs to $OUT/NAME.log, records pass/FAIL
  local name=$1 limit=$2; shift 2
  say "$name: $*"
  local t0=$SECONDS
  if timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; then STATUS[$name]="pass"; else STATUS[$name]="FAIL (rc $?)"; fi
  STATUS[$name]="${STATUS[$name]} $((SECONDS - t0))s"
  tail -n 5 "$OUT/$name.log" | sed "s/^/    /"
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
# LibTorch: the recorded prefix or python3's torch (cmake/Dependencies.cmake); setup.sh only when
# apt works, and then offline (no downloads).
if ! python3 -c "import torch" 2>/dev/null && [ ! -f "$HOME/.cache/megabench/torch_prefix" ]; then
  say "no torch found; trying scripts/setup.sh"
  MEGABENCH_OFFLINE=1 scripts/setup.sh || say "setup.sh failed; configure will say what is missing"
fi

step configure 180 cmake --preset cuda
step build 420 cmake --build build/cuda -j"$(nproc)" --target megabench_tests megabench_micro megabench
step gpu_tests 180 build/cuda/tests/megabench_tests "[gpu]" --reporter compact
if grep -q "SKIPPED:" "$OUT/gpu_tests.log" 2>/dev/null; then
  STATUS[gpu_tests]="FAIL (tests skipped: no CUDA device visible)"
fi
step cpu_kernel_tests 120 build/cuda/tests/megabench_tests "[kernels],[profiler]" --reporter compact
step micro 240 build/cuda/megabench_micro --benchmark_min_time=0.05 \
  --benchmark_filter="${MEGABENCH_MICRO_FILTER:-.}" \
  --benchmark_out="$OUT/micro.json" --benchmark_out_format=json
# The CLI's run command is written elsewhere; a failure here is reported, not fatal.
step quickstart 120 build/cuda/megabench run --set device=cuda --set profile=true

echo
echo "| step | result |"
echo "|---|---|"
for s in configure build gpu_tests cpu_kernel_tests micro quickstart; do
  echo "| $s | ${STATUS[$s]:-not run} |"
done
if [ -f "$OUT/micro.json" ]; then
  echo
  python3 - "$OUT/micro.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["benchmarks"]
print("| benchmark | time (us) | TFLOP/s | GB/s |")
print("|---|---:|---:|---:|")
for r in runs:
    if r.get("error_occurred"):
        continue
    print(f"| {r['name']} | {r['real_time']:.1f} | {r.get('FLOP/s', 0) / 1e12:.3f} | {r.get('bytes/s', 0) / 1e9:.1f} |")
PY
fi
say "logs and JSON in $OUT"
for s in configure build gpu_tests; do
  case "${STATUS[$s]:-}" in pass*) ;; *) exit 1 ;; esac
done
