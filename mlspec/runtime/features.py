"""Which columns are features and of what kind: from ``data.features``, else inferred."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlspec.runtime.errors import StepError

if TYPE_CHECKING:
    import pandas as pd

    from mlspec.spec.models import Project

NUMERIC_TYPES = ("float", "int")
CATEGORICAL_TYPES = ("bool", "category", "string")


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its name, declared (or inferred) type and whether nulls are allowed."""

    name: str
    type: str
    nullable: bool = False
    values: tuple | None = None

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC_TYPES


def feature_specs(project: Project, frame: pd.DataFrame | None = None) -> list[FeatureSpec]:
    """The features a model uses: ``data.features`` in spec order, or every non-target column
    of ``frame`` with a type inferred from its dtype."""
    declared = project.data.features
    if declared:
        return [FeatureSpec(name, f.type, f.nullable, tuple(f.values) if f.values else None)
                for name, f in declared.items()]
    if frame is None:
        raise StepError("data.features is empty and there is no data to infer features from")
    target = project.data.target
    return [infer_feature(frame[c], str(c)) for c in frame.columns if c != target]


def infer_feature(column: pd.Series, name: str) -> FeatureSpec:
    """A feature's type from a column's dtype (numbers stay numbers, the rest are categories)."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        kind = "bool"
    elif pd.api.types.is_integer_dtype(dtype):
        kind = "int"
    elif pd.api.types.is_numeric_dtype(dtype):
        kind = "float"
    else:
        kind = "category"
    return FeatureSpec(name, kind, nullable=bool(column.isna().any()))


def require_columns(frame: pd.DataFrame, names: list[str], what: str) -> None:
    """StepError naming every missing column (with the columns that do exist)."""
    missing = [n for n in names if n not in frame.columns]
    if missing:
        have = ", ".join(map(str, list(frame.columns)[:20]))
        raise StepError(f"{what} column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(map(repr, missing))} not in the data (columns: {have})")
