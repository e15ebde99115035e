"""The serving target: every rollout strategy's manifests, goldens, upstream schemas, escaping."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec.compile import kserve
from mlspec.compile.build import render_target
from mlspec.spec.models import Project
from tests.conftest import EXAMPLES, oracle

REPO = Path(__file__).resolve().parents[3]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
GOLDEN = REPO / "tests" / "golden" / "serving"
STRATEGIES = sorted(kserve.STRATEGIES)


def project_from(data: dict) -> Project:
    return Project.model_validate(data)


def iris_data(**serving_overrides: object) -> dict:
    data = yaml.safe_load(IRIS.read_text())
    data["serving"]["rollout"].update(serving_overrides)
    return data


def render(project: Project) -> dict[str, str]:
    return {f.path: f.content for f in render_target(project, "serving")}


def docs(files: dict[str, str]) -> list[dict]:
    return [d for text in files.values() for d in yaml.safe_load_all(text) if d]


def write(files: dict[str, str], root: Path) -> list[Path]:
    paths = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return paths


def _without_version(files: dict[str, str]) -> dict[str, str]:
    """The default image's tag is mlspec's version; goldens must not change with a release."""
    from mlspec import __version__

    tag = f"mlspec-runtime:{__version__}"
    return {path: text.replace(tag, "mlspec-runtime:VERSION") for path, text in files.items()}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_matches_golden(strategy: str, update_golden: bool) -> None:
    files = _without_version(render(project_from(iris_data(strategy=strategy))))
    folder = GOLDEN / strategy
    if update_golden:
        if folder.exists():
            for old in folder.rglob("*.yaml"):
                old.unlink()
        write({rel.removeprefix("serving/"): text for rel, text in files.items()}, folder)
    expected = {f"serving/{p.relative_to(folder).as_posix()}": p.read_text()
                for p in sorted(folder.rglob("*.yaml"))}
    assert files == expected, "regenerate: bash scripts/regen.sh"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_passes_upstream_schemas(strategy: str, tmp_path: Path) -> None:
    check = oracle("validate-manifests")
    data = iris_data(strategy=strategy)
    data["serving"]["deployment_mode"] = "raw" if strategy != "canary" else "serverless"
    paths = write(render(project_from(data)), tmp_path)
    done = subprocess.run([str(check), *map(str, paths)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_example_passes_upstream_schemas(spec: Path, tmp_path: Path) -> None:
    from mlspec.spec.loader import load_spec

    check = oracle("validate-manifests")
    loaded = load_spec(str(spec))
    assert loaded.valid
    paths = write(render(loaded.project), tmp_path)
    done = subprocess.run([str(check), *map(str, paths)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_objects_per_strategy() -> None:
    kinds = {s: sorted((d["kind"], d["metadata"]["name"])
                       for d in docs(render(project_from(iris_data(strategy=s)))))
             for s in STRATEGIES}
    assert kinds["canary"] == [("ConfigMap", "iris-classifier-rollout-plan"),
                               ("InferenceService", "iris-classifier")]
    assert kinds["shadow"] == [("ConfigMap", "iris-classifier-rollout-plan"),
                               ("InferenceService", "iris-classifier"),
                               ("InferenceService", "iris-classifier-shadow"),
                               ("VirtualService", "iris-classifier-shadow")]
    assert kinds["ab"] == [("ConfigMap", "iris-classifier-rollout-plan"),
                           ("InferenceGraph", "iris-classifier-ab"),
                           ("InferenceService", "iris-classifier"),
                           ("InferenceService", "iris-classifier-candidate")]
    assert kinds["blue-green"] == [("ConfigMap", "iris-classifier-rollout-plan"),
                                   ("InferenceService", "iris-classifier-blue"),
                                   ("InferenceService", "iris-classifier-green"),
                                   ("Service", "iris-classifier"),
                                   ("VirtualService", "iris-classifier")]


def _by_kind(files: dict[str, str], kind: str) -> list[dict]:
    return [d for d in docs(files) if d["kind"] == kind]


def test_inference_service_predictor() -> None:
    data = iris_data(strategy="canary", traffic_percent=20)
    data["serving"]["replicas"] = {"min": 2, "max": 7, "target_concurrency": 5}
    (isvc,) = _by_kind(render(project_from(data)), "InferenceService")
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Serverless"
    assert annotations["prometheus.io/scrape"] == "true"
    predictor = isvc["spec"]["predictor"]
    scaling = (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleTarget"])
    assert scaling == (2, 7, 5)
    assert predictor["canaryTrafficPercent"] == 20
    (container,) = predictor["containers"]
    assert container["args"][:2] == ["serve", "models:/iris-classifier/unpinned"]
    assert container["ports"][0]["containerPort"] == 8080
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_raw_mode_annotation() -> None:
    data = iris_data(strategy="blue-green")
    data["serving"]["deployment_mode"] = "raw"
    for isvc in _by_kind(render(project_from(data)), "InferenceService"):
        mode = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
        assert mode == "RawDeployment"
        assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


def test_shadow_mirrors_and_ab_splits_traffic_percent() -> None:
    (vs,) = _by_kind(render(project_from(iris_data(strategy="shadow", traffic_percent=25))),
                     "VirtualService")
    route = vs["spec"]["http"][0]
    assert route["mirrorPercentage"] == {"value": 25.0}
    assert route["mirror"]["host"].startswith("iris-classifier-shadow-predictor.")
    (graph,) = _by_kind(render(project_from(iris_data(strategy="ab", traffic_percent=30))),
                        "InferenceGraph")
    steps = graph["spec"]["nodes"]["root"]["steps"]
    assert graph["spec"]["nodes"]["root"]["routerType"] == "Splitter"
    assert [(s["serviceName"], s["weight"]) for s in steps] == [
        ("iris-classifier", 70), ("iris-classifier-candidate", 30)]


def test_blue_green_route_stays_on_blue_until_the_rollout_switches() -> None:
    files = render(project_from(iris_data(strategy="blue-green")))
    (vs,) = _by_kind(files, "VirtualService")
    weights = {r["destination"]["host"].split("-predictor")[0]: r["weight"]
               for r in vs["spec"]["http"][0]["route"]}
    assert weights == {"iris-classifier-blue": 100, "iris-classifier-green": 0}
    (cm,) = _by_kind(files, "ConfigMap")
    plan = yaml.safe_load(cm["data"]["plan.yaml"])
    assert plan["services"] == {"stable": "iris-classifier-blue",
                                "candidate": "iris-classifier-green"}
    assert plan["router"] == {"kind": "VirtualService", "name": "iris-classifier"}
    assert plan["smoke"] is True and [g["name"] for g in plan["gates"]] == [
        "error-rate", "latency-p99-seconds", "feature-drift"]


def test_shadow_and_ab_plans() -> None:
    shadow = yaml.safe_load(_by_kind(render(project_from(iris_data(strategy="shadow"))),
                                     "ConfigMap")[0]["data"]["plan.yaml"])
    assert shadow["mirrorPercent"] == 10 and shadow["hold"] == "10m"
    agreement = shadow["gates"][-1]
    assert agreement["name"] == "prediction-agreement" and agreement["min"] == 0.95
    data = iris_data(strategy="ab")
    data["serving"]["rollout"].update(min_samples=500, significance=0.01)
    ab = yaml.safe_load(_by_kind(render(project_from(data)), "ConfigMap")[0]["data"]["plan.yaml"])
    assert ab["test"] == {"name": "welch-z-one-sided", "minSamples": 500, "significance": 0.01,
                          "loss": "misclassification"}
    assert set(ab["feedback"]) == {"samples", "loss", "lossSquared"}


def test_canary_plan_steps_and_gates() -> None:
    (cm,) = _by_kind(render(project_from(iris_data(strategy="canary", steps=[5, 25, 100]))),
                     "ConfigMap")
    plan = yaml.safe_load(cm["data"]["plan.yaml"])
    assert [s["trafficPercent"] for s in plan["steps"]] == [5, 25, 100]
    gates = {g["name"]: g for g in plan["steps"][0]["gates"]}
    assert set(gates) == {"error-rate", "latency-p99-seconds", "feature-drift",
                          "performance-accuracy"}
    assert gates["latency-p99-seconds"]["max"] == 0.25
    assert gates["performance-accuracy"]["min"] == 0.85
    default = yaml.safe_load(_by_kind(render(project_from(iris_data(strategy="canary"))),
                                      "ConfigMap")[0]["data"]["plan.yaml"])
    assert [s["trafficPercent"] for s in default["steps"]] == [10, 50, 100]


def test_every_plan_query_parses_in_promtool(tmp_path: Path) -> None:
    promtool = oracle("promtool")
    queries = []
    for strategy in STRATEGIES:
        (cm,) = _by_kind(render(project_from(iris_data(strategy=strategy))), "ConfigMap")
        plan = yaml.safe_load(cm["data"]["plan.yaml"])
        gates = plan["steps"][0]["gates"] if strategy == "canary" else plan["gates"]
        queries += [g["query"] for g in gates] + list((plan.get("feedback") or {}).values())
    assert len(queries) >= 17
    rules = {"groups": [{"name": "gates", "rules": [
        {"record": f"mlspec:gate_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_canary_gates_judge_each_version_on_its_own(tmp_path: Path) -> None:
    """With the stable version at 100 req/s and the canary at 1 req/s, half of it failing and
    slow, promtool evaluates the gates to the canary's own figures (a whole-service ratio would
    read 0.5 %, under any sensible threshold); a healthy canary's error rate is 0, not empty."""
    promtool = oracle("promtool")
    (cm,) = _by_kind(render(project_from(iris_data(strategy="canary"))), "ConfigMap")
    gates = {g["name"]: g["query"]
             for g in yaml.safe_load(cm["data"]["plan.yaml"])["steps"][0]["gates"]}
    model = 'model="iris-classifier"'

    def series(name: str, labels: str, per_minute: int) -> dict:
        return {"series": f"{name}{{{model},{labels}}}", "values": f"0+{per_minute}x15"}

    def case(inputs: list[dict], error_rate: float, p99: float) -> dict:
        return {"interval": "1m", "input_series": inputs, "promql_expr_test": [
            {"expr": gates["error-rate"], "eval_time": "10m",
             "exp_samples": [{"labels": "{}", "value": error_rate}]},
            {"expr": gates["latency-p99-seconds"], "eval_time": "10m",
             "exp_samples": [{"labels": "{}", "value": p99}]}]}

    stable = [series("mlspec_requests_total", 'version="1",code="200"', 6000),
              series("mlspec_request_duration_seconds_bucket", 'version="1",le="0.1"', 6000),
              series("mlspec_request_duration_seconds_bucket", 'version="1",le="+Inf"', 6000)]
    failing = [series("mlspec_requests_total", 'version="2",code="200"', 30),
               series("mlspec_requests_total", 'version="2",code="500"', 30),
               series("mlspec_request_duration_seconds_bucket", 'version="2",le="0.1"', 0),
               series("mlspec_request_duration_seconds_bucket", 'version="2",le="1"', 60),
               series("mlspec_request_duration_seconds_bucket", 'version="2",le="+Inf"', 60)]
    healthy = [series("mlspec_requests_total", 'version="2",code="200"', 60),
               series("mlspec_request_duration_seconds_bucket", 'version="2",le="0.1"', 60),
               series("mlspec_request_duration_seconds_bucket", 'version="2",le="+Inf"', 60)]
    tests = {"rule_files": [], "evaluation_interval": "1m",
             "tests": [case(stable + failing, 0.5, 0.991), case(stable + healthy, 0.0, 0.099)]}
    path = tmp_path / "gates-test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([str(promtool), "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_output_is_deterministic() -> None:
    project = project_from(iris_data(strategy="shadow"))
    assert render(project) == render(copy.deepcopy(project))


