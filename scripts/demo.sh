#!/usr/bin/env bash
# The main job on the embedded defaults: local venv, local MLflow sqlite registry, no cluster.
# Validates the iris example, compiles it for every target, and runs the compiled KFP pipeline
# locally (kfp.local): a trained, validated model registered in the local MLflow registry.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all
spec="${1:-examples/iris/mlproject.yaml}"
.venv/bin/mlspec validate "$spec"
.venv/bin/mlspec compile "$spec"
.venv/bin/mlspec run "$spec"
