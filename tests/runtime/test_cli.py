"""Every step from the command line on the iris example, as a pipeline backend runs them."""

from __future__ import annotations

import json

import pytest

from tests.runtime.conftest import IRIS_SPEC, assert_clean_failure, run_step

pytestmark = pytest.mark.slow


def test_each_step_from_the_command_line(tmp_path):
    spec = str(IRIS_SPEC)

    def step(*args):
        done = run_step(*args, "--spec", spec, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # MLflow and friends stay quiet
        return done

    step("ingest", "--out", "dataset=data/dataset.parquet")
    step("validate-data", "--in", "dataset=data/dataset.parquet", "--out", "report=report.json")
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True
    step("split", "--in", "dataset=data/dataset.parquet", "--in", "report=report.json",
         "--out", "train=train.parquet", "--out", "test=test.parquet")
    step("train", "--in", "train=train.parquet", "--out", "model=model")
    assert (tmp_path / "model" / "MLmodel").is_file()
    assert (tmp_path / "model" / "reference_profile.json").is_file()
    done = step("evaluate", "--in", "model=model", "--in", "test=test.parquet",
                "--out", "metrics=metrics.json")
    assert "accuracy=" in done.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["metrics"]["accuracy"] >= 0.9
    step("gate", "--in", "metrics=metrics.json", "--out", "decision=gate.json",
         "--out", "passed=passed")
    assert (tmp_path / "passed").read_text() == "true"
    decision = json.loads((tmp_path / "gate.json").read_text())
    assert set(decision) == {"passed", "reasons", "metrics"} and decision["passed"] is True
    step("register", "--in", "model=model", "--in", "metrics=metrics.json",
         "--in", "decision=gate.json", "--in", "dataset=data/dataset.parquet",
         "--out", "registration=registration.json")
    registration = json.loads((tmp_path / "registration.json").read_text())
    assert registration["name"] == "iris-classifier" and registration["version"] == "1"
    assert registration["alias"] == "staging"
    assert (tmp_path / "mlruns.db").is_file()  # the embedded default, relative to the cwd
    done = run_step("drift", "--spec", spec, "--in", "reference=model",
                    "--in", "current=test.parquet", "--out", "report=drift.json",
                    "--out", "html=drift.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["method"] == "psi" and len(report["features"]) == 4
    assert "Data drift report" in (tmp_path / "drift.html").read_text()


def test_inline_json_spec(tmp_path):
    from mlspec.runtime.spec import load_project

    data = load_project(str(IRIS_SPEC)).model_dump(mode="json", exclude={"profiles"})
    done = run_step("ingest", "--spec", json.dumps(data), "--out", "dataset=d.parquet",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "150 rows" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["nosuchstep", "--spec", "x"], "invalid choice"),
    (["ingest", "--spec", str(IRIS_SPEC)], "needs --out dataset=PATH"),
    (["ingest", "--spec", str(IRIS_SPEC), "--out", "nope=x"], "no output 'nope'"),
    (["train", "--spec", str(IRIS_SPEC), "--in", "train"], "NAME=PATH"),
    (["ingest", "--out", "dataset=x.parquet"], "needs --spec"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    assert_clean_failure(run_step(*args, cwd=tmp_path), code=2, contains=message)


def test_bad_spec_is_a_clear_error(tmp_path):
    (tmp_path / "bad.json").write_text('{"apiVersion": "mlspec/v1"}')
    done = run_step("ingest", "--spec", str(tmp_path / "bad.json"), "--out", "dataset=d.parquet",
                    cwd=tmp_path)
    assert_clean_failure(done, contains="invalid spec")
    done = run_step("ingest", "--spec", "{not json", "--out", "dataset=d.parquet", cwd=tmp_path)
    assert_clean_failure(done, contains="not valid JSON")


def test_runtime_never_imports_the_compiler_and_starts_light():
    """The container side stands alone: every runtime module imports without the compiler, the
    command line or lint (import-linter checks the same statically), heavy libraries on use."""
    import subprocess
    import sys

    from tests.runtime.conftest import REPO

    code = (
        "import sys, pkgutil, importlib, mlspec.runtime as rt\n"
        "import mlspec.runtime.cli, mlspec.runtime.drift.command\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'mlflow', 'torch', 'scipy')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "for info in pkgutil.walk_packages(rt.__path__, 'mlspec.runtime.'):\n"
        "    importlib.import_module(info.name)\n"
        "bad = [m for m in sys.modules if m.startswith(('mlspec.compile', 'mlspec.commands',\n"
        "       'mlspec.lint', 'kfp'))]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_sklearn_feature_names_are_normalised():
    from mlspec.runtime.io import load_sklearn, normalise_feature_name

    assert normalise_feature_name("sepal length (cm)") == "sepal_length"
    assert normalise_feature_name("od280/od315_of_diluted_wines") == "od280_od315_of_diluted_wines"
    assert normalise_feature_name("mean radius") == "mean_radius"
    wine = load_sklearn("wine")
    assert "od280_od315_of_diluted_wines" in wine.columns and "target" in wine.columns
    assert list(load_sklearn("digits").columns[:2]) == ["pixel_0_0", "pixel_0_1"]
