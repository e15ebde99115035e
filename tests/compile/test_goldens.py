"""Every example x every registered target, compiled and compared with its golden files.

Examples are globbed and targets read from the registry (mlspec.targets), so a new example or
a new target is covered without touching this file: its goldens are written by
``bash scripts/regen.sh`` (``pytest --update-golden``) and reviewed as a diff. Goldens live at
``tests/golden/<target>/<example>/`` with the compiled paths below them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlspec.compile.build import compile_project
from mlspec.spec.loader import load_spec
from mlspec.targets import TARGET_NAMES
from tests.conftest import EXAMPLES, REPO, check_golden

GOLDEN = REPO / "tests" / "golden"


def _writes(spec: Path, target: str) -> bool:
    """Every target writes files for every example, except training: only for a distributed
    torch model (the TrainJob)."""
    return target != "training" or "distributed:" in spec.read_text(encoding="utf-8")


CASES = [(spec, target) for spec in EXAMPLES for target in TARGET_NAMES if _writes(spec, target)]
SILENT = [(spec, target) for spec in EXAMPLES for target in TARGET_NAMES
          if not _writes(spec, target)]


def normalise(text: str) -> str:
    """The kfp SDK stamps its version in the IR; a golden should not break on that banner."""
    return re.sub(r"(?m)^sdkVersion: kfp-.*$", "sdkVersion: kfp-<version>", text)


def compiled(spec: Path, target: str) -> dict[str, str]:
    """The files ``mlspec compile --target TARGET`` writes for ``spec``, less its index files."""
    loaded = load_spec(str(spec))
    assert loaded.project is not None, [d.message for d in loaded.diagnostics]
    out = compile_project(loaded.project, [target], spec_sha256=loaded.sha256,
                          spec_name=spec.name)
    return {f.path: normalise(f.content) for f in out.files
            if f.path.startswith(f"{target}/")}


@pytest.mark.parametrize("spec,target", CASES,
                         ids=[f"{s.parent.name}-{t}" for s, t in CASES])
def test_example_matches_golden(spec: Path, target: str, update_golden: bool) -> None:
    files = compiled(spec, target)
    assert files, f"target {target} wrote nothing for {spec.parent.name}"
    check_golden(files, GOLDEN / target / spec.parent.name, update_golden)


@pytest.mark.parametrize("spec,target", SILENT,
                         ids=[f"{s.parent.name}-{t}" for s, t in SILENT])
def test_a_target_with_nothing_to_write_writes_nothing(spec: Path, target: str) -> None:
    assert compiled(spec, target) == {}


def test_every_golden_folder_belongs_to_a_case() -> None:
    """A removed example or target leaves no stale goldens behind (serving's per-strategy
    goldens are tests/compile/targets/test_serving.py's)."""
    from tests.compile.targets.test_serving import STRATEGIES

    expected = {(t, s.parent.name) for s, t in CASES} | {("serving", s) for s in STRATEGIES}
    found = {(p.parent.name, p.name) for p in GOLDEN.glob("*/*")
             if p.is_dir() and p.parent.name in TARGET_NAMES}
    assert found == expected
