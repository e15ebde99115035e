"""split: a seeded (and, for classification, stratified) train/test split."""

from __future__ import annotations

from mlspec.runtime.errors import StepError
from mlspec.runtime.features import require_columns
from mlspec.runtime.io import read_dataset, read_json_object, write_dataset
from mlspec.runtime.spec import load_project


def run_split(spec, in_dataset: str, out_train: str, out_test: str,
              in_report: str | None = None) -> dict:
    """Split ``in_dataset`` into ``out_train`` and ``out_test`` (parquet).

    ``in_report`` (validate-data's report), when given, must say the data passed.
    """
    project = load_project(spec)
    if in_report is not None:
        report = read_json_object(in_report, "data report")
        if not report.get("passed", False):
            raise StepError(f"refusing to split: the data report {in_report} says the data "
                            "contract failed")
    frame = read_dataset(in_dataset)
    target = project.data.target
    if target is None:
        raise StepError("data.target is required to split a supervised data set")
    require_columns(frame, [target], "target")
    train, test = split_frame(frame, project)
    write_dataset(train, out_train)
    write_dataset(test, out_test)
    return {"train_rows": len(train), "test_rows": len(test)}


def split_frame(frame, project):
    """(train, test) frames with ``data.split.test`` of the rows held out."""
    from sklearn.model_selection import train_test_split

    split = project.data.split
    target = project.data.target
    stratify = frame[target] if project.stratify else None
    if stratify is not None:
        counts = stratify.value_counts()
        if counts.min() < 2:
            raise StepError(f"cannot stratify: class {counts.idxmin()!r} of {target!r} has only "
                            f"{counts.min()} row (set data.split.stratify: false or add data)")
    try:
        train, test = train_test_split(frame, test_size=split.test, random_state=split.seed,
                                       stratify=stratify)
    except ValueError as exc:
        raise StepError(f"cannot split the data: {exc}") from None
    return train.reset_index(drop=True), test.reset_index(drop=True)
