"""The Tekton target: upstream schemas and tekton-lint on every example and profile, the shape of
what a cluster runs (restricted pods, resources, retries, the gate's `when`), the quoting and CEL
escaping every spec value goes through, the trigger filters evaluated by a real CEL engine, and
goldens.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec import contract
from mlspec.compile.build import render_target
from mlspec.compile.graph import build_graph, resolved_spec
from mlspec.compile.targets import tekton
from mlspec.errors import SpecError
from mlspec.spec.loader import load_spec
from mlspec.spec.models import Project
from tests.conftest import EXAMPLES, example_profiles, oracle, write_files

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REPO = Path(__file__).resolve().parents[3]
CASES = [(spec, profile) for spec in EXAMPLES for profile in example_profiles(spec)]
IDS = [f"{spec.parent.name}-{profile or 'base'}" for spec, profile in CASES]
RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
              "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


# --- helpers ----------------------------------------------------------------------------------
def iris_data() -> dict[str, Any]:
    """The iris example without profiles and without its batch section (the training
    pipeline's objects alone; the batch tests add a section of their own)."""
    data = yaml.safe_load((REPO / "examples" / "iris" / "mlproject.yaml").read_text())
    data.pop("profiles", None)
    data.pop("batch", None)
    return data


def project_of(data: dict[str, Any]) -> Project:
    return Project.model_validate(data)


def render(project: Project) -> dict[str, str]:
    return {f.path: f.content for f in render_target(project, "tekton")}


def render_spec(spec: Path, profile: str | None = None) -> dict[str, str]:
    loaded = load_spec(str(spec), profile)
    assert loaded.project is not None, [d.message for d in loaded.diagnostics]
    return render(loaded.project)


def docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [d for content in files.values() for d in yaml.load_all(content, Loader=LOADER) if d]


def by_kind(files: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs(files) if d["kind"] == kind]


def _leaves(node: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items()
                for k, v in _leaves(value, (*path, key)).items()}
    if isinstance(node, list):
        return {k: v for i, value in enumerate(node) for k, v in _leaves(value, (*path, i)).items()}
    return {path: node}


def write(files: dict[str, str], root: Path) -> Path:
    write_files(files, root)
    return root / tekton.OUT_DIR


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)


