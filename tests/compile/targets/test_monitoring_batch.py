"""The batch alerts of the monitoring target: real promtool, and tests that fail when tampered."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec.compile.build import render_target
from mlspec.compile.targets.monitoring.rules import ALERT_BATCH_DRIFT, ALERT_BATCH_VIOLATIONS
from mlspec.spec.loader import load_spec
from tests.conftest import program, write_files

IRIS = Path(__file__).resolve().parents[3] / "examples" / "iris" / "mlproject.yaml"


def _rendered(tmp_path: Path, **batch: object) -> Path:
    data = yaml.safe_load(IRIS.read_text())
    data["batch"] = {"input": "s3://bucket/scoring/", "output": "s3://bucket/predictions/",
                     **batch}
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data))
    loaded = load_spec(str(spec))
    assert loaded.project is not None, [d.message for d in loaded.diagnostics]
    write_files({f.path: f.content for f in render_target(loaded.project, "monitoring")},
                tmp_path / "out")
    return tmp_path / "out" / "monitoring"


def _promtool(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(program("promtool")), *args], cwd=folder, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("fraction", [0.05, 0.0, 0.5])
def test_batch_alerts_pass_promtool(tmp_path: Path, fraction: float) -> None:
    folder = _rendered(tmp_path, max_violation_fraction=fraction)
    rules = (folder / "rules.yaml").read_text()
    assert ALERT_BATCH_VIOLATIONS in rules and ALERT_BATCH_DRIFT in rules
    check = _promtool(folder, "check", "rules", "rules.yaml")
    assert check.returncode == 0, check.stdout + check.stderr
    unit = _promtool(folder, "test", "rules", "rules.test.yaml")
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_no_batch_section_no_batch_alerts(tmp_path: Path) -> None:
    data = yaml.safe_load(IRIS.read_text())
    data.pop("batch")
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data))
    loaded = load_spec(str(spec))
    assert loaded.project is not None
    files = {f.path: f.content for f in render_target(loaded.project, "monitoring")}
    assert "MLSpecBatch" not in "".join(files.values())


@pytest.mark.parametrize(("pattern", "replacement", "alert"), [
    (r"(\) > )0\.05\n", r"\g<1>0.5\n", ALERT_BATCH_VIOLATIONS),  # the contract limit
    (r'(method="chi2"\}\) )<', r"\g<1>>", ALERT_BATCH_DRIFT),  # p-values read as statistics
], ids=["violation-limit", "chi2-direction"])
def test_batch_promtool_tests_fail_when_a_rule_is_tampered(tmp_path: Path, pattern: str,
                                                           replacement: str, alert: str) -> None:
    folder = _rendered(tmp_path)
    rules = folder / "rules.yaml"
    text, count = re.subn(pattern, replacement, rules.read_text())
    assert count == 1, rules.read_text()
    rules.write_text(text)
    result = _promtool(folder, "test", "rules", "rules.test.yaml")
    assert result.returncode == 1
    assert alert in result.stdout + result.stderr