def test_spec_values_cannot_inject_structure() -> None:
    data = iris_data(strategy="canary")
    evil = 'x"\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: pwned}\n'
    data["registry"]["tracking_uri"] = evil
    data["metadata"]["labels"] = {"team": "a\nkind: Secret", "ok": "fine"}
    data["serving"]["image"] = "repo/img:1\n  privileged: true"
    files = render(project_from(data))
    found = docs(files)
    assert sorted(d["kind"] for d in found) == ["ConfigMap", "InferenceService"]
    (isvc,) = _by_kind(files, "InferenceService")
    container = isvc["spec"]["predictor"]["containers"][0]
    assert {"name": "MLFLOW_TRACKING_URI", "value": evil} in container["env"]
    assert container["image"] == "repo/img:1\n  privileged: true"
    labels = isvc["metadata"]["labels"]
    assert labels["ok"] == "fine" and "team" not in labels  # not a valid label value: dropped


def test_auto_without_previous_is_canary(monkeypatch: pytest.MonkeyPatch) -> None:
    # The renderer is pure: a previous spec named in the environment is the command's to read.
    monkeypatch.setenv("MLSPEC_PREVIOUS_SPEC", "/nonexistent/previous.yaml")
    files = render(project_from(iris_data(strategy="auto")))
    assert "serving/rollout-plan.yaml" in files


