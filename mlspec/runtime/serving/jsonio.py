"""JSON for the model server: orjson when installed (several times faster for these
payloads), the standard library otherwise; and the body of every error answer."""

from __future__ import annotations

from typing import Any

try:  # orjson is several times faster than json for these payloads; json is the fallback
    import orjson

    loads, dumps = orjson.loads, orjson.dumps
    JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - depends on the install
    import json

    def loads(data: bytes) -> Any:  # type: ignore[misc]  # orjson's signature, narrower
        return json.loads(data)

    def dumps(obj: Any) -> bytes:  # type: ignore[misc]
        return json.dumps(obj, separators=(",", ":")).encode()

    JSON_ERRORS = (ValueError,)


def error_body(message: str) -> bytes:
    """The JSON body of every error answer: ``{"error": message}``."""
    return dumps({"error": message})
