#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU, nvcc and a python3 with torch (no network
# needed). Configures the cuda preset, builds, runs the [gpu] tests, the microbenchmarks, a
# profiled quickstart in each dtype and the training-throughput experiment, and prints a summary.
# Budget: under 10 minutes on one H100/H200 (MEGABENCH_GPU_CHECK_BUDGET).
#   scripts/gpu_check.sh                 everything
# Env: MEGABENCH_GPU_CHECK_OUT  where logs and JSON go (default build/cuda/gpu_check)
#      MEGABENCH_MICRO_FILTER   benchmark filter (default: /cuda/, the CUDA benchmarks)
#      MEGABENCH_GPU_CHECK_BUILD  a prebuilt build folder to use instead of building build/cuda
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${MEGABENCH_GPU_CHECK_OUT:-build/cuda/gpu_check}"
mkdir -p "$OUT"
declare -A STATUS
say() { echo "[gpu_check] $*"; }
# The whole script stays within MEGABENCH_GPU_CHECK_BUDGET seconds (default 570, under the 10
# minutes a GPU session allows): each step's timeout is cut to what is left, and steps that find
# no time left are reported as skipped.
DEADLINE=$((SECONDS + ${MEGABENCH_GPU_CHECK_BUDGET:-570}))
step() {  # step NAME TIMEOUT_S CMD...: runs CMD with a timeout, logs to $OUT/NAME.log, records pass/FAIL
  local name=$1 limit=$2; shift 2
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 10 ]; then STATUS[$name]="skipped (time budget spent)"; say "$name: skipped"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "$name (limit ${limit}s): $*"
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

# A build carried from another machine (MEGABENCH_GPU_CHECK_BUILD, e.g. build/default made with
# the same LibTorch version and CUDA arch sm_90; only its three executables megabench,
# megabench_micro and tests/megabench_tests are needed) skips configure and build, which take
# minutes of a short GPU session; the binaries then load this machine's torch libraries.
BUILD="${MEGABENCH_GPU_CHECK_BUILD:-build/cuda}"
if [ "$BUILD" != build/cuda ] && [ -x "$BUILD/tests/megabench_tests" ]; then
  # torch's libraries, and the CUDA runtime and CUPTI that the torch wheel ships (nvidia/cu13/lib)
  # in case this machine has no toolkit under /usr/local/cuda.
  TORCH_LIBS=$(python3 -c "
import os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(':'.join(p for p in (os.path.join(site, 'torch', 'lib'), os.path.join(site, 'nvidia', 'cu13', 'lib'))
               if os.path.isdir(p)))" 2>/dev/null)
  export LD_LIBRARY_PATH="${TORCH_LIBS:+$TORCH_LIBS:}/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
  STATUS[configure]="prebuilt ($BUILD)"
  STATUS[build]="prebuilt ($BUILD)"
  say "using the prebuilt binaries in $BUILD"
else
  BUILD=build/cuda
  step configure 180 cmake --preset cuda
  step build 420 cmake --build build/cuda -j"$(nproc)" --target megabench_tests megabench_micro megabench
fi
step gpu_tests 180 "$BUILD/tests/megabench_tests" "[gpu]" --reporter compact
if grep -q "SKIPPED:" "$OUT/gpu_tests.log" 2>/dev/null; then
  STATUS[gpu_tests]="FAIL (tests skipped: no CUDA device visible)"
fi
step cpu_kernel_tests 120 "$BUILD/tests/megabench_tests" "[kernels],[profiler]" --reporter compact
step micro 240 "$BUILD/megabench_micro" --benchmark_min_time=0.05 \
  --benchmark_filter="${MEGABENCH_MICRO_FILTER:-/cuda/}" \
  --benchmark_out="$OUT/micro.json" --benchmark_out_format=json
# Every model on CUDA in each dtype (bf16/fp16 train under autocast with fp32 master weights),
# profiled with CUPTI: a kernel table per point under $OUT/quickstart_<dtype>/profiles.
for dt in float32 bfloat16 float16; do
  step "quickstart_$dt" 90 "$BUILD/megabench" run experiments/quickstart.json --no-progress \
    --out "$OUT/quickstart_$dt" --set device=cuda --set dtype=$dt --set profile=true
done
# Training throughput at the paper's widths against the bf16 matmul peak of the same run.
step training 240 "$BUILD/megabench" run experiments/gpu_training.json --no-progress \
  --out "$OUT/gpu_training"

echo
echo "| step | result |"
echo "|---|---|"
for s in configure build gpu_tests cpu_kernel_tests micro quickstart_float32 quickstart_bfloat16 \
         quickstart_float16 training; do
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
# The local-attention target: the kernel against SDPA on the same shape (issue target >= 2x, bf16).
times = {r["name"]: r["real_time"] for r in runs if not r.get("error_occurred")}
rows = [(n, times[n.replace("/kernel/", "/sdpa/")] / t) for n, t in times.items()
        if "/kernel/" in n and n.startswith("local_attention") and n.replace("/kernel/", "/sdpa/") in times]
if rows:
    print()
    print("| local attention shape | SDPA time / kernel time |")
    print("|---|---:|")
    for n, ratio in rows:
        print(f"| {n.replace('/kernel', '').replace('/manual_time', '')} | {ratio:.2f}x |")
PY
fi
if [ -f "$OUT/gpu_training/results.jsonl" ]; then
  echo
  python3 - "$OUT/gpu_training/results.jsonl" <<'PY'
import json, sys
print("| point | train step (ms) | achieved TFLOP/s | bf16 matmul peak TFLOP/s | utilization |")
print("|---|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") != "point":
        continue
    m = r.get("metrics", {})
    if r.get("status") != "ok":
        print(f"| {r['name']} | failed: {str(r.get('error'))[:80]} | | | |")
        continue
    print(f"| {r['name']} | {m['train_step_ms']:.1f} | {m['achieved_flops_per_s'] / 1e12:.1f} "
          f"| {m['matmul_peak_flops_per_s'] / 1e12:.1f} | {m['flops_utilization']:.2f} |")
PY
fi
say "logs and JSON in $OUT"
for s in configure build gpu_tests; do
  case "${STATUS[$s]:-}" in pass*|prebuilt*) ;; *) exit 1 ;; esac
done