@pytest.mark.parametrize("change,expected", [
    ({"model": {"estimator": "sklearn.ensemble.ExtraTreesClassifier"}}, "shadow"),
    ({"model": {"params": {"n_estimators": 50}}}, "ab"),
    ({"data": {"checks": {"min_rows": 120}}}, "canary"),
])
def test_auto_picks_from_the_previous_spec(change: dict, expected: str) -> None:
    from mlspec.compile.context import resolve_strategy

    previous = project_from(iris_data(strategy="auto"))
    data = iris_data(strategy="auto")
    for section, values in change.items():
        for key, value in values.items():
            if isinstance(value, dict):
                data[section][key].update(value)
            else:
                data[section][key] = value
    assert resolve_strategy(project_from(data), previous) == expected


def test_inference_service_names_are_the_contexts() -> None:
    from mlspec.compile.context import build_context

    names = {}
    for s in STRATEGIES:
        project = project_from(iris_data(strategy=s))
        written = sorted(d["metadata"]["name"] for d in docs(render(project))
                         if d["kind"] == "InferenceService")
        assert written == sorted(build_context(project).inference_services)
        names[s] = written
    assert names == {"ab": ["iris-classifier", "iris-classifier-candidate"],
                     "blue-green": ["iris-classifier-blue", "iris-classifier-green"],
                     "canary": ["iris-classifier"],
                     "shadow": ["iris-classifier", "iris-classifier-shadow"]}


