"""The runtime image (Containerfile, requirements/*.lock, scripts/lock.sh, build-image.sh,
image-install.sh), tested without a container engine: none runs here or in CI (docs/image.md).

What stands in for a build: hadolint on the Containerfile, the final stage read instruction by
instruction, the lock files recompiled from pyproject.toml, the builder stage's install script
run in a fresh venv against the CPU lock, and the SBOM of the lock.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlspec import k8s
from tests.conftest import REPO, VENV_BIN

CONTAINERFILE = REPO / "Containerfile"
LOCKS = {"cpu": REPO / "requirements" / "runtime-cpu.lock",
         "torch": REPO / "requirements" / "runtime-torch.lock"}
COMPILERS = ("build-essential", "gcc", "g++", "clang", "cpp", "make", "cmake", "gfortran",
             "libc6-dev", "python3-dev", "cargo", "rustc")
RUNTIME_ENTRYPOINT = ["python", "-m", "mlspec.runtime"]


def _tool(name: str) -> str:
    """A dev-extra tool: beside this Python, in the repo's .venv, or on PATH; else skip."""
    for candidate in (Path(sys.executable).parent / name, VENV_BIN / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _env_with_tools() -> dict[str, str]:
    """The environment with this Python's bin folder (uv, cyclonedx-py, pip-audit) on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHON": sys.executable, "PYTHONWARNINGS": "ignore"}


# --- the Containerfile, instruction by instruction --------------------------------------------
def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, args = whole.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Containerfile ends inside a continued line"
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (a stage starts at FROM); global ARGs dropped."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


@pytest.fixture(scope="module")
def containerfile() -> str:
    return CONTAINERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def final(containerfile: str) -> list[tuple[str, str]]:
    return stages(containerfile)[-1]


def _all(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for key, args in stage if key == keyword]


def test_the_parser_reads_stages_and_continuations():
    text = "ARG B=x\nFROM $B AS one\nRUN a \\\n    b\n# note\nFROM $B\nUSER 1:1\n"
    assert stages(text) == [[("FROM", "$B AS one"), ("RUN", "a b")],
                            [("FROM", "$B"), ("USER", "1:1")]]


def test_hadolint_finds_nothing_in_the_containerfile():
    hadolint = _tool("hadolint")
    done = subprocess.run([hadolint, "--format", "json", str(CONTAINERFILE)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout or "[]") == [], done.stdout
    assert not (REPO / ".hadolint.yaml").exists(), "no rule is ignored"


def test_hadolint_is_a_real_linter_that_reports(tmp_path):
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\n"
                   "RUN pip install numpy\n")
    done = subprocess.run([_tool("hadolint"), "--format", "json", str(bad)],
                          capture_output=True, text=True, timeout=60)
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert done.returncode == 1 and {"DL3007", "DL3013"} <= codes, done.stdout


def test_two_stages_from_the_same_pinned_slim_base(containerfile: str):
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", containerfile, re.M)
    assert default and re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", default.group(1))
    froms = [stage[0][1] for stage in stages(containerfile)]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_the_final_stage_runs_as_k8s_run_as(final):
    users = _all(final, "USER")
    assert users == [f"{k8s.RUN_AS}:{k8s.RUN_AS}"]
    # The account exists with that number, and the working directory belongs to it.
    run = " ".join(_all(final, "RUN"))
    assert f"--uid {k8s.RUN_AS} --gid {k8s.RUN_AS}" in run and f"--gid {k8s.RUN_AS} mlspec" in run
    workdir = _all(final, "WORKDIR")[-1]
    assert f"install -d -o {k8s.RUN_AS} -g {k8s.RUN_AS} -m 0755 {workdir}" in run
    # USER comes after every RUN: nothing runs as root once it is set.
    keys = [key for key, _ in final]
    assert keys.index("USER") > max(i for i, key in enumerate(keys) if key == "RUN")


def test_the_entrypoint_is_the_runtime_and_the_venv_is_on_path(final):
    assert [json.loads(args) for args in _all(final, "ENTRYPOINT")] == [RUNTIME_ENTRYPOINT]
    env = " ".join(_all(final, "ENV"))
    assert re.search(r"\bPATH=/opt/venv/bin:\$PATH\b", env)
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    assert _all(final, "COPY") == ["--from=builder /opt/venv /opt/venv"]


def test_oci_labels(final):
    labels = " ".join(_all(final, "LABEL"))
    for key in ("source", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels


def test_no_compiler_in_the_final_stage(final):
    words = set(re.split(r"[\s;&|()=]+", " ".join(_all(final, "RUN"))))
    assert not words & set(COMPILERS), words & set(COMPILERS)
    assert not re.search(r"\b(apt-get|apt|apk|dnf|yum|pip)\s+install\b",
                         " ".join(_all(final, "RUN")))


def test_the_builder_installs_with_the_install_script(containerfile: str):
    builder = stages(containerfile)[0]
    assert _all(builder, "RUN") == ['bash scripts/image-install.sh /opt/venv "${VARIANT}"']
    script = (REPO / "scripts" / "image-install.sh").read_text()
    pip = [line for line in script.splitlines() if " -m pip install" in line]
    assert any("--no-deps --require-hashes" in line and '-r "$lock"' in line for line in pip)
    assert any("--no-deps --require-hashes -r requirements/build.lock" in line for line in pip)
    assert any("--no-deps" in line and "mlspec-*.whl" in line for line in pip)
    assert 'lock="requirements/runtime-$variant.lock"' in script


def test_the_ignore_files_agree_and_keep_what_the_build_copies(containerfile: str):
    ignore = (REPO / ".containerignore").read_text()
    assert (REPO / ".dockerignore").read_text() == ignore
    patterns = {line for line in ignore.splitlines() if line and not line.startswith("#")}
    assert {".venv", ".git", "build", ".mlspec", "tests", "bench", ".pytest_cache"} <= patterns
    copied = [args.split()[0].rstrip("/") for key, args in instructions(containerfile)
              if key == "COPY" and not args.startswith("--from")]
    copied = [path for args in copied for path in [args]]
    sources = {part.split("/")[0] for key, args in instructions(containerfile)
               if key == "COPY" and not args.startswith("--from") for part in args.split()[:-1]}
    assert sources and not sources & patterns, sources & patterns


def test_generated_manifests_give_command_lines_that_run_in_the_image(tmp_path):
    """Each generated container sets its own command (overriding ENTRYPOINT); each needs only
    what the image holds: python / python3 on the venv's PATH, sh, and kfp for KFP's executor."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "mlspec", "compile",
                           str(REPO / "examples" / "iris" / "mlproject.yaml"), "-o", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    tasks = [doc for doc in yaml.safe_load_all((out / "tekton" / "tasks.yaml").read_text()) if doc]
    for task in tasks:
        for step in task["spec"]["steps"]:
            assert step["command"] == ["python"] and step["args"][:2] == ["-m", "mlspec.runtime"]
    isvc = yaml.safe_load((out / "serving" / "inferenceservice.yaml").read_text())
    containers = isvc["spec"]["predictor"]["containers"]
    assert [c["command"] for c in containers] == [RUNTIME_ENTRYPOINT]
    kfp_text = (out / "kfp" / "pipeline.yaml").read_text()
    assert "python3 -m kfp.dsl.executor_main" in kfp_text and "- sh" in kfp_text
    for lock in LOCKS.values():  # so the image must hold kfp
        assert re.search(r"^kfp==2\.17\.0 ", lock.read_text(), re.M)


# --- the lock files ---------------------------------------------------------------------------
def _pins(lock: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock.read_text(), re.M))


