"""What lint knows about the data sets behind ``sklearn://NAME`` without importing scikit-learn.

Column names follow DESIGN.md's normalisation (lower-case, a trailing unit in parentheses dropped,
other runs of non-alphanumerics turned into ``_``); a test compares them with scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BundledDataset:
    """A data set scikit-learn ships: its task, number of classes and feature columns."""

    task: str
    classes: int  # 0 for regression
    features: tuple[str, ...]


SKLEARN_DATASETS: dict[str, BundledDataset] = {
    "iris": BundledDataset("classification", 3, (
        "sepal_length", "sepal_width", "petal_length", "petal_width")),
    "wine": BundledDataset("classification", 3, (
        "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
        "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
        "od280_od315_of_diluted_wines", "proline")),
    "breast_cancer": BundledDataset("classification", 2, tuple(
        f"{prefix}{name}" if prefix == "mean_" or prefix == "worst_" else f"{name}_error"
        for prefix in ("mean_", "error", "worst_")
        for name in ("radius", "texture", "perimeter", "area", "smoothness", "compactness",
                     "concavity", "concave_points", "symmetry", "fractal_dimension"))),
    "digits": BundledDataset("classification", 10, tuple(
        f"pixel_{row}_{col}" for row in range(8) for col in range(8))),
    "diabetes": BundledDataset("regression", 0, (
        "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")),
}
TARGET_COLUMN = "target"


def sklearn_dataset_name(uri: str) -> str | None:
    """``sklearn://iris`` -> ``iris``; None for any other kind of uri."""
    if not uri.startswith("sklearn://"):
        return None
    return uri[len("sklearn://"):].strip("/")
