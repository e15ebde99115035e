"""The compiled Tekton pipeline runs: a dry run of the generated objects on this machine.

A small, faithful stand-in for the Tekton controller takes the rendered Pipeline, schedules its
tasks by ``runAfter`` and result references, evaluates ``when`` expressions, binds the workspaces
(the per-run volume to a temporary folder, the spec ConfigMap to a folder holding its data as
files, as a configMap volume does), substitutes ``$(params.x)``, ``$(workspaces.w.path)``,
``$(results.r.path)``, ``$(tasks.t.results.r)`` and ``$(context...)`` as Tekton does (an
unresolved reference is an error), runs each step's ``command`` + ``args`` with the venv's
python in place of ``python`` (no shell), retries as ``retries`` says and reads results back from
their files. The metrics it produces must equal those of the same steps run through the runtime
directly; a gate that fails must leave ``register`` skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlspec.compile.graph import VALUE, PipelineGraph, build_graph, resolved_spec
from mlspec.spec.models import Project
from tests.compile.targets.test_tekton import iris_data, render

pytestmark = pytest.mark.slow
RESULT_LIMIT = 4096  # Tekton results travel in the 4 KB termination message
_VAR = re.compile(r"\$\(([^()]*)\)")


# --- the stand-in for the Tekton controller ---------------------------------------------------
def substitute(text: str, values: dict[str, str]) -> str:
    """Replace every ``$(ref)`` as Tekton does; a reference Tekton could not resolve is an error.

    ``params['x']`` and ``params["x"]`` are spelled as ``params.x``.
    """
    def replace(match: re.Match[str]) -> str:
        ref = re.sub(r"""\[['"]([^'"\]]+)['"]\]""", r".\1", match.group(1))
        if ref not in values:
            raise KeyError(f"unresolved Tekton reference $({match.group(1)})")
        return values[ref]

    return _VAR.sub(replace, text)


def _when_passes(when: list[dict[str, Any]], values: dict[str, str]) -> bool:
    for expr in when:
        found = substitute(expr["input"], values)
        wanted = [substitute(v, values) for v in expr["values"]]
        if (found in wanted) != (expr["operator"] == "in"):
            return False
    return True


def _refs(pipeline_task: dict[str, Any]) -> set[str]:
    """Tasks a pipeline task waits for: runAfter and every $(tasks.X.results...) it uses."""
    text = json.dumps({k: v for k, v in pipeline_task.items() if k != "runAfter"})
    return set(pipeline_task.get("runAfter", [])) | set(re.findall(r"\$\(tasks\.([^.]+)\.", text))


@dataclass
class RunLog:
    order: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    results: dict[str, dict[str, str]] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)


def run_pipeline(files: dict[str, str], root: Path) -> RunLog:
    """Run ``pipelinerun.yaml``'s pipeline from the rendered files, in ``root``."""
    docs = [d for text in files.values() for d in yaml.safe_load_all(text) if d]
    (run,) = [d for d in docs if d["kind"] == "PipelineRun"]
    (pipeline,) = [d for d in docs if d["kind"] == "Pipeline"
                   and d["metadata"]["name"] == run["spec"]["pipelineRef"]["name"]]
    tasks = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Task"}
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    workspaces = _bind_workspaces(run, configmaps, root)
    context = {"context.pipelineRun.name": "dry-run-1", "context.pipeline.name":
               pipeline["metadata"]["name"], "context.pipelineRun.namespace": "dry-run"}
    log = RunLog()
    pending = list(pipeline["spec"]["tasks"])
    done: set[str] = set()
    while pending:
        ready = [t for t in pending if _refs(t) <= done]
        assert ready, f"no task can start: {[t['name'] for t in pending]} (a cycle?)"
        pipeline_task = ready[0]  # the first ready one in the Pipeline's own order
        pending.remove(pipeline_task)
        done.add(pipeline_task["name"])
        values = {**context, **{f"tasks.{t}.results.{r}": v
                                for t, rs in log.results.items() for r, v in rs.items()}}
        if not _when_passes(pipeline_task.get("when", []), values):
            log.skipped.append(pipeline_task["name"])
            continue
        task = tasks[pipeline_task["taskRef"]["name"]]
        bound = {w["name"]: workspaces[w["workspace"]] for w in pipeline_task["workspaces"]}
        log.results[pipeline_task["name"]] = _run_task(
            pipeline_task, task, bound, values, root / "runs" / pipeline_task["name"], log)
        log.order.append(pipeline_task["name"])
    return log


