#!/usr/bin/env bash
# Checks the project's own C++ sources against .clang-format (clang-format 14, Debian 12).
#   scripts/check_format.sh         lists the files clang-format would change; exit 1 if any
#   scripts/check_format.sh --fix   reformats them in place
# Folders: kernels models baselines harness tests bench examples (those present); *.h *.cpp *.cu *.cuh.
# Env: CLANG_FORMAT  the clang-format to run (default: clang-format)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CF="${CLANG_FORMAT:-clang-format}"
FOLDERS=(kernels models baselines harness tests bench examples)

fix=0
for a in "$@"; do
  case "$a" in
    --fix) fix=1 ;;
    -h|--help) sed -n 2,6p "$0"; exit 0 ;;
    *) echo "check_format.sh: unknown argument '$a' (expected --fix)" >&2; exit 2 ;;
  esac
done

command -v "$CF" >/dev/null 2>&1 || { echo "check_format.sh: no $CF (scripts/setup.sh installs it)" >&2; exit 2; }
version=$("$CF" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
[ "$version" = 14 ] || echo "check_format.sh: warning: $CF is version ${version:-?}, the style is kept with 14" >&2

present=()
for d in "${FOLDERS[@]}"; do [ -d "$d" ] && present+=("$d"); done
[ ${#present[@]} -gt 0 ] || { echo "check_format: no C++ folders"; exit 0; }
files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(
  find "${present[@]}" \( -name build -o -name third_party -o -name '.*' \) -prune -o -type f \
    \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z)
[ ${#files[@]} -gt 0 ] || { echo "check_format: no C++ files"; exit 0; }

# One clang-format run over all files; a file that would change gets at least one diagnostic
# "FILE:LINE:COL: error: code should be clang-formatted".
changed=()
while IFS= read -r f; do changed+=("$f"); done < <(
  "$CF" --style=file --dry-run --Werror "${files[@]}" 2>&1 |
    sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)

if [ $fix = 1 ]; then
  [ ${#changed[@]} -eq 0 ] || "$CF" --style=file -i "${changed[@]}"
  echo "check_format: reformatted ${#changed[@]} of ${#files[@]} files"
  exit 0
fi
for f in "${changed[@]}"; do echo "$f: would be reformatted"; done
if [ ${#changed[@]} -gt 0 ]; then
  echo "check_format: FAILED: ${#changed[@]} of ${#files[@]} files would change (scripts/check_format.sh --fix)"
  exit 1
fi
echo "check_format: OK: ${#files[@]} files formatted"
