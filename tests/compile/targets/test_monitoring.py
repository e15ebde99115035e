"""The monitoring target: real promtool, amtool, the upstream CRD schemas and Grafana's schema.

Every example and every profile is compiled and checked; a hostile spec proves that feature
names cannot break out of PromQL, YAML or annotation templates; a tampered rule file proves the
generated promtool tests can fail.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec import contract
from mlspec.compile.build import render_target
from mlspec.compile.promql import promql_string, regex_literal
from mlspec.compile.targets import monitoring
from mlspec.compile.targets.monitoring.promtool import TEMPLATE_PART
from mlspec.compile.targets.monitoring.rules import ALERT_BATCH_DRIFT, ALERT_BATCH_VIOLATIONS
from mlspec.spec.loader import load_spec
from tests.conftest import (
    EXAMPLES,
    check_golden,
    example_profiles,
    oracle,
    program,
    write_files,
)

REPO = Path(__file__).resolve().parents[3]
GRAFANA_SCHEMA = REPO / "tests" / "data" / "grafana-dashboard.schema.json"
GOLDEN = REPO / "tests" / "golden" / "monitoring"
CASES = [(spec, profile) for spec in EXAMPLES for profile in example_profiles(spec)]
IDS = [f"{spec.parent.name}-{profile or 'base'}" for spec, profile in CASES]
IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
# The Kubernetes objects the target writes (the rest are plain files).
K8S_OBJECTS = ("alertmanagerconfig.yaml", "grafana-dashboard-configmap.yaml", "prometheusrule.yaml",
               "servicemonitor.yaml")

HOSTILE_FEATURES = [
    'quote"d', "back\\slash", "pipe|dot.*star", "{{ $labels.model }}", "new\nline", "ünïcode",
    "sp ace", "dollar$x", "') or vector(1) #", "key: value\nother: 1",
]


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def _render(spec: Path | str, profile: str | None = None) -> dict[str, str]:
    loaded = load_spec(str(spec), profile)
    assert loaded.project is not None, [d.message for d in loaded.diagnostics]
    files = render_target(loaded.project, "monitoring")
    return {f.path: f.content for f in files}


def _write(files: dict[str, str], root: Path) -> Path:
    write_files(files, root)
    return root / monitoring.OUT


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every example × profile rendered once into its own folder."""
    out = {}
    for (spec, profile), case_id in zip(CASES, IDS, strict=True):
        out[case_id] = _write(_render(spec, profile), tmp_path_factory.mktemp(case_id))
    return out


def _hostile_spec(tmp_path: Path, **monitoring_overrides: object) -> Path:
    data = yaml.safe_load(IRIS.read_text())
    names = [*HOSTILE_FEATURES, "unwatched"]
    data["data"]["features"] = {name: {"type": "float"} for name in names}
    data["monitoring"]["drift"]["features"] = HOSTILE_FEATURES
    data["monitoring"].update(monitoring_overrides)
    data.pop("profiles", None)
    path = tmp_path / "mlproject.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


# --- every example and profile, through the real checkers -------------------------------------
@pytest.mark.parametrize("case_id", IDS)
def test_promtool_checks_and_tests_the_rules(rendered: dict[str, Path], case_id: str) -> None:
    promtool = program("promtool")
    folder = rendered[case_id]
    check = _run(promtool, "check", "rules", "rules.yaml", cwd=folder)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = _run(promtool, "test", "rules", "rules.test.yaml", cwd=folder)
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.parametrize("case_id", IDS)
def test_manifests_pass_the_upstream_crd_schemas(rendered: dict[str, Path], case_id: str) -> None:
    folder = rendered[case_id]
    manifests = [folder / name for name in K8S_OBJECTS]
    assert all(path.is_file() for path in manifests)  # every example retrains on an alert
    result = _run(oracle("validate-manifests"), *manifests)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(manifests)
    assert f"{count} document(s) in {count} file(s), 0 invalid" in result.stdout + result.stderr
    crd = _run(oracle("promtool-crd"), "check", folder / "prometheusrule.yaml")
    assert crd.returncode == 0, crd.stdout + crd.stderr


@pytest.mark.parametrize("case_id", IDS)
def test_alertmanager_config_is_valid(rendered: dict[str, Path], case_id: str) -> None:
    result = _run(program("amtool"), "check-config", rendered[case_id] / "alertmanager.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case_id", IDS)
