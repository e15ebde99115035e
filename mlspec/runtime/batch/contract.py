"""The data contract row by row: which rows of a chunk break ``data.features`` and how.

validate-data judges a whole training set; batch scoring must instead keep going and set the
rows that break the contract aside (never scoring them), counted by feature and kind.
Kinds are validate-data's check names: nullable, type, range, values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlspec.runtime.features import FeatureSpec

BOOL_VALUES = (True, False, 0, 1, "true", "false", "True", "False")


@dataclass(frozen=True)
class Rule:
    """What the contract says of one feature (``data.features`` plus the model's own)."""

    feature: FeatureSpec
    min: float | None = None
    max: float | None = None


def contract_rules(project: Any, features: list[FeatureSpec]) -> list[Rule]:
    """One rule per model input, with the spec's ranges and allowed values where declared."""
    declared = project.data.features
    rules = []
    for feature in features:
        spec = declared.get(feature.name)
        if spec is not None:
            feature = FeatureSpec(feature.name, spec.type, spec.nullable,
                                  tuple(spec.values) if spec.values else None)
        rules.append(Rule(feature, getattr(spec, "min", None), getattr(spec, "max", None)))
    return rules


def violations(frame: pd.DataFrame, rules: list[Rule]) -> tuple[np.ndarray, dict[str, dict]]:
    """(mask of rows breaking any rule, {feature: {kind: rows}}) of one chunk."""
    bad = np.zeros(len(frame), dtype=bool)
    counts: dict[str, dict[str, int]] = {}
    for rule in rules:
        for kind, mask in _feature_violations(frame[rule.feature.name], rule):
            if mask.any():
                found = counts.setdefault(rule.feature.name, {})
                found[kind] = found.get(kind, 0) + int(mask.sum())
                bad |= mask
    return bad, counts


def _feature_violations(column: pd.Series, rule: Rule):
    feature = rule.feature
    nulls = column.isna().to_numpy()
    if not feature.nullable:
        yield "nullable", nulls
    if feature.type in ("float", "int"):
        numbers = _numbers(column)
        yield "type", np.isnan(numbers) & ~nulls
        present = ~np.isnan(numbers)
        if feature.type == "int":
            yield "type", present & (numbers != np.round(numbers))
        with np.errstate(invalid="ignore"):
            if rule.min is not None:
                yield "range", present & (numbers < rule.min)
            if rule.max is not None:
                yield "range", present & (numbers > rule.max)
    elif feature.type == "bool":
        yield "type", ~nulls & ~column.isin(BOOL_VALUES).to_numpy()
    elif feature.type == "category" and feature.values:
        allowed = {str(v) for v in feature.values}
        text = column.astype(str)
        yield "values", ~nulls & ~text.isin(allowed).to_numpy()


def _numbers(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def add_counts(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    """Add one chunk's violation counts to a running total."""
    for feature, kinds in more.items():
        target = into.setdefault(feature, {})
        for kind, n in kinds.items():
            target[kind] = target.get(kind, 0) + n