def _bind_workspaces(run: dict[str, Any], configmaps: dict[str, Any],
                     root: Path) -> dict[str, Path]:
    bound = {}
    for ws in run["spec"]["workspaces"]:
        path = root / "workspaces" / ws["name"]
        path.mkdir(parents=True)
        if "configMap" in ws:  # a configMap volume: one file per data key
            for key, value in configmaps[ws["configMap"]["name"]]["data"].items():
                (path / key).write_text(value, encoding="utf-8")
        else:
            assert "volumeClaimTemplate" in ws  # the per-run volume: an empty folder
        bound[ws["name"]] = path
    return bound


def _run_task(pipeline_task: dict[str, Any], task: dict[str, Any], bound: dict[str, Path],
              values: dict[str, str], home: Path, log: RunLog) -> dict[str, str]:
    spec = task["spec"]
    params = {p["name"]: p.get("default") for p in spec.get("params", [])}
    params.update({p["name"]: substitute(p["value"], values)
                   for p in pipeline_task.get("params", [])})
    declared = {w["name"] for w in spec.get("workspaces", [])}
    assert declared == set(bound), f"workspaces of {task['metadata']['name']}"
    for attempt in range(pipeline_task.get("retries", 0) + 1):
        results_dir = home / f"attempt-{attempt}" / "results"
        results_dir.mkdir(parents=True)
        local = {**values, "context.taskRun.name": f"dry-run-1-{pipeline_task['name']}",
                 **{f"params.{k}": v for k, v in params.items() if v is not None},
                 **{f"workspaces.{k}.path": str(p) for k, p in bound.items()},
                 **{f"results.{r['name']}.path": str(results_dir / r["name"])
                    for r in spec.get("results", [])}}
        log.attempts[pipeline_task["name"]] = attempt + 1
        if all(_run_step(step, local, log) == 0 for step in spec["steps"]):
            return _read_results(spec, results_dir)
    raise AssertionError(f"task {pipeline_task['name']} failed after "
                         f"{pipeline_task.get('retries', 0) + 1} attempt(s)")


def _run_step(step: dict[str, Any], values: dict[str, str], log: RunLog) -> int:
    assert "script" not in step, "steps run a command, never a script"
    argv = [substitute(a, values) for a in [*step["command"], *step.get("args", [])]]
    # After Tekton, the kubelet would expand $(VAR) from the container's env: there must be none.
    assert not any("$(" in a for a in argv), argv
    if argv[0] == "python":
        argv[0] = sys.executable  # the venv's interpreter stands in for the image's python
    env = {**os.environ, **{e["name"]: substitute(e["value"], values) for e in step.get("env", [])}}
    cwd = substitute(step.get("workingDir", "/"), values)
    log.commands.append(argv)
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
    return done.returncode


def _read_results(spec: dict[str, Any], results_dir: Path) -> dict[str, str]:
    out = {}
    for result in spec.get("results", []):
        raw = (results_dir / result["name"]).read_bytes()
        assert len(raw) <= RESULT_LIMIT, f"result {result['name']} is {len(raw)} bytes"
        out[result["name"]] = raw.decode()  # Tekton does not trim
    return out


# --- the same steps through the runtime directly ---------------------------------------------
def run_directly(project: Project, graph: PipelineGraph, root: Path) -> dict[str, Path]:
    """Each graph step as ``python -m mlspec.runtime`` with plain paths (no Tekton at all)."""
    root.mkdir(parents=True)
    spec = root / "spec.json"
    spec.write_text(json.dumps(resolved_spec(project)), encoding="utf-8")
    paths = {(s.name, o.name): root / o.file for s in graph.steps for o in s.outputs}
    for step in graph.steps:
        if step.run_if and paths[step.run_if].read_text().strip() != "true":
            continue
        argv = [sys.executable, "-m", "mlspec.runtime", step.name, "--spec", str(spec)]
        for item in step.inputs:
            argv += ["--in", f"{item.name}={paths[(item.step, item.output)]}"]
        for out in step.outputs:
            argv += ["--out", f"{out.name}={paths[(step.name, out.name)]}"]
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return {f"{s}.{o}": p for (s, o), p in paths.items()}


