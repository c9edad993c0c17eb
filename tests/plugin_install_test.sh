#!/usr/bin/env bash
# A model plugin built out of tree, as a user builds one: install megabench into a temporary
# prefix, build examples/plugin against it with find_package(megabench), run its experiment
# beside MEGABYTE through the installed binary (every metric, the profiler's FLOPs, generation),
# then check the loader's refusals: not a plugin, another ABI, an undefined symbol, a name taken.
#   tests/plugin_install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1"; build="$2"
tmp="$(mktemp -d /tmp/megabench_plugin_XXXXXX)"
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" 2>&1
[ -f "$tmp/prefix/lib/cmake/megabench/megabenchConfig.cmake" ] || fail "no megabenchConfig.cmake"
[ -f "$tmp/prefix/lib/cmake/megabench/megabenchConfigVersion.cmake" ] || fail "no version file"
[ -f "$tmp/prefix/include/harness/api/version.h" ] || fail "no version.h"
cmake -S "$src/examples/plugin" -B "$tmp/plugin" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" > "$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configure"; }
cmake --build "$tmp/plugin" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }
lib="$tmp/plugin/libgated_conv.so"
M="$tmp/prefix/bin/megabench"

# list: the plugin's model, and where it came from
"$M" --plugin "$lib" list > "$tmp/list.txt"
grep -A1 '^gated_conv:' "$tmp/list.txt" | grep -q "(from $lib)" || { cat "$tmp/list.txt"; fail "list origin"; }
grep -A1 '^megabyte:' "$tmp/list.txt" | grep -q "(from built-in)" || fail "built-in origin"

# the example experiment, its "plugins" path relative to the file
python3 - "$src/examples/plugin/experiment.json" "$tmp/plugin/experiment.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["plugins"] = ["libgated_conv.so"]
json.dump(d, open(sys.argv[2], "w"), indent=1)
PY
"$M" run "$tmp/plugin/experiment.json" -o "$tmp/out" --json > "$tmp/run.json" 2> "$tmp/run.log" \
  || { cat "$tmp/run.log"; fail "run"; }
python3 - "$tmp/run.json" <<'PY' || { cat "$tmp/run.log"; exit 1; }
import json, sys
out = json.load(open(sys.argv[1]))
recs = {r["model"]: r for r in out["records"]}
assert set(recs) == {"gated_conv", "megabyte"}, recs.keys()
for model, r in recs.items():
    assert r["status"] == "ok", (model, r.get("error"))
    m = r["metrics"]
    for k in ["params_total", "flops_forward_per_byte", "forward_ms", "train_step_ms",
              "generate_bytes_per_s", "bpb", "flops_forward_measured_per_byte"]:
        assert isinstance(m.get(k), (int, float)) and m[k] > 0, (model, k, m.get(k))
    assert not r.get("profile_error"), (model, r.get("profile_error"))
    assert any(f.endswith(".trace.json") for f in r["profile_files"]), (model, r["profile_files"])
g = recs["gated_conv"]["metrics"]
# The profiler's matmul FLOPs equal the plugin's analytical count (every FLOP is a Linear).
ratio = g["flops_forward_measured_per_byte"] / g["flops_forward_per_byte"]
assert abs(ratio - 1) < 0.01, ratio
print("plugin run ok: gated_conv", {k: g[k] for k in ("params_total", "bpb", "generate_bytes_per_s")})
PY

# refusals, each a clear error and a non-zero exit
expect_error() {  # expect_error PATTERN ARGS...
  local pattern="$1"; shift
  if "$M" "$@" list > "$tmp/err.txt" 2>&1; then fail "accepted: $*"; fi
  grep -q "$pattern" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "message for $*"; }
  ! grep -q "frame #" "$tmp/err.txt" || fail "backtrace for $*"
}
echo 'int not_a_plugin = 1;' | cc -shared -fPIC -x c - -o "$tmp/not_a_plugin.so"
expect_error "not a megabench plugin" --plugin "$tmp/not_a_plugin.so"
cat > "$tmp/old_abi.c" <<'C'
const char* megabench_plugin_abi(void) { return "megabench 0.0.1, LibTorch 1.0.0, libstdc++ cxx11 ABI 0"; }
void megabench_plugin_register(void) {}
C
cc -shared -fPIC "$tmp/old_abi.c" -o "$tmp/old_abi.so"
expect_error "built against megabench 0.0.1, LibTorch 1.0.0.*rebuild the plugin" --plugin "$tmp/old_abi.so"
cat > "$tmp/missing.c" <<'C'
extern void megabench_symbol_that_does_not_exist(void);
void call_it(void) { megabench_symbol_that_does_not_exist(); }
C
cc -shared -fPIC "$tmp/missing.c" -o "$tmp/missing.so"
expect_error "undefined symbol: megabench_symbol_that_does_not_exist" --plugin "$tmp/missing.so"
cp "$lib" "$tmp/copy_of_gated_conv.so"
expect_error "model 'gated_conv' from .*copy_of_gated_conv.so is already registered (from .*libgated_conv.so)" \
  --plugin "$lib" --plugin "$tmp/copy_of_gated_conv.so"
expect_error "cannot find the file" --plugin "$tmp/nowhere.so"
echo "plugin install test: ok ($tmp)"
