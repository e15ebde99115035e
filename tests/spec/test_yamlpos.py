"""The positioned YAML reader: what it keeps, and every input it must refuse cleanly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec.spec import yamlpos
from mlspec.spec.yamlpos import Pos, YamlProblem, decode, parse


def _problem(text: str | bytes) -> tuple[str, int, int]:
    with pytest.raises(YamlProblem) as info:
        parse(decode(text if isinstance(text, bytes) else text.encode()))
    d = info.value.diagnostic
    return d.code, d.line, d.column


def test_positions_of_keys_and_items() -> None:
    doc = parse("a:\n  b: 1\n  c: [x, y]\n")
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert doc.positions[("a", "b")] == Pos(2, 3)
    assert doc.positions[("a", "c", 1)] == Pos(3, 10)
    assert doc.position_of(("a", "missing", "deeper")) == Pos(1, 1)  # nearest ancestor: a


def test_duplicate_keys() -> None:
    assert _problem("a: 1\nb: 2\na: 3\n") == ("MLS005", 3, 1)


def test_alias_bomb() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    code, line, _ = _problem("\n".join(lines) + "\n")
    assert code == "MLS007" and line > 1


def test_size_limit() -> None:
    raw = b"a: " + b"x" * (yamlpos.MAX_BYTES + 10)
    assert _problem(raw)[0] == "MLS003"


def test_deep_nesting() -> None:
    assert _problem("a: " + "[" * 200 + "]" * 200 + "\n")[0] == "MLS006"


def test_non_utf8_and_binary() -> None:
    assert _problem(b"a: 1\nb: caf\xe9\n") == ("MLS002", 2, 7)
    assert _problem(b"a: 1\n\x00\x01\x02")[0:2] == ("MLS002", 2)
    assert _problem("a: \x07\n")[0] == "MLS002"  # a control character YAML refuses


def test_empty_and_comment_only() -> None:
    assert _problem("")[0] == "MLS008"
    assert _problem("# just a comment\n")[0] == "MLS008"
    assert _problem("---\n...\n")[0] == "MLS008"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_not_a_mapping(text: str) -> None:
    assert _problem(text)[0] == "MLS009"


def test_multiple_documents() -> None:
    assert _problem("a: 1\n---\nb: 2\n") == ("MLS010", 2, 1)


def test_syntax_error_is_positioned() -> None:
    code, line, _ = _problem("a: 1\nb: [1, 2\nc: 3\n")
    assert code == "MLS004" and line >= 2


@pytest.mark.parametrize("text", ["a: !!python/object:os.system x\n", "a: !custom x\n",
                                  "a: !!binary aGk=\n", "<<: {a: 1}\n", "? [a]\n: 1\n",
                                  "a: *nope\n"])
def test_tags_merge_keys_and_odd_keys_are_refused(text: str) -> None:
    assert _problem(text)[0] == "MLS004"


def test_str_tag_is_allowed() -> None:
    assert parse("a: !!str 010\n").data == {"a": "010"}


def test_yaml_11_values_keep_their_yaml_12_meaning_and_warn() -> None:
    doc = parse("a: NO\nb: on\nc: 010\nd: 1:30\ne: 1e3\nf: yes\ng: 'no'\nh: true\n")
    assert doc.data == {"a": "NO", "b": "on", "c": 10, "d": "1:30", "e": 1000.0, "f": "yes",
                        "g": "no", "h": True}
    warned = {(w.path, w.code) for w in doc.warnings}
    assert warned == {("a", "MLS011"), ("b", "MLS011"), ("c", "MLS011"), ("d", "MLS011"),
                      ("e", "MLS011"), ("f", "MLS011")}


def test_yaml_11_numbers_warn() -> None:
    doc = parse("a: 1_000\nb: 0b101\nc: 1e3\nd: 1.5e3\ne: a_b\n")
    assert doc.data == {"a": "1_000", "b": "0b101", "c": 1000.0, "d": 1500.0, "e": "a_b"}
    assert sorted(w.path for w in doc.warnings) == ["a", "b", "c"]


def test_core_schema_scalars() -> None:
    doc = parse("a: ~\nb: 0x1F\nc: 0o17\nd: .inf\ne: -3\nf: 1.5\n")
    assert doc.data == {"a": None, "b": 31, "c": 15, "d": float("inf"), "e": -3, "f": 1.5}


def test_aliases_copy_values() -> None:
    doc = parse("a: &x {k: [1]}\nb: *x\n")
    assert doc.data["a"] == doc.data["b"] and doc.data["a"] is not doc.data["b"]


def test_bom_is_skipped() -> None:
    assert parse(decode(b"\xef\xbb\xbfa: 1\n")).data == {"a": 1}


@settings(max_examples=500, derandomize=True, deadline=None, database=None)
@given(st.one_of(st.binary(max_size=200),
                 st.text(alphabet=st.sampled_from(list("ab: -[]{}&*!|>'\"#,?\n\t\\0.~")),
                         max_size=120).map(str.encode)))
def test_any_input_parses_or_raises_yaml_problem(raw: bytes) -> None:
    try:
        doc = parse(decode(raw))
    except YamlProblem as problem:
        d = problem.diagnostic
        assert d.code.startswith("MLS0") and d.line >= 1 and d.column >= 1
        return
    assert isinstance(doc.data, dict)
    for pos in doc.positions.values():
        assert pos.line >= 1 and pos.column >= 1