def _files(graph: PipelineGraph, folder: Path) -> dict[str, Path]:
    return {f"{s.name}.{o.name}": folder / o.file for s in graph.steps for o in s.outputs
            if o.kind != VALUE}


# --- the tests --------------------------------------------------------------------------------
@dataclass
class DryRun:
    project: Project
    graph: PipelineGraph
    log: RunLog
    artifacts: dict[str, Path]
    root: Path


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> DryRun:
    """The iris example's compiled Tekton pipeline, run once for the tests below."""
    project = Project.model_validate(iris_data())
    graph = build_graph(project)
    root = tmp_path_factory.mktemp("tekton-dry-run")
    log = run_pipeline(render(project), root)
    return DryRun(project, graph, log, _files(graph, root / "workspaces" / "artifacts"), root)


def test_the_tekton_pipeline_runs_every_step_in_order(dry_run: DryRun) -> None:
    graph, log = dry_run.graph, dry_run.log
    assert log.order == [s.name for s in graph.steps] and log.skipped == []
    assert log.results["gate"] == {"passed": "true"}
    # Every command ran the runtime step contract, nothing else.
    assert [c[1:4] for c in log.commands] == [["-m", "mlspec.runtime", s.name]
                                              for s in graph.steps]
    registration = json.loads(dry_run.artifacts["register.registration"].read_text())
    assert str(registration["version"]) == "1"
    # The registry the run used is the spec's relative sqlite file, inside the run's volume.
    assert (dry_run.root / "workspaces" / "artifacts" / "mlruns.db").exists()


def test_the_tekton_pipeline_matches_the_runtime_run_directly(dry_run: DryRun,
                                                              tmp_path: Path) -> None:
    direct = run_directly(dry_run.project, dry_run.graph, tmp_path / "direct")
    tekton_files = dry_run.artifacts
    metrics = json.loads(tekton_files["evaluate.metrics"].read_text())
    assert metrics == json.loads(direct["evaluate.metrics"].read_text())
    assert metrics["metrics"]["accuracy"] >= 0.9
    decision = json.loads(tekton_files["gate.decision"].read_text())
    assert decision == json.loads(direct["gate.decision"].read_text())
    assert decision["passed"] is True
    registration = json.loads(tekton_files["register.registration"].read_text())
    assert registration["version"] == json.loads(
        direct["register.registration"].read_text())["version"]


def test_the_tekton_pipeline_matches_mlspec_run(dry_run: DryRun, tmp_path: Path) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(iris_data(), sort_keys=False), encoding="utf-8")
    mlspec = Path(sys.executable).parent / "mlspec"
    done = subprocess.run([str(mlspec), "run", str(spec)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / ".mlspec" / "runs" / dry_run.graph.name
                          / "summary.json").read_text())
    tekton = json.loads(dry_run.artifacts["evaluate.metrics"].read_text())
    assert summary["metrics"] == tekton


def test_a_failed_gate_skips_register(tmp_path: Path) -> None:
    data = iris_data()
    data["validation"]["thresholds"]["accuracy"] = {"min": 1.5}  # impossible
    project = Project.model_validate(data)
    log = run_pipeline(render(project), tmp_path)
    assert log.results["gate"] == {"passed": "false"}
    assert log.skipped == ["register"]
    assert "register" not in log.order
    artifacts = tmp_path / "workspaces" / "artifacts"
    assert not (artifacts / "registration.json").exists()
    assert json.loads((artifacts / "gate.json").read_text())["passed"] is False


def test_the_substituter_is_strict() -> None:
    values = {"params.x": "1", "workspaces.w.path": "/w"}
    assert substitute("$(params.x) $(params['x']) $(workspaces.w.path)/f", values) == "1 1 /w/f"
    with pytest.raises(KeyError):
        substitute("$(params.y)", values)
    assert _when_passes([{"input": "$(params.x)", "operator": "in", "values": ["1"]}], values)
    assert not _when_passes([{"input": "$(params.x)", "operator": "notin", "values": ["1"]}],
                            values)
