"""mlspec.compile.writer: kustomization, atomic folder swap, refusing to replace foreign folders."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlspec.compile import writer
from mlspec.compile.targets import OutputFile
from mlspec.errors import UsageError
from tests.commands.test_compile import _compile, _tree
from tests.conftest import EXAMPLES, oracle


def test_unit_kustomization_filter() -> None:
    files = [OutputFile("a/obj.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
             OutputFile("a/run.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}\n"),
             OutputFile("a/rules.yaml", "groups: []\n"),
             OutputFile("a/bad.yaml", "a: [\n"),
             OutputFile("a/dash.json", '{"kind": "x"}')]
    doc = yaml.safe_load(writer.kustomization(files))
    assert doc["resources"] == ["a/obj.yaml"]


def test_unit_a_plain_alertmanager_config_is_no_resource_its_crd_form_is() -> None:
    files = [OutputFile("m/alertmanager.yaml",
                        "route: {receiver: default}\nreceivers: [{name: default}]\n"),
             OutputFile("m/alertmanagerconfig.yaml",
                        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: AlertmanagerConfig\n"
                        "metadata: {name: x, namespace: n}\nspec: {}\n")]
    assert yaml.safe_load(writer.kustomization(files))["resources"] == ["m/alertmanagerconfig.yaml"]


def _resources(dest: Path) -> list[str]:
    return yaml.safe_load((dest / writer.KUSTOMIZATION).read_text())["resources"]


@pytest.mark.parametrize("spec", EXAMPLES, ids=[s.parent.name for s in EXAMPLES])
def test_every_kustomization_resource_passes_validate_manifests(tmp_path: Path,
                                                                spec: Path) -> None:
    """What ``kubectl apply -k`` applies is exactly the listed files: each must be an object
    the upstream schemas (core Kubernetes, and the CRDs) accept."""
    check = oracle("validate-manifests")
    dest = tmp_path / "out"
    assert _compile(dest, spec=spec) == 0
    resources = _resources(dest)
    assert resources and all((dest / r).is_file() for r in resources)
    done = subprocess.run([str(check), *(str(dest / r) for r in resources)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"in {len(resources)} file(s), 0 invalid" in done.stdout + done.stderr
    # The monitoring target's objects are there; its plain files are not.
    monitoring = {r for r in resources if r.startswith("monitoring/")}
    assert monitoring == {"monitoring/alertmanagerconfig.yaml",
                          "monitoring/grafana-dashboard-configmap.yaml",
                          "monitoring/prometheusrule.yaml", "monitoring/servicemonitor.yaml"}


@pytest.mark.parametrize("spec", EXAMPLES, ids=[s.parent.name for s in EXAMPLES])
def test_promtool_and_plain_files_are_no_resources(tmp_path: Path, spec: Path) -> None:
    dest = tmp_path / "out"
    assert _compile(dest, "monitoring", spec=spec) == 0
    for plain in ("rules.yaml", "rules.test.yaml", "alertmanager.yaml", "grafana-dashboard.json"):
        assert (dest / "monitoring" / plain).is_file()
        assert f"monitoring/{plain}" not in _resources(dest)


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
