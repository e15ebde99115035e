"""A container as a process: env resolution, $(VAR) expansion, path mapping, process groups."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from mlspec.commands.rehearsal import container as ctr
from mlspec.commands.rehearsal.sources import Sources, parse_secret_env, read_env_file
from mlspec.errors import UsageError


def test_kubernetes_var_expansion() -> None:
    env = {"A": "1", "HOME": "/h"}
    assert ctr.expand("$(A)-$(HOME)/x", env) == "1-/h/x"
    assert ctr.expand("$(NOPE) $$(A) $$ $5 $(", env) == "$(NOPE) $(A) $ $5 $("


def test_env_from_then_env_with_later_values_winning() -> None:
    sources = Sources(secrets={"creds": {"USER": "u", "TOKEN": "t"}},
                      config_maps={"cfg": {"MODE": "fast", "USER": "cfg-user"}})
    container = {
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}},
                    {"secretRef": {"name": "creds"}, "prefix": "P_"}],
        "env": [{"name": "URL", "value": "http://$(USER)@host"},
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
                {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k",
                                                               "optional": True}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }
    env = ctr.declared_env(container, sources, "c", {"metadata.name": "pod-1"})
    assert env == {"MODE": "fast", "USER": "u", "TOKEN": "t", "P_USER": "u", "P_TOKEN": "t",
                   "URL": "http://u@host", "KEY": "t", "POD": "pod-1"}


@pytest.mark.parametrize("container,message", [
    ({"envFrom": [{"secretRef": {"name": "mlflow-credentials"}}]},
     "Secret 'mlflow-credentials' not found; give its data with --secret-env "
     "mlflow-credentials=FILE"),
    ({"env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "nope"}}}]},
     "Secret 's' has no key 'nope'"),
    ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]},
     "ConfigMap 'cm' not found"),
    ({"env": [{"name": "K", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]},
     "valueFrom resourceFieldRef is not rehearsed"),
])
def test_what_cannot_be_resolved_fails_naming_it(container: dict, message: str) -> None:
    sources = Sources(secrets={"s": {"k": "v"}})
    with pytest.raises(ctr.ContainerError, match=message.replace("(", r"\(")):
        ctr.declared_env(container, sources, "step x")


def test_an_optional_env_from_that_is_missing_adds_nothing() -> None:
    container = {"envFrom": [{"secretRef": {"name": "gone", "optional": True}}]}
    assert ctr.declared_env(container, Sources(), "c") == {}


def test_the_base_environment_is_minimal_and_python_is_the_venvs(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = ctr.environment({"PATH": "/opt/bin", "X": "1"}, bin_dir, tmp_path / "h", tmp_path / "t")
    # MLSPEC_LOCAL_TRAINING: a distributed train step trains here instead of submitting.
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "MLSPEC_LOCAL_TRAINING", "X"}
    assert env["PATH"] == f"{bin_dir}{os.pathsep}/opt/bin"
    assert ctr.argv(["python"], ["-V"], {}, env["PATH"], "c") == ("python", "-V")
    with pytest.raises(ctr.ContainerError, match="'no-such-program' is not on PATH"):
        ctr.argv(["no-such-program"], [], {}, env["PATH"], "c")
    with pytest.raises(ctr.ContainerError, match="no command"):
        ctr.argv([], ["x"], {}, env["PATH"], "c")


def test_path_map_maps_literal_container_paths_only(tmp_path: Path) -> None:
    paths = ctr.PathMap()
    paths.add("/tmp", tmp_path / "tmp")
    paths.add("/tmp/cache", tmp_path / "cache")
    paths.add("/workspace", tmp_path / "ws")
    assert paths.literal("/tmp") == str(tmp_path / "tmp")
    assert paths.literal("/tmp/x/y") == str(tmp_path / "tmp" / "x" / "y")
    assert paths.literal("/tmp/cache/z") == str(tmp_path / "cache" / "z")  # longest prefix
    assert paths.literal("out=/workspace/a") == f"out={tmp_path / 'ws' / 'a'}"
    assert paths.literal("--out=/tmp/f") == f"--out={tmp_path / 'tmp' / 'f'}"
    assert paths.literal("sh -c 'cat /tmp/x > /workspace/y'") == \
        f"sh -c 'cat {tmp_path / 'tmp' / 'x'} > {tmp_path / 'ws' / 'y'}'"
    for untouched in ("/tmpfoo", "/usr/bin/python", "http://h/tmp/x", "file:///tmp/x", "tmp/x",
                      "$(HOME)", "$(workspaces.w.path)/tmp/x", "${DIR}/tmp"):
        assert paths.literal(untouched) == untouched
    container = {"command": ["/tmp/run"], "args": ["/workspace/in", "-v"],
                 "env": [{"name": "HOME", "value": "/tmp"}, {"name": "S", "valueFrom": {}}],
                 "workingDir": "/workspace", "script": "echo hi > /tmp/out\n"}
    mapped = ctr.map_literals(container, paths)
    assert mapped["command"] == [str(tmp_path / "tmp" / "run")]
    assert mapped["args"] == [str(tmp_path / "ws" / "in"), "-v"]
    assert mapped["env"][0]["value"] == str(tmp_path / "tmp")
    assert mapped["workingDir"] == str(tmp_path / "ws")
    assert mapped["script"] == f"echo hi > {tmp_path / 'tmp' / 'out'}\n"


def test_unknown_container_fields_are_refused() -> None:
    ctr.check_fields({"name": "a", "image": "x", "securityContext": {}}, "c")
    with pytest.raises(ctr.ContainerError, match="lifecycle, stdin not rehearsed"):
        ctr.check_fields({"name": "a", "stdin": True, "lifecycle": {}}, "c")


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = ctr.write_script(f"sleep 30 &\necho $! > {pid_file}\nsleep 30\n", tmp_path, "s")
    spec = ctr.ProcessSpec((str(script),), {"PATH": "/usr/bin:/bin"}, tmp_path)
    started = time.monotonic()
    exit = ctr.run(spec, tmp_path / "log", timeout=0.5, grace=0.5)
    assert exit.reason == "TimedOut" and time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the step's background child survived the kill"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not yet reaped by init) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_scripts_without_a_shebang_get_tekton_s_preamble(tmp_path: Path) -> None:
    script = ctr.write_script("false\necho not reached\n", tmp_path, "s")
    assert script.read_text().startswith("#!/bin/sh\nset -e\n")
    exit = ctr.run(ctr.ProcessSpec((str(script),), {"PATH": "/usr/bin:/bin"}, tmp_path),
                   tmp_path / "log")
    assert exit.reason == "Error" and exit.code == 1
    assert "not reached" not in (tmp_path / "log").read_text()
    with pytest.raises(ctr.ContainerError, match="Windows"):
        ctr.write_script("#!win pwsh\n", tmp_path, "w")


def test_env_files_and_secret_env_arguments(tmp_path: Path) -> None:
    creds = tmp_path / "creds.env"
    creds.write_text("# a comment\n\nexport USER=alice\nPASSWORD='p=w d'\nEMPTY=\n")
    assert read_env_file(creds) == {"USER": "alice", "PASSWORD": "p=w d", "EMPTY": ""}
    named = tmp_path / "mlflow-credentials.env"
    named.write_text("TOKEN=t\n")
    assert parse_secret_env([f"registry-creds={creds}", str(named)]) == {
        "registry-creds": read_env_file(creds), "mlflow-credentials": {"TOKEN": "t"}}
    (tmp_path / "bad.env").write_text("no equals sign\n")
    with pytest.raises(UsageError, match=r"bad.env:1: expected KEY=VALUE"):
        parse_secret_env([f"x={tmp_path / 'bad.env'}"])
    with pytest.raises(UsageError, match="cannot read"):
        parse_secret_env([f"x={tmp_path / 'missing.env'}"])
    with pytest.raises(UsageError, match="name the Secret"):
        parse_secret_env([str(tmp_path / "Not_A_Name.txt")])
    with pytest.raises(UsageError, match="given twice"):
        parse_secret_env([f"a={creds}", f"a={named}"])


def test_a_script_busy_for_a_moment_still_starts(tmp_path: Path) -> None:
    """Another thread's fork holds a just-written script open for writing until its child
    execs; exec'ing the script meanwhile fails with ETXTBSY. The start is retried."""
    import threading

    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho started\n")
    script.chmod(0o755)
    writer = os.open(script, os.O_WRONLY)  # what the forked child would be holding
    threading.Timer(0.1, os.close, [writer]).start()
    spec = ctr.ProcessSpec((str(script),), {"PATH": "/usr/bin:/bin"}, tmp_path)
    done = ctr.run(spec, tmp_path / "log")
    assert done.code == 0 and (tmp_path / "log").read_text() == "started\n"
