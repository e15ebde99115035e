"""Decode inference requests (Open Inference Protocol v2, KServe v1) into rows, strictly.

Every way a request can be wrong raises :class:`BadRequest` with a 4xx status and a message
that names the problem (which input, which feature, which shape), so a client never sees a 500
for its own mistake. The numeric fast path is one ``np.asarray`` plus a finiteness check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlspec.runtime.serving.model import NUMERIC_V2, LoadedModel

V2_DATATYPES = NUMERIC_V2 | {"BYTES"}


class BadRequest(Exception):
    """A client error: ``status`` (4xx) and a one-line ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_v2(model: LoadedModel, body: Any) -> tuple[np.ndarray, str | None, bool]:
    """Rows (N, F) from a v2 infer request, the request id, and whether probabilities are asked.

    Two layouts are accepted: one tensor of shape ``[N, F]`` holding whole rows (columns in the
    model's order, as MLServer's scikit-learn runtime takes it), or one tensor per feature,
    named after it, of shape ``[N]`` or ``[N, 1]``.
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with an 'inputs' list")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string")
    proba = _wants_proba(body.get("outputs"))
    names = [c.name for c in model.columns]
    first = inputs[0]
    if len(inputs) == 1 and isinstance(first, dict) and (
            first.get("name") not in names or len(names) == 1):
        return _whole_rows(model, first), request_id, proba
    return _per_feature(model, inputs, names), request_id, proba


def _wants_proba(outputs: Any) -> bool:
    if outputs is None:
        return False
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
    wanted = set()
    for out in outputs:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
        wanted.add(out["name"])
    unknown = wanted - {"predict", "predict_proba"}
    if unknown:
        raise BadRequest(f"unknown output {sorted(unknown)[0]!r}; this model has 'predict' "
                         "and, for classifiers, 'predict_proba'")
    return "predict_proba" in wanted


def _tensor(tensor: Any, where: str) -> tuple[list[int], str, Any]:
    if not isinstance(tensor, dict):
        raise BadRequest(f"{where} must be an object with name, shape, datatype and data")
    shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
    if not isinstance(shape, list) or not shape or not all(
            type(d) is int and d >= 0 for d in shape):
        raise BadRequest(f"{where}: 'shape' must be a non-empty list of non-negative integers")
    if datatype not in V2_DATATYPES:
        raise BadRequest(f"{where}: unknown datatype {datatype!r}")
    if not isinstance(data, list):
        raise BadRequest(f"{where}: 'data' must be a list")
    return shape, datatype, data


def _whole_rows(model: LoadedModel, tensor: dict) -> np.ndarray:
    name = tensor.get("name")
    where = f"input {name!r}" if isinstance(name, str) else "input 0"
    shape, datatype, data = _tensor(tensor, where)
    width = len(model.columns)
    if len(shape) == 1 and width == 1:
        shape = [shape[0], 1]
    if len(shape) != 2 or shape[1] != width:
        raise BadRequest(f"{where}: shape {shape} does not fit the model: expected "
                         f"[N, {width}] (features: {', '.join(c.name for c in model.columns)})")
    if datatype == "BYTES" and model.all_numeric:
        raise BadRequest(f"{where}: datatype BYTES, but the model's inputs are numeric")
    rows = _array(model, data, where).reshape(-1) if data else np.empty(0)
    if rows.size != shape[0] * shape[1]:
        raise BadRequest(f"{where}: shape {shape} needs {shape[0] * shape[1]} values, "
                         f"'data' has {rows.size}")
    return _check(model, rows.reshape(shape[0], shape[1]))


def _per_feature(model: LoadedModel, inputs: list, names: list[str]) -> np.ndarray:
    by_name: dict[str, np.ndarray] = {}
    count = None
    for i, tensor in enumerate(inputs):
        name = tensor.get("name") if isinstance(tensor, dict) else None
        if not isinstance(name, str):
            raise BadRequest(f"input {i}: 'name' must be a string")
        if name not in names:
            raise BadRequest(f"unknown input {name!r}; the model's inputs are: {', '.join(names)}")
        if name in by_name:
            raise BadRequest(f"input {name!r} given twice")
        shape, datatype, data = _tensor(tensor, f"input {name!r}")
        column = model.columns[names.index(name)]
        if column.numeric and datatype == "BYTES":
            raise BadRequest(f"input {name!r}: datatype BYTES, but the feature is "
                             f"{column.datatype}")
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest(f"input {name!r}: shape {shape}; a feature tensor is [N] or [N, 1]")
        values = _array(model, data, f"input {name!r}").reshape(-1)
        if values.size != shape[0]:
            raise BadRequest(f"input {name!r}: shape {shape} needs {shape[0]} values, "
                             f"'data' has {values.size}")
        if count is not None and values.size != count:
            raise BadRequest(f"input {name!r} has {values.size} rows, other inputs {count}")
        count = values.size
        by_name[name] = values
    missing = [n for n in names if n not in by_name]
    if missing:
        raise BadRequest(f"missing input {missing[0]!r} (the model needs: {', '.join(names)})")
    dtype = np.float64 if model.all_numeric else object
    return _check(model, np.column_stack([by_name[n].astype(dtype) for n in names]))


def _array(model: LoadedModel, data: list, where: str) -> np.ndarray:
    """``data`` as an array: float64 when the model is all numeric, else object (built as
    object from the start: numpy would otherwise turn ``["red", 3]`` into two strings)."""
    try:
        arr = np.asarray(data) if model.all_numeric else np.array(data, dtype=object)
    except (ValueError, TypeError):
        raise BadRequest(f"{where}: 'data' is ragged or not made of scalars") from None
    kind = arr.dtype.kind
    if model.all_numeric:
        if kind in "fiub":
            return arr.astype(np.float64, copy=False)
        if kind == "O":
            return _objects_to_float(arr, where)
        raise BadRequest(f"{where}: 'data' holds strings, but the model's inputs are numeric")
    if any(isinstance(v, (list, dict)) for v in arr.reshape(-1)):
        raise BadRequest(f"{where}: 'data' is ragged or not made of scalars")
    return arr


def _objects_to_float(arr: np.ndarray, where: str) -> np.ndarray:
    flat = arr.reshape(-1)
    out = np.empty(flat.size, dtype=np.float64)
    for i, v in enumerate(flat):
        if v is None:
            out[i] = np.nan
        elif type(v) in (int, float, bool):
            out[i] = float(v)
        else:
            raise BadRequest(f"{where}: value {str(v)[:40]!r} is not a number")
    return out.reshape(arr.shape)


def _check(model: LoadedModel, rows: np.ndarray) -> np.ndarray:
    """Reject non-finite numbers and nulls in columns that do not allow them."""
    if rows.shape[0] == 0:
        raise BadRequest("the request has no rows")
    if rows.dtype == np.float64:
        numeric = rows
    else:
        cols = [i for i, c in enumerate(model.columns) if c.numeric]
        for i, col in enumerate(model.columns):
            if not col.numeric:
                bad = [v for v in rows[:, i] if v is not None and not isinstance(v, str)]
                if bad:
                    raise BadRequest(f"feature {col.name!r}: expected strings, got {bad[0]!r}")
                if not col.nullable and any(v is None for v in rows[:, i]):
                    raise BadRequest(f"feature {col.name!r}: null is not allowed")
        numeric = np.empty((rows.shape[0], len(cols)), dtype=np.float64)
        for j, i in enumerate(cols):
            numeric[:, j] = _objects_to_float(rows[:, i], f"feature {model.columns[i].name!r}")
        mask = model.nullable_mask[cols]
        _finite(numeric, mask, [model.columns[i].name for i in cols])
        _integral(model, numeric, cols)
        return rows
    _finite(numeric, model.nullable_mask, model.column_names)
    _integral(model, numeric, list(range(len(model.columns))))
    return rows


def _integral(model: LoadedModel, numeric: np.ndarray, cols: list[int]) -> None:
    """Integer inputs must hold whole numbers (1.5 in an INT64 column would be truncated)."""
    ints = model.integer_columns
    if not ints:
        return
    for j, i in enumerate(cols):
        if i in ints:
            values = numeric[:, j]
            if ((values != np.floor(values)) & ~np.isnan(values)).any():
                raise BadRequest(f"feature {model.columns[i].name!r} takes whole numbers "
                                 f"({model.columns[i].datatype})")


def _finite(values: np.ndarray, nullable: np.ndarray, names: list[str]) -> None:
    finite = np.isfinite(values)
    if finite.all():
        return
    if np.isinf(values).any():
        col = int(np.argwhere(np.isinf(values))[0][1])
        raise BadRequest(f"feature {names[col]!r}: infinite values are not allowed")
    nan_cols = np.isnan(values).any(axis=0) & ~nullable
    if nan_cols.any():
        col = int(np.argmax(nan_cols))
        raise BadRequest(f"feature {names[col]!r}: null/NaN is not allowed (not nullable)")


def decode_v1(model: LoadedModel, body: Any) -> np.ndarray:
    """Rows from a KServe v1 ``{"instances": [...]}`` body: lists in column order, or dicts."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with an 'instances' list")
    instances = body.get("instances", body.get("inputs"))
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    names = [c.name for c in model.columns]
    if all(isinstance(row, dict) for row in instances):
        table = []
        for i, row in enumerate(instances):
            unknown = [k for k in row if k not in names]
            if unknown:
                raise BadRequest(f"instance {i}: unknown feature {unknown[0]!r}")
            missing = [n for n in names if n not in row]
            if missing:
                raise BadRequest(f"instance {i}: missing feature {missing[0]!r}")
            table.append([row[n] for n in names])
        instances = table
    elif not all(isinstance(row, list) for row in instances):
        raise BadRequest("'instances' must hold only lists (in feature order) or only objects")
    for i, row in enumerate(instances):
        if len(row) != len(names):
            raise BadRequest(f"instance {i} has {len(row)} values; the model takes {len(names)} "
                             f"({', '.join(names)})")
    rows = _array(model, instances, "instances")
    return _check(model, rows.reshape(len(instances), len(names)))


def encode_outputs(values: np.ndarray, datatype: str, name: str = "predict") -> dict:
    """A v2 output tensor for an array of predictions."""
    if values.dtype.kind in "OSU":
        data = [str(v) for v in values.reshape(-1).tolist()]
        datatype = "BYTES"
    else:
        data = values.reshape(-1).tolist()
    return {"name": name, "shape": list(values.shape), "datatype": datatype, "data": data}
