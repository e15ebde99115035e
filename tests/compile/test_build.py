"""mlspec.compile.build: target selection from the registry, renderer failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec import targets
from mlspec.compile import build
from mlspec.errors import UsageError
from mlspec.targets import TARGET_NAMES
from tests.commands.test_compile import IRIS, _compile, _tree


def test_default_targets_are_the_spec_engines_plus_serving_and_monitoring() -> None:
    from mlspec.spec.loader import load_spec

    project = load_spec(str(IRIS)).project
    assert build.select_targets(project, []) == list(TARGET_NAMES)
    project.targets = ["tekton"]
    assert build.select_targets(project, []) == ["tekton", "serving", "training", "monitoring"]
    assert build.select_targets(project, ["kfp"]) == ["kfp"]


def test_a_missing_target_module_is_a_clear_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    broken = tuple(dataclasses.replace(t, renderer="mlspec.compile.targets.not_there")
                   if t.name == "tekton" else t for t in targets.TARGETS)
    monkeypatch.setattr(targets, "TARGETS", broken)
    with pytest.raises(UsageError, match="mlspec.compile.targets.not_there is missing"):
        _compile(tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_a_failing_renderer_leaves_the_previous_output_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "out"
    assert _compile(dest) == 0
    before = _tree(dest)

    def broken(project, graph, ctx):
        raise RuntimeError("renderer crashed")

    import mlspec.compile.targets.kfp as kfp_target

    monkeypatch.setattr(kfp_target, "render", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        _compile(dest)
    assert _tree(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no temp folders left behind"
