"""Regenerate mlspec/data/sklearn_estimators.json from scikit-learn's own estimator list.

The catalog lets `mlspec validate` check `model.estimator` and `model.params` without importing
scikit-learn, and lets the runtime import only estimator paths that are in it.

    .venv/bin/python scripts/gen_estimator_catalog.py
"""

from __future__ import annotations

import importlib
import inspect
import json
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "mlspec" / "data" / "sklearn_estimators.json"


def public_path(cls: type) -> str | None:
    """The shortest public import path of ``cls`` (no private module parts)."""
    parts = cls.__module__.split(".")
    public = []
    for part in parts:
        if part.startswith("_"):
            break
        public.append(part)
    for end in range(2, len(public) + 1):
        module_name = ".".join(public[:end])
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if getattr(module, cls.__name__, None) is cls:
            return f"{module_name}.{cls.__name__}"
    return None


def describe(cls: type, kind: str) -> dict:
    signature = inspect.signature(cls.__init__)
    params, required = [], []
    for name, p in signature.parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        params.append(name)
        if p.default is p.empty:
            required.append(name)
    return {
        "kind": kind,
        "params": sorted(params),
        "required": sorted(required),
        "predict_proba": hasattr(cls, "predict_proba"),
    }


def main() -> None:
    import sklearn
    from sklearn.utils import all_estimators

    warnings.filterwarnings("ignore")
    catalog = {}
    for kind in ("classifier", "regressor"):
        for _name, cls in all_estimators(type_filter=kind):
            path = public_path(cls)
            if path is not None and path not in catalog:
                catalog[path] = describe(cls, kind)
    doc = {"sklearn_version": sklearn.__version__, "estimators": dict(sorted(catalog.items()))}
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(catalog)} estimators to {OUT}")


if __name__ == "__main__":
    main()
