"""Property-based fuzzing of `mlspec validate` over mutated examples.

Every mutated spec must end in exit 0, or exit 1 with positioned diagnostics: never an
exception, never an internal rule error, never an unpositioned diagnostic. Mutations: delete,
duplicate, retype and misspell keys, random scalars (in the data), and truncation, random bytes
and line edits (in the text). ≥ 2,000 cases run in-process; a batch also runs through the CLI.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlspec.commands.validate import validate_files
from tests.conftest import EXAMPLES

TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]
DATA = [yaml.safe_load(t) for t in TEXTS]
SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
STRUCTURE_CASES = 1200
TEXT_CASES = 900

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "yes", "NO", "on", "1e3", "010", "0x1F", "~", "sklearn://iris",
                     "0 3 * * 1", "classification", "regression", "torch", "all", "-1", "1:30"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.text(max_size=8), scalars, max_size=3))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, prefix + (i,)))
    return out


def _parent(root: Any, path: tuple) -> Any:
    node = root
    for part in path[:-1]:
        node = node[part]
    return node


def _misspell(key: str, draw: st.DrawFn) -> str:
    if not key:
        return "x"
    i = draw(st.integers(0, len(key) - 1))
    op = draw(st.sampled_from(["drop", "swap", "double", "upper"]))
    if op == "drop":
        return key[:i] + key[i + 1:] or "x"
    if op == "swap" and i + 1 < len(key):
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    if op == "upper":
        return key.upper()
    return key[:i] + key[i] + key[i:]


@st.composite
def structural(draw: st.DrawFn) -> str:
    """An example with 1-3 data mutations, written back as YAML."""
    import copy

    data = copy.deepcopy(draw(st.sampled_from(DATA)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(data, path), path[-1]
        op = draw(st.sampled_from(["delete", "retype", "scalar", "misspell", "move"]))
        if op == "delete":
            del parent[last]
        elif op in ("retype", "scalar"):
            parent[last] = draw(values if op == "retype" else scalars)
        elif op == "misspell" and isinstance(last, str):
            parent[_misspell(last, draw)] = parent.pop(last)
        elif op == "move" and isinstance(parent, dict):
            data[draw(st.text(max_size=10))] = parent.pop(last)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def textual(draw: st.DrawFn) -> bytes:
    """An example's bytes with 1-3 text mutations."""
    raw = draw(st.sampled_from(TEXTS)).encode()
    for _ in range(draw(st.integers(1, 3))):
        lines = raw.split(b"\n")
        op = draw(st.sampled_from(["truncate", "bytes", "dup-line", "drop-line", "indent",
                                   "swap-lines"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "truncate":
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif op == "bytes":
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        elif op == "dup-line":  # a duplicate key when the line holds one
            raw = b"\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])
        elif op == "drop-line":
            raw = b"\n".join(lines[:i] + lines[i + 1:])
        elif op == "indent":
            lines[i] = b" " * draw(st.integers(1, 5)) + lines[i]
            raw = b"\n".join(lines)
        elif op == "swap-lines" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            raw = b"\n".join(lines)
    return raw


def _assert_clean_outcome(path: Path) -> None:
    out = io.StringIO()
    code = validate_files([str(path)], "json", out=out)
    report = json.loads(out.getvalue())
    diagnostics = report["files"][0]["diagnostics"]
    assert code in (0, 1), (code, diagnostics)
    event(f"exit {code}; first code {diagnostics[0]['code'] if diagnostics else '-'}")
    assert all(isinstance(d["line"], int) and d["line"] >= 1 and d["column"] >= 1
               for d in diagnostics), diagnostics
    assert not any(d["code"] == "MLS299" for d in diagnostics), diagnostics
    if code == 1:
        assert any(d["severity"] == "error" for d in diagnostics)
    else:
        assert report["files"][0]["valid"]


@pytest.mark.slow
@settings(max_examples=STRUCTURE_CASES, **SETTINGS)
@given(text=structural())
def test_fuzz_structure(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mlproject.yaml"
    path.write_text(text, encoding="utf-8")
    _assert_clean_outcome(path)


@pytest.mark.slow
@settings(max_examples=TEXT_CASES, **SETTINGS)
@given(raw=textual())
def test_fuzz_text(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "mlproject.yaml"
    path.write_bytes(raw)
    _assert_clean_outcome(path)


@pytest.mark.slow
def test_fuzz_through_the_cli(tmp_path: Path) -> None:
    """A seeded batch of mutants through the real console script, in one call."""
    from tests.commands.test_validate import mlspec

    rng = random.Random(2024)
    files = []
    for n in range(60):
        raw = bytearray(rng.choice(TEXTS).encode())
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(raw))
            choice = rng.random()
            if choice < 0.3:
                del raw[at:at + rng.randint(1, 40)]
            elif choice < 0.6:
                raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
            else:
                raw[at:at] = rng.choice([b": ", b"\n  x: 1\n", b"- ", b"&a ", b"*a", b"{", b"'"])
        path = tmp_path / f"m{n}.yaml"
        path.write_bytes(bytes(raw))
        files.append(str(path))
    result = mlspec("validate", "-f", "json", *files)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert len(report["files"]) == len(files)
    for entry in report["files"]:
        assert entry["valid"] or any(d["line"] >= 1 for d in entry["diagnostics"])
        assert not any(d["code"] == "MLS299" for d in entry["diagnostics"])
    assert (result.returncode == 1) == any(not f["valid"] for f in report["files"])
