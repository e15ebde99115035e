"""The rehearsal's matrix: combinations from literal and referenced arrays, the outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mlspec.commands.rehearsal.matrix import aggregated_results, combinations, deciding
from mlspec.commands.rehearsal.substitute import Scope, SubstitutionError


def test_combinations_are_the_cartesian_product_in_order():
    scope = Scope()
    scope.set("tasks", "t", "results", "parts", value=["0", "1"])
    combos = combinations((("p", "$(tasks.t.results.parts[*])"), ("os", ["linux", "mac"])),
                          scope, "x")
    assert combos == [{"p": "0", "os": "linux"}, {"p": "0", "os": "mac"},
                      {"p": "1", "os": "linux"}, {"p": "1", "os": "mac"}]
    scope.set("tasks", "t", "results", "empty", value=[])
    assert combinations((("p", "$(tasks.t.results.empty[*])"),), scope, "x") == []
    with pytest.raises(SubstitutionError, match="must be an array"):
        combinations((("p", "plain"),), scope, "x")


@dataclass
class _Attempt:
    status: str
    results: dict = field(default_factory=dict)


def test_the_first_failed_taskrun_decides_and_string_results_become_arrays():
    ok, bad = _Attempt("Succeeded", {"r": "a"}), _Attempt("Failed", {"r": "b"})
    attempts, decider = deciding([[ok], [_Attempt("Failed"), bad], [ok]])
    assert decider is bad and attempts[-1] is bad and len(attempts) == 4
    assert deciding([[ok], [ok]])[1] is ok
    assert aggregated_results([[ok], [_Attempt("Succeeded", {"r": "c"})]]) == {"r": ["a", "c"]}