def test_dashboard_matches_grafana_schema(rendered: dict[str, Path], case_id: str) -> None:
    import jsonschema

    schema = json.loads(GRAFANA_SCHEMA.read_text())
    dashboard = json.loads((rendered[case_id] / "grafana-dashboard.json").read_text())
    errors = [f"{e.json_path}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(dashboard)]
    assert errors == []
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("requests", "latency", "error", "drift", "performance"):
        assert topic in titles
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (contract.REQUESTS_TOTAL, contract.REQUEST_DURATION, contract.FEATURE_DRIFT,
                   contract.MODEL_PERFORMANCE, contract.MODEL_INFO):
        assert metric in exprs


def test_grafana_schema_rejects_a_broken_dashboard(rendered: dict[str, Path]) -> None:
    import jsonschema

    schema = json.loads(GRAFANA_SCHEMA.read_text())
    dashboard = json.loads((rendered[IDS[0]] / "grafana-dashboard.json").read_text())
    dashboard["panels"][0]["gridPos"]["w"] = 30
    del dashboard["templating"]
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(dashboard))) == 2


# --- the tests can fail ----------------------------------------------------------------------
@pytest.mark.parametrize("pattern, replacement", [
    (r"(mlspec_feature_drift:avg\S+\{[^}]*\} > )[0-9.]+", r"\g<1>1000"),  # threshold
    (r"(alert: MLSpecFeatureDrift\n(?:.*\n)*?    for: )\S+", r"\g<1>0s"),  # no `for`
    (r'(feature=~")petal_length\|', r"\g<1>"),  # a feature no longer watched
], ids=["threshold", "for", "feature"])
def test_promtool_tests_fail_when_a_rule_is_tampered(tmp_path: Path, pattern: str,
                                                     replacement: str) -> None:
    promtool = program("promtool")
    folder = _write(_render(IRIS), tmp_path)
    rules = folder / "rules.yaml"
    text, count = re.subn(pattern, replacement, rules.read_text())
    assert count >= 1
    rules.write_text(text)
    result = _run(promtool, "test", "rules", "rules.test.yaml", cwd=folder)
    assert result.returncode == 1
    assert monitoring.ALERT_DRIFT in result.stdout + result.stderr


# --- escaping ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value, literal", [
    ("plain", '"plain"'),
    ('a"b', '"a\\"b"'),
    ("a\\b", '"a\\\\b"'),
    ("a\nb\tc\rd", '"a\\nb\\tc\\rd"'),
    ("bell\x07", '"bell\\x07"'),
    ("ünï", '"ünï"'),
])
def test_promql_string(value: str, literal: str) -> None:
    assert promql_string(value) == literal


@pytest.mark.parametrize("value", HOSTILE_FEATURES + ["", "a.b", "(x)", "[a-z]+", "^$"])
def test_regex_literal_matches_exactly_itself(value: str) -> None:
    pattern = re.compile(regex_literal(value), re.DOTALL)
    assert pattern.fullmatch(value)
    assert not pattern.fullmatch(value + "x")


def test_hostile_feature_names_stay_data(tmp_path: Path) -> None:
    """Each hostile feature drifts alone and fires for itself only, under the real promtool."""
    promtool = program("promtool")
    files = _render(_hostile_spec(tmp_path))
    folder = _write(files, tmp_path / "out")
    assert _run(promtool, "check", "rules", "rules.yaml", cwd=folder).returncode == 0
    unit = _run(promtool, "test", "rules", "rules.test.yaml", cwd=folder)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    tests = yaml.safe_load((folder / "rules.test.yaml").read_text())
    fired = {a["exp_labels"]["feature"] for t in tests["tests"] for r in t["alert_rule_test"]
             for a in r["exp_alerts"] if r["alertname"] == monitoring.ALERT_DRIFT}
    assert fired == set(HOSTILE_FEATURES)
    # YAML: a feature name never adds a key; the rule files keep their exact shape.
    rule = yaml.safe_load(files["monitoring/prometheusrule.yaml"])
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"}
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            assert set(item) <= {"record", "alert", "expr", "for", "labels", "annotations"}
            # Annotations are Go templates: spec text must never reach them.
            for text in item.get("annotations", {}).values():
                assert "{{" not in TEMPLATE_PART.sub("", text)
                stripped = TEMPLATE_PART.sub("", text)
                assert not any(name in stripped for name in HOSTILE_FEATURES)
    assert json.loads(files["monitoring/grafana-dashboard.json"])  # still valid JSON


