"""mlspec.compile.plan: risk classification of spec changes and the strategy it picks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlspec.compile.plan import CHANGE_TABLE, RISK_ORDER, STRATEGY_BY_RISK, classify, plan
from mlspec.spec.models import Project

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"


def base() -> dict:
    return yaml.safe_load(IRIS.read_text())


def edit(data: dict, path: str, value: object) -> dict:
    """Set (or, with value DELETE, remove) a dotted path in a copy of ``data``."""
    data = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()

# (dotted spec path, new value, expected change category, expected risk) - the risk table.
CASES = [
    ("model.estimator", "sklearn.ensemble.ExtraTreesClassifier", "model type", "high"),
    ("model.task", "regression", "model type", "high"),
    ("model.framework", "torch", "model type", "high"),
    ("model.architecture", {"type": "mlp", "hidden": [8]}, "architecture", "high"),
    ("model.params.max_depth", 4, "hyper-parameter", "medium"),
    ("model.params.min_samples_leaf", 3, "hyper-parameter", "medium"),
    ("model.tuning", {"strategy": "grid", "space": {"max_depth": [2, 4]}}, "hyper-parameter",
     "medium"),
    ("data.source.uri", "s3://bucket/iris-2025.parquet", "major data set change", "medium"),
    ("data.target", "species", "major data set change", "medium"),
    ("data.features.sepal_length.max", 40.0, "minor training data change", "low"),
    ("data.features.extra", {"type": "float"}, "API change", "medium"),
    ("data.features.petal_width", DELETE, "API change", "medium"),
    ("data.checks.min_rows", 120, "minor training data change", "low"),
    ("data.split.seed", 7, "minor training data change", "low"),
    ("serving.image", "ghcr.io/example/runtime-cuda:1.0.0", "base image update", "low"),
    ("serving.protocol", "v1", "API change", "medium"),
    ("serving.deployment_mode", "raw", "serving feature enhancement", "medium"),
    ("serving.resources.memory", "2Gi", "serving bug fix", "low"),
    ("serving.replicas.max", 8, "serving bug fix", "low"),
    ("registry.model_name", "iris-v2", "API change", "medium"),
    ("metadata.name", "iris-two", "API change", "medium"),
    ("monitoring.drift.threshold", 0.3, "monitoring change", "low"),
    ("validation.thresholds.accuracy.min", 0.95, "validation policy change", "low"),
    ("triggers.schedule", "0 4 * * 1", "pipeline change", "low"),
    ("metadata.owner", "someone@example.com", "metadata change", "low"),
]


@pytest.mark.parametrize("path,value,change,risk", CASES, ids=[c[0] for c in CASES])
def test_change_is_classified(path: str, value: object, change: str, risk: str) -> None:
    old = base()
    old["serving"]["image"] = "ghcr.io/example/runtime:1.0.0"
    result = plan(Project.model_validate(old), Project.model_validate(edit(old, path, value)))
    assert (change, risk) in {(c.change, c.risk) for c in result.changes}, result
    assert result.risk == max((c.risk for c in result.changes), key=RISK_ORDER.__getitem__)
    assert result.strategy == STRATEGY_BY_RISK[result.risk]


def test_image_tag_only_is_a_library_update() -> None:
    old = edit(base(), "serving.image", "ghcr.io/example/runtime:1.0.0")
    new = edit(old, "serving.image", "ghcr.io/example/runtime:1.0.1")
    (change,) = plan(Project.model_validate(old), Project.model_validate(new)).changes
    assert (change.path, change.change, change.risk) == ("serving.image", "library update", "low")


def test_highest_risk_wins_and_picks_strategy() -> None:
    old = base()
    new = edit(edit(old, "model.params.max_depth", 3), "model.estimator",
               "sklearn.ensemble.ExtraTreesClassifier")
    result = plan(Project.model_validate(old), Project.model_validate(new))
    assert (result.risk, result.strategy) == ("high", "shadow")
    medium = plan(Project.model_validate(old),
                  Project.model_validate(edit(old, "model.params.max_depth", 3)))
    assert (medium.risk, medium.strategy) == ("medium", "ab")
    low = plan(Project.model_validate(old),
               Project.model_validate(edit(old, "data.split.seed", 1)))
    assert (low.risk, low.strategy) == ("low", "canary")


def test_no_change_and_explicit_defaults_are_not_changes() -> None:
    old = base()
    same = edit(old, "serving.replicas.target_concurrency", 10)  # the default, now explicit
    result = plan(Project.model_validate(old), Project.model_validate(same))
    assert result.changes == () and result.strategy == "canary"
    assert plan(None, Project.model_validate(old)).strategy == "canary"


def test_table_ends_with_catch_all() -> None:
    assert CHANGE_TABLE[-1][0] == ("**",)
    assert classify(("something", "new")).risk == "low"
