"""Shared test fixtures and options."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(REPO.glob("examples/*/mlproject.yaml"))
ORACLES = (REPO / ".." / "shared" / "oracles").resolve()
VENV_BIN = REPO / ".venv" / "bin"


# CI installs everything the tests use, so there a skip means a missing dependency that would
# pass a test unseen: with MLSPEC_STRICT_SKIPS=1 (.ci/run sets it) a skip fails, except for
# these reasons, which no install can change (the machine's GPU, OS, kernel or file system).
STRICT_SKIPS = os.environ.get("MLSPEC_STRICT_SKIPS") == "1"
ALLOWED_SKIP_REASONS = ("../shared is absent", "a GPU is present", "Linux only",
                        "renameat2(RENAME_EXCHANGE) is not supported here")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite golden files from the current output instead of comparing.")


def _fail_if_skip_is_not_allowed(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (STRICT_SKIPS and report.skipped) or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if not any(allowed in reason for allowed in ALLOWED_SKIP_REASONS):
        report.outcome = "failed"
        report.longrepr = ("skipped under MLSPEC_STRICT_SKIPS=1 (CI installs every dependency): "
                           + reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    _fail_if_skip_is_not_allowed(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    _fail_if_skip_is_not_allowed(outcome.get_result())


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def oracle(name: str) -> Path:
    """Path to an oracle script, or skip when ../shared is not beside the repo."""
    path = ORACLES / name
    if not path.exists():
        pytest.skip(f"../shared/oracles/{name} is not available (../shared is absent)")
    return path


def write_files(files: dict[str, str], root: Path) -> None:
    """Write rendered files ({relative path: text}) below ``root``."""
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def check_golden(files: dict[str, str], folder: Path, update: bool) -> None:
    """Compare rendered files with the golden folder; ``--update-golden`` rewrites it instead."""
    if update:
        shutil.rmtree(folder, ignore_errors=True)
        write_files(files, folder)
        return
    expected = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
                for p in folder.rglob("*") if p.is_file()}
    if not expected:
        pytest.fail(f"no golden files under {folder}; run: bash scripts/regen.sh")
    assert files == expected, "regenerate with: bash scripts/regen.sh (then review the diff)"


def example_profiles(spec: Path) -> list[str | None]:
    """None (the base) plus every profile the example defines."""
    import yaml

    data = yaml.safe_load(spec.read_text())
    return [None, *sorted((data.get("profiles") or {}).keys())]


@pytest.fixture(autouse=True)
def _venv_first_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # KFP lightweight components call `python3`; the venv's must win over the pyenv shim.
    if VENV_BIN.is_dir():
        monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(autouse=True)
def _no_inherited_mlflow_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every test names its own registry; one from the environment must never leak in.
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)


def have(program: str) -> bool:
    return shutil.which(program) is not None


def program(*names: str) -> str:
    """The path of the first of ``names`` on PATH (Debian names some programs differently), or
    skip: scripts/system-deps.sh installs Prometheus, Alertmanager and promtool."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"{names[0]} is not installed (Debian's prometheus / prometheus-alertmanager; "
                "scripts/system-deps.sh installs them)")
