"""Reading and writing what steps exchange: datasets (parquet), JSON files, small values.

Also reads data sources: csv and parquet files, ``sklearn://NAME`` (scikit-learn's bundled
data sets) and remote URIs (s3://, gs://, https://) through fsspec when the ``remote`` extra is
installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.runtime.errors import StepError, first_line

if TYPE_CHECKING:
    import pandas as pd

SKLEARN_DATASETS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
}
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "https://", "http://", "az://", "abfs://")
TARGET = "target"


def normalise_feature_name(name: str) -> str:
    """scikit-learn's feature name as a column name: lower-case, unit dropped, ``_`` joins.

    ``sepal length (cm)`` -> ``sepal_length``; ``od280/od315_of_diluted_wines`` ->
    ``od280_od315_of_diluted_wines``; ``mean radius`` -> ``mean_radius``.
    """
    name = re.sub(r"\s*\([^)]*\)\s*$", "", str(name).strip().lower())
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def source_format(uri: str, fmt: str | None) -> str:
    """The format of a source: given, ``sklearn`` for sklearn://, else from the file suffix."""
    if fmt:
        return fmt
    if uri.startswith("sklearn://"):
        return "sklearn"
    path = uri.split("?", 1)[0].lower()
    for suffix, name in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"),
                         (".csv.gz", "csv"), (".tsv", "csv")):
        if path.endswith(suffix):
            return name
    raise StepError(f"cannot infer the format of {uri!r}: set data.source.format (csv or parquet)")


def read_source(uri: str, fmt: str | None = None) -> pd.DataFrame:
    """Read a data source into a DataFrame.

    Raises:
        StepError: unknown sklearn data set, unreadable or empty file, missing fsspec extra.
    """
    fmt = source_format(uri, fmt)
    if fmt == "sklearn":
        return load_sklearn(uri.removeprefix("sklearn://"))
    if uri.startswith(REMOTE_SCHEMES):
        return _read_remote(uri, fmt)
    return read_table(uri, fmt)


def load_sklearn(name: str) -> pd.DataFrame:
    """One of scikit-learn's bundled data sets with normalised feature names and ``target``."""
    loader = SKLEARN_DATASETS.get(name)
    if loader is None:
        raise StepError(f"unknown scikit-learn data set {name!r}; known: "
                        + ", ".join(sorted(SKLEARN_DATASETS)))
    import pandas as pd
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    columns = [normalise_feature_name(n) for n in bunch.feature_names]
    frame = pd.DataFrame(bunch.data, columns=columns)
    frame[TARGET] = bunch.target
    return frame


def _read_remote(uri: str, fmt: str) -> pd.DataFrame:
    try:
        import fsspec
    except ImportError:
        raise StepError(f"reading {uri.split('://')[0]}:// sources needs fsspec: "
                        "pip install 'mlspec[remote]'") from None
    try:
        with fsspec.open(uri, "rb") as handle:
            if fmt == "parquet":
                return _spool_and_parse_parquet(handle, uri)
            return _parse(handle, fmt, uri)
    except ImportError as exc:
        # fsspec delegates s3/gs to s3fs/gcsfs, which are separate packages.
        raise StepError(f"reading {uri} needs an fsspec backend that is not installed: "
                        f"{exc}") from None
    except StepError:
        raise
    except Exception as exc:  # network and object-store clients raise their own types
        detail = first_line(exc)
        if isinstance(exc, FileNotFoundError):
            detail = "not found or not reachable"
        elif detail == uri or not detail:
            detail = type(exc).__name__
        raise StepError(f"cannot read {uri}: {detail}") from None


def read_table(path: str | os.PathLike[str], fmt: str | None = None) -> pd.DataFrame:
    """A local csv or parquet file as a DataFrame; clear errors for missing or empty files."""
    path = Path(path)
    fmt = fmt or source_format(str(path), None)
    if not path.is_file():
        raise StepError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise StepError(f"data file is empty: {path}")
    return _parse(path, fmt, str(path))


def _spool_and_parse_parquet(handle: Any, name: str) -> pd.DataFrame:
    # Arrow reading a Python file object leaves Python-owned buffers in its worker threads'
    # futures; one freed there while the interpreter exits aborts the process ("terminate
    # called without an active exception", apache/arrow#34314). From a local copy Arrow reads
    # its own file, as it does for local sources.
    with tempfile.TemporaryDirectory(prefix="mlspec-source-") as tmp:
        local = Path(tmp) / "source.parquet"
        with open(local, "wb") as out:
            shutil.copyfileobj(handle, out, 1 << 20)
        return _parse(local, "parquet", name)


def _parse(source: Path | Any, fmt: str, name: str) -> pd.DataFrame:
    """A DataFrame from a local path (parquet must come as a path: see
    ``_spool_and_parse_parquet``) or, for csv, an open binary file."""
    import pandas as pd

    try:
        frame = pd.read_parquet(source) if fmt == "parquet" else pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise StepError(f"data file is empty: {name}") from None
    except Exception as exc:  # pandas/pyarrow raise many types for corrupt files
        raise StepError(f"cannot read {name} as {fmt}: {first_line(exc)}") from None
    if frame.shape[1] == 0:
        raise StepError(f"data file has no columns: {name}")
    return frame


def read_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A dataset another step wrote (parquet; csv accepted when the suffix says so)."""
    suffix = Path(path).suffix.lower()
    return read_table(path, "csv" if suffix in (".csv", ".tsv") else "parquet")


def write_dataset(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a dataset as parquet (no index), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_json(path: str | os.PathLike[str], what: str = "file") -> Any:
    """A JSON file another step wrote; StepError when missing or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"{what} not found: {path}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise StepError(f"cannot read {what} {path}: {first_line(exc)}") from None


def read_json_object(path: str | os.PathLike[str], what: str,
                     key: str | None = None) -> dict[str, Any]:
    """A JSON file another step wrote that must be an object (a gate decision, a data report)
    and, with ``key``, hold the object ``key`` (an evaluate metrics file: ``metrics``);
    StepError otherwise, naming the file."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise StepError(f"{what} {path} is not a JSON object")
    if key is not None and not isinstance(data.get(key), dict):
        raise StepError(f"{what} {path} has no '{key}' object")
    return data


def write_json(data: Any, path: str | os.PathLike[str]) -> None:
    """Write JSON with sorted keys (stable output), atomically."""
    write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", path)


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_value(value: bool, path: str | os.PathLike[str]) -> None:
    """A VALUE output: a small text file with ``true`` or ``false``."""
    write_text("true" if value else "false", path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


