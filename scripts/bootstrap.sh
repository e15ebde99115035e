#!/usr/bin/env bash
# Create .venv and install mlspec with what the given extras need. Idempotent: a second run
# only checks. Usage: scripts/bootstrap.sh [EXTRAS]   (default: dev)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=".venv/.mlspec-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch is an optional extra pinned to a CPU build that installs from local disk here;
  # asking for it by exact version keeps pip from pulling a multi-GB CUDA build.
  if [ "$extras" = "dev" ]; then
    if ! .venv/bin/python -m pip install -q "torch==2.13.0"; then
      echo "note: torch not installed; torch tests will be skipped" >&2
      [ "${MLSPEC_STRICT_SKIPS:-}" = 1 ] && exit 1
    fi
  fi
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