def tekton_lint(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the tekton-lint oracle; skip when it cannot install itself (no npm, no network)."""
    result = run(oracle("tekton-lint"), *args)
    if result.returncode == 2 and ("npm not found" in result.stderr
                                   or "npm install failed" in result.stderr):
        pytest.skip(f"tekton-lint could not be set up: {result.stderr.strip()[:200]}")
    return result


def gpu_project() -> Project:
    data = iris_data()
    data["model"]["resources"] = {"cpu": "2", "memory": "4Gi", "gpu": 1,
                                  "node_selector": {
                                      "cloud.google.com/gke-accelerator": "nvidia-l4"},
                                  "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                                   "effect": "NoSchedule"}]}
    return project_of(data)


def deploy_project() -> Project:
    """serving.deploy: auto: the deploy and rollout tasks, their account, the bundle."""
    data = iris_data()
    data["serving"]["deploy"] = "auto"
    return project_of(data)


def minimal_project() -> Project:
    """No triggers at all: no listener, no CronJob, no trigger RBAC."""
    data = iris_data()
    data.pop("triggers")
    return project_of(data)


# --- every example and profile through the upstream checkers (one call per checker) ---------
@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for (spec, profile), case_id in zip(CASES, IDS, strict=True):
        out[case_id] = write(render_spec(spec, profile), tmp_path_factory.mktemp(case_id))
    # Variants the examples may not cover: GPU + placement, and no triggers.
    out["iris-gpu"] = write(render(gpu_project()), tmp_path_factory.mktemp("gpu"))
    out["iris-no-triggers"] = write(render(minimal_project()), tmp_path_factory.mktemp("bare"))
    out["iris-deploy"] = write(render(deploy_project()), tmp_path_factory.mktemp("deploy"))
    return out


def test_every_example_and_profile_passes_the_upstream_schemas(rendered: dict[str, Path]) -> None:
    result = run(oracle("validate-manifests"), *rendered.values())
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 invalid" in result.stdout + result.stderr


@pytest.mark.parametrize("case_id", [*IDS, "iris-gpu", "iris-no-triggers", "iris-deploy"])
def test_every_example_and_profile_passes_tekton_lint_strict(rendered: dict[str, Path],
                                                             case_id: str) -> None:
    # One project per call: tekton-lint treats everything it is given as one namespace.
    result = tekton_lint("--strict", "--format", "json", rendered[case_id])
    problems = [p for p in json.loads(result.stdout) if not _array_result_false_positive(p)]
    assert problems == [], result.stdout  # zero errors and zero warnings
    assert result.returncode == 0 or len(json.loads(result.stdout)) > 0, result.stderr[:3000]


# tekton-lint 1.1.0 reads the whole-array reference `$(tasks.T.results.R[*])` (Tekton's syntax
# for an array result, which a matrix fans out over) as a result named "R[*]". Only that report,
# on a result the Task does declare as an array, is ignored.
_ARRAY_REF = re.compile(r"'([a-z0-9-]+)\[\*\]' is not a result in Task '([a-z0-9-]+)'")


def _array_result_false_positive(problem: dict) -> bool:
    found = _ARRAY_REF.search(problem.get("message", ""))
    if problem.get("rule") != "no-undefined-result" or found is None:
        return False
    path = Path(problem["path"])
    tasks = yaml.safe_load_all((path.parent / path.name.replace("pipeline.yaml",
                                                                 "tasks.yaml")).read_text())
    declared = {(t["metadata"]["labels"].get("mlspec.dev/step"), r["name"]): r.get("type")
                for t in tasks if t for r in t["spec"].get("results", [])}
    return declared.get((found.group(2), found.group(1))) == "array"


def test_the_batch_pipeline_fans_out_with_a_matrix_over_an_array_result() -> None:
    data = iris_data()
    data["batch"] = {"input": "s3://b/scoring/", "output": "s3://b/predictions/",
                     "schedule": "0 2 * * *"}
    files = render(project_of(data))
    names = sorted(name for name in files if name.startswith("tekton/batch-"))
    assert names == [f"tekton/batch-{n}.yaml" for n in (
        "cronjob", "pipeline", "pipelinerun", "rbac", "spec-configmap", "tasks", "triggers")]
    pipeline = next(d for d in yaml.safe_load_all(files["tekton/batch-pipeline.yaml"]) if d)
    score = next(t for t in pipeline["spec"]["tasks"] if t["name"] == "score")
    assert score["matrix"] == {"params": [{"name": "partition",
                                           "value": "$(tasks.partitions.results.partitions[*])"}]}
    report = next(t for t in pipeline["spec"]["tasks"] if t["name"] == "report")
    assert report["runAfter"] == ["partitions", "score"]
    tasks = {t["metadata"]["name"]: t for t in yaml.safe_load_all(files["tekton/batch-tasks.yaml"])
             if t}
    assert tasks["iris-classifier-batch-partitions"]["spec"]["results"][0]["type"] == "array"
    args = tasks["iris-classifier-batch-score"]["spec"]["steps"][0]["args"]
    assert args[-2:] == ["--partition", "$(params.partition)"]
    cron = next(d for d in yaml.safe_load_all(files["tekton/batch-cronjob.yaml"]) if d)
    assert cron["spec"]["schedule"] == "0 2 * * *"
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][-1] \
        == "http://el-iris-classifier-batch.ml-demo.svc.cluster.local:8080"


def test_the_false_positive_filter_keeps_a_real_undefined_result(rendered, tmp_path) -> None:
    """Only the whole-array reference to a declared array result is ignored: a reference to a
    result the Task lacks is still reported."""
    broken = tmp_path / "tekton"
    shutil.copytree(rendered[IDS[0]], broken)
    pipeline = broken / "batch-pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("results.partitions[*]",
                                                     "results.nothing[*]"))
    result = tekton_lint("--strict", "--format", "json", broken)
    problems = [p for p in json.loads(result.stdout) if not _array_result_false_positive(p)]
    assert [p["rule"] for p in problems] == ["no-undefined-result"], result.stdout


def test_tekton_lint_sees_a_broken_reference(rendered: dict[str, Path], tmp_path: Path) -> None:
    """The oracle is not vacuous on our files: an undefined param in one arg is reported."""
    broken = tmp_path / "tekton"
    shutil.copytree(rendered[IDS[0]], broken)
    tasks = broken / "tasks.yaml"
    tasks.write_text(tasks.read_text().replace('"--spec"', '"$(params.nope)"', 1))
    result = tekton_lint("--strict", broken)
    assert result.returncode == 1 and "no-undefined-param" in result.stdout


# --- what a cluster runs ----------------------------------------------------------------------
def test_one_task_per_step_running_the_runtime_contract() -> None:
    project = project_of(iris_data())
    graph = build_graph(project)
    files = render(project)
    tasks = {t["metadata"]["name"]: t for t in by_kind(files, "Task")}
    assert list(tasks) == [f"{graph.name}-{s.name}" for s in graph.steps]
    for step in graph.steps:
        (container,) = tasks[f"{graph.name}-{step.name}"]["spec"]["steps"]
        assert "script" not in container
        assert container["image"] == graph.image
        assert container["command"] == ["python"]
        args = container["args"]
        assert args[:5] == ["-m", "mlspec.runtime", step.name, "--spec",
                            "$(workspaces.spec.path)/spec.json"]
        ins = [args[i + 1] for i, a in enumerate(args) if a == "--in"]
        outs = [args[i + 1] for i, a in enumerate(args) if a == "--out"]
        assert [i.split("=", 1)[0] for i in ins] == [i.name for i in step.inputs]
        assert [o.split("=", 1)[0] for o in outs] == [o.name for o in step.outputs]
        for item in step.inputs:
            file = graph.step(item.step).output(item.output).file
            assert f"{item.name}=$(workspaces.artifacts.path)/{file}" in ins
        # Every $(...) is a whole argument's value or path, never spliced into a command string.
        assert all(a.count("$(") <= 1 for a in args)
    # In a Task, substitutions appear only in args and workingDir (never image, command, env).
    for task in tasks.values():
        places = {path[-2] if isinstance(path[-1], int) else path[-1]
                  for path, value in _leaves(task).items()
                  if isinstance(value, str) and "$(" in value}
        assert places == {"args", "workingDir"}, places


def test_every_step_is_restricted_and_has_resources() -> None:
    files = render(gpu_project())
    for task in by_kind(files, "Task"):
        for container in task["spec"]["steps"]:
            assert container["securityContext"] == RESTRICTED
            res = container["computeResources"]
            assert res["requests"]["cpu"] and res["requests"]["memory"]
            assert res["limits"]["memory"] == res["requests"]["memory"]
            train = task["metadata"]["labels"]["mlspec.dev/step"] == "train"
            assert (res["limits"].get("nvidia.com/gpu") == "1") is train
            if train:
                assert res["requests"] == {"cpu": "2", "memory": "4Gi"}
    for cron in by_kind(render(project_of(iris_data())), "CronJob"):
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"] == RESTRICTED


def test_pipeline_wiring_retries_timeouts_and_the_gate() -> None:
    project = project_of(iris_data())
    graph = build_graph(project)
    (pipeline,) = by_kind(render(project), "Pipeline")
    tasks = {t["name"]: t for t in pipeline["spec"]["tasks"]}
    assert list(tasks) == [s.name for s in graph.steps]
    for step in graph.steps:
        task = tasks[step.name]
        assert task.get("runAfter", []) == list(graph.upstream(step))
        assert task.get("retries", 0) == step.retries
        assert task["timeout"] == tekton._duration(step.timeout_seconds)
        assert {w["name"] for w in task["workspaces"]} == {"artifacts", "spec"}
    assert tasks["register"]["when"] == [{"input": "$(tasks.gate.results.passed)",
                                          "operator": "in", "values": ["true"]}]
    assert all("when" not in t for name, t in tasks.items() if name != "register")
    (gate,) = [t for t in by_kind(render(project), "Task")
               if t["metadata"]["name"].endswith("-gate")]
    assert [r["name"] for r in gate["spec"]["results"]] == ["passed"]
    assert "passed=$(results.passed.path)" in gate["spec"]["steps"][0]["args"]


def test_pipelinerun_has_a_per_run_volume_the_spec_and_a_restricted_pod() -> None:
    project = project_of(iris_data())
    files = render(project)
    (run_,) = by_kind({"r": files["tekton/pipelinerun.yaml"]}, "PipelineRun")
    spec = run_["spec"]
    workspaces = {w["name"]: w for w in spec["workspaces"]}
    claim = workspaces["artifacts"]["volumeClaimTemplate"]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    (configmap,) = by_kind(files, "ConfigMap")
    assert workspaces["spec"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert configmap["immutable"] is True
    assert json.loads(configmap["data"]["spec.json"]) == resolved_spec(project)
    pod = spec["taskRunTemplate"]["podTemplate"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["taskRunTemplate"]["serviceAccountName"] == "iris-classifier-runner"
    graph = build_graph(project)
    total = sum(s.timeout_seconds * (s.retries + 1) for s in graph.steps)
    assert spec["timeouts"]["pipeline"] == tekton._duration(total)


def test_gpu_placement_goes_to_the_train_task_run_only() -> None:
    (run_,) = by_kind({"r": render(gpu_project())["tekton/pipelinerun.yaml"]}, "PipelineRun")
    (specs,) = run_["spec"]["taskRunSpecs"]
    assert specs["pipelineTaskName"] == "train"
    assert specs["podTemplate"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert specs["podTemplate"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert specs["podTemplate"]["securityContext"]["runAsNonRoot"] is True


def test_spec_configmap_name_follows_its_content() -> None:
    a = project_of(iris_data())
    changed = iris_data()
    changed["model"]["params"]["n_estimators"] = 7
    b = project_of(changed)
    name = lambda p: by_kind(render(p), "ConfigMap")[0]["metadata"]["name"]  # noqa: E731
    assert name(a) != name(b) and name(a).startswith("iris-classifier-spec-")


# --- RBAC -------------------------------------------------------------------------------------
def test_rbac_is_least_privilege() -> None:
    files = render(project_of(iris_data()))
    accounts = {a["metadata"]["name"]: a for a in by_kind(files, "ServiceAccount")}
    assert accounts["iris-classifier-runner"]["automountServiceAccountToken"] is False
    (role,) = by_kind(files, "Role")
    verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"]
             for g in rule["apiGroups"] for r in rule["resources"]}
    assert verbs[("tekton.dev", "pipelineruns")] == {"create"}
    assert not any(r in ("secrets", "pods", "taskruns", "pipelines", "tasks")
                   for _, r in verbs), verbs
    assert not any({"delete", "update", "patch"} & v for (g, r), v in verbs.items()
                   if g != "")
    assert all("*" not in rule["verbs"] + rule["resources"] for rule in role["rules"])
    (cluster_role,) = by_kind(files, "ClusterRole")
    assert cluster_role["rules"] == [{
        "apiGroups": ["triggers.tekton.dev"],
        "resources": ["clusterinterceptors", "clustertriggerbindings"],
        "verbs": ["get", "list", "watch"]}]
    (listener,) = by_kind(files, "EventListener")
    assert listener["spec"]["serviceAccountName"] == "iris-classifier-triggers"
    (binding,) = by_kind(files, "RoleBinding")
    assert binding["subjects"][0]["name"] == "iris-classifier-triggers"


def test_no_triggers_means_no_listener_cronjob_or_trigger_rbac() -> None:
    files = render(minimal_project())
    assert sorted(files) == ["tekton/pipeline.yaml", "tekton/pipelinerun.yaml",
                             "tekton/rbac.yaml", "tekton/spec-configmap.yaml", "tekton/tasks.yaml"]
    assert [d["kind"] for d in docs({"r": files["tekton/rbac.yaml"]})] == ["ServiceAccount"]


# --- triggers ---------------------------------------------------------------------------------
def test_event_listener_url() -> None:
    from mlspec.compile.context import build_context

    assert build_context(project_of(iris_data())).webhook("tekton") == \
        "http://el-iris-classifier.ml-demo.svc.cluster.local:8080"


def test_cronjob_posts_json_to_the_listener() -> None:
    project = project_of(iris_data())
    (cron,) = by_kind(render(project), "CronJob")
    assert cron["spec"]["schedule"] == "0 3 * * 1"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert container["command"] == ["curl"]
    assert args[args.index("--request") + 1] == "POST"
    assert args[args.index("--data") + 1] == "{}"
    headers = [args[i + 1] for i, a in enumerate(args) if a == "--header"]
    assert "Content-Type: application/json" in headers
    assert args[-1] == "http://el-iris-classifier.ml-demo.svc.cluster.local:8080"
    assert ":latest" not in container["image"] and ":" in container["image"]


def _filters(project: Project) -> dict[str, str]:
    (listener,) = by_kind(render(project), "EventListener")
    out = {}
    for trigger in listener["spec"]["triggers"]:
        (interceptor,) = trigger["interceptors"]
        assert interceptor["ref"] == {"kind": "ClusterInterceptor", "name": "cel"}
        (param,) = interceptor["params"]
        out[trigger["name"]] = param["value"]
    return out


def _canonical(name: str) -> str:
    # Go's http.CanonicalHeaderKey, which Triggers' header.match applies to both sides.
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def cel_eval(expression: str, headers: dict[str, str], body: dict[str, Any]) -> bool:
    """Evaluate a Triggers CEL filter with a real CEL engine, `header.match` as Triggers has it."""
    cel = pytest.importorskip("cel", reason="common-expression-language (dev extra) is needed")
    ctx = cel.Context()
    ctx.add_variable("header", {_canonical(k): [v] for k, v in headers.items()})
    ctx.add_variable("body", body)
    ctx.add_function("match", lambda hdr, name, value: value in hdr.get(_canonical(name), []))
    try:
        return cel.evaluate(expression, ctx) is True
    except (ValueError, RuntimeError, TypeError, KeyError):
        return False  # Triggers drops an event whose filter errors


def _github_push(ref: str) -> tuple[dict[str, str], dict[str, Any]]:
    return {"X-GitHub-Event": "push", "Content-Type": "application/json"}, \
        {"ref": ref, "after": "0" * 40, "repository": {"full_name": "example/iris"}}


def _gitlab_push(ref: str) -> tuple[dict[str, str], dict[str, Any]]:
    return {"X-Gitlab-Event": "Push Hook"}, {"object_kind": "push", "ref": ref, "after": "1" * 40}


def _alert(project: str = "iris-classifier", retrain: str = "true",
           status: str = "firing") -> tuple[dict[str, str], dict[str, Any]]:
    labels = {"alertname": "MlspecFeatureDrift", contract.PROJECT_LABEL: project,
              contract.RETRAIN_LABEL: retrain}
    return {"Content-Type": "application/json"}, {
        "version": "4", "status": status, "receiver": "mlspec-retrain",
        "alerts": [{"status": "firing", "labels": {"alertname": "Other"}},
                   {"status": status, "labels": labels}]}
SCHEDULE = ({"Content-Type": "application/json", "X-Mlspec-Trigger": "schedule"}, {})


def test_trigger_filters_accept_their_events_only() -> None:
    filters = _filters(project_of(iris_data()))
    assert set(filters) == {"git", "schedule", "alert"}
    events = {
        "github-main": _github_push("refs/heads/main"),
        "gitlab-main": _gitlab_push("refs/heads/main"),
        "github-other": _github_push("refs/heads/feature"),
        "github-tag": _github_push("refs/tags/main"),
        "gitlab-prefix": _gitlab_push("refs/heads/main2"),
        "github-ping": ({"X-GitHub-Event": "ping"}, {"zen": "hi", "ref": "refs/heads/main"}),
        "alert": _alert(),
        "resolved": _alert(status="resolved"),
        "other-project": _alert(project="wine-torch"),
        "no-retrain": _alert(retrain="false"),
        "schedule": SCHEDULE,
    }
    accepted = {name: {t for t, f in filters.items() if cel_eval(f, *event)}
                for name, event in events.items()}
    assert accepted == {
        "github-main": {"git"}, "gitlab-main": {"git"}, "github-other": set(),
        "github-tag": set(), "gitlab-prefix": set(), "github-ping": set(),
        "alert": {"alert"}, "resolved": set(), "other-project": set(), "no-retrain": set(),
        "schedule": {"schedule"},
    }


BRANCHES = ["release/1.x", "it's", 'say "hi"', "back\\slash", "$(params.x)", "a'||true||'",
            "ünïcode-😀", "new\nline", "tab\tx", "main') || (true"]


@pytest.mark.parametrize("branch", BRANCHES)
def test_git_filter_matches_exactly_the_branch(branch: str) -> None:
    data = iris_data()
    data["triggers"]["git"]["branch"] = branch
    git = _filters(project_of(data))["git"]
    assert "$(" not in git and "\n" not in git
    assert cel_eval(git, *_github_push(f"refs/heads/{branch}"))
    assert cel_eval(git, *_gitlab_push(f"refs/heads/{branch}"))
    assert not cel_eval(git, *_github_push("refs/heads/main"))
    assert not cel_eval(git, *_github_push(f"refs/heads/{branch}x"))


# --- quoting and escaping ---------------------------------------------------------------------
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_yaml_str_reads_back_exactly_and_hides_dollar(value: str) -> None:
    quoted = tekton.q(value)
    assert yaml.safe_load(quoted) == value
    assert yaml.safe_load(f"key: {quoted}\nother: 1") == {"key": value, "other": 1}
    assert "$" not in quoted and "\n" not in quoted
    assert all(0x20 <= ord(c) < 0x7F for c in quoted)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(TEXT, inner, max_size=3), max_leaves=10))
def test_q_writes_flow_collections_that_read_back(value: Any) -> None:
    assert yaml.safe_load(f"k: {tekton.q(value)}") == {"k": value}


def test_only_tekton_expressions_keep_their_dollar() -> None:
    assert tekton.q(tekton.TektonExpr("$(params.x)")) == '"$(params.x)"'
    assert tekton.q("$(params.x)") == '"\\u0024(params.x)"'


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_cel_string_evaluates_to_the_value(value: str) -> None:
    cel = pytest.importorskip("cel", reason="common-expression-language (dev extra) is needed")
    literal = tekton.cel_string(value)
    assert "$" not in literal and "\n" not in literal
    assert cel.evaluate(literal, {}) == value
    assert cel.evaluate(f"{literal} == v", {"v": value}) is True


def test_block_refuses_text_it_cannot_hold() -> None:
    for bad in ["", " lead", "trail\n", "ünï", "tab\tx"]:
        with pytest.raises(ValueError):
            tekton.block(bad, 4)
    assert yaml.safe_load("k: |-\n" + tekton.block('{\n  "a": 1\n}', 2)) == {"k": '{\n  "a": 1\n}'}


# --- values the output cannot carry are rejected with a clear error -------------------------
@pytest.mark.parametrize("path, value, code", [
    (("metadata", "labels", "team"), "data science", tekton.BAD_LABEL),
    (("metadata", "labels", "team"), "$(params.x)", tekton.BAD_LABEL),
    (("serving", "image"), "ghcr.io/x/y:$(params.tag)", tekton.BAD_IMAGE),
    (("serving", "image"), "img; rm -rf /", tekton.BAD_IMAGE),
    (("triggers", "schedule"), "0 3 * * 1; curl evil", tekton.BAD_SCHEDULE),
    (("triggers", "schedule"), "$(date)", tekton.BAD_SCHEDULE),
    (("model", "resources", "node_selector"), {"pool": "gpu nodes"}, tekton.BAD_LABEL),
])
def test_unsafe_values_are_rejected(path: tuple[str, ...], value: Any, code: str) -> None:
    data = iris_data()
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    with pytest.raises(SpecError) as err:
        render(project_of(data))
    (problem,) = err.value.diagnostics
    assert problem.code == code and problem.path.startswith(".".join(path[:2]))
    assert problem.message and problem.hint


def test_schedule_is_normalised() -> None:
    data = iris_data()
    data["triggers"]["schedule"] = "  0  3 * *   1 "
    (cron,) = by_kind(render(project_of(data)), "CronJob")
    assert cron["spec"]["schedule"] == "0 3 * * 1"


# --- determinism and goldens ------------------------------------------------------------------
def test_output_is_deterministic_and_has_no_absolute_paths() -> None:
    first, second = render_spec(EXAMPLES[0]), render_spec(EXAMPLES[0])
    assert first == second
    for content in first.values():
        assert str(REPO) not in content and "/tmp/pytest" not in content


def test_mlspec_compile_writes_the_same_files() -> None:
    from mlspec.compile.build import compile_project

    loaded = load_spec(str(EXAMPLES[0]))
    compiled = compile_project(loaded.project, ["tekton"], spec_sha256=loaded.sha256,
                               spec_name=EXAMPLES[0].name)
    written = {f.path: f.content for f in compiled.files if f.path.startswith("tekton/")}
    assert written == render_spec(EXAMPLES[0])
    kustomization = next(f.content for f in compiled.files if f.path == "kustomization.yaml")
    # generateName is for `kubectl create`: the PipelineRun stays out of `kubectl apply -k`.
    assert "tekton/pipelinerun.yaml" not in kustomization and "tekton/tasks.yaml" in kustomization


@pytest.mark.parametrize("seconds, text", [(3600, "1h0m0s"), (90, "0h1m30s"),
                                           (43200, "12h0m0s"), (0, "0h0m0s")])
def test_duration(seconds: int, text: str) -> None:
    assert tekton._duration(seconds) == text
