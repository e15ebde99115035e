"""``mlspec compile``: targets, manifest, kustomization, byte-identical and atomic output."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec import __version__, targets
from mlspec.commands import checked
from mlspec.commands.compile import compile_command
from mlspec.compile import build, writer
from mlspec.compile.targets import OutputFile
from mlspec.errors import UsageError
from mlspec.targets import TARGET_NAMES
from tests.conftest import EXAMPLES, REPO, example_profiles

IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
MLSPEC = REPO / ".venv" / "bin" / "mlspec"
CASES = [(spec, profile) for spec in EXAMPLES for profile in example_profiles(spec)]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _compile(dest: Path, *args: str, spec: Path = IRIS) -> int:
    return compile_command(str(spec), str(dest), list(args), None)


@pytest.mark.parametrize("spec,profile", CASES,
                         ids=[f"{s.parent.name}-{p or 'base'}" for s, p in CASES])
def test_every_example_and_profile_compiles(tmp_path: Path, spec: Path,
                                            profile: str | None) -> None:
    dest = tmp_path / "out"
    assert compile_command(str(spec), str(dest), [], profile) == 0
    files = _tree(dest)
    assert "kfp/pipeline.yaml" in files or "kfp" not in yaml.safe_load(spec.read_text()).get(
        "targets", ["kfp"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["mlspec_version"] == __version__
    assert manifest["spec"] == {"file": spec.name, "profile": profile,
                                "sha256": hashlib.sha256(spec.read_bytes()).hexdigest()}
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json"}
    for path, digest in listed.items():
        assert hashlib.sha256(files[path]).hexdigest() == digest, path
    assert all(not p.startswith("/") and b"/tmp/" not in files[p] for p in files), \
        "no absolute paths in the output"


def test_kustomization_lists_exactly_the_applicable_manifests(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    assert _compile(dest) == 0
    kustomization = yaml.safe_load((dest / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert resources == sorted(resources)
    expected = []
    for path in sorted(dest.rglob("*.yaml")):
        rel = str(path.relative_to(dest))
        if rel == "kustomization.yaml":
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        if docs and all("kind" in d and d.get("metadata", {}).get("name") for d in docs):
            expected.append(rel)
    assert resources == expected
    assert "kfp/pipeline.yaml" not in resources
    assert not [r for r in resources if r.endswith(("rules.yaml", "rules.test.yaml"))]


def test_unit_kustomization_filter() -> None:
    files = [OutputFile("a/obj.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
             OutputFile("a/run.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}\n"),
             OutputFile("a/rules.yaml", "groups: []\n"),
             OutputFile("a/bad.yaml", "a: [\n"),
             OutputFile("a/dash.json", '{"kind": "x"}')]
    doc = yaml.safe_load(writer.kustomization(files))
    assert doc["resources"] == ["a/obj.yaml"]


def test_reruns_are_byte_identical_across_processes(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for dest in (first, second):
        done = subprocess.run([str(MLSPEC), "compile", str(IRIS), "-o", str(dest)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert _tree(first) == _tree(second)
    before = _tree(first)
    assert _compile(first) == 0  # over an earlier output, in this process
    assert _tree(first) == before


def test_target_selection(tmp_path: Path) -> None:
    assert _compile(tmp_path / "k", "kfp") == 0
    manifest = json.loads((tmp_path / "k" / "manifest.json").read_text())
    assert manifest["targets"] == ["kfp"]
    assert {f["path"] for f in manifest["files"]} == {"kfp/pipeline.yaml", "kustomization.yaml"}
    with pytest.raises(UsageError, match="did you mean 'tekton'"):
        _compile(tmp_path / "x", "tekon")
    assert not (tmp_path / "x").exists()


def test_default_targets_are_the_spec_engines_plus_serving_and_monitoring() -> None:
    from mlspec.spec.loader import load_spec

    project = load_spec(str(IRIS)).project
    assert build.select_targets(project, []) == list(TARGET_NAMES)
    project.targets = ["tekton"]
    assert build.select_targets(project, []) == ["tekton", "serving", "monitoring"]
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


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_write_leaves_the_previous_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    dest = tmp_path / "out"
    assert _compile(dest, "kfp") == 0
    before = _tree(dest)
    real_open, calls = open, []

    def failing_open(path, *args, **kwargs):
        if ".out.tmp-" in str(path):  # a file of the new output, in the temp folder
            calls.append(path)
            if len(calls) == 2:  # after the first file of the new output was written
                raise failure
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    if isinstance(failure, OSError):
        assert _compile(dest) == 2
    else:
        with pytest.raises(KeyboardInterrupt):
            _compile(dest)
    monkeypatch.undo()
    assert len(calls) >= 2
    assert _tree(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_swap_failure_restores_the_old_folder(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "out"
    assert _compile(dest, "kfp") == 0
    before = _tree(dest)
    import os

    real_rename, seen = os.rename, []

    def failing_rename(src, dst):
        seen.append((src, dst))
        if len(seen) == 2:  # the new folder moving in
            raise OSError(18, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    monkeypatch.setattr(writer, "_exchange", lambda a, b: False)  # the portable path
    with pytest.raises(OSError):
        writer.write_atomically(dest, [OutputFile("new.txt", "x")])
    monkeypatch.undo()
    assert _tree(dest) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_replace_a_folder_that_is_not_an_mlspec_output(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(UsageError, match="refusing to replace"):
        _compile(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _compile(empty, "kfp") == 0


def test_invalid_spec_exits_1_and_writes_nothing(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(IRIS.read_text().replace("task: classification", "task: clasification"))
    assert _compile(tmp_path / "out", spec=spec) == 1
    assert not (tmp_path / "out").exists()
    assert "MLS104" in capsys.readouterr().err


def test_unsafe_value_is_reported_at_its_line(tmp_path: Path, capsys) -> None:
    spec = tmp_path / "mlproject.yaml"
    text = IRIS.read_text().replace("uri: sklearn://iris", 'uri: "data\\nroot: {}.csv"')
    spec.write_text(text)
    assert _compile(tmp_path / "out", "kfp", spec=spec) == 1
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "uri:" in t)
    # Lint reports it (MLS282) before the KFP target's own guard (MLS701) would.
    assert f"mlproject.yaml:{line}:" in err and "MLS282" in err
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    done = subprocess.run([str(MLSPEC), "compile", str(IRIS), "-o", str(tmp_path / "o"),
                           "-t", "kfpp"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "did you mean 'kfp'" in done.stderr
    done = subprocess.run([str(MLSPEC), "compile", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_swap_replaces_the_folder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    writer.write_atomically(dest, [OutputFile("a.txt", "old"), OutputFile(writer.MANIFEST, "{}")])
    writer.write_atomically(dest, [OutputFile("b.txt", "new"), OutputFile(writer.MANIFEST, "{}")])
    assert _tree(dest) == {"b.txt": b"new", "manifest.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="Linux only")
def test_exchange_swaps_two_folders_atomically(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not writer._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not supported here")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_a_renderer_guard_points_where_lint_does(tmp_path: Path) -> None:
    """The Tekton target's label guard and lint MLS280 report the same problems at the same
    paths and lines: inside a list (a toleration's value) and under a key that holds a dot
    (a node selector ``example.com/pool``)."""
    from mlspec.compile.graph import build_graph
    from mlspec.compile.targets import tekton
    from mlspec.lint import lint
    from mlspec.spec.loader import load_spec

    data = yaml.safe_load((REPO / "examples" / "iris" / "mlproject.yaml").read_text())
    data["model"].setdefault("resources", {}).update({
        "node_selector": {"example.com/pool": "gpu nodes"},
        "tolerations": [{"key": "a", "operator": "Exists"},
                        {"key": "b", "operator": "Equal", "value": "not ok"}]})
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load_spec(str(spec), None)
    guard = checked.positioned(tekton.check(loaded.project, build_graph(loaded.project)), loaded)
    linted = [d for d in lint(loaded.project, loaded.doc, str(spec)) if d.code == "MLS280"]
    where = sorted((d.path, d.line, d.column) for d in guard)
    assert where == sorted((d.path, d.line, d.column) for d in linted)
    lines = spec.read_text().splitlines()
    assert [lines[line - 1].strip() for _, line, _ in where] == [
        "example.com/pool: gpu nodes", "value: not ok"]
