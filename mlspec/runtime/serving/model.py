"""The model behind the server: load an MLflow model and predict on decoded request rows.

A scikit-learn flavoured model is called directly (``model.predict``) because MLflow's pyfunc
wrapper adds a DataFrame conversion and schema enforcement to every call; any other flavour goes
through pyfunc. Inputs are described once, at load time, from the model's signature (or the
estimator's ``feature_names_in_``), so each request is checked against a fixed list of columns.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mlspec import contract
from mlspec.runtime.errors import first_line

# MLflow column types -> Open Inference Protocol datatypes (and whether the column is numeric).
MLFLOW_TO_V2: dict[str, str] = {
    "double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32",
    "boolean": "BOOL", "string": "BYTES", "binary": "BYTES", "datetime": "BYTES",
}
NUMERIC_V2 = frozenset({"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8",
                        "UINT64", "UINT32", "UINT16", "UINT8", "BOOL"})
REFERENCE_PROFILE = "reference_profile.json"
META_FILE = "mlspec_model.json"  # written by the runtime's train step: task, features, classes


class ModelLoadError(Exception):
    """The model could not be found or loaded (a usage error for ``mlspec serve``)."""


@dataclass(frozen=True)
class Column:
    """One input column of the model: its name, v2 datatype and whether nulls are allowed."""

    name: str
    datatype: str
    nullable: bool = False

    @property
    def numeric(self) -> bool:
        return self.datatype in NUMERIC_V2


@dataclass
class LoadedModel:
    """A ready-to-call model with everything the server needs to describe and check requests."""

    name: str
    version: str
    columns: tuple[Column, ...]
    predict: Any  # Callable[[ndarray | DataFrame], ndarray]
    classifier: bool
    flavor: str
    platform: str
    folder: Path
    profile: dict | None = None
    # True when predict takes a plain float ndarray (fast path); else a DataFrame is built.
    takes_ndarray: bool = False
    output_datatype: str = "FP64"
    extra: dict = field(default_factory=dict)

    # Cached: the codec asks these on every request, and the columns never change after load.
    @cached_property
    def all_numeric(self) -> bool:
        return all(c.numeric for c in self.columns)

    @cached_property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def integer_columns(self) -> list[int]:
        """Indices of integer-typed inputs (a fractional value there is a client error)."""
        return [i for i, c in enumerate(self.columns)
                if c.datatype.startswith(("INT", "UINT"))]

    @cached_property
    def nullable_mask(self) -> Any:
        import numpy as np

        return np.array([c.nullable for c in self.columns], dtype=bool)


def _resolve_folder(uri: str, tracking_uri: str | None) -> tuple[Path, str]:
    """Download (or locate) the model folder; returns it with the model's version string."""
    path = Path(uri)
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise ModelLoadError(f"{uri}: not an MLflow model folder (no MLmodel file)")
        return path, os.environ.get("MLSPEC_MODEL_VERSION", "1")
    if "://" not in uri and ":/" not in uri:
        raise ModelLoadError(f"{uri}: no such model folder")
    import mlflow

    if tracking_uri:
        from mlspec.runtime.registry import point_mlflow_at

        point_mlflow_at(tracking_uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # mlflow raises many types; all mean "cannot load this"
        raise ModelLoadError(f"{uri}: {first_line(exc)}") from None
    return local, _version_of(uri)


def _version_of(uri: str) -> str:
    """The registry version a ``models:/`` URI points at; the run id for ``runs:/``."""
    override = os.environ.get("MLSPEC_MODEL_VERSION")
    if override:
        return override
    if uri.startswith("models:/"):
        ref = uri[len("models:/"):].strip("/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            from mlflow import MlflowClient

            try:
                return str(MlflowClient().get_model_version_by_alias(name, alias).version)
            except Exception:  # the download already worked; a version label is best effort
                return alias
        parts = ref.split("/")
        return parts[1] if len(parts) > 1 else "latest"
    if uri.startswith("runs:/"):
        return uri[len("runs:/"):].split("/", 1)[0][:12]
    return "1"




def _columns_from_signature(meta: Any) -> list[Column] | None:
    signature = getattr(meta, "signature", None)
    if signature is None or signature.inputs is None:
        return None
    cols = []
    for i, spec in enumerate(signature.inputs.inputs):
        name = getattr(spec, "name", None) or f"input-{i}"
        dtype = getattr(spec, "type", None)
        type_name = getattr(dtype, "name", str(dtype))
        v2 = MLFLOW_TO_V2.get(type_name)
        if v2 is None:  # a tensor spec: numpy dtype
            v2 = _numpy_to_v2(getattr(spec, "type", "float64"))
        cols.append(Column(name=name, datatype=v2, nullable=not getattr(spec, "required", True)))
    return cols


def _numpy_to_v2(dtype: Any) -> str:
    import numpy as np

    dt = np.dtype(dtype)
    if dt.kind == "f":
        return {2: "FP16", 4: "FP32"}.get(dt.itemsize, "FP64")
    if dt.kind in "iu":
        prefix = "INT" if dt.kind == "i" else "UINT"
        return f"{prefix}{dt.itemsize * 8}"
    if dt.kind == "b":
        return "BOOL"
    return "BYTES"


def _columns_from_estimator(estimator: Any) -> list[Column] | None:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [Column(str(n), "FP64") for n in names]
    count = getattr(estimator, "n_features_in_", None)
    if count:
        return [Column(f"input-{i}", "FP64") for i in range(int(count))]
    return None


def _read_profile(folder: Path) -> dict | None:
    path = folder / REFERENCE_PROFILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _meta_nullable(meta: dict) -> set[str]:
    """Feature names the data contract (``data.features.*.nullable``) lets be null."""
    features = meta.get("features")
    if not isinstance(features, list):
        return set()
    return {str(f.get("name")) for f in features
            if isinstance(f, dict) and f.get("nullable") is True}


def load_model(uri: str, name: str | None = None, tracking_uri: str | None = None) -> LoadedModel:
    """Load an MLflow model from a folder, ``models:/NAME@ALIAS``, ``models:/NAME/V`` or ``runs:/``.

    Args:
        uri: Where the model is.
        name: The model's name in the API; default: the registered name or the folder's name.
        tracking_uri: MLflow tracking/registry URI for ``models:/`` and ``runs:/`` URIs.

    Returns:
        The loaded model with its input columns.

    Raises:
        ModelLoadError: The model cannot be found or loaded.
    """
    if uri.startswith("models:/") and uri.endswith((f"/{contract.UNPINNED_VERSION}",
                                                     f"/{contract.UNPINNED_STABLE_VERSION}")):
        raise ModelLoadError(f"{uri} is a compiled deploy template's placeholder: the deploy "
                             "step pins the registered version (locally: mlspec serve "
                             "--manifest FILE --model-version N)")
    folder, version = _resolve_folder(uri, tracking_uri)
    from mlflow.models import Model

    try:
        meta = Model.load(str(folder))
    except Exception as exc:
        raise ModelLoadError(f"{uri}: {first_line(exc)}") from None
    profile = _read_profile(folder)
    mlspec_meta = _read_meta(folder)
    flavor = "sklearn" if "sklearn" in meta.flavors else "python_function"
    try:
        if flavor == "sklearn":
            import mlflow.sklearn

            estimator = mlflow.sklearn.load_model(str(folder))
            predict = estimator.predict
        else:
            import mlflow.pyfunc

            estimator = mlflow.pyfunc.load_model(str(folder))
            predict = estimator.predict
    except Exception as exc:
        raise ModelLoadError(f"{uri}: cannot load the model: {first_line(exc)}") from None
    columns = _columns_from_signature(meta) or (
        _columns_from_estimator(estimator) if flavor == "sklearn" else None)
    if not columns:
        raise ModelLoadError(f"{uri}: the model has no input signature; cannot describe its inputs")
    nullable = _meta_nullable(mlspec_meta)
    columns = [Column(c.name, c.datatype, c.nullable or c.name in nullable) for c in columns]
    model = LoadedModel(
        name=name or mlspec_meta.get("model_name") or _default_name(uri, folder),
        version=version, columns=tuple(columns),
        predict=predict, flavor=flavor,
        classifier=mlspec_meta.get("task") == "classification" or _is_classifier(estimator, flavor),
        platform="sklearn" if flavor == "sklearn" else "mlflow", folder=folder, profile=profile)
    proba = getattr(estimator, "predict_proba", None) if flavor == "sklearn" else None
    if proba is not None and model.classifier:
        model.extra["predict_proba"] = proba
    _probe(model)
    return model


def _default_name(uri: str, folder: Path) -> str:
    if uri.startswith("models:/"):
        ref = uri[len("models:/"):].strip("/")
        return ref.split("@", 1)[0].split("/", 1)[0]
    return os.environ.get("MLSPEC_MODEL_NAME") or folder.resolve().name or "model"


def _is_classifier(estimator: Any, flavor: str) -> bool:
    if flavor != "sklearn":
        return False  # decided from the first predictions (see LoadedModel.output_datatype)
    from sklearn.base import is_classifier

    return bool(is_classifier(estimator))


def _probe(model: LoadedModel) -> None:
    """Find out whether ``predict`` accepts a bare ndarray (the fast path) and its output type.

    A pipeline that selects columns by name needs a DataFrame; an estimator fitted on a frame
    accepts an ndarray with the same column order and only warns, which we silence. A model
    that refuses every sample we can make up still loads: it takes DataFrames, and requests
    tell it apart.
    """
    import numpy as np

    sample = _sample_rows(model)
    try:
        expected = np.asarray(model.predict(to_frame(model, sample)))
    except Exception as exc:  # noqa: BLE001 - any model error: fall back to the safe path
        print(f"warning: could not probe the model with a sample row ({first_line(exc)}); "
              "predicting through DataFrames", file=sys.stderr)
        return
    model.output_datatype = _numpy_to_v2(expected.dtype)
    if not model.classifier and model.flavor != "sklearn":
        model.classifier = expected.dtype.kind in "iubOSU"
    if model.flavor != "sklearn" or not model.all_numeric:
        return
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    try:
        got = np.asarray(model.predict(sample))
    except Exception:  # noqa: BLE001 - the ndarray path is an optimisation only
        return
    model.takes_ndarray = got.shape == expected.shape and bool(np.all(got == expected))


def sample_request(model: LoadedModel) -> dict[str, Any]:
    """A v2 inference request of plausible rows (see :func:`_sample_rows`), one tensor per
    feature: the smoke inference a blue-green rollout sends before it switches."""
    rows = _sample_rows(model)
    inputs = []
    for index, column in enumerate(model.columns):
        values = [value.item() if hasattr(value, "item") else value for value in rows[:, index]]
        if column.datatype.startswith(("INT", "UINT")):
            values = [int(v) for v in values]
        elif column.datatype == "BOOL":
            values = [bool(v) for v in values]
        elif column.numeric:
            values = [float(v) for v in values]
        else:
            values = [str(v) for v in values]
        inputs.append({"name": column.name, "shape": [len(values)], "datatype": column.datatype,
                       "data": values})
    return {"inputs": inputs}


def _sample_rows(model: LoadedModel) -> Any:
    """Plausible rows: the model's saved input example, else the profile's medians and most
    frequent categories, else zeros and empty strings."""
    import numpy as np

    example = _input_example(model)
    if example is not None:
        return example
    medians = _profile_medians(model.profile)
    modes = _profile_modes(model.profile)
    row = [medians.get(c.name, 0.0) if c.numeric else modes.get(c.name, "") for c in model.columns]
    if model.all_numeric:
        return np.array([row, row], dtype=np.float64)
    return np.array([row, row], dtype=object)


def _input_example(model: LoadedModel) -> Any:
    """The MLflow input example (``input_example.json``) as rows in column order, if any."""
    import numpy as np

    path = model.folder / "input_example.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    names = [c.name for c in model.columns]
    if not isinstance(data, dict) or data.get("columns") != names or not data.get("data"):
        return None  # only the pandas "split" layout maps onto our columns unambiguously
    rows = np.array(data["data"], dtype=np.float64 if model.all_numeric else object)
    return rows if rows.ndim == 2 and rows.shape[1] == len(names) else None


def _profile_modes(profile: dict | None) -> dict[str, str]:
    out: dict[str, str] = {}
    features = (profile or {}).get("features") or {}
    if isinstance(features, dict):
        for name, info in features.items():
            freq = info.get("frequencies") if isinstance(info, dict) else None
            if isinstance(freq, dict) and freq:
                out[str(name)] = max(freq, key=lambda k: freq[k])
    return out


def _profile_medians(profile: dict | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if not profile:
        return out
    features = profile.get("features") or {}
    items = features.items() if isinstance(features, dict) else (
        (f.get("name"), f) for f in features if isinstance(f, dict))
    for name, info in items:
        if not isinstance(info, dict):
            continue
        for key in ("median", "mean"):
            if isinstance(info.get(key), (int, float)):
                out[str(name)] = float(info[key])
                break
    return out


def to_frame(model: LoadedModel, rows: Any) -> Any:
    """A DataFrame with the model's column names and dtypes for a 2-D array of rows."""
    import numpy as np
    import pandas as pd

    data = {}
    for i, col in enumerate(model.columns):
        values = rows[:, i]
        if col.numeric:
            kind = "bool" if col.datatype == "BOOL" else (
                "int64" if col.datatype.startswith(("INT", "UINT")) else "float64")
            values = values.astype(np.float64)
            if kind != "float64" and not np.isnan(values).any():
                values = values.astype(kind)
        data[col.name] = values
    return pd.DataFrame(data, columns=[c.name for c in model.columns])
