"""docs/architecture.md stays true: its recipes name files that exist (placeholders such as
``<area>`` excepted) and state their touch counts truly, the names they cite are defined, every
registered target is in its table as the registry records it, and every import contract of
pyproject.toml is named."""

from __future__ import annotations

import re
import tomllib

import pytest

from mlspec.targets import TARGETS
from tests.conftest import REPO

DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
FILE_SUFFIXES = (".py", ".md", ".toml", ".yaml", ".yml", ".sh", ".json", ".j2", ".txt")
PLACEHOLDER = re.compile(r"[<>{}*]")


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/architecture.md has no '## {heading}' section"
    return match.group(1)


RECIPES = _section(DOC, "Recipes")


def _recipes() -> dict[str, tuple[int, str]]:
    """Recipe title -> (touches it states, its body)."""
    found = re.findall(r"^### (.+?) \((\d+) touches\)\n(.*?)(?=^### |\Z)", RECIPES, re.M | re.S)
    return {title: (int(count), body) for title, count, body in found}


def _paths(text: str) -> list[str]:
    """Repository paths written in backticks: tokens with a '/' or a file suffix, without
    placeholders, URLs, options or variables."""
    out = []
    for span in re.findall(r"`([^`\n]+)`", text):
        for token in span.split():
            token = token.strip(",;:()\"'")
            if not token or PLACEHOLDER.search(token) or "://" in token \
                    or token.startswith(("-", "$", "@")):
                continue
            if "/" in token or token.endswith(FILE_SUFFIXES):
                out.append(token)
    return out


def test_the_three_recipes_are_there() -> None:
    titles = set(_recipes())
    assert titles == {"Add a target", "Add a lint rule", "Add a runtime step to the pipeline"}


@pytest.mark.parametrize("title", sorted(_recipes()))
def test_a_recipe_states_its_touch_count_truly(title: str) -> None:
    count, body = _recipes()[title]
    items = re.findall(r"^(\d+)\. ", body, re.M)
    assert [int(i) for i in items] == list(range(1, count + 1)), \
        f"{title!r} says {count} touches but lists {len(items)}"


RECIPE_PATHS = sorted(set(_paths(RECIPES)))


def test_the_recipes_name_files() -> None:
    assert len(RECIPE_PATHS) >= 15, RECIPE_PATHS
    for anchor in ("mlspec/targets.py", "scripts/regen.sh", "mlspec/lint/rules.py",
                   "mlspec/runtime/cli.py", "mlspec/compile/graph.py", "docs/runtime.md"):
        assert anchor in RECIPE_PATHS, anchor


@pytest.mark.parametrize("path", RECIPE_PATHS)
def test_a_path_in_the_recipes_exists(path: str) -> None:
    assert (REPO / path.rstrip("/")).exists(), f"docs/architecture.md names {path}, which is gone"


def _defined_names() -> set[str]:
    """Classes and module-level names (assigned or annotated) in the package and the tests."""
    names: set[str] = set()
    pattern = re.compile(r"^(?:class ([A-Za-z_]\w*)|([A-Za-z_]\w*)[ \t]*[:=])", re.M)
    for folder in ("mlspec", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            for cls, var in pattern.findall(path.read_text(encoding="utf-8")):
                names.add(cls or var)
    return names


def test_names_the_recipes_cite_are_defined() -> None:
    # A bare identifier with a capital (RULES, STEPS, _STEP_TABLE, StepDef, Target ...) in
    # backticks names a table or a class the recipe asks to edit or use.
    cited = {span for span in re.findall(r"`([^`\n]+)`", RECIPES)
             if re.fullmatch(r"_?[A-Za-z]\w*", span) and re.search(r"[A-Z]", span)}
    assert {"RULES", "STEPS", "_STEP_TABLE", "TARGETS"} <= cited
    missing = sorted(cited - _defined_names())
    assert not missing, f"docs/architecture.md's recipes cite undefined names: {missing}"


def _target_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.mark.parametrize("record", TARGETS, ids=[t.name for t in TARGETS])
def test_every_registered_target_is_in_the_table_as_registered(record) -> None:
    assert f"`{record.name}`" in DOC
    rows = _target_rows()
    assert record.name in rows, f"target {record.name} is not in docs/architecture.md's table"
    _, renderer, engine, submit, webhook = rows[record.name]
    assert renderer == f"`{record.renderer}`"
    assert engine == ("yes" if record.engine else "no")
    assert submit == (f"`{record.submit}`" if record.submit else "–")
    if record.alert_webhook:
        assert f"`{record.alert_webhook}`" in webhook
    else:
        assert webhook == "–"


def test_the_table_holds_no_target_that_is_not_registered() -> None:
    assert set(_target_rows()) == {t.name for t in TARGETS}


def _contracts() -> list[dict]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return pyproject["tool"]["importlinter"]["contracts"]


def test_every_renderer_is_in_the_independence_contract() -> None:
    # The contract names the renderers by wildcard, so a new target needs no edit there.
    (contract,) = [c for c in _contracts() if c["id"] == "targets-independent"]
    assert contract["modules"] == ["mlspec.compile.targets.*"]
    assert all(t.renderer.rsplit(".", 1)[0] == "mlspec.compile.targets" for t in TARGETS)


def test_every_import_contract_is_named() -> None:
    rules = _section(DOC, "The import rules")
    for contract in _contracts():
        assert f"`{contract['id']}`" in rules, f"contract {contract['id']} is not described"
