"""ingest: read ``data.source`` into a parquet dataset."""

from __future__ import annotations

from mlspec.runtime.errors import StepError
from mlspec.runtime.io import read_source, write_dataset
from mlspec.runtime.spec import load_project


def run_ingest(spec, out_dataset: str) -> dict:
    """Read the spec's data source and write it to ``out_dataset`` (parquet).

    Returns:
        A summary: rows, columns and the source uri.
    """
    project = load_project(spec)
    source = project.data.source
    frame = read_source(source.uri, source.format)
    if len(frame) == 0:
        raise StepError(f"data source {source.uri} has no rows")
    # Column names must be strings for parquet and for the feature contract.
    frame.columns = [str(c) for c in frame.columns]
    write_dataset(frame, out_dataset)
    return {"rows": len(frame), "columns": list(frame.columns), "source": source.uri}
