"""``mlspec compile``: every example and profile, manifest, kustomization, byte-identical
output, errors at their line, exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec import __version__
from mlspec.commands import checked
from mlspec.commands.compile import compile_command
from mlspec.errors import UsageError
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
        templates = [d for d in docs if (d.get("metadata", {}).get("annotations") or {})
                     .get("mlspec.dev/deploy") == "template"]
        if templates:  # deploy templates: the deploy pins and applies them, not kubectl
            assert rel.startswith("serving/"), rel
            continue
        if docs and all("kind" in d and d.get("metadata", {}).get("name") for d in docs):
            expected.append(rel)
    assert resources == expected
    assert "serving/inferenceservice.yaml" not in resources
    assert "kfp/pipeline.yaml" not in resources
    assert not [r for r in resources if r.endswith(("rules.yaml", "rules.test.yaml"))]


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
    # iris has a batch section: the batch pipeline is part of the kfp target.
    assert {f["path"] for f in manifest["files"]} == {
        "kfp/pipeline.yaml", "kfp/batch-pipeline.yaml", "kustomization.yaml"}
    with pytest.raises(UsageError, match="did you mean 'tekton'"):
        _compile(tmp_path / "x", "tekon")
    assert not (tmp_path / "x").exists()


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


def _auto_specs(tmp_path: Path) -> tuple[Path, Path]:
    """An ``auto`` rollout spec and its previous version, whose estimator differs (high risk)."""
    data = yaml.safe_load(IRIS.read_text())
    data["serving"]["rollout"] = {"strategy": "auto", "traffic_percent": 10}
    previous, new = tmp_path / "previous.yaml", tmp_path / "mlproject.yaml"
    previous.write_text(yaml.safe_dump(data, sort_keys=False))
    data["model"]["estimator"] = "sklearn.ensemble.ExtraTreesClassifier"
    new.write_text(yaml.safe_dump(data, sort_keys=False))
    return previous, new


def _serving_files(dest: Path) -> list[str]:
    return sorted(p.name for p in (dest / "serving").iterdir())


def test_previous_plans_an_auto_rollout(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    previous, new = _auto_specs(tmp_path)
    monkeypatch.delenv(checked.PREVIOUS_SPEC_ENV, raising=False)
    assert compile_command(str(new), str(tmp_path / "none"), [], None) == 0
    assert "rollout-plan.yaml" in _serving_files(tmp_path / "none")  # no previous: canary
    assert compile_command(str(new), str(tmp_path / "opt"), [], None,
                           previous=str(previous)) == 0
    assert "inferenceservice-shadow.yaml" in _serving_files(tmp_path / "opt")  # model type: shadow
    # The environment variable is the command's fallback, read by the command only.
    monkeypatch.setenv(checked.PREVIOUS_SPEC_ENV, str(previous))
    assert compile_command(str(new), str(tmp_path / "env"), [], None) == 0
    assert _tree(tmp_path / "env") == _tree(tmp_path / "opt")


def test_an_unreadable_previous_is_a_usage_error_naming_its_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, new = _auto_specs(tmp_path)
    with pytest.raises(UsageError, match="--previous: cannot read"):
        compile_command(str(new), str(tmp_path / "o"), [], None,
                        previous=str(tmp_path / "missing.yaml"))
    monkeypatch.setenv(checked.PREVIOUS_SPEC_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match=r"\$MLSPEC_PREVIOUS_SPEC: cannot read"):
        compile_command(str(new), str(tmp_path / "o"), [], None)
    assert not (tmp_path / "o").exists()
    # A spec that is not ``auto`` never reads the previous one.
    assert compile_command(str(IRIS), str(tmp_path / "canary"), [], None) == 0
