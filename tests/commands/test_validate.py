"""`mlspec validate` and `mlspec explain` through the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, VENV_BIN

MLSPEC = str(VENV_BIN / "mlspec") if (VENV_BIN / "mlspec").exists() else None
HEAVY = ("kfp", "torch", "sklearn", "mlflow", "pandas", "scipy", "numpy", "kubernetes")


def mlspec(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
           cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    # Without the console script, python -m mlspec: the same fast path for validate (_entry).
    cmd = [MLSPEC] if MLSPEC else [sys.executable, "-m", "mlspec"]
    full_env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    full_env.update(env or {})
    return subprocess.run([*cmd, *args], input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, cwd=cwd, env=full_env, timeout=60)


def _codes(result) -> list[str]:
    return [d["code"] for f in json.loads(result.stdout)["files"] for d in f["diagnostics"]]


def test_examples_validate_strictly_for_the_cluster() -> None:
    """The prod profile (what goes to a cluster) is clean under --strict; the default profile
    keeps the embedded sqlite registry, which is only a warning: MLS232, nothing else."""
    prod = mlspec("validate", "--strict", "--profile", "prod", *[str(e) for e in EXAMPLES])
    assert prod.returncode == 0, prod.stdout
    assert prod.stdout.count(": ok") == len(EXAMPLES)
    default = mlspec("validate", "-f", "json", *[str(e) for e in EXAMPLES])
    assert default.returncode == 0, default.stdout
    assert set(_codes(default)) == {"MLS232"}
    assert mlspec("validate", "--strict", str(EXAMPLES[0])).returncode == 1


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_profile_of_every_example(example: Path) -> None:
    import yaml

    profiles = yaml.safe_load(example.read_text())["profiles"]
    assert "prod" in profiles, "each example shows a prod profile for a cluster"
    for name in profiles:
        result = mlspec("validate", "-f", "json", "--profile", name, str(example))
        assert result.returncode == 0, (name, result.stdout)
        assert set(_codes(result)) <= {"MLS232"}, (name, result.stdout)
    assert mlspec("validate", "--strict", "--profile", "prod", str(example)).returncode == 0


def test_stdin() -> None:
    text = EXAMPLES[0].read_bytes()
    assert mlspec("validate", "-", stdin=text).returncode == 0
    bad = text.replace(b"max_depth", b"max_dept")
    result = mlspec("validate", "-f", "json", "-", stdin=bad)
    assert result.returncode == 1
    assert json.loads(result.stdout)["files"][0]["diagnostics"][0]["code"] == "MLS203"


def test_exit_codes(tmp_path: Path) -> None:
    missing = mlspec("validate", "-f", "json", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["files"][0]["diagnostics"][0]["code"] == "MLS001"
    directory = mlspec("validate", str(tmp_path))
    assert directory.returncode == 2 and "MLS001" in directory.stdout
    assert mlspec("validate").returncode == 2  # no file: usage
    assert mlspec("validate", "-f", "xml", str(EXAMPLES[0])).returncode == 2
    unknown = mlspec("validate", "--profile", "nope", str(EXAMPLES[0]))
    assert unknown.returncode == 2 and "unknown profile" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_binary_file_is_an_invalid_spec_not_a_crash(tmp_path: Path) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_bytes(bytes(range(256)) * 4)
    result = mlspec("validate", str(spec))
    assert result.returncode == 1 and "MLS002" in result.stdout
    assert "Traceback" not in result.stderr


def test_colour_only_on_request() -> None:
    bad = EXAMPLES[0].read_bytes().replace(b"max_depth", b"max_dept")
    plain = mlspec("validate", "-", stdin=bad)
    assert "\x1b[" not in plain.stdout and "error MLS203" in plain.stdout
    coloured = mlspec("validate", "-", stdin=bad, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in coloured.stdout


def test_explain() -> None:
    result = mlspec("explain", "MLS203")
    assert result.returncode == 0
    assert "Anti-pattern" in result.stdout and "Best practice" in result.stdout
    unknown = mlspec("explain", "MLS999")
    assert unknown.returncode == 2 and "unknown code" in unknown.stderr


@pytest.mark.parametrize("entry", ["mlspec._entry", "mlspec.commands.app"])
def test_validate_imports_nothing_heavy(entry: str) -> None:
    cmd = [sys.executable, "-X", "importtime", "-c",
           f"import sys; from {entry} import main; sys.argv = ['mlspec', 'validate', '-f', "
           f"'json', {str(EXAMPLES[0])!r}]; main()"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = {line.split("|")[-1].strip().split(".")[0]
               for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert modules and not modules & set(HEAVY), modules & set(HEAVY)
    assert "jsonschema" not in modules and "rich" not in modules  # json output needs neither
    if entry == "mlspec._entry":  # the console script's fast path skips the CLI framework
        assert "typer" not in modules


@pytest.mark.parametrize("args", [
    ["-f", "json", "{iris}"],
    ["{iris}", "--format=sarif"],
    ["--strict", "-p", "dev", "{iris}", "{bad}"],
    ["--format", "github", "--profile=prod", "{bad}"],
    ["-", "--format", "json"],
])
def test_fast_path_matches_the_typer_cli(tmp_path: Path, args: list[str]) -> None:
    """The console script's fast path gives the same output and exit code as typer's command."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(EXAMPLES[-1].read_bytes().replace(b"max_depth", b"max_dept"))
    iris = next(e for e in EXAMPLES if e.parent.name == "iris")
    argv = [a.format(iris=iris, bad=bad) for a in args]
    stdin = iris.read_bytes() if "-" in argv else None
    fast = mlspec("validate", *argv, stdin=stdin)
    typer_cmd = [sys.executable, "-c", "import sys; from mlspec.commands.app import main; "
                 "sys.argv = ['mlspec', *sys.argv[1:]]; main()", "validate", *argv]
    slow = subprocess.run(typer_cmd, input=stdin.decode() if stdin else None,
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert (fast.returncode, fast.stdout) == (slow.returncode, slow.stdout)


def test_fast_path_leaves_help_and_mistakes_to_typer() -> None:
    help_text = mlspec("validate", "--help")
    assert help_text.returncode == 0 and "--strict" in help_text.stdout
    for args in (["--format", "xml", str(EXAMPLES[0])], ["--stric", str(EXAMPLES[0])], []):
        result = mlspec("validate", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "Usage" in result.stderr or "Usage" in result.stdout


@pytest.mark.parametrize(("argv", "expected"), [
    (["a.yaml"], (["a.yaml"], "text", False, None)),
    (["-fjson", "a", "--strict"], (["a"], "json", True, None)),
    (["--format=sarif", "--profile=dev", "a", "b"], (["a", "b"], "sarif", False, "dev")),
    (["-p", "dev", "a", "--", "-odd.yaml"], (["a", "-odd.yaml"], "text", False, "dev")),
    (["-", "-f", "github"], (["-"], "github", False, None)),
    (["--help", "a"], None), (["-f"], None), ([], None), (["-f", "xml", "a"], None),
    (["--stric", "a"], None),
])
def test_plain_arguments(argv: list[str], expected: object) -> None:
    from mlspec.commands.validate import _plain_validate_args

    assert _plain_validate_args(argv) == expected
