"""Lint rules for ``batch``: what batch scoring reads, writes, and when it runs."""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.errors import Severity
from mlspec.lint.base import Context, Finding, rule
from mlspec.lint.cron import CronError, parse_cron

# Where batch scoring can read and write: local paths and the object stores pyarrow's dataset
# reader lists (through fsspec). An https:// URL is one object, not a set of partitions.
BATCH_SCHEMES = ("s3://", "gs://", "gcs://")
# Columns the score step writes beside the keys (mlspec.runtime.batch.score).
PREDICTION_COLUMN, PROBABILITY_PREFIX = "prediction", "proba_"


@rule("MLS265", "bad-batch-cron")
def bad_batch_cron(ctx: Context) -> Iterator[Finding]:
    """batch.schedule is not a valid five-field cron expression.

    Anti-pattern: ``schedule: "0 2 * *"`` (four fields) or ``"0 24 * * *"``.

    Best practice: ``minute hour day-of-month month day-of-week``, e.g. ``"0 2 * * *"``
    (02:00 UTC every day), or ``@daily``.
    """
    batch = ctx.project.batch
    if batch is None or batch.schedule is None:
        return
    try:
        parse_cron(batch.schedule)
    except CronError as exc:
        yield Finding(("batch", "schedule"), f"invalid cron schedule '{batch.schedule}': {exc}",
                      "format: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'")


@rule("MLS266", "batch-schedule-without-tekton", Severity.WARNING)
def batch_schedule_without_tekton(ctx: Context) -> Iterator[Finding]:
    """batch.schedule is set but the tekton target is not compiled.

    Anti-pattern: ``targets: [kfp]`` with ``batch.schedule``: the schedule compiles to a
    CronJob that starts the Tekton batch pipeline through the
    EventListener; with ``targets: [kfp]`` nothing runs it (schedule KFP runs with a KFP
    recurring run instead).

    Best practice: add ``tekton`` to ``targets``, or drop the schedule.
    """
    batch = ctx.project.batch
    if batch is not None and batch.schedule is not None and "tekton" not in ctx.project.targets:
        yield Finding(("batch", "schedule"), "batch.schedule compiles to a CronJob that starts "
                      "the Tekton batch pipeline, but targets does not include tekton",
                      "add tekton to targets, or schedule the KFP batch pipeline with a "
                      "recurring run")


@rule("MLS267", "batch-unsupported-location")
def batch_unsupported_location(ctx: Context) -> Iterator[Finding]:
    """batch.input or batch.output is neither a local path nor an s3:// or gs:// prefix.

    Anti-pattern: ``input: https://example.com/data.parquet`` or ``sklearn://iris``: a batch
    reads a set of partitions, which only a folder or an object-store prefix has.

    Best practice: a parquet file, a folder of parquet files, or ``s3://bucket/prefix/``.
    """
    batch = ctx.project.batch
    if batch is None:
        return
    for field in ("input", "output"):
        value = getattr(batch, field)
        if "://" in value and not value.startswith(BATCH_SCHEMES):
            yield Finding(("batch", field), f"batch.{field} '{value}' is not a local path, "
                          "s3:// or gs:// location", "use a folder or an s3:// or gs:// prefix")


@rule("MLS268", "batch-key-collides")
def batch_key_collides(ctx: Context) -> Iterator[Finding]:
    """A batch.keys column has the name of a column the score step writes.

    Anti-pattern: ``keys: [prediction]`` or ``keys: [proba_1]``: the output would hold two
    columns of that name.

    Best practice: rename the input column, or leave it out of ``keys``.
    """
    batch = ctx.project.batch
    if batch is None or batch.keys is None:
        return
    for i, key in enumerate(batch.keys):
        if key == PREDICTION_COLUMN or key.startswith(PROBABILITY_PREFIX):
            yield Finding(("batch", "keys", i), f"key column '{key}' has the name of a column "
                          "the score step writes (prediction, proba_CLASS)",
                          "rename the column in the input, or drop it from batch.keys")
        elif key in (ctx.project.data.target,):
            yield Finding(("batch", "keys", i), f"key column '{key}' is the target: a batch to "
                          "score has no labels", "drop it from batch.keys")


@rule("MLS269", "batch-output-inside-input")
def batch_output_inside_input(ctx: Context) -> Iterator[Finding]:
    """batch.output is batch.input or lies inside it.

    Anti-pattern: ``input: data/scoring``, ``output: data/scoring/predictions``: the next batch
    would list the predictions as partitions to score.

    Best practice: separate locations, e.g. ``scoring/`` and ``predictions/``.
    """
    batch = ctx.project.batch
    if batch is None:
        return
    source, target = batch.input.rstrip("/") + "/", batch.output.rstrip("/") + "/"
    if target.startswith(source):
        yield Finding(("batch", "output"), f"batch.output '{batch.output}' is inside "
                      f"batch.input '{batch.input}'", "write predictions somewhere else")