# --- semantics --------------------------------------------------------------------------------
def _alerts(files: dict[str, str]) -> dict[str, dict]:
    groups = yaml.safe_load(files["monitoring/rules.yaml"])["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_retraining_labels_follow_retrain_on_and_the_route_matches_them() -> None:
    files = _render(IRIS)
    alerts = _alerts(files)
    assert set(alerts) == {monitoring.ALERT_DRIFT, monitoring.ALERT_PERFORMANCE,
                           monitoring.ALERT_LATENCY, monitoring.ALERT_ERRORS,
                           monitoring.ALERT_NO_TRAFFIC, monitoring.ALERT_NOT_READY,
                           ALERT_BATCH_VIOLATIONS, ALERT_BATCH_DRIFT}
    retrain = {name for name, r in alerts.items() if r["labels"].get(contract.RETRAIN_LABEL)}
    # Drift in a batch is a retraining signal as drift online is; broken rows are not.
    assert retrain == {monitoring.ALERT_DRIFT, monitoring.ALERT_PERFORMANCE, ALERT_BATCH_DRIFT}
    for rule in alerts.values():
        assert rule["labels"]["severity"] == "warning"
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    config = yaml.safe_load(files["monitoring/alertmanager.yaml"])
    (route,) = config["route"]["routes"]
    assert f'{contract.RETRAIN_LABEL}="true"' in route["matchers"]
    receiver = next(r for r in config["receivers"] if r["name"] == route["receiver"])
    assert receiver["webhook_configs"][0]["url"].startswith("http://el-iris-classifier.ml-demo.")


def test_no_retraining_route_without_on_alert(tmp_path: Path) -> None:
    data = yaml.safe_load(IRIS.read_text())
    data["triggers"]["on_alert"] = False
    data["monitoring"]["drift"]["window"] = "2h30m"
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data))
    files = _render(spec)
    assert all(contract.RETRAIN_LABEL not in r["labels"] for r in _alerts(files).values())
    assert yaml.safe_load(files["monitoring/alertmanager.yaml"])["route"]["routes"] == []
    assert "monitoring/alertmanagerconfig.yaml" not in files  # it would route nothing
    drift = _alerts(files)[monitoring.ALERT_DRIFT]
    assert drift["for"] == "5m" and "[2h30m]" in files["monitoring/rules.yaml"]


# --- the AlertmanagerConfig and the dashboard ConfigMap --------------------------------------
def _operator_config(amc: dict) -> dict:
    """What the Prometheus Operator makes of an AlertmanagerConfig (its documented behaviour):
    the route becomes a first-level route with ``continue: true``, its namespace matchers
    replaced by ``namespace="<the object's namespace>"``, receiver names prefixed with
    ``<namespace>/<name>/``; merged under a default route as an Alertmanager config."""
    meta, spec = amc["metadata"], amc["spec"]
    prefix = f"{meta['namespace']}/{meta['name']}/"
    route = spec["route"]
    matchers = [m for m in route["matchers"]
                if not (m["name"] == "namespace" and m["matchType"] in ("=", "=~"))]
    matchers.append({"name": "namespace", "value": meta["namespace"], "matchType": "="})
    receivers = [{"name": prefix + r["name"],
                  "webhook_configs": [{"url": w["url"], "send_resolved": w["sendResolved"]}
                                      for w in r.get("webhookConfigs", [])]}
                 for r in spec["receivers"]]
    return {
        "route": {"receiver": "default", "routes": [{
            "receiver": prefix + route["receiver"],
            "matchers": [f"{m['name']}{m['matchType']}{json.dumps(m['value'])}"
                         for m in matchers],
            "group_by": route["groupBy"], "group_wait": route["groupWait"],
            "group_interval": route["groupInterval"], "repeat_interval": route["repeatInterval"],
            "continue": True,
        }]},
        "receivers": [{"name": "default"}, *receivers],
    }