@pytest.mark.parametrize("variant", sorted(LOCKS))
def test_locks_pin_mlflow_and_hold_no_cuda(variant: str):
    text = LOCKS[variant].read_text()
    pins = _pins(LOCKS[variant])
    assert pins["mlflow"] == "3.17.2" and pins["kfp"] == "2.17.0"
    assert not [name for name in pins if re.match(r"(nvidia-|cuda-|triton$)", name)]
    assert text.startswith("# This file was autogenerated by uv via the following command:\n"
                           "#    bash scripts/lock.sh\n")
    assert all(re.search(rf"^{re.escape(name)}=={re.escape(v)} \\$", text, re.M)
               for name, v in pins.items()), "every pin carries hashes"
    assert "/opt/" not in text and "/tmp" not in text and "--index-url" not in text
    if variant == "torch":
        assert pins["torch"] == "2.13.0+cpu"
        assert "https://download.pytorch.org/whl/cpu" in text
    else:
        assert "torch" not in pins


def _lock_check(pyproject: Path) -> subprocess.CompletedProcess[str]:
    env = {**_env_with_tools(), "UV": _tool("uv")}
    return subprocess.run(["bash", "scripts/lock.sh", "--check", "--pyproject", str(pyproject)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_locks_are_up_to_date_with_pyproject():
    done = _lock_check(REPO / "pyproject.toml")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_lock_check_fails_when_pyproject_runtime_deps_change(tmp_path):
    copy = tmp_path / "pyproject.toml"
    original = (REPO / "pyproject.toml").read_text()
    copy.write_text(original)
    assert _lock_check(copy).returncode == 0  # a copy as it is: current (the control)
    changed = original.replace('  "orjson>=3.9",\n', '  "toolz>=0.12",\n')
    assert changed != original
    copy.write_text(changed)
    done = _lock_check(copy)
    assert done.returncode == 1, done.stderr
    assert "out of date" in done.stderr and "runtime-cpu.lock" in done.stderr
    assert re.search(r"^\+toolz==", done.stdout, re.M) and re.search(r"^-orjson==", done.stdout,
                                                                     re.M)


# --- build-image.sh without an engine ---------------------------------------------------------
def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {shlex.quote(str(bin_dir / 'calls'))}\n"
                    + body)
    path.chmod(0o755)


def _build_image(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", "scripts/build-image.sh", *args], cwd=REPO,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=60)


def test_build_image_without_a_working_engine_exits_2(tmp_path):
    for engine in ("docker", "podman", "buildah"):  # all three on PATH, none answering
        _fake(tmp_path, engine, f'echo "cannot connect to the {engine} service" >&2\nexit 1\n')
    done = _build_image(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "no working container engine" in done.stderr
    assert all(name in done.stderr for name in ("docker", "podman", "buildah"))
    # Each binary on PATH was asked, not merely found, and nothing was built.
    assert (tmp_path / "calls").read_text() == "docker info\npodman info\nbuildah info\n"


def test_build_image_takes_the_first_engine_that_works(tmp_path):
    _fake(tmp_path, "docker", "exit 1\n")
    _fake(tmp_path, "podman", 'case "$1" in info) exit 0 ;; *) exit 7 ;; esac\n')
    done = _build_image(tmp_path, "--variant", "torch", "--tag", "reg.example/mlspec:t")
    assert done.returncode == 7 and "with podman" in done.stderr, done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[:2] == ["docker info", "podman info"]
    assert calls[2].startswith("podman build -f Containerfile --build-arg VARIANT=torch ")
    assert calls[2].endswith("-t reg.example/mlspec:t .")


def test_build_image_refuses_an_unknown_variant(tmp_path):
    done = _build_image(tmp_path, "--variant", "cuda")
    assert done.returncode == 2 and "cpu or torch" in done.stderr


# --- the SBOM and audit of the lock -----------------------------------------------------------
def test_sbom_from_the_lock_is_valid_cyclonedx(tmp_path):
    _tool("cyclonedx-py"), _tool("pip-audit")
    done = subprocess.run(["bash", "scripts/build-image.sh", "--from-lock"], cwd=REPO,
                          env=_env_with_tools(), capture_output=True, text=True, timeout=300)
    # 1 only for an audit that could not look packages up (reported), never for the SBOM.
    assert done.returncode == 0 or (done.returncode == 1 and "audit is incomplete" in done.stderr
                                    and "audit: " in done.stdout), done.stderr[-3000:]
    out = REPO / "build" / "image" / "cpu"
    text = (out / "sbom.cdx.json").read_text()
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    sbom = json.loads(text)
    assert sbom["bomFormat"] == "CycloneDX" and sbom["metadata"]["component"]["name"] == "mlspec"
    names = {c["name"]: c["version"] for c in sbom["components"]}
    assert len(names) > 0 and names == _pins(LOCKS["cpu"])
    audit = json.loads((out / "audit.json").read_text())
    assert {d["name"] for d in audit["dependencies"]} == set(names)
    assert OutputFormat.JSON  # the validator's format, imported above


# --- the builder stage's install steps, in a fresh venv ---------------------------------------
@pytest.mark.slow
def test_the_install_steps_give_a_venv_that_runs_the_runtime(tmp_path):
    """scripts/image-install.sh (what the builder stage RUNs) on a copy of the build context,
    against the CPU lock, with a Python 3.11 that is not a venv; then real steps from it."""
    base = getattr(sys, "_base_executable", sys.executable)
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the lock is for Python 3.11")
    patterns = [line for line in (REPO / ".containerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        *[p.removeprefix("**/") for p in patterns], "examples", "docs"))
    venv = tmp_path / "venv"
    done = subprocess.run(["bash", "scripts/image-install.sh", str(venv), "cpu"], cwd=src,
                          env={**os.environ, "PYTHON": base}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "No broken requirements found" in done.stdout
    py = str(venv / "bin" / "python")
    installed = subprocess.run([py, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                               text=True, check=True).stdout
    pins = dict(line.split("==", 1) for line in installed.split())
    expected = _pins(LOCKS["cpu"])
    assert {k.lower().replace("_", "-"): v for k, v in pins.items() if k != "mlspec"
            and k != "pip"} == expected
    assert pins["mlspec"]
    work = tmp_path / "work"
    work.mkdir()
    spec = str(REPO / "examples" / "iris" / "mlproject.yaml")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(work)}

    def step(*args: str) -> str:
        run = subprocess.run(["python", "-m", "mlspec.runtime", *args], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return run.stdout + run.stderr

    assert "usage: python -m mlspec.runtime" in step("--help")
    assert "150 rows" in step("ingest", "--spec", spec, "--out", "dataset=ds.parquet")
    step("split", "--spec", spec, "--in", "dataset=ds.parquet", "--out", "train=tr.parquet",
         "--out", "test=te.parquet")
    step("train", "--spec", spec, "--in", "train=tr.parquet", "--out", "model=model")
    assert "accuracy=" in step("evaluate", "--spec", spec, "--in", "model=model", "--in",
                               "test=te.parquet", "--out", "metrics=m.json")
    # KFP's executor (the command of every KFP step) imports from the same venv.
    subprocess.run(["python3", "-c", "import kfp.dsl.executor_main"], env=env, check=True,
                   timeout=120)
