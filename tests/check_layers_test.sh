#!/usr/bin/env bash
# Tests scripts/check_layers.py on small trees built in a temporary folder, each with a copy of
# cmake/layers.txt; prints PASS/FAIL per case and exits nonzero when a case fails.
#   tests/check_layers_test.sh [ROOT]     the planted cases, with ROOT's checker and layer table
#                                         (default: the repository this script is in)
#   tests/check_layers_test.sh --real ROOT  the checker on the repository ROOT itself
# Env: PYTHON  the python3 to run the checker with (default: python3)
set -uo pipefail

PY="${PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${1:-}" = --real ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --real ROOT" >&2; exit 2; }
  if out=$("$PY" "$2/scripts/check_layers.py" --root "$2" 2>&1); then
    echo "$out" | tail -n 1; echo "PASS real tree $2"; exit 0
  else
    echo "$out"; echo "FAIL real tree $2"; exit 1
  fi
fi

SRC="$(cd "${1:-$HERE}" && pwd)"
CHECK="$SRC/scripts/check_layers.py"
LAYERS="$SRC/cmake/layers.txt"
[ -f "$CHECK" ] && [ -f "$LAYERS" ] || { echo "no $CHECK or $LAYERS" >&2; exit 2; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
n=0

# new_tree: a fresh clean tree in $T, every layer used the way the layout allows.
new_tree() {
  n=$((n + 1)); T="$TMP/tree$n"; mkdir -p "$T/cmake"; cp "$LAYERS" "$T/cmake/layers.txt"
  put kernels/sampling.h '#pragma once'
  put kernels/sampling.cpp '#include "kernels/sampling.h"' '#include <torch/torch.h>'
  put models/layers.h '#pragma once' '#include "kernels/sampling.h"'
  put models/layers.cpp '#include "models/layers.h"' '#include "nlohmann/json.hpp"  // third party'
  put baselines/transformer.h '#include "models/layers.h"'
  put harness/api/registry.h '#pragma once' '#include "models/layers.h"'
  put models/megabyte_plugin.cpp '#include "harness/api/registry.h"' '#include "models/layers.h"'
  put harness/io/data.h '#include "harness/api/registry.h"'
  put harness/config/experiment.h '#include "harness/io/data.h"'
  put harness/measure/runner.h '#include "harness/config/experiment.h"'
  put harness/measure/metrics/bpb.h '#include "harness/measure/runner.h"'
  put harness/store/results.h '#include "harness/measure/metrics/bpb.h"'
  put harness/report/report.h '#include "harness/store/results.h"'
  put harness/cli/main.cpp '#include "harness/report/report.h"' '#include "models/megabyte_plugin.cpp"'
  put tests/support.h '#include "harness/cli/main.cpp"'
  put tests/test_x.cpp '#include "support.h"' '#include "kernels/sampling.h"'
  put bench/micro.cpp '#include "models/layers.h"' '#include "tests/support.h"'
  put build/junk.cpp '#include "tests/support.h"'        # build/ is not scanned
  put third_party/lib.h '#include "tests/support.h"'     # nor third_party/
  put kernels/commented.cpp '// #include "harness/cli/main.cpp"' '/*' '#include "tests/support.h"' '*/'
}
# put PATH LINE...: writes the lines into $T/PATH (one per line).
put() { local f="$T/$1"; shift; mkdir -p "$(dirname "$f")"; printf '%s\n' "$@" > "$f"; }

# expect CASE STATUS [PATTERN...]: runs the checker on $T; the exit status must be STATUS and the
# output must hold every PATTERN (grep -F).
expect() {
  local name="$1" want="$2"; shift 2
  local out rc ok=1
  out=$("$PY" "$CHECK" --root "$T" 2>&1); rc=$?
  [ "$rc" = "$want" ] || ok=0
  for p in "$@"; do grep -qF -- "$p" <<<"$out" || { ok=0; echo "  missing: $p"; }; done
  if [ $ok = 1 ]; then echo "PASS $name"; else
    echo "FAIL $name (exit $rc, wanted $want)"; sed 's/^/  | /' <<<"$out"; failures=$((failures + 1))
  fi
}

new_tree
expect "clean tree passes" 0 "check_layers: OK"

new_tree
put kernels/x.cpp '#include "kernels/sampling.h"' '' '#include "models/layers.h"'
expect "kernels including models fails" 1 \
  'kernels/x.cpp:3: includes "models/layers.h" (layer 1 models) from layer 0 kernels'

new_tree
put harness/api/x.h '#pragma once' '#include "harness/measure/runner.h"'
expect "harness/api including harness/measure fails" 1 \
  'harness/api/x.h:2: includes "harness/measure/runner.h" (layer 6 harness/measure) from layer 2 harness/api'

new_tree
put models/layers.cpp '#include "models/layers.h"' '#include "harness/api/registry.h"'
expect "models (not a plugin) including harness/api fails" 1 'models/layers.cpp:2: includes "harness/api/registry.h"'

new_tree
put models/megabyte.h '#include "tests/support.h"'
expect "including a top-level folder fails" 1 'models/megabyte.h:1: includes "tests/support.h" (layer top top)'

new_tree
put models/megabyte.h '#include "models/layers.h"'
put baselines/perceiver_ar.h '#include "models/megabyte.h"' '#include "baselines/transformer.h"'
put harness/measure/metrics/flops.h '#include "harness/measure/runner.h"'
expect "same-layer includes pass" 0 "check_layers: OK"

new_tree
put harness/api/format.h '#pragma once'
put harness/api/format.cpp '#include "format.h"' '#include "registry.h"'
put kernels/layers.h '#pragma once'
put kernels/k.cpp '#include "layers.h"'   # kernels/layers.h, not models/layers.h
expect "same-folder relative includes resolve next to the file" 0 "check_layers: OK"

new_tree
put models/layers.cpp '#include "layers.h"' '#include "megabyte_plugin.cpp"'
expect "a same-folder include of a higher-layer file fails" 1 \
  'models/layers.cpp:2: includes "megabyte_plugin.cpp" (layer 3 plugins) from layer 1 models'

new_tree
put harness/api/x.cpp '#include "../measure/runner.h"'
expect "a ../ include resolves and fails upward" 1 \
  'harness/api/x.cpp:1: includes "../measure/runner.h" (layer 6 harness/measure)'

new_tree
put harness/old.cpp '#include "harness/api/registry.h"'
put experiments/tool.cpp '#include "models/layers.h"'
expect "a harness file in no layer fails, another one warns" 1 \
  'harness/old.cpp: error: in no layer' 'experiments/tool.cpp: warning: in no layer'

new_tree
put experiments/tool.cpp '#include "models/layers.h"'
expect "a file in no layer outside harness/ only warns" 0 \
  'experiments/tool.cpp: warning: in no layer' "check_layers: OK"

new_tree
put baselines/transformer.h '#include "models/megabyte.h"'
put models/megabyte.h '#include "baselines/perceiver_ar.h"'
put baselines/perceiver_ar.h '#pragma once'
expect "a folder cycle in one layer fails" 1 'folder cycle: baselines -> models (models) -> baselines' \
  'baselines/transformer.h:1 includes "models/megabyte.h"' 'models/megabyte.h:1 includes "baselines/perceiver_ar.h"'

new_tree
put cmake/layers.txt '0 a kernels/**' '1 b kernels/x/**'
put kernels/x/y.h '#pragma once'
expect "two rules taking one file is an error in the table" 2 'taken by several rules'

echo "$n cases, $failures failed"
[ $failures = 0 ]
