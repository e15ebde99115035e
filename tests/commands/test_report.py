"""validate_files and its four formats: goldens, the SARIF schema, escaping, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlspec.commands.explain import explain_command
from mlspec.commands.report import escape_data, escape_property
from mlspec.commands.validate import validate_files
from mlspec.errors import UsageError
from mlspec.lint.codes import all_codes
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden" / "validate"
INPUTS = ["tests/golden/validate/bad-lint.yaml", "tests/golden/validate/bad-schema.yaml",
          "tests/golden/validate/missing.yaml"]
GOLDEN_FILES = {"json": "validate.json", "sarif": "validate.sarif.json",
                "github": "validate.github.txt", "text": "validate.text.txt"}


def _run(paths: list[str], fmt: str, strict: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = validate_files(paths, fmt, strict=strict, out=out)
    return code, out.getvalue()


@pytest.mark.parametrize("fmt", sorted(GOLDEN_FILES))
def test_golden(fmt: str, update_golden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # paths in the output are as given: relative to the repo
    code, text = _run(INPUTS, fmt)
    assert code == 2  # one of the files cannot be read
    golden = GOLDEN / GOLDEN_FILES[fmt]
    if update_golden:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), "run bash scripts/regen.sh to accept"


def test_json_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    report = json.loads(_run(INPUTS, "json")[1])
    assert list(report) == ["version", "files", "summary"]
    assert report["version"] == 1
    assert [f["path"] for f in report["files"]] == INPUTS
    for f in report["files"]:
        assert set(f) == {"path", "valid", "diagnostics"} and f["valid"] is False
        for d in f["diagnostics"]:
            assert {"code", "severity", "message", "path", "line", "column"} <= set(d)
            assert set(d) <= {"code", "severity", "message", "path", "line", "column", "hint"}
            assert d["line"] >= 1 and d["column"] >= 1
    missing = report["files"][2]["diagnostics"]
    assert [d["code"] for d in missing] == ["MLS001"]
    errors = sum(d["severity"] == "error" for f in report["files"] for d in f["diagnostics"])
    assert report["summary"] == {"files": 3, "errors": errors, "warnings": 3}


def test_sarif_is_valid_sarif_2_1_0(monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema

    schema = json.loads((GOLDEN / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    monkeypatch.chdir(REPO)
    log = json.loads(_run(INPUTS, "sarif")[1])
    jsonschema.Draft4Validator(schema).validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({r["ruleId"] for r in run["results"]})
    for rule in rules:
        assert rule["help"]["text"] and rule["shortDescription"]["text"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    # An invalid log is rejected by the same schema (the check can fail).
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(log)


def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    assert escape_data("a:b,c") == "a:b,c"


def test_github_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    lines = _run(INPUTS[:1], "github")[1].splitlines()
    assert lines[0].startswith("::warning file=tests/golden/validate/bad-lint.yaml,line=6,col=3,"
                               "title=MLS011::")
    assert any(line.startswith("::error ") and "title=MLS203::" in line for line in lines)
    # the feature name with ',' ':' and '%' stays in the message, escaped only for '%'
    assert any("'sepal,width:%25'" in line for line in lines)


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, str]:
    iris = (REPO / "examples" / "iris" / "mlproject.yaml").read_text(encoding="utf-8")
    files = {
        "valid": iris,
        "warning": iris.replace("owner: ml-team@example.com", "owner: yes"),
        "invalid": iris.replace("max_depth: 8", "max_dept: 8"),
    }
    out = {}
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
        out[name] = str(tmp_path / f"{name}.yaml")
    out["missing"] = str(tmp_path / "missing.yaml")
    return out


def test_exit_codes(specs: dict[str, str]) -> None:
    assert _run([specs["valid"]], "text")[0] == 0
    assert _run([specs["warning"]], "text")[0] == 0
    assert _run([specs["warning"]], "text", strict=True)[0] == 1
    assert _run([specs["valid"], specs["invalid"]], "json")[0] == 1
    assert _run([specs["invalid"], specs["missing"]], "json")[0] == 2
    report = json.loads(_run([specs["warning"]], "json", strict=True)[1])
    assert report["files"][0]["valid"] is False


def test_usage_errors(specs: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        validate_files([], "text")
    with pytest.raises(UsageError):
        validate_files([specs["valid"]], "xml")
    with pytest.raises(UsageError, match="unknown profile"):
        validate_files([specs["valid"]], "text", profile="nope", out=io.StringIO())


def test_text_is_plain_when_not_a_terminal(specs: dict[str, str]) -> None:
    text = _run([specs["invalid"]], "text")[1]
    assert "\x1b[" not in text
    assert ": error MLS203 " in text and "  hint: did you mean 'max_depth'?" in text
    assert "^" in text and "> " in text  # the code frame


def test_codes_the_targets_report_are_explained() -> None:
    from mlspec.compile.targets import kfp, tekton

    codes = all_codes()
    for code in (kfp.UNSAFE_VALUE, tekton.BAD_LABEL, tekton.BAD_IMAGE, tekton.BAD_SCHEDULE):
        assert code in codes, code
        assert "mlspec validate" in codes[code][2]  # names the lint code that reports it first


def test_explain_every_code() -> None:
    codes = all_codes()
    assert len(codes) >= 60
    for code in codes:
        out = io.StringIO()
        assert explain_command(code.lower(), out=out) == 0
        assert out.getvalue().startswith(code)
    out = io.StringIO()
    explain_command("list", out=out)
    assert len(out.getvalue().splitlines()) == len(codes)
    assert explain_command("MLS2O3", out=io.StringIO()) == 0  # letter O for zero
    assert explain_command("unknown-estimator-param", out=io.StringIO()) == 0
    with pytest.raises(UsageError, match="unknown code 'MLS999'"):
        explain_command("MLS999")


def test_sarif_absolute_paths_are_file_uris(specs: dict[str, str]) -> None:
    import jsonschema

    log = json.loads(_run([specs["invalid"]], "sarif")[1])
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == Path(specs["invalid"]).as_uri()
    schema = json.loads((GOLDEN / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)


def test_a_bug_is_a_diagnostic_not_a_traceback(specs: dict[str, str], monkeypatch) -> None:
    import mlspec.commands.validate

    def broken(path: str, profile: str | None):
        raise RecursionError("boom")

    monkeypatch.setattr(mlspec.commands.validate, "check_file", broken)
    code, text = _run([specs["valid"]], "json")
    assert code == 1
    (d,) = json.loads(text)["files"][0]["diagnostics"]
    assert d["code"] == "MLS299" and "RecursionError: boom" in d["message"] and d["line"] == 1
