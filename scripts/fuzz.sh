#!/usr/bin/env bash
# Runs one libFuzzer target for a while:
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]    e.g. scripts/fuzz.sh experiment 60
# TARGET: experiment | set | safetensors | results (tests/fuzz/README.md). Builds the "fuzz"
# preset first (clang, ASan + UBSan; scripts/setup.sh installs clang and libFuzzer). Reads the
# committed seeds in tests/fuzz/corpus/TARGET; new inputs go to build/fuzz/corpus/TARGET, and a
# finding (crash, sanitizer report, unexpected exception, timeout) to build/fuzz/findings/TARGET/,
# with a non-zero exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
target="$1"; seconds="$2"; shift 2
case "$target" in
  experiment|set|safetensors|results) ;;
  *) echo "scripts/fuzz.sh: TARGET must be experiment, set, safetensors or results, got '$target'" >&2; exit 2 ;;
esac

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "fuzz_$target"

work="build/fuzz/corpus/$target"
findings="build/fuzz/findings/$target"
mkdir -p "$work" "$findings"
dict=()
[ "$target" != safetensors ] && dict=(-dict=tests/fuzz/json.dict)
# One thread each for LibTorch, so that the fuzzer's own time is what is measured.
OMP_NUM_THREADS=1 exec "build/fuzz/fuzz/fuzz_$target" \
  -max_total_time="$seconds" -timeout=20 -rss_limit_mb=6144 -max_len=16384 \
  -artifact_prefix="$findings/" -print_final_stats=1 "${dict[@]}" "$@" \
  "$work" "tests/fuzz/corpus/$target"
