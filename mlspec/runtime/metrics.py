"""Validation metrics (DESIGN.md's vocabulary) computed with scikit-learn, and their scorers."""

from __future__ import annotations

from typing import Any

from mlspec.runtime.errors import StepError
from mlspec.spec.models import LOWER_IS_BETTER

# Metric -> scikit-learn scorer name for tuning (GridSearchCV / RandomizedSearchCV).
SCORERS = {
    "accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy",
    "precision": "precision", "recall": "recall", "f1": "f1",
    "precision_macro": "precision_macro", "recall_macro": "recall_macro",
    "f1_macro": "f1_macro", "f1_weighted": "f1_weighted",
    "roc_auc": "roc_auc", "log_loss": "neg_log_loss",
    "r2": "r2", "rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error",
    "mse": "neg_mean_squared_error", "mape": "neg_mean_absolute_percentage_error",
}
BINARY_ONLY = ("precision", "recall", "f1")
NEEDS_PROBA = ("roc_auc", "log_loss")


def scorer(metric: str, n_classes: int | None = None) -> str:
    """The scikit-learn scorer for a metric (roc_auc is one-vs-rest for multiclass)."""
    if metric == "roc_auc" and n_classes and n_classes > 2:
        return "roc_auc_ovr"
    if metric in BINARY_ONLY and n_classes and n_classes > 2:
        raise StepError(f"metric {metric!r} is for binary targets; this target has {n_classes} "
                        f"classes (use {metric}_macro)")
    return SCORERS[metric]


def better(metric: str, a: float, b: float, min_delta: float = 0.0) -> bool:
    """Whether ``a`` beats ``b`` by at least ``min_delta`` on ``metric``."""
    if metric in LOWER_IS_BETTER:
        return a <= b - min_delta
    return a >= b + min_delta


def compute_metrics(names: list[str], task: str, y_true, y_pred, proba=None,
                    classes: list | None = None) -> dict[str, float]:
    """The metrics ``names`` of predictions (``proba``: class probabilities in ``classes``
    order; needed for roc_auc and log_loss)."""
    import numpy as np
    from sklearn import metrics as m

    out: dict[str, float] = {}
    for name in names:
        if task == "regression":
            value = {
                "r2": lambda: m.r2_score(y_true, y_pred),
                "mse": lambda: m.mean_squared_error(y_true, y_pred),
                "rmse": lambda: np.sqrt(m.mean_squared_error(y_true, y_pred)),
                "mae": lambda: m.mean_absolute_error(y_true, y_pred),
                "mape": lambda: m.mean_absolute_percentage_error(y_true, y_pred),
            }.get(name)
        else:
            value = _classification_metric(name, y_true, y_pred, proba, classes)
        if value is None:
            raise StepError(f"metric {name!r} does not apply to a {task} task")
        out[name] = float(value())
    return out


def _classification_metric(name: str, y_true, y_pred, proba, classes) -> Any:
    from sklearn import metrics as m

    classes = list(classes or [])
    binary = len(classes) <= 2
    if name in BINARY_ONLY and not binary:
        raise StepError(f"metric {name!r} is for binary targets; this target has "
                        f"{len(classes)} classes (use {name}_macro)")
    pos = classes[-1] if classes else 1
    if name in NEEDS_PROBA and proba is None:
        raise StepError(f"metric {name!r} needs class probabilities and this model has no "
                        "predict_proba")
    table = {
        "accuracy": lambda: m.accuracy_score(y_true, y_pred),
        "balanced_accuracy": lambda: m.balanced_accuracy_score(y_true, y_pred),
        "precision": lambda: m.precision_score(y_true, y_pred, pos_label=pos, zero_division=0),
        "recall": lambda: m.recall_score(y_true, y_pred, pos_label=pos, zero_division=0),
        "f1": lambda: m.f1_score(y_true, y_pred, pos_label=pos, zero_division=0),
        "precision_macro": lambda: m.precision_score(y_true, y_pred, average="macro",
                                                     zero_division=0),
        "recall_macro": lambda: m.recall_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_macro": lambda: m.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_weighted": lambda: m.f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "roc_auc": lambda: (m.roc_auc_score(y_true, proba[:, 1]) if binary else
                            m.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)),
        "log_loss": lambda: m.log_loss(y_true, proba, labels=classes),
    }
    return table.get(name)
