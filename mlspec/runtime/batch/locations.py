"""Where a batch reads and writes: local paths, or s3:// and gs:// prefixes through fsspec.

Partitions are the data files under ``batch.input`` (one file is one partition), in sorted
order, skipping hidden and ``_``-prefixed files (``_SUCCESS``, Spark's ``_metadata``). Output
files are written whole and then published in one step: renamed into place locally, uploaded
as one object (a single PUT, which object stores make visible atomically) remotely.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError, first_line

DATA_SUFFIXES = (".parquet", ".pq", ".csv")
REMOTE = ("s3://", "gs://", "gcs://")


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE)


def _filesystem(uri: str) -> Any:
    try:
        import fsspec
    except ImportError:
        raise StepError(f"{uri.split('://')[0]}:// locations need fsspec: "
                        "pip install 'mlspec[remote]'") from None
    try:
        return fsspec.filesystem(uri.split("://", 1)[0])
    except ImportError as exc:
        raise StepError(f"{uri}: the fsspec backend is not installed: {exc}") from None


def list_partitions(uri: str) -> list[str]:
    """The data files of ``uri`` (a file, a folder, or an object-store prefix), sorted.

    Raises:
        StepError: nothing there, or no data file under it.
    """
    if is_remote(uri):
        fs, scheme = _filesystem(uri), uri.split("://", 1)[0]
        try:
            found = [f"{scheme}://{p}" for p in fs.find(uri)] if not fs.isfile(uri) else [uri]
        except Exception as exc:  # noqa: BLE001 - object-store clients raise their own types
            raise StepError(f"cannot list {uri}: {first_line(exc)}") from None
    else:
        path = Path(uri)
        if path.is_file():
            return [str(path)]
        if not path.is_dir():
            raise StepError(f"batch.input {uri} does not exist")
        found = [str(p) for p in path.rglob("*") if p.is_file()]
    files = sorted(f for f in found if _is_data_file(f, uri))
    if not files:
        raise StepError(f"batch.input {uri} holds no data files ({', '.join(DATA_SUFFIXES)})")
    return files


def _is_data_file(path: str, root: str) -> bool:
    relative = path[len(root.rstrip("/")):].lstrip("/") or os.path.basename(path)
    hidden = any(part.startswith((".", "_")) for part in relative.split("/"))
    return not hidden and path.lower().endswith(DATA_SUFFIXES)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


@contextmanager
def published(uri: str) -> Iterator[Path]:
    """A local file to write; on success it appears at ``uri`` in one step, else never."""
    if not is_remote(uri):
        final = Path(uri)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.")
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    with tempfile.TemporaryDirectory(prefix="mlspec-batch-") as folder:
        local = Path(folder) / "part"
        yield local
        try:
            _filesystem(uri).put_file(str(local), uri)
        except Exception as exc:  # noqa: BLE001 - object-store clients raise their own types
            raise StepError(f"cannot write {uri}: {first_line(exc)}") from None


def write_text(uri: str, text: str) -> None:
    with published(uri) as local:
        local.write_text(text, encoding="utf-8")


def read_text(uri: str) -> str | None:
    """The text at ``uri``, or None when there is nothing there."""
    try:
        if is_remote(uri):
            with _filesystem(uri).open(uri, "r", encoding="utf-8") as handle:
                return handle.read()
        return Path(uri).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StepError(f"cannot read {uri}: {first_line(exc)}") from None


@contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path holding the data file ``uri`` (remote files are downloaded first: Arrow
    reading a Python file object can abort at exit, see mlspec.runtime.io)."""
    if not is_remote(uri):
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="mlspec-batch-") as folder:
        local = os.path.join(folder, os.path.basename(uri.rstrip("/")) or "part")
        try:
            with _filesystem(uri).open(uri, "rb") as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except Exception as exc:  # noqa: BLE001
            raise StepError(f"cannot read {uri}: {first_line(exc)}") from None
        yield local
