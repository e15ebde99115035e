"""mlspec.compile.context: what every renderer reads the same way, computed once."""

from __future__ import annotations

import pytest

from mlspec.compile.context import INFERENCE_SERVICE_SUFFIXES, build_context, resolve_strategy
from mlspec.spec.loader import load_spec
from mlspec.spec.models import RolloutStrategy
from tests.conftest import EXAMPLES


def _project():
    loaded = load_spec(str(EXAMPLES[0]))
    assert loaded.project is not None
    return loaded.project


def test_every_strategy_has_its_inference_services() -> None:
    from typing import get_args

    assert set(INFERENCE_SERVICE_SUFFIXES) == set(get_args(RolloutStrategy)) - {"auto"}


@pytest.mark.parametrize("strategy", sorted(INFERENCE_SERVICE_SUFFIXES))
def test_names_follow_the_strategy(strategy: str) -> None:
    project = _project()
    project.serving.rollout.strategy = strategy
    ctx = build_context(project)
    assert ctx.strategy == strategy
    assert all(n.startswith(project.metadata.name) for n in ctx.inference_services)
    assert len(set(ctx.inference_services)) == len(ctx.inference_services)


def test_auto_without_a_previous_spec_is_canary_and_with_one_follows_the_risk() -> None:
    old, new = _project(), _project()
    new.serving.rollout.strategy = "auto"
    assert resolve_strategy(new, None) == "canary"
    new.model.params = {**new.model.params, "n_estimators": 7}
    assert resolve_strategy(new, old) == "ab"  # a hyper-parameter change: medium risk


def test_alerts_go_to_the_first_engine_with_a_webhook_else_to_the_trigger() -> None:
    project = _project()
    project.targets = ["kfp", "tekton"]
    ctx = build_context(project)
    assert ctx.retrain_webhook_url == ctx.webhook("tekton")
    assert ctx.webhook("tekton").startswith(f"http://el-{project.metadata.name}.")
    project.targets = ["kfp"]
    url = build_context(project).retrain_webhook_url
    assert url == (f"http://{project.metadata.name}-trigger.{project.namespace}"
                   ".svc.cluster.local:8080/alerts")
