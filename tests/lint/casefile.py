"""Lint rule cases as data: each ``cases/MLSxxx.yaml`` patches a base spec into failing and
passing specs. A patch is deep-merged over the base; the value ``__delete__`` removes a key and
lists replace. The patched spec is written in YAML block style, so every key has its own line.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "cases"
DELETE = "__delete__"


def load_base(name: str = "base") -> dict[str, Any]:
    return yaml.safe_load((HERE / f"{name}.yaml").read_text(encoding="utf-8"))


def apply_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value == DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = apply_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


def case_text(case: dict[str, Any]) -> str:
    """The spec text of one case (its ``base`` defaults to ``base``)."""
    return render(apply_patch(load_base(case.get("base", "base")), case.get("patch") or {}))


def load_cases() -> dict[str, dict[str, Any]]:
    """Code -> its case file's content."""
    out = {}
    for path in sorted(CASES_DIR.glob("MLS*.yaml")):
        out[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return out


def write_cases(code: str, cases: dict[str, Any]) -> None:
    """Rewrite a case file (``pytest --update-golden`` refreshes the expected lines)."""
    header = (f"# Cases for {code}: patches are deep-merged over tests/lint/base.yaml "
              "(or the base named).\n")
    (CASES_DIR / f"{code}.yaml").write_text(
        header + yaml.safe_dump(cases, sort_keys=False, width=100, default_flow_style=None),
        encoding="utf-8")
