"""``mlspec run``: the compiled KFP pipeline, run end to end by kfp.local on real data.

Each run happens in a temporary current directory, so the examples' relative
``sqlite:///mlruns.db`` lands there: a fresh, temporary registry per test.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from mlspec.commands.run import StepState, _LogTee, absolute_data_uri, absolute_tracking_uri
from tests.conftest import REPO

MLSPEC = REPO / ".venv" / "bin" / "mlspec"
EXAMPLES = REPO / "examples"


def _run(spec: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLSPEC), "run", str(spec), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def _registry(cwd: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{cwd / 'mlruns.db'}"
    # Both URIs: an earlier in-process test may have set MLflow's global registry URI.
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _summary(cwd: Path, name: str) -> dict:
    return json.loads((cwd / ".mlspec" / "runs" / name / "summary.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("example,model_name,alias,metric", [
    ("iris", "iris-classifier", "staging", "accuracy"),
    ("diabetes", "diabetes-progression-gbr", "challenger", "rmse"),
])
def test_run_trains_gates_and_registers(tmp_path: Path, example: str, model_name: str,
                                        alias: str, metric: str) -> None:
    done = _run(EXAMPLES / example / "mlproject.yaml", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = _summary(tmp_path, _name(example))
    assert summary["ok"] is True
    assert all(s["status"] == "done" for s in summary["steps"].values()), summary["steps"]
    assert summary["gate"]["passed"] is True
    assert metric in summary["metrics"]["metrics"]
    # The model is really in the registry, with the alias, and the summary says which version.
    version = _registry(tmp_path).get_model_version_by_alias(model_name, alias)
    assert str(summary["registration"]["version"]) == str(version.version)
    out = done.stdout
    assert "gate       passed" in out and f"alias {alias}" in out and metric in out
    assert "run succeeded" in out
    # kfp's noise went to the log, not the terminal.
    log = (tmp_path / ".mlspec" / "runs" / _name(example) / "run.log").read_text()
    assert "Executing task" in log and "Executing task" not in out
    assert (tmp_path / summary["artifacts"] / "train" / "model").is_dir()


@pytest.mark.slow
def test_gate_failure_registers_nothing_and_exits_1(tmp_path: Path) -> None:
    text = (EXAMPLES / "iris" / "mlproject.yaml").read_text()
    assert "accuracy: {min: 0.9}" in text
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(text.replace("accuracy: {min: 0.9}", "accuracy: {min: 0.9999}"))
    done = _run(spec, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = _summary(tmp_path, "iris-classifier")
    assert summary["ok"] is False
    assert summary["gate"]["passed"] is False
    assert summary["steps"]["register"]["status"] == "skipped"
    assert summary["registration"] is None
    assert "gate       failed" in done.stdout and "0.9999" in done.stdout  # the reason
    assert "registered nothing" in done.stdout
    from mlflow.exceptions import MlflowException

    client = _registry(tmp_path)
    assert client.search_model_versions("name='iris-classifier'") == []
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("iris-classifier", "staging")


def _name(example: str) -> str:
    import yaml

    return yaml.safe_load((EXAMPLES / example / "mlproject.yaml").read_text())["metadata"]["name"]


def test_invalid_spec_and_unknown_profile(tmp_path: Path) -> None:
    bad = tmp_path / "mlproject.yaml"
    bad.write_text((EXAMPLES / "iris" / "mlproject.yaml").read_text().replace(
        "task: classification", "task: clasification"))
    done = _run(bad, tmp_path)
    assert done.returncode == 1 and "MLS104" in done.stderr
    assert "clasification" in done.stderr and " | " in done.stderr  # a code frame, as compile's
    assert not (tmp_path / ".mlspec").exists()
    done = _run(EXAMPLES / "iris" / "mlproject.yaml", tmp_path, "--profile", "nope")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder")
    done = _run(EXAMPLES / "iris" / "mlproject.yaml", tmp_path, "--workdir", str(occupied))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: cannot write")


def test_relative_paths_resolve_against_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_tracking_uri("sqlite:///mlruns.db") == f"sqlite:///{tmp_path}/mlruns.db"
    assert absolute_tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert absolute_tracking_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert absolute_data_uri("data/x.csv") == str(tmp_path / "data" / "x.csv")
    assert absolute_data_uri("sklearn://iris") == "sklearn://iris"
    assert absolute_data_uri("s3://b/k.parquet") == "s3://b/k.parquet"


def test_log_tee_tracks_kfp_task_states() -> None:
    states = {n: StepState(n) for n in ("ingest", "train")}
    log = io.StringIO()
    tee = _LogTee(log, states)
    tee.write("12:00 - INFO - Executing task \x1b[96m'ingest'\x1b[0m\n    some out")
    assert states["ingest"].status == "running"
    tee.write("put\n    error: the data has no column 'target'\n")
    tee.write("12:01 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status "
              "\x1b[91mFAILURE\x1b[0m\n")
    assert states["ingest"].status == "failed"
    assert "error: the data has no column 'target'" in states["ingest"].lines
    assert states["train"].status == "pending"
    assert "Executing task" in log.getvalue()


@pytest.mark.slow
def test_a_failing_step_stops_the_run_with_its_error(tmp_path: Path) -> None:
    text = (EXAMPLES / "iris" / "mlproject.yaml").read_text()
    assert "min_rows: 100," in text
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(text.replace("min_rows: 100,", "min_rows: 100000,"))  # iris has 150
    done = _run(spec, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = _summary(tmp_path, "iris-classifier")
    assert summary["failed_step"] == "validate-data"
    assert summary["steps"]["ingest"]["status"] == "done"
    assert summary["steps"]["validate-data"]["status"] == "failed"
    assert {summary["steps"][s]["status"] for s in ("split", "train", "register")} == {"skipped"}
    assert "step validate-data failed" in done.stdout
    assert any("100000" in line for line in summary["failure"]), summary["failure"]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "mlruns.db").exists() or not _registry(tmp_path).search_model_versions(
        "name='iris-classifier'")
