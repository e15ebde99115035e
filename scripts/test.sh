#!/usr/bin/env bash
# Run the test suite: installs what it needs (venv, extras, Debian's prometheus), lints with
# ruff, type-checks the package with mypy, checks the layering with import-linter, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/bootstrap.sh dev
.venv/bin/ruff check mlspec tests bench scripts
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest -q "$@"
