"""mlspec.k8s: the labels every generated object carries (the syntax checks are tested through
the lint rules and targets that use them)."""

from __future__ import annotations

import yaml

from mlspec import k8s
from mlspec.compile.build import compile_project
from mlspec.spec.loader import load_spec
from tests.conftest import REPO

STANDARD = {"app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"}


def test_standard_labels_put_ours_last_and_drop_invalid_spec_labels() -> None:
    labels = k8s.standard_labels(
        "iris", {"team": "demo", "app.kubernetes.io/name": "spoof", "bad key": "x",
                 "app.kubernetes.io/version": "1.2"},
        {"app.kubernetes.io/component": "monitoring"})
    assert labels == {"app.kubernetes.io/component": "monitoring",
                      "app.kubernetes.io/managed-by": "mlspec", "app.kubernetes.io/name": "iris",
                      "app.kubernetes.io/part-of": "iris", "app.kubernetes.io/version": "1.2",
                      "team": "demo"}
    assert k8s.standard_labels("iris", [("team", "demo")]) == k8s.standard_labels(
        "iris", {"team": "demo"})


def test_every_generated_kubernetes_object_carries_the_same_labels() -> None:
    """One selector (the project's name and the spec's labels) finds everything mlspec
    generated for a project, whichever target wrote it."""
    loaded = load_spec(str(REPO / "examples" / "iris" / "mlproject.yaml"), None)
    compiled = compile_project(loaded.project, ["serving", "monitoring", "tekton"],
                               spec_sha256=loaded.sha256, spec_name="mlproject.yaml")
    seen = set()
    for output in compiled.files:
        if not output.path.endswith(".yaml") or output.path.endswith("alertmanager.yaml"):
            continue
        for doc in yaml.safe_load_all(output.content):
            if not doc or "kind" not in doc or doc["kind"] == "Kustomization":
                continue
            labels = doc["metadata"].get("labels", {})
            assert STANDARD <= labels.keys(), (output.path, doc["kind"])
            assert {labels[k] for k in STANDARD} == {"iris-classifier", "mlspec"}
            assert labels.get("team") == "demo", (output.path, doc["kind"])
            seen.add(output.path.split("/")[0])
    assert seen == {"serving", "monitoring", "tekton"}
