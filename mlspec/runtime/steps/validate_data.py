"""validate-data: enforce ``data.features`` (the contract) and ``data.checks`` on a dataset.

Every violation is reported with its count and up to five example row numbers (0-based
positions in the dataset). A failed contract writes the report and then fails the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlspec.runtime.errors import StepError
from mlspec.runtime.features import FeatureSpec, feature_specs
from mlspec.runtime.io import read_dataset, write_json
from mlspec.runtime.spec import load_project

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EXAMPLE_ROWS = 5


def run_validate_data(spec, in_dataset: str, out_report: str) -> dict:
    """Check ``in_dataset`` against the spec's data contract; write the JSON report.

    Raises:
        StepError: the data breaks the contract (after the report is written).
    """
    project = load_project(spec)
    frame = read_dataset(in_dataset)
    report = validate_frame(project, frame)
    write_json(report, out_report)
    if not report["passed"]:
        first = report["violations"][0]["message"]
        more = len(report["violations"]) - 1
        raise StepError(f"data contract failed: {first}"
                        + (f" (and {more} more violation{'s' if more > 1 else ''}; see "
                           f"{out_report})" if more else ""))
    return report


def validate_frame(project, frame: pd.DataFrame) -> dict[str, Any]:
    """The data report of ``frame``: every violation of the contract and the checks."""
    checks = project.data.checks
    frame = frame.reset_index(drop=True)
    violations: list[dict[str, Any]] = []
    rows = len(frame)

    def add(check: str, column: str | None, message: str, mask=None, count=None) -> None:
        examples: list[int] = []
        if mask is not None:
            import numpy as np

            positions = np.flatnonzero(np.asarray(mask))
            count = int(positions.size)
            examples = [int(p) for p in positions[:EXAMPLE_ROWS]]
        violations.append({"check": check, "column": column, "message": message,
                           "count": int(count or 0), "rows": examples})

    if rows < checks.min_rows:
        add("min_rows", None, f"{rows} rows, fewer than data.checks.min_rows={checks.min_rows}",
            count=rows)
    target = project.data.target
    if target is not None:
        if target not in frame.columns:
            add("target", target, f"target column {target!r} is missing", count=1)
        else:
            nulls = frame[target].isna()
            if nulls.any():
                add("nullable", target, f"target column {target!r} has "
                    f"{int(nulls.sum())} null values", nulls)
    for feature in feature_specs(project, frame):
        if feature.name not in frame.columns:
            add("column", feature.name, f"feature column {feature.name!r} is missing", count=1)
            continue
        _check_feature(feature, frame[feature.name], project, add)
    if rows:
        for column in frame.columns:
            fraction = float(frame[column].isna().mean())
            if 0 < fraction < 1 and fraction > checks.max_null_fraction:
                add("max_null_fraction", str(column),
                    f"column {column!r} is {fraction:.1%} null, above "
                    f"data.checks.max_null_fraction={checks.max_null_fraction}",
                    frame[column].isna())
        duplicated = frame.duplicated()
        fraction = float(duplicated.mean())
        if fraction > checks.max_duplicate_fraction:
            add("max_duplicate_fraction", None, f"{fraction:.1%} of rows are duplicates, above "
                f"data.checks.max_duplicate_fraction={checks.max_duplicate_fraction}", duplicated)
    return {
        "version": 1,
        "passed": not violations,
        "rows": rows,
        "columns": [str(c) for c in frame.columns],
        "checks": project.data.checks.model_dump(mode="json"),
        "violations": violations,
    }


def _check_feature(feature: FeatureSpec, column: pd.Series, project, add) -> None:
    import pandas as pd

    name = feature.name
    nulls = column.isna()
    if len(column) and bool(nulls.all()):
        add("all_null", name, f"column {name!r} has no values (all null)", nulls)
        return
    if nulls.any() and not feature.nullable:
        add("nullable", name, f"column {name!r} has {int(nulls.sum())} null values but is not "
            "nullable", nulls)
    present = column[~nulls]
    if feature.type in ("float", "int"):
        numbers = _as_numbers(present)
        bad = numbers.isna()
        if bad.any():
            add("type", name, f"column {name!r} should be {feature.type} but has "
                f"{int(bad.sum())} non-numeric values (e.g. {present[bad].iloc[0]!r})",
                _full_mask(column, bad))
            numbers = numbers[~bad]
        if feature.type == "int":
            fractional = numbers != numbers.round()
            if fractional.any():
                add("type", name, f"column {name!r} should be int but has "
                    f"{int(fractional.sum())} fractional values", _full_mask(column, fractional))
        spec = project.data.features.get(name)
        if spec is not None and spec.min is not None:
            low = numbers < spec.min
            if low.any():
                add("range", name, f"column {name!r} has {int(low.sum())} values below "
                    f"min={spec.min} (smallest {numbers.min()!r})", _full_mask(column, low))
        if spec is not None and spec.max is not None:
            high = numbers > spec.max
            if high.any():
                add("range", name, f"column {name!r} has {int(high.sum())} values above "
                    f"max={spec.max} (largest {numbers.max()!r})", _full_mask(column, high))
    elif feature.type == "bool":
        ok = present.isin([True, False, 0, 1, "true", "false", "True", "False"])
        if not ok.all():
            add("type", name, f"column {name!r} should be bool but has {int((~ok).sum())} "
                f"other values (e.g. {present[~ok].iloc[0]!r})", _full_mask(column, ~ok))
    elif feature.type == "category" and feature.values:
        allowed = set(feature.values) | {str(v) for v in feature.values}
        ok = present.map(lambda v: v in allowed or str(v) in allowed).astype(bool)
        if not ok.all():
            unknown = sorted({str(v) for v in present[~ok].unique()})[:5]
            add("values", name, f"column {name!r} has {int((~ok).sum())} values outside "
                f"data.features.{name}.values: {', '.join(unknown)}", _full_mask(column, ~ok))
    elif feature.type == "string" and pd.api.types.is_numeric_dtype(column.dtype):
        add("type", name, f"column {name!r} should be string but is {column.dtype}",
            ~column.isna())


def _as_numbers(values: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype(float)
    return pd.to_numeric(values, errors="coerce")


def _full_mask(column: pd.Series, partial: pd.Series) -> np.ndarray:
    """A mask over the whole column from one over its non-null part (same index)."""
    import numpy as np

    # Frames are reset to a RangeIndex first, so labels are positions.
    full = np.zeros(len(column), dtype=bool)
    full[partial.index[partial.to_numpy(dtype=bool)].to_numpy()] = True
    return full
