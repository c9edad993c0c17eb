#!/usr/bin/env bash
# Runs the code checks, each to the end, and prints one result line per check; exit 1 if any fails.
#   scripts/check_all.sh
# The checks: layers (check_layers.py), format (check_format.sh), long functions
# (check_functions.py), duplicate blocks (check_duplicates.py). See scripts/README.md.
# Env: MEGABENCH_PYTHON  a python3 with lizard (default: the one scripts/setup.sh recorded, else python3)
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# check_functions.py needs lizard, which setup.sh installs next to torch: find that python.
PY=python3
for cand in "${MEGABENCH_PYTHON:-}" "$(cat "${HOME}/.cache/megabench/python" 2>/dev/null)" python3; do
  if [ -n "$cand" ] && "$cand" -c "import lizard" 2>/dev/null; then PY="$cand"; break; fi
done

results=()
failed=0
run_check() {  # run_check NAME COMMAND...
  local name="$1"; shift
  echo "== $name: $*"
  if "$@"; then results+=("ok    $name"); else results+=("FAIL  $name"); failed=1; fi
  echo
}

run_check layers     python3 scripts/check_layers.py
run_check format     scripts/check_format.sh
run_check functions  "$PY" scripts/check_functions.py
run_check duplicates python3 scripts/check_duplicates.py

echo "== summary"
printf '%s\n' "${results[@]}"
exit $failed