@pytest.mark.parametrize("case_id", IDS)
def test_alertmanagerconfig_routes_exactly_the_retraining_alerts(rendered: dict[str, Path],
                                                                  case_id: str) -> None:
    """Every alert of the PrometheusRule, with its rule labels and the namespace label the rule
    carries, goes through the route the Operator makes of the AlertmanagerConfig, under the real
    Alertmanager's route matching (amtool): the retraining alerts reach the trigger, no other."""
    folder = rendered[case_id]
    rule = yaml.safe_load((folder / "prometheusrule.yaml").read_text())
    amc = yaml.safe_load((folder / "alertmanagerconfig.yaml").read_text())
    plain = yaml.safe_load((folder / "alertmanager.yaml").read_text())
    assert (amc["apiVersion"], amc["kind"]) == ("monitoring.coreos.com/v1alpha1",
                                                "AlertmanagerConfig")
    assert amc["metadata"]["namespace"] == rule["metadata"]["namespace"]
    assert amc["metadata"]["labels"] == rule["metadata"]["labels"]
    # The same route as the plain config, plus the namespace matcher the Operator would add.
    (sub,) = plain["route"]["routes"]
    route = amc["spec"]["route"]
    assert [f"{m['name']}{m['matchType']}{json.dumps(m['value'])}"
            for m in route["matchers"]] == [*sub["matchers"],
                                            f'namespace="{rule["metadata"]["namespace"]}"']
    assert (route["groupBy"], route["groupWait"], route["groupInterval"],
            route["repeatInterval"]) == (sub["group_by"], sub["group_wait"],
                                         sub["group_interval"], sub["repeat_interval"])
    (receiver,) = amc["spec"]["receivers"]
    assert receiver["name"] == route["receiver"] == sub["receiver"]
    plain_receiver = next(r for r in plain["receivers"] if r["name"] == sub["receiver"])
    assert receiver["webhookConfigs"] == [{"url": plain_receiver["webhook_configs"][0]["url"],
                                           "sendResolved": False}]

    config = folder.parent / "operator-alertmanager.yaml"
    config.write_text(yaml.safe_dump(_operator_config(amc)))
    amtool = program("amtool")
    check = _run(amtool, "check-config", config)
    assert check.returncode == 0, check.stdout + check.stderr
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    trigger = _operator_config(amc)["route"]["routes"][0]["receiver"]
    for alert in alerts:
        labels = {"alertname": alert["alert"], **alert["labels"]}
        # The Operator's namespace matcher only matches because the rule sets the label.
        assert labels["namespace"] == rule["metadata"]["namespace"]
        routed = _run(amtool, "config", "routes", "test", f"--config.file={config}",
                      *(f"{k}={v}" for k, v in sorted(labels.items())))
        assert routed.returncode == 0, routed.stdout + routed.stderr
        expected = trigger if alert["labels"].get(contract.RETRAIN_LABEL) == "true" else "default"
        assert routed.stdout.strip() == expected, alert["alert"]
    # An alert of the same project from another namespace (another profile) stays out.
    retrain = next(a for a in alerts if a["labels"].get(contract.RETRAIN_LABEL))
    elsewhere = {**retrain["labels"], "namespace": "elsewhere"}
    routed = _run(amtool, "config", "routes", "test", f"--config.file={config}",
                  *(f"{k}={v}" for k, v in sorted(elsewhere.items())))
    assert routed.stdout.strip() == "default"


@pytest.mark.parametrize("case_id", IDS)
def test_dashboard_configmap_holds_the_dashboard(rendered: dict[str, Path], case_id: str) -> None:
    folder = rendered[case_id]
    configmap = yaml.safe_load((folder / "grafana-dashboard-configmap.yaml").read_text())
    rule = yaml.safe_load((folder / "prometheusrule.yaml").read_text())
    name = rule["metadata"]["labels"]["app.kubernetes.io/name"]
    assert (configmap["apiVersion"], configmap["kind"]) == ("v1", "ConfigMap")
    assert configmap["metadata"]["namespace"] == rule["metadata"]["namespace"]
    assert configmap["metadata"]["labels"] == {**rule["metadata"]["labels"],
                                               "grafana_dashboard": "1"}
    assert list(configmap["data"]) == [f"{name}.json"]
    text = (folder / "grafana-dashboard.json").read_text(encoding="utf-8")
    assert configmap["data"][f"{name}.json"] == text  # the same bytes, not only the same JSON
    assert json.loads(configmap["data"][f"{name}.json"]) == json.loads(text)
    # Written as a literal block, so the dashboard reads (and diffs) line for line.
    assert f"  {name}.json: |\n" in (folder / "grafana-dashboard-configmap.yaml").read_text()


