#!/usr/bin/env bash
# Regenerate everything generated that is checked in — the JSON Schema, docs/spec.md and the
# golden files — from the current code, then show what changed. A deliberate output change is
# this one command plus a reviewed `git diff`. Usage: bash scripts/regen.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
py=.venv/bin/python
tmp=$(mktemp schemas/.mlproject.schema.json.XXXXXX)
trap 'rm -f "$tmp"' EXIT
"$py" -m mlspec.spec.schema > "$tmp" && mv "$tmp" schemas/mlproject.schema.json
"$py" -m mlspec.lint.docs docs/spec.md
# Every test taking the update_golden fixture rewrites its goldens instead of comparing.
"$py" -m pytest -q -p no:cacheprovider --update-golden -m "not slow" \
  tests/compile tests/commands/test_report.py tests/lint
git status --short -- schemas docs/spec.md tests/golden tests/lint/cases
