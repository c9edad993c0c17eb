#!/usr/bin/env bash
# Installs what megabench needs on a Debian 12 machine; does nothing slow when all is present.
#   scripts/setup.sh              Debian packages + LibTorch (PyPI torch wheel, pinned) + check tools
#   scripts/setup.sh --reference  also the Python reference packages (fixtures, side-by-side benchmarks)
#   scripts/setup.sh --corpora    also the campaign's corpora: their Debian packages, then
#                                 scripts/prepare_corpora.py into ./corpora (text 25 MB, code 53 MB)
# Env: MEGABENCH_PYTHON  a python3 whose torch to use (default: python3, else a venv under ~/.cache/megabench)
#      MEGABENCH_OFFLINE=1 no network: report missing packages instead of installing them
set -euo pipefail

TORCH_VERSION=2.11.0
REF_PACKAGES=(megabyte-pytorch==0.3.6 perceiver-ar-pytorch==0.0.10 safetensors numpy)
LIZARD_VERSION=1.24.3  # scripts/check_functions.py
APT_PACKAGES=(build-essential cmake ninja-build ccache git python3 python3-venv python3-pip
              nlohmann-json3-dev libeigen3-dev libboost-math-dev catch2 libbenchmark-dev libcli11-dev libfmt-dev
              libtcmalloc-minimal4  # the allocator (CMakeLists.txt: MEGABENCH_ALLOCATOR)
              gnuplot-nox  # plots in reports
              fortunes     # the built-in "text" corpus (harness/io/data.h)
              clang-format  # scripts/check_format.sh (version 14 on Debian 12)
              clang libfuzzer-14-dev  # scripts/fuzz.sh (libFuzzer targets in tests/fuzz)
              chromium)  # the HTML report's rendering test (headless)
CORPUS_PACKAGES=(bible-kjv python3.11-doc perl-doc debian-reference-en gnu-standards)
VENV="${HOME}/.cache/megabench/venv"

want_ref=0
want_corpora=0
for a in "$@"; do
  case "$a" in
    --reference) want_ref=1 ;;
    --corpora) want_corpora=1 ;;
    -h|--help) sed -n 2,7p "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$a' (expected --reference or --corpora)" >&2; exit 2 ;;
  esac
done
[ $want_corpora = 1 ] && APT_PACKAGES+=("${CORPUS_PACKAGES[@]}")

say() { echo "[setup] $*"; }
sudo_if() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages: only the missing ones, and apt-get update only if something is missing.
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "${MEGABENCH_OFFLINE:-0}" = 1 ]; then
  say "offline: not installing missing Debian packages: ${missing[*]}"
elif [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo_if apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if apt-get install -y -qq "${missing[@]}"
else
  say "Debian packages present"
fi

# 2. A python3 with torch==${TORCH_VERSION}. Reuse one that has it; never download the wheel twice.
has_torch() { "$1" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '${TORCH_VERSION}')" 2>/dev/null; }
PY=""
for cand in "${MEGABENCH_PYTHON:-}" python3 "${VENV}/bin/python"; do
  [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && has_torch "$cand" && { PY=$(command -v "$cand"); break; }
done
if [ -z "$PY" ] && [ "${MEGABENCH_OFFLINE:-0}" = 1 ]; then
  echo "setup.sh: offline and no python with torch ${TORCH_VERSION} (set MEGABENCH_PYTHON)" >&2; exit 1
elif [ -z "$PY" ]; then
  if python3 -m pip install --help >/dev/null 2>&1 && python3 -m pip install --dry-run -q six >/dev/null 2>&1; then
    PY=$(command -v python3)
  else  # PEP 668 system python: use a venv that outlives any one clone
    say "creating ${VENV}"
    python3 -m venv "${VENV}"
    PY="${VENV}/bin/python"
  fi
  say "installing torch==${TORCH_VERSION} into ${PY} (once)"
  "$PY" -m pip install -q "torch==${TORCH_VERSION}"
  has_torch "$PY" || { echo "setup.sh: torch ${TORCH_VERSION} did not install into ${PY}" >&2; exit 1; }
else
  say "torch ${TORCH_VERSION} present in ${PY}"
fi

# The function-length check's lizard, next to torch (scripts/check_all.sh finds this python).
has_lizard() { "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('lizard') != '${LIZARD_VERSION}')" 2>/dev/null; }
if has_lizard; then
  say "lizard ${LIZARD_VERSION} present"
elif [ "${MEGABENCH_OFFLINE:-0}" = 1 ]; then
  say "offline: not installing lizard==${LIZARD_VERSION} (scripts/check_functions.py needs it)"
else
  say "installing lizard==${LIZARD_VERSION}"
  "$PY" -m pip install -q "lizard==${LIZARD_VERSION}" ||
    say "warning: lizard did not install into ${PY}; scripts/check_functions.py will not run"
fi

if [ $want_ref = 1 ] && [ "${MEGABENCH_OFFLINE:-0}" != 1 ]; then
  if "$PY" -c "import MEGABYTE_pytorch, perceiver_ar_pytorch, safetensors, numpy" 2>/dev/null; then
    say "reference packages present"
  else
    say "installing reference packages"
    "$PY" -m pip install -q "${REF_PACKAGES[@]}"
  fi
fi

# 3. Tell CMake where LibTorch is (read by CMakeLists.txt when Torch_DIR is not given).
mkdir -p "${HOME}/.cache/megabench"
"$PY" -c "import torch; print(torch.utils.cmake_prefix_path)" > "${HOME}/.cache/megabench/torch_prefix"
echo "$PY" > "${HOME}/.cache/megabench/python"
say "LibTorch: $(cat "${HOME}/.cache/megabench/torch_prefix")"

if [ $want_corpora = 1 ]; then
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  if [ -f corpora/MANIFEST.json ]; then
    say "corpora present (delete ./corpora to rebuild)"
  else
    say "preparing the corpora in ./corpora"
    "$PY" scripts/prepare_corpora.py --out corpora
  fi
fi
