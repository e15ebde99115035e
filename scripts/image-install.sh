#!/usr/bin/env bash
# The runtime image's install steps, run by the Containerfile's builder stage (and by
# tests/test_image.py in a fresh venv, so what the image installs is tested without an engine):
#   1. a build venv from requirements/build.lock (hashed) builds mlspec's wheel, no isolation;
#   2. VENV gets requirements/runtime-VARIANT.lock (--no-deps --require-hashes), then the wheel
#      (--no-deps: every dependency is in the lock), then `pip check`.
# Usage: scripts/image-install.sh VENV [cpu|torch]   run from the source tree (the repo root).
# TORCH_FIND_LINKS: where pip finds the torch CPU wheel for VARIANT=torch
# (default https://download.pytorch.org/whl/cpu/torch/). PYTHON: the interpreter (python3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: scripts/image-install.sh VENV [cpu|torch]" >&2
  exit 2
fi
venv="$1"
variant="${2:-cpu}"
case "$variant" in
  cpu) links=() ;;
  torch) links=(--find-links "${TORCH_FIND_LINKS:-https://download.pytorch.org/whl/cpu/torch/}") ;;
  *) echo "image-install.sh: VARIANT must be cpu or torch, not '$variant'" >&2; exit 2 ;;
esac
lock="requirements/runtime-$variant.lock"
py="${PYTHON:-python3}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$py" -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install --no-deps --require-hashes -r requirements/build.lock
"$work/build-venv/bin/python" -m pip wheel --no-deps --no-build-isolation -w "$work/dist" .

"$py" -m venv "$venv"
# Python 3.11's venv seeds an old setuptools (65.5, with known CVEs) that nothing at run time
# needs: the environment holds the lock, the wheel and pip, nothing else.
if ! grep -q '^setuptools==' "$lock"; then
  "$venv/bin/python" -m pip uninstall --yes --quiet setuptools
fi
"$venv/bin/python" -m pip install --no-deps --require-hashes "${links[@]}" -r "$lock"
"$venv/bin/python" -m pip install --no-deps "$work"/dist/mlspec-*.whl
"$venv/bin/python" -m pip check
