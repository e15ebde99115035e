"""Preprocessing by feature type, shared by the scikit-learn and torch paths.

Numeric features (float, int, bool) are scaled; categories and strings are one-hot encoded
(unknown values at serving time encode as all zeros); nullable features are imputed first
(median for numbers, most frequent for categories).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec.runtime.errors import StepError
from mlspec.runtime.features import FeatureSpec, require_columns

if TYPE_CHECKING:
    import pandas as pd


def feature_frame(frame: pd.DataFrame, features: list[FeatureSpec]) -> pd.DataFrame:
    """The model's input columns with the types the model expects.

    Numbers become float64, bools float 0/1, categories and strings Python ``str`` (NaN when
    missing).

    Raises:
        StepError: a column is missing or a numeric column holds text.
    """
    import pandas as pd

    require_columns(frame, [f.name for f in features], "feature")
    out = {}
    for f in features:
        column = frame[f.name]
        if f.numeric or f.type == "bool":
            if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(
                    column.dtype):
                out[f.name] = column.astype("float64")
                continue
            numbers = pd.to_numeric(column, errors="coerce")
            bad = numbers.isna() & column.notna()
            if f.type == "bool":
                mapped = column.map({"true": 1.0, "false": 0.0, "True": 1.0, "False": 0.0})
                numbers, bad = numbers.fillna(mapped), bad & mapped.isna()
            if bad.any():
                row = int(bad.to_numpy().argmax())
                raise StepError(f"feature {f.name!r} should be {f.type} but has text values "
                                f"(e.g. {column[bad].iloc[0]!r} at row {row})")
            out[f.name] = numbers.astype("float64")
        else:
            # NaN (not None) marks a missing category: SimpleImputer detects it in object columns.
            out[f.name] = column.astype(object).map(
                lambda v: float("nan") if pd.isna(v) else str(v)).astype(object)
    return pd.DataFrame(out, index=frame.index)


def build_preprocessor(features: list[FeatureSpec], frame: pd.DataFrame):
    """A ColumnTransformer that scales numbers and one-hot encodes categories, imputing
    nullable columns (and any column that has nulls in the training data)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    groups: dict[tuple[bool, bool], list[str]] = {}
    for f in features:
        numeric = f.numeric or f.type == "bool"
        nullable = f.nullable or bool(frame[f.name].isna().any())
        groups.setdefault((numeric, nullable), []).append(f.name)
    transformers = []
    for (numeric, nullable), columns in sorted(groups.items()):
        if numeric:
            steps = [SimpleImputer(strategy="median")] if nullable else []
            steps.append(StandardScaler())
        else:
            steps = [SimpleImputer(strategy="most_frequent")] \
                if nullable else []
            steps.append(OneHotEncoder(handle_unknown="ignore", sparse_output=False))
        name = f"{'num' if numeric else 'cat'}{'_nullable' if nullable else ''}"
        transformers.append((name, make_pipeline(*steps), columns))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
