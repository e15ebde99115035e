"""`mlspec init`: every template writes a spec that validates; names and files are guarded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlspec.commands.init import TEMPLATES, init_command, render_template
from mlspec.commands.validate import validate_files
from mlspec.errors import UsageError
from tests.commands.test_validate import mlspec


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_validates_strictly(tmp_path: Path, template: str) -> None:
    path = tmp_path / "my-project" / "mlproject.yaml"
    assert init_command(template, str(path)) == 0
    out = io.StringIO()
    assert validate_files([str(path)], "json", strict=True, profile="prod", out=out) == 0, (
        out.getvalue())
    # Without the profile, only the local registry's cluster warning: right for mlspec run.
    out = io.StringIO()
    assert validate_files([str(path)], "json", out=out) == 0
    codes = [d["code"] for f in json.loads(out.getvalue())["files"] for d in f["diagnostics"]]
    assert codes == ["MLS232"], codes
    assert 'name: "my-project"' in path.read_text()  # the folder names the project


def test_cli_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "mlproject.yaml"
    first = mlspec("init", "-t", "regression", "-o", str(path), "--name", "house-prices")
    assert first.returncode == 0, first.stderr
    assert 'name: "house-prices"' in path.read_text()
    again = mlspec("init", "-o", str(path))
    assert again.returncode == 2 and "--force" in again.stderr
    forced = mlspec("init", "-t", "torch", "-o", str(path), "--force")
    assert forced.returncode == 0 and "framework: torch" in path.read_text()
    assert mlspec("validate", "--strict", "--profile", "prod", str(path)).returncode == 0


@pytest.mark.parametrize("name", ["Bad_Name", "-lead", "trail-", "a" * 41, 'x"\nkind: y',
                                  "{{ 7 * 7 }}", ""])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        init_command("classification", str(tmp_path / "m.yaml"), name=name)
    assert not (tmp_path / "m.yaml").exists()


def test_numeric_looking_names_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    assert init_command("classification", str(path), name="123") == 0
    assert validate_files([str(path)], "json", out=io.StringIO()) == 0


def test_default_name_when_the_folder_is_no_label(tmp_path: Path) -> None:
    path = tmp_path / "___" / "mlproject.yaml"
    assert init_command("torch", str(path)) == 0
    assert 'name: "wine-torch"' in path.read_text()


def test_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert init_command("regression", "-", name="demo") == 0
    assert capsys.readouterr().out == render_template("regression", "demo")


def test_unknown_template(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        init_command("xgboost", str(tmp_path / "m.yaml"))
