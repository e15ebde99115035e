"""gate (thresholds, champion/challenger) and register (MLflow registry, aliases, concurrency)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mlspec.runtime.errors import StepError
from tests.runtime.conftest import REPO, assert_clean_failure, iris_spec, run_step, write_spec


def _gate(spec, metrics, tmp_path):
    from mlspec.runtime.steps.gate import run_gate

    return run_gate(spec, metrics, str(tmp_path / "gate.json"), str(tmp_path / "passed"))


def _register(spec, run, tmp_path, decision=None, name="registration.json"):
    from mlspec.runtime.steps.register import run_register

    return run_register(spec, run["model"], run["metrics"], decision, run["dataset"],
                        str(tmp_path / name))


def test_unreachable_thresholds_fail_with_reasons_and_register_refuses(iris_run, tmp_path):
    spec = iris_spec(tmp_path, validation__thresholds={"accuracy": {"min": 0.999},
                                                        "f1_macro": {"max": 0.1}})
    decision = _gate(spec, iris_run["metrics"], tmp_path)
    assert decision["passed"] is False
    assert any("below the minimum 0.999" in r for r in decision["reasons"])
    assert any("above the maximum 0.1" in r for r in decision["reasons"])
    assert (tmp_path / "passed").read_text() == "false"
    spec_file = write_spec(tmp_path, spec)
    done = run_step("register", "--spec", spec_file, "--in", f"model={iris_run['model']}",
                    "--in", f"decision={tmp_path / 'gate.json'}",
                    "--out", "registration=r.json", cwd=tmp_path)
    assert_clean_failure(done, contains="refusing to register: the gate failed")
    assert not (tmp_path / "mlruns.db").exists()


def test_gate_exits_zero_on_rejection_only_when_it_reports_a_value(iris_run, tmp_path):
    spec = write_spec(tmp_path, iris_spec(tmp_path, validation__thresholds={
        "log_loss": {"max": 0.1}}))
    args = ("gate", "--spec", spec, "--in", f"metrics={iris_run['metrics']}",
            "--out", "decision=g.json", "--out", "passed=p")
    done = run_step(*args, cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "p").read_text() == "false"
    assert "evaluate did not compute log_loss" in done.stdout
    assert_clean_failure(run_step(*args, "--fail-on-reject", cwd=tmp_path),
                         contains="gate: failed")
    # Alone (no `passed` value to branch on), a rejection is a failure: exit 1 with the reasons.
    standalone = run_step(*args[:-2], cwd=tmp_path)
    assert_clean_failure(standalone, contains="gate: failed")
    assert json.loads((tmp_path / "g.json").read_text())["passed"] is False


def test_register_records_model_metrics_tags_and_alias(iris_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a git checkout: the commit is recorded
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    spec = iris_spec(tmp_path)
    decision = _gate(spec, iris_run["metrics"], tmp_path)
    assert decision["passed"] and any("no champion" in r for r in decision["reasons"])
    result = _register(spec, iris_run, tmp_path, decision=str(tmp_path / "gate.json"))
    assert result["alias"] == "staging" and result["version"] == "1"
    assert json.loads((tmp_path / "registration.json").read_text()) == result

    from mlflow.tracking import MlflowClient

    from mlspec.runtime.io import file_sha256
    from mlspec.runtime.spec import load_project, spec_sha256

    uri = spec["registry"]["tracking_uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("iris-classifier", "staging")
    run = client.get_run(version.run_id)
    assert run.data.tags["data_sha256"] == file_sha256(iris_run["dataset"])
    assert run.data.tags["spec_sha256"] == spec_sha256(load_project(spec))
    assert run.data.tags["git_commit"] == commit
    assert run.data.metrics["accuracy"] >= 0.9
    assert run.data.params["param.n_estimators"] == "20"
    # The registered model loads with its signature, input example and reference profile.
    import mlflow.artifacts
    import mlflow.pyfunc

    local = mlflow.artifacts.download_artifacts(artifact_uri=version.source,
                                                dst_path=str(tmp_path / "dl"))
    model = mlflow.pyfunc.load_model(result["model_uri"])
    assert [c.name for c in model.metadata.get_input_schema().inputs][:2] == \
        ["sepal_length", "sepal_width"]
    assert (Path(local) / "reference_profile.json").is_file()


def test_register_without_decision_sets_no_alias(iris_run, tmp_path):
    result = _register(iris_spec(tmp_path), iris_run, tmp_path)
    assert result["alias"] is None and result["version"] == "1"


def _gate_without_registry(monkeypatch, spec, metrics_path, tmp_path) -> dict:
    """The gate on a metrics file whose champion lookup evaluate recorded: it must not query
    the registry again."""
    from mlspec.runtime import registry

    def no_query(*args, **kwargs):
        raise AssertionError("the gate queried the registry although evaluate recorded it")

    with monkeypatch.context() as patch:
        patch.setattr(registry, "champion", no_query)
        return _gate(spec, metrics_path, tmp_path)


def test_champion_challenger(iris_run, tmp_path, monkeypatch):
    """A registered production model is evaluated on the same test set; a weaker challenger
    fails the gate, an equal one passes, a required margin fails it again. The gate judges the
    champion evaluate recorded, without a registry query of its own."""
    from mlspec.runtime.steps.evaluate import run_evaluate
    from mlspec.runtime.steps.train import run_train

    spec = iris_spec(tmp_path, registry__alias="production")
    # A registry without the alias: evaluate records that it looked and found none.
    _register(spec, iris_run, tmp_path / "pre")
    none = run_evaluate(spec, iris_run["model"], iris_run["test"], str(tmp_path / "none.json"))
    assert none["champion"] == {"alias": "production", "model_name": "iris-classifier",
                                "version": None}
    decision = _gate_without_registry(monkeypatch, spec, str(tmp_path / "none.json"), tmp_path)
    assert decision["passed"] and any("no champion" in r for r in decision["reasons"])

    _gate(spec, iris_run["metrics"], tmp_path)
    _register(spec, iris_run, tmp_path, decision=str(tmp_path / "gate.json"))

    # The same model against itself: at least as good.
    same = run_evaluate(spec, iris_run["model"], iris_run["test"], str(tmp_path / "same.json"))
    assert same["champion"]["version"] == "2"
    assert same["champion"]["metrics"] == same["metrics"]
    assert same["champion"]["logged_metrics"]["accuracy"] == same["metrics"]["accuracy"]
    decision = _gate_without_registry(monkeypatch, spec, str(tmp_path / "same.json"), tmp_path)
    assert decision["passed"], decision
    assert any("is at least as good as champion v2 (production)" in r and "same test set" in r
               for r in decision["reasons"])

    margin = iris_spec(tmp_path, registry__alias="production",
                       validation__baseline={"alias": "production", "metric": "f1_macro",
                                             "min_delta": 0.01})
    assert _gate(margin, str(tmp_path / "same.json"), tmp_path)["passed"] is False

    weak = iris_spec(tmp_path, model__estimator="sklearn.dummy.DummyClassifier",
                     model__params={}, validation__thresholds={})
    run_train(weak, iris_run["train"], str(tmp_path / "weak"))
    run_evaluate(weak, str(tmp_path / "weak"), iris_run["test"], str(tmp_path / "weak.json"))
    decision = _gate_without_registry(monkeypatch, weak, str(tmp_path / "weak.json"), tmp_path)
    assert decision["passed"] is False
    assert any("does not beat champion v2 (production)" in r for r in decision["reasons"])

    # A champion evaluate could not load: the gate compares with its logged metric.
    logged = json.loads((tmp_path / "weak.json").read_text())
    logged["champion"]["error"] = logged["champion"].pop("metrics") and "cannot load the model"
    (tmp_path / "logged.json").write_text(json.dumps(logged))
    decision = _gate_without_registry(monkeypatch, weak, str(tmp_path / "logged.json"), tmp_path)
    assert decision["passed"] is False
    assert any("v2 (production)" in r and "logged at its registration" in r
               for r in decision["reasons"])

    # No lookup recorded (the registry was unreachable when evaluate ran), or one for another
    # model or alias ("none" there says nothing about this one): the gate asks itself.
    elsewhere = {**logged["champion"], "version": None}
    unreachable = {"alias": "production", "model_name": "iris-classifier",
                   "error": "cannot read the registry"}  # what evaluate writes then
    for recorded in (None, unreachable,
                     {**elsewhere, "model_name": "other-model"},
                     {**elsewhere, "alias": "staging"}):
        logged["champion"] = recorded
        (tmp_path / "asked.json").write_text(json.dumps(logged))
        decision = _gate(weak, str(tmp_path / "asked.json"), tmp_path)
        assert decision["passed"] is False
        assert any("v2 (production)" in r and "logged at its registration" in r
                   for r in decision["reasons"])


def test_gate_and_register_reject_a_file_that_is_not_metrics(iris_run, tmp_path):
    (tmp_path / "m.json").write_text("[1, 2]")
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(StepError, match="has no .metrics. object"):
        _gate(iris_spec(tmp_path), str(tmp_path / "empty.json"), tmp_path)
    with pytest.raises(StepError, match="m.json is not a JSON object"):
        _gate(iris_spec(tmp_path), str(tmp_path / "m.json"), tmp_path)
    with pytest.raises(StepError, match="is not a JSON object"):  # was AttributeError
        _register(iris_spec(tmp_path), {**iris_run, "metrics": str(tmp_path / "m.json")},
                  tmp_path)
    # The gate decision and validate-data's report are read the same way (both were .get on
    # whatever the file held).
    with pytest.raises(StepError, match="gate decision .*m.json is not a JSON object"):
        _register(iris_spec(tmp_path), iris_run, tmp_path, decision=str(tmp_path / "m.json"))
    from mlspec.runtime.steps.split import run_split

    with pytest.raises(StepError, match="data report .*m.json is not a JSON object"):
        run_split(iris_spec(tmp_path), iris_run["dataset"], str(tmp_path / "tr.parquet"),
                  str(tmp_path / "te.parquet"), in_report=str(tmp_path / "m.json"))


CONCURRENT = """
import sys
from mlspec.runtime.steps.register import run_register
spec, model, out = sys.argv[1:4]
print(run_register(spec, model, None, None, None, out)["version"])
"""


@pytest.mark.slow
def test_concurrent_registrations_get_distinct_versions(iris_run, tmp_path):
    """Two processes register the same model name at once on one fresh sqlite registry."""
    spec = write_spec(tmp_path, iris_spec(tmp_path))
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, spec, iris_run["model"],
                               str(tmp_path / f"r{i}.json")], cwd=tmp_path,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    assert sorted(out.strip() for out, _ in results) == ["1", "2"]
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name='iris-classifier'")
    assert sorted(int(v.version) for v in versions) == [1, 2]


def test_runtime_serve_is_the_server_entry_point(tmp_path):
    # The serving container runs `python -m mlspec.runtime serve MODEL_URI ...`.
    done = run_step("serve", str(tmp_path / "no-model"), cwd=tmp_path)
    assert_clean_failure(done, code=2, contains="no such model folder")


def test_pointing_mlflow_at_a_registry_does_not_leak_into_child_processes(tmp_path):
    import os

    from mlspec.runtime.registry import client

    client(f"sqlite:///{tmp_path / 'mlruns.db'}")
    # mlflow.set_tracking_uri exports these; a later subprocess would write to this registry.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def test_evaluate_records_only_the_projects_finite_logged_metrics(iris_run, tmp_path):
    """A champion's run may carry NaN or unrelated metrics (logged by hand or by autologging);
    the metrics file (strict JSON) keeps the project's finite ones."""
    from mlflow.tracking import MlflowClient

    from mlspec.runtime.steps.evaluate import run_evaluate

    spec = iris_spec(tmp_path, registry__alias="production")
    assert _gate(spec, iris_run["metrics"], tmp_path)["passed"]
    registered = _register(spec, iris_run, tmp_path, decision=str(tmp_path / "gate.json"))
    uri = spec["registry"]["tracking_uri"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name, value in (("accuracy", float("nan")), ("loss", float("inf")),
                        ("training_score", 0.99)):
        client.log_metric(registered["run_id"], name, value)
    result = run_evaluate(spec, iris_run["model"], iris_run["test"], str(tmp_path / "m.json"))
    logged = client.get_run(registered["run_id"]).data.metrics
    assert math.isnan(logged["accuracy"])  # what MLflow hands back
    assert set(result["champion"]["logged_metrics"]) == {"f1_macro"}
    assert result["champion"]["logged_metrics"]["f1_macro"] == logged["f1_macro"]
    assert json.loads((tmp_path / "m.json").read_text())["champion"]["version"] == "1"
