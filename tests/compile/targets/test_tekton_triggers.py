"""From an event to a PipelineRun, as Tekton Triggers would do it with the generated objects.

A small stand-in for the EventListener: each trigger's CEL filter is evaluated by a real CEL engine
(``header.match`` as Triggers defines it), the TriggerBinding's ``$(body.x)``/``$(header.x)``
values are read from the event, the TriggerTemplate's params get their defaults, and
``$(tt.params.x)`` is substituted in the resource template (an unknown one is an error). The
events are the ones the sources send: a GitHub and a GitLab push, Alertmanager's webhook, and the
request the CronJob's own ``curl`` arguments describe.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mlspec.spec.models import Project
from tests.compile.targets.test_tekton import (
    _alert,
    _github_push,
    _gitlab_push,
    by_kind,
    cel_eval,
    iris_data,
    render,
)

_TT = re.compile(r"\$\(tt\.params\.([A-Za-z0-9_-]+)\)")
_EVENT = re.compile(r"^\$\((body|header)\.([A-Za-z0-9_.-]+)\)$")


def _lookup(event: tuple[dict[str, str], dict[str, Any]], ref: str) -> str:
    """A TriggerBinding value: a literal, or ``$(body.a.b)`` / ``$(header.name)`` from the event."""
    match = _EVENT.match(ref)
    if not match:
        assert "$(" not in ref, ref
        return ref
    headers, body = event
    if match[1] == "header":
        return headers[match[2]]
    node: Any = body
    for part in match[2].split("."):
        node = node[part]
    return node if isinstance(node, str) else json.dumps(node)


def listen(files: dict[str, str], event: tuple[dict[str, str], dict[str, Any]]) -> list[dict]:
    """The PipelineRuns the EventListener would create for ``event``."""
    (listener,) = by_kind(files, "EventListener")
    bindings = {b["metadata"]["name"]: b for b in by_kind(files, "TriggerBinding")}
    templates = {t["metadata"]["name"]: t for t in by_kind(files, "TriggerTemplate")}
    created = []
    for trigger in listener["spec"]["triggers"]:
        if not all(cel_eval(i["params"][0]["value"], *event) for i in trigger["interceptors"]):
            continue
        params = {}
        for ref in trigger["bindings"]:
            for param in bindings[ref["ref"]]["spec"]["params"]:
                params[param["name"]] = _lookup(event, param["value"])
        template = templates[trigger["template"]["ref"]]["spec"]
        for declared in template["params"]:
            if declared["name"] not in params:
                assert "default" in declared, f"param {declared['name']} has no value"
                params[declared["name"]] = declared["default"]
        for resource in template["resourcetemplates"]:
            created.append(json.loads(_fill(json.dumps(resource), params)))
    return created


def _fill(text: str, params: dict[str, str]) -> str:
    """Substitute ``$(tt.params.x)``; a param the template never declared is a KeyError."""
    return _TT.sub(lambda match: params[match[1]], text)


def _cron_event(files: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The request the CronJob sends, read from its curl arguments."""
    (cron,) = by_kind(files, "CronJob")
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    headers = dict(args[i + 1].split(": ", 1) for i, a in enumerate(args) if a == "--header")
    assert args[args.index("--request") + 1] == "POST"
    return headers, json.loads(args[args.index("--data") + 1])


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return render(Project.model_validate(iris_data()))


def _manual_run(files: dict[str, str]) -> dict[str, Any]:
    (run,) = by_kind({"r": files["tekton/pipelinerun.yaml"]}, "PipelineRun")
    return run


@pytest.mark.parametrize("source, trigger, revision", [
    ("github", "git", "0" * 40), ("gitlab", "git", "1" * 40),
    ("alertmanager", "alert", "none"), ("cronjob", "schedule", "none")])
def test_each_source_creates_the_pipelinerun(files: dict[str, str], source: str, trigger: str,
                                             revision: str) -> None:
    event = {"github": _github_push("refs/heads/main"), "gitlab": _gitlab_push("refs/heads/main"),
             "alertmanager": _alert(), "cronjob": _cron_event(files)}[source]
    (run,) = listen(files, event)
    assert run["metadata"]["labels"].pop("mlspec.dev/trigger") == trigger
    assert run["metadata"].pop("annotations") == {"mlspec.dev/git-revision": revision}
    # Otherwise exactly the run `kubectl create -f tekton/pipelinerun.yaml` starts.
    assert run == _manual_run(files)


@pytest.mark.parametrize("event", [_github_push("refs/heads/dev"), _alert(status="resolved"),
                                   ({"Content-Type": "application/json"}, {}),
                                   ({"X-Mlspec-Trigger": "scheduled"}, {})],
                         ids=["other-branch", "resolved", "bare-post", "wrong-header"])
def test_other_events_create_nothing(files: dict[str, str], event: tuple) -> None:
    assert listen(files, event) == []
