"""Lint rules for ``data``: the target, the feature contract, the source and the split."""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.errors import Severity, did_you_mean
from mlspec.lint.base import Context, Finding, rule
from mlspec.lint.datasets import SKLEARN_DATASETS, TARGET_COLUMN, sklearn_dataset_name

NUMERIC_TYPES = ("float", "int")
_FORMATS_BY_SUFFIX = {".csv": "csv", ".csv.gz": "csv", ".tsv": "csv", ".parquet": "parquet",
                      ".pq": "parquet"}


@rule("MLS210", "target-missing")
def target_missing(ctx: Context) -> Iterator[Finding]:
    """data.target is missing, but the task is supervised.

    Anti-pattern: a classification or regression spec without ``data.target``: training has no
    label to learn.

    Best practice: name the label column (``sklearn://`` data sets call it ``target``).
    """
    if ctx.project.data.target is None:
        yield Finding(("data",), f"data.target is required for a {ctx.project.model.task} task",
                      "name the label column, e.g. 'target: target'")


@rule("MLS211", "target-is-feature")
def target_is_feature(ctx: Context) -> Iterator[Finding]:
    """The target column is also listed as a feature.

    Anti-pattern: ``target: price`` and ``features: {price: ...}`` — the model would be trained
    on its own label (target leakage).

    Best practice: list only input columns under ``data.features``.
    """
    target = ctx.project.data.target
    if target is not None and target in ctx.project.data.features:
        yield Finding(("data", "features", target),
                      f"the target '{target}' is also listed as a feature (target leakage)",
                      "remove it from data.features")


@rule("MLS212", "category-without-values")
def category_without_values(ctx: Context) -> Iterator[Finding]:
    """A ``category`` feature does not list its values.

    Anti-pattern: ``color: {type: category}`` — validate-data cannot check the contract and
    drift evaluation has no reference categories.

    Best practice: ``color: {type: category, values: [red, green, blue]}``.
    """
    for name, feature in ctx.project.data.features.items():
        if feature.type == "category" and not feature.values:
            yield Finding(("data", "features", name, "type"),
                          f"category feature '{name}' has no values",
                          "list the allowed values: values: [a, b, c]")


@rule("MLS213", "range-on-non-numeric")
def range_on_non_numeric(ctx: Context) -> Iterator[Finding]:
    """A ``min`` or ``max`` is set on a feature that is not numeric.

    Anti-pattern: ``color: {type: category, min: 0}`` — a bound on a non-number means nothing.

    Best practice: bounds on ``float`` and ``int`` features only; ``values`` for categories.
    """
    for name, feature in ctx.project.data.features.items():
        if feature.type in NUMERIC_TYPES:
            continue
        for bound in ("min", "max"):
            if getattr(feature, bound) is not None:
                yield Finding(("data", "features", name, bound),
                              f"'{bound}' is set on the {feature.type} feature '{name}'",
                              "bounds apply to float and int features only")


@rule("MLS214", "min-above-max")
def min_above_max(ctx: Context) -> Iterator[Finding]:
    """A feature's ``min`` is greater than its ``max``.

    Anti-pattern: ``age: {type: int, min: 120, max: 0}`` — every row would fail validation.

    Best practice: ``min`` ≤ ``max``.
    """
    for name, feature in ctx.project.data.features.items():
        if feature.min is not None and feature.max is not None and feature.min > feature.max:
            yield Finding(("data", "features", name, "min"),
                          f"feature '{name}' has min {feature.min:g} > max {feature.max:g}",
                          "swap them")


@rule("MLS215", "values-on-non-category", Severity.WARNING)
def values_on_non_category(ctx: Context) -> Iterator[Finding]:
    """``values`` is set on a feature that is not a ``category``; it is ignored.

    Anti-pattern: ``grade: {type: int, values: [1, 2, 3]}``.

    Best practice: use ``type: category`` for a closed set of values.
    """
    for name, feature in ctx.project.data.features.items():
        if feature.values is not None and feature.type != "category":
            yield Finding(("data", "features", name, "values"),
                          f"'values' is ignored on the {feature.type} feature '{name}'",
                          "set type: category, or remove values")


