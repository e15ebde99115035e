#!/usr/bin/env bash
# Run the test suite: installs what it needs (venv, extras, Debian's prometheus), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/bootstrap.sh dev
exec .venv/bin/python -m pytest -q "$@"
