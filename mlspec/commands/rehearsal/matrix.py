"""A pipeline task with a ``matrix``: one TaskRun per combination of its params, as Tekton's
controller fans it out.

Each matrix param is an array (a literal list, or a whole-array reference such as
``$(tasks.T.results.R[*])``); the combinations are their cartesian product, in order, and
each TaskRun gets the task's own params plus one combination (``matrix.include`` is refused
when the manifest is read). The TaskRuns run at once; the pipeline task succeeds when every one
does, and its string results become arrays of the TaskRuns' values, in combination order (TEP-140).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from typing import Any

from mlspec.commands.rehearsal.substitute import Scope, SubstitutionError, substitute_array


def combinations(matrix: tuple[tuple[str, Any], ...], scope: Scope, task: str
                 ) -> list[dict[str, str]]:
    """Every combination of the matrix params' values.

    Raises:
        SubstitutionError: a matrix param that is not an array.
    """
    names, values = [], []
    for name, value in matrix:
        where = f"pipeline task {task} matrix param {name}"
        items = substitute_array(value if isinstance(value, list) else [value], scope, where)
        if not isinstance(value, list) and len(items) == 1 and items[0] == str(value):
            raise SubstitutionError(f"{where}: a matrix param must be an array")
        names.append(name)
        values.append(items)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def run_all(work, request, combos: list[dict[str, str]], params: dict[str, Any]) -> list:
    """Run one TaskRun per combination at once (``work(request)`` runs one with its retries and
    returns its attempts); the attempts of each, in combination order."""
    outcomes: list[list] = [[] for _ in combos]

    def one(i: int, combo: dict[str, str]) -> None:
        child = replace(request, name=f"{request.name}-{i}", params={**params, **combo},
                        folder=request.folder.with_name(f"{request.folder.name}-{i}"))
        outcomes[i] = work(child)

    threads = [threading.Thread(target=one, args=(i, c), daemon=True)
               for i, c in enumerate(combos)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def deciding(outcomes: list[list]) -> tuple[list, Any]:
    """Every attempt, with the one that decides the task's outcome last: the first TaskRun that
    did not succeed, else the last one."""
    flat = [a for attempts in outcomes for a in attempts]
    last = [attempts[-1] for attempts in outcomes if attempts]
    failed = [a for a in last if a.status != "Succeeded"]
    decider = failed[0] if failed else last[-1]
    flat.remove(decider)
    return [*flat, decider], decider


def aggregated_results(outcomes: list[list]) -> dict[str, list[str]]:
    """String results of the TaskRuns as arrays (TEP-140), when every TaskRun wrote them."""
    last = [attempts[-1] for attempts in outcomes if attempts]
    names = set.intersection(*(set(a.results) for a in last)) if last else set()
    return {n: [str(a.results[n]) for a in last] for n in sorted(names)
            if all(isinstance(a.results[n], str) for a in last)}
