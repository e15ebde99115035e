"""Tiny Tekton YAML written by hand, for the rehearsal's tests."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from mlspec.commands.rehearsal import executor, tekton
from mlspec.commands.rehearsal.sources import Sources

PYTHON_BIN = Path(sys.executable).parent


def step(script: str, name: str = "run", **extra: Any) -> dict:
    return {"name": name, "image": "busybox", "script": script, **extra}


def task(name: str, *steps: dict, params: list | None = None, results: list | None = None,
         workspaces: list | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {"steps": list(steps)}
    if params:
        body["params"] = params
    if results:
        body["results"] = [{"name": r} if isinstance(r, str) else r for r in results]
    if workspaces:
        body["workspaces"] = [{"name": w} if isinstance(w, str) else w for w in workspaces]
    body.update(spec)
    return {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": name},
            "spec": body}


def ptask(name: str, task_name: str | None = None, **fields: Any) -> dict:
    return {"name": name, "taskRef": {"name": task_name or name}, **fields}


def pipeline(*tasks: dict, name: str = "p", **spec: Any) -> dict:
    return {"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": name},
            "spec": {"tasks": list(tasks), **spec}}


def pipeline_run(name: str = "p", **spec: Any) -> dict:
    return {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"generateName": f"{name}-run-"},
            "spec": {"pipelineRef": {"name": name}, **spec}}


def volume_workspace(name: str = "ws") -> dict:
    return {"name": name, "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}


def write(folder: Path, *docs: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def rehearse(tmp_path: Path, *docs: dict, secrets: dict | None = None,
             events: list | None = None) -> executor.RunOutcome:
    """Write the docs, read them back as the command does, and rehearse the PipelineRun."""
    folder = write(tmp_path / "yaml", *docs)
    manifests = tekton.load_folder(folder)
    sources = Sources(secrets=dict(secrets or {}), config_maps=dict(manifests.config_maps))
    return executor.rehearse(tekton.pipeline_run(manifests), tmp_path / "runs", sources,
                             PYTHON_BIN, events.append if events is not None else None)


def result(outcome: executor.RunOutcome, task_name: str, name: str) -> Any:
    return outcome.tasks[task_name].results.get(name)