def test_dashboard_configmap_of_hostile_feature_names_holds_the_dashboard(tmp_path: Path) -> None:
    files = _render(_hostile_spec(tmp_path))
    configmap = yaml.safe_load(files["monitoring/grafana-dashboard-configmap.yaml"])
    assert set(configmap) == {"apiVersion", "kind", "metadata", "data"}
    (text,) = configmap["data"].values()
    assert text == files["monitoring/grafana-dashboard.json"]
    folder = _write(files, tmp_path / "out")
    result = _run(oracle("validate-manifests"), *(folder / name for name in K8S_OBJECTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_performance_alert_for_a_lower_is_better_metric(tmp_path: Path) -> None:
    spec = _hostile_spec(tmp_path, performance={"metric": "log_loss", "max": 0.5, "window": "2h"})
    files = _render(spec)
    assert "< " not in _alerts(files)[monitoring.ALERT_PERFORMANCE]["expr"]
    assert "> 0.5" in _alerts(files)[monitoring.ALERT_PERFORMANCE]["expr"]
    folder = _write(files, tmp_path / "out")
    unit = _run(program("promtool"), "test", "rules", "rules.test.yaml", cwd=folder)
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.mark.parametrize("text, ms, canonical", [
    ("1h", 3_600_000, "1h"), ("90s", 90_000, "1m30s"), ("30m1h", 5_400_000, "1h30m"),
    ("24h", 86_400_000, "1d"), ("1500ms", 1500, "1s500ms"),
])
def test_durations(text: str, ms: int, canonical: str) -> None:
    assert monitoring.duration_ms(text) == ms
    assert monitoring.format_duration(ms) == canonical


@pytest.mark.parametrize("window, pending", [("1h", "5m"), ("1m", "15s"), ("30s", "7s"),
                                             ("24h", "5m"), ("2s", "0s")])
def test_pending_is_a_quarter_of_the_window_at_most_5m(window: str, pending: str) -> None:
    assert monitoring.pending_for(window) == pending


# --- determinism and goldens ------------------------------------------------------------------
def test_output_is_deterministic_and_has_no_absolute_paths() -> None:
    first, second = _render(IRIS), _render(IRIS)
    assert first == second
    for content in first.values():
        assert str(REPO) not in content


@pytest.mark.parametrize("spec", EXAMPLES, ids=[s.parent.name for s in EXAMPLES])
def test_golden(spec: Path, update_golden: bool) -> None:
    check_golden(_render(spec), GOLDEN / spec.parent.name, update_golden)


def test_prometheusrule_and_rule_file_hold_the_same_groups() -> None:
    files = _render(IRIS)
    crd = yaml.safe_load(files["monitoring/prometheusrule.yaml"])
    plain = yaml.safe_load(files["monitoring/rules.yaml"])
    assert crd["spec"]["groups"] == plain["groups"]
    assert crd["metadata"] == {"name": "iris-classifier-mlspec", "namespace": "ml-demo",
                               "labels": crd["metadata"]["labels"]}
    monitor = yaml.safe_load(files["monitoring/servicemonitor.yaml"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["targetPort"], endpoint["path"]) == (contract.SERVER_PORT,
                                                          contract.METRICS_PATH)


def test_service_monitor_selects_every_inference_service_of_the_rollout():
    # Shadow/A-B/blue-green write several InferenceServices; each must be scraped.
    from mlspec.spec.loader import load_spec

    for spec in sorted(Path(__file__).resolve().parents[3].glob("examples/*/mlproject.yaml")):
        project = load_spec(str(spec)).project
        monitor = yaml.safe_load(render_target(project, "monitoring")[-1].content)
        assert monitor["kind"] == "ServiceMonitor"
        (expression,) = monitor["spec"]["selector"]["matchExpressions"]
        assert expression["operator"] == "In"
        served = sorted(yaml.safe_load(d)["metadata"]["name"]
                        for f in render_target(project, "serving") for d in f.content.split("---\n")
                        if yaml.safe_load(d) and yaml.safe_load(d)["kind"] == "InferenceService")
        assert expression["values"] == served
        assert project.metadata.name in expression["values"]