@rule("MLS216", "stratify-regression")
def stratify_regression(ctx: Context) -> Iterator[Finding]:
    """A regression task asks for a stratified split.

    Anti-pattern: ``task: regression`` with ``split: {stratify: true}`` — stratifying on a
    continuous target fails (every value is its own class).

    Best practice: leave ``stratify`` unset (it defaults to yes for classification only).
    """
    if ctx.project.model.task == "regression" and ctx.project.data.split.stratify:
        yield Finding(("data", "split", "stratify"),
                      "stratify: true cannot split a regression target",
                      "remove it or set stratify: false")


@rule("MLS217", "split-too-large")
def split_too_large(ctx: Context) -> Iterator[Finding]:
    """The test and validation shares leave no data to train on.

    Anti-pattern: ``split: {test: 0.6, validation: 0.4}``.

    Best practice: keep ``test + validation`` well below 1 (e.g. 0.2 + 0.1).
    """
    split = ctx.project.data.split
    if split.test + split.validation >= 1:
        yield Finding(("data", "split", "validation" if split.validation else "test"),
                      f"test ({split.test:g}) + validation ({split.validation:g}) leave no "
                      "training data", "keep test + validation below 1")


@rule("MLS218", "unreadable-source")
def unreadable_source(ctx: Context) -> Iterator[Finding]:
    """data.source cannot be read: an unknown bundled data set, or a format mlspec cannot tell.

    Anti-pattern: ``uri: sklearn://iriss``; ``uri: data.json`` with no ``format``;
    ``format: csv`` for a ``.parquet`` file.

    Best practice: ``sklearn://iris|wine|breast_cancer|digits|diabetes``, or a ``.csv``/
    ``.parquet`` file (give ``format`` when the name does not tell).
    """
    source = ctx.project.data.source
    name = sklearn_dataset_name(source.uri)
    if name is not None:
        if name not in SKLEARN_DATASETS:
            yield Finding(("data", "source", "uri"),
                          f"'{name}' is not a data set scikit-learn ships",
                          did_you_mean(name, SKLEARN_DATASETS)
                          or "known: " + ", ".join(sorted(SKLEARN_DATASETS)))
        elif source.format not in (None, "sklearn"):
            yield Finding(("data", "source", "format"),
                          f"format {source.format} does not fit {source.uri}",
                          "remove format (sklearn:// is inferred)")
        return
    path = source.uri.split("?", 1)[0].lower()
    inferred = next((fmt for suffix, fmt in _FORMATS_BY_SUFFIX.items() if path.endswith(suffix)),
                    None)
    if source.format == "sklearn":
        yield Finding(("data", "source", "format"), "format sklearn needs a sklearn://NAME uri")
    elif source.format is None and inferred is None:
        yield Finding(("data", "source", "uri"),
                      f"cannot tell the format of '{source.uri}' from its name",
                      "set data.source.format: csv or parquet")
    elif source.format and inferred and source.format != inferred:
        yield Finding(("data", "source", "format"),
                      f"format {source.format} does not match the file name '{source.uri}'",
                      f"did you mean format: {inferred}?")


@rule("MLS219", "column-not-in-dataset")
def column_not_in_dataset(ctx: Context) -> Iterator[Finding]:
    """A feature or the target is not a column of the bundled data set.

    Anti-pattern: ``sklearn://iris`` with a feature ``sepal_len`` or ``target: species``.

    Best practice: use the normalised column names (``sepal_length``…) and ``target``.
    """
    data = ctx.project.data
    info = SKLEARN_DATASETS.get(sklearn_dataset_name(data.source.uri) or "")
    if info is None:
        return
    if data.target is not None and data.target != TARGET_COLUMN:
        yield Finding(("data", "target"),
                      f"{data.source.uri} calls its label '{TARGET_COLUMN}', not '{data.target}'",
                      f"set target: {TARGET_COLUMN}")
    for name in data.features:
        if name not in info.features and name != data.target:
            yield Finding(("data", "features", name),
                          f"'{name}' is not a column of {data.source.uri}",
                          did_you_mean(name, info.features))