def test_container_args_parse_in_the_server() -> None:
    from mlspec.runtime.serving.server import _parser

    data = iris_data(strategy="shadow")
    data["monitoring"]["drift"].update({"method": "ks", "features": ["sepal_length"]})
    for isvc in _by_kind(render(project_from(data)), "InferenceService"):
        container = isvc["spec"]["predictor"]["containers"][0]
        assert container["command"] == ["python", "-m", "mlspec.runtime"]
        assert container["args"][0] == "serve"
        args = _parser().parse_args(container["args"][1:])
        # The shadow's server compares: the stable version answers, the candidate is mirrored.
        served = args.candidate if args.mirror else args.model_uri
        assert served == isvc["metadata"]["annotations"]["mlspec.dev/model-uri"]
        if args.mirror:
            assert args.model_uri == "models:/iris-classifier/unpinned-stable"
        assert (args.port, args.name, args.drift_method, args.drift_features) == (
            8080, "iris-classifier", "ks", ["sepal_length"])


def test_auto_deploy_adds_the_deployer_s_least_privilege_rbac(tmp_path: Path) -> None:
    data = iris_data()
    data["serving"]["deploy"] = "auto"
    files = render(project_from(data))
    assert "serving/deployer-rbac.yaml" in files
    account, role, binding = yaml.safe_load_all(files["serving/deployer-rbac.yaml"])
    assert [d["kind"] for d in (account, role, binding)] == [
        "ServiceAccount", "Role", "RoleBinding"]
    assert {d["metadata"]["name"] for d in (account, role, binding)} == {
        "iris-classifier-deployer"}
    # Namespaced, exactly the three kinds, no delete/list/watch, nothing else.
    assert role["rules"] == [
        {"apiGroups": ["serving.kserve.io"],
         "resources": ["inferenceservices", "inferencegraphs"],
         "verbs": ["create", "get", "patch"]},
        {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices"],
         "verbs": ["create", "get", "patch"]}]
    subjects = {s["name"] for s in binding["subjects"]}
    assert subjects == {"iris-classifier-deployer", "default-editor"}  # kfp is a target
    check = oracle("validate-manifests")
    done = subprocess.run([str(check), *map(str, write(files, tmp_path))], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    manual = render(project_from(iris_data()))
    assert "serving/deployer-rbac.yaml" not in manual


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_served_model_is_an_unpinned_template_with_a_role(strategy: str) -> None:
    data = iris_data(strategy=strategy)
    data["serving"]["deployment_mode"] = "raw" if strategy != "canary" else "serverless"
    for doc in docs(render(project_from(data))):
        notes = doc["metadata"].get("annotations") or {}
        if doc["kind"] in ("ConfigMap", "Service"):
            # the rollout plan and blue-green's mesh Service pin nothing: kubectl applies them
            assert "mlspec.dev/deploy" not in notes
            continue
        assert notes["mlspec.dev/deploy"] == "template", doc["metadata"]["name"]
        if doc["kind"] == "InferenceService":
            assert notes["mlspec.dev/model-uri"] == "models:/iris-classifier/unpinned"
            assert notes["mlspec.dev/model-role"] in ("candidate", "stable")
            args = doc["spec"]["predictor"]["containers"][0]["args"]
            assert "models:/iris-classifier/unpinned" in args[1:4]
            assert not [a for a in args if "@" in a]  # no alias anywhere in what is served
