"""Find the files shipped beside the code: Jinja templates, the JSON Schema, data catalogs.

In a wheel, ``templates/`` and ``schemas/`` are force-included as ``mlspec/_templates`` and
``mlspec/_schemas``; in a source checkout (editable install, tests) they sit at the repo root.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def _locate(packaged: str, in_repo: str) -> Path:
    shipped = _PACKAGE_DIR / packaged
    if shipped.is_dir():
        return shipped
    return _PACKAGE_DIR.parent / in_repo


def templates_dir() -> Path:
    """The folder of Jinja templates, one sub-folder per target."""
    return _locate("_templates", "templates")


def schemas_dir() -> Path:
    """The folder holding the generated ``mlproject.schema.json``."""
    return _locate("_schemas", "schemas")


def data_dir() -> Path:
    """Data files that live inside the package (e.g. the scikit-learn estimator catalog)."""
    return _PACKAGE_DIR / "data"
