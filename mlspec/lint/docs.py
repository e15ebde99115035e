"""Generate the parts of ``docs/spec.md`` that must match the code: the field reference (from
the pydantic models) and the table of diagnostic codes (from the rule registry).

    .venv/bin/python -m mlspec.lint.docs docs/spec.md     # rewrite the generated blocks
    .venv/bin/python -m mlspec.lint.docs --check docs/spec.md

A test runs ``--check``, so the docs cannot drift from the models or the rules.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, StringConstraints
from pydantic_core import PydanticUndefined

from mlspec.spec import models as m

# What each field means, for fields whose model does not say (Model.field -> text).
MEANINGS: dict[str, str] = {
    "Project.apiVersion": "Version of the spec language.",
    "Project.kind": "Always `MLProject`.",
    "Project.metadata": "Who and what the project is.",
    "Project.data": "Where the data comes from and the contract it must meet.",
    "Project.model": "What to train and how.",
    "Project.validation": "The offline policy gate a model must pass before registration.",
    "Project.registry": "Where passing models are registered (MLflow Model Registry).",
    "Project.serving": "How the registered model is served (KServe) and rolled out.",
    "Project.monitoring": "Drift, online performance and service alerts (Prometheus).",
    "Project.triggers": "What starts the training pipeline.",
    "Project.targets": "Pipeline engines `mlspec compile` writes for.",
    "Project.namespace": "Kubernetes namespace of every generated object.",
    "Metadata.version": "Version of the project (free text, e.g. semver).",
    "Metadata.owner": "Owning team or person; lands in labels/annotations.",
    "Metadata.description": "One or two sentences about the model.",
    "Metadata.labels": "Extra labels put on generated Kubernetes objects.",
    "Feature.type": "Column type validate-data checks.",
    "Feature.min": "Smallest allowed value (numeric features).",
    "Feature.max": "Largest allowed value (numeric features).",
    "Feature.nullable": "Whether missing values are allowed.",
    "Checks.min_rows": "Fewest rows the data may have.",
    "Checks.max_null_fraction": "Largest share of missing values in any column.",
    "Checks.max_duplicate_fraction": "Largest share of duplicate rows.",
    "Split.test": "Share of rows held out for evaluation.",
    "Split.validation": "Share of rows for early stopping (torch) or tuning.",
    "Split.seed": "Random seed of the split (reproducible splits).",
    "Data.source": "The data to train on.",
    "Data.checks": "Whole-table checks validate-data runs.",
    "Data.split": "How rows are split into train/validation/test.",
    "Architecture.type": "Network family (tabular MLP).",
    "Architecture.hidden": "Sizes of the hidden layers.",
    "Architecture.dropout": "Dropout probability after each hidden layer.",
    "Training.epochs": "Most passes over the training data.",
    "Training.batch_size": "Rows per optimisation step.",
    "Training.learning_rate": "Optimiser step size.",
    "Training.optimizer": "Optimiser.",
    "Training.device": "`auto` uses CUDA when the node has a GPU.",
    "Training.early_stopping_patience": "Epochs without improvement before stopping (0: off).",
    "Tuning.strategy": "Search over every combination (`grid`) or sample `trials` (`random`).",
    "Tuning.trials": "Candidates tried by random search.",
    "Tuning.cv": "Cross-validation folds per candidate.",
    "Tuning.space": "Parameter name -> values to try.",
    "Toleration.key": "Taint key to tolerate.",
    "Toleration.operator": "How the value is matched.",
    "Toleration.value": "Taint value (with `Equal`).",
    "Toleration.effect": "Taint effect to tolerate (all when empty).",
    "Resources.cpu": "CPU request of each pipeline step (Kubernetes quantity).",
    "Resources.memory": "Memory request of each pipeline step.",
    "Resources.gpu": "GPUs for the training step (`nvidia.com/gpu`).",
    "Resources.node_selector": "Node labels the training step must run on.",
    "Resources.tolerations": "Taints the training step tolerates.",
    "Model.task": "The kind of problem.",
    "Model.framework": "Library that trains the model.",
    "Model.params": "Keyword arguments of the estimator (sklearn).",
    "Model.architecture": "The network (torch).",
    "Model.training": "The training loop (torch).",
    "Model.tuning": "Optional hyper-parameter search.",
    "Model.resources": "Scheduling of the pipeline steps.",
    "Threshold.min": "The metric must be at least this.",
    "Threshold.max": "The metric must be at most this.",
    "Baseline.alias": "Registry alias of the champion to beat.",
    "Baseline.min_delta": "How much better than the champion the challenger must be.",
    "Validation.thresholds": "Metric name -> bounds the model must meet.",
    "Validation.baseline": "Champion/challenger comparison against a registered model.",
    "Registry.tracking_uri": "MLflow tracking URI: embedded sqlite, or a tracking server.",
    "Registry.model_name": "Registered model name; defaults to `metadata.name`.",
    "Registry.alias": "Alias set on a model that passed the gate.",
    "Replicas.min": "Fewest serving replicas (0: scale to zero, serverless only).",
    "Replicas.max": "Most serving replicas.",
    "Replicas.target_concurrency": "In-flight requests per replica the autoscaler aims for.",
    "ServingResources.cpu": "CPU request of each serving replica.",
    "ServingResources.memory": "Memory request of each serving replica.",
    "Rollout.strategy": "How a new model replaces the old one.",
    "Serving.protocol": "Inference protocol: Open Inference Protocol (`v2`) or KServe `v1`.",
    "Serving.deployment_mode": "KServe mode: Knative `serverless` or plain Deployment `raw`.",
    "Serving.replicas": "Autoscaling bounds.",
    "Serving.resources": "Requests of each replica.",
    "Serving.rollout": "Rollout of a new model version.",
    "Drift.method": "Statistic that compares current data with the training profile.",
    "Drift.threshold": "Value of the statistic above which a feature has drifted.",
    "Drift.features": "`all` declared features, or a list of them.",
    "Drift.window": "Window of live traffic compared (Prometheus duration).",
    "Performance.metric": "Metric computed from ground truth sent to `/feedback`.",
    "Performance.min": "Alert when the metric falls below this.",
    "Performance.max": "Alert when the metric rises above this.",
    "Performance.window": "Window the metric is computed over.",
    "Service.latency_p99_ms": "Alert when the 99th percentile latency exceeds this.",
    "Service.error_rate": "Alert when the share of failed requests exceeds this.",
    "Alerts.severity": "Severity label of the generated alerts.",
    "Alerts.retrain_on": "Alerts routed to the retraining trigger.",
    "Monitoring.drift": "Data drift of the features.",
    "Monitoring.performance": "Model quality on live traffic (needs feedback).",
    "Monitoring.service": "Latency and error-rate alerts.",
    "Monitoring.alerts": "Alert routing.",
    "GitTrigger.repo": "Repository whose pushes start training.",
    "GitTrigger.branch": "Branch that starts training.",
    "Triggers.git": "Retrain on pushes (Tekton EventListener).",
    "Triggers.on_alert": "Whether monitoring alerts start retraining.",
}
BEGIN = "<!-- BEGIN GENERATED: {} (python -m mlspec.lint.docs docs/spec.md) -->"
END = "<!-- END GENERATED: {} -->"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any",
            type(None): "null"}


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _constraints(meta: list[Any]) -> list[str]:
    out = []
    for c in meta:
        if isinstance(c, Ge):
            out.append(f"≥ {c.ge:g}")
        elif isinstance(c, Gt):
            out.append(f"> {c.gt:g}")
        elif isinstance(c, Le):
            out.append(f"≤ {c.le:g}")
        elif isinstance(c, Lt):
            out.append(f"< {c.lt:g}")
        elif isinstance(c, MaxLen):
            out.append(f"at most {c.max_length} long")
        elif isinstance(c, MinLen) and c.min_length:
            out.append("non-empty")
        elif isinstance(c, StringConstraints):
            if c.pattern == m.DNS_LABEL:
                out.append("DNS label")
            elif c.pattern == m.QUANTITY:
                out.append("quantity")
            elif c.pattern == m.DURATION:
                out.append("duration")
            elif c.pattern:
                out.append(f"pattern `{c.pattern}`")
            if c.max_length:
                out.append(f"≤ {c.max_length} chars")
            if c.min_length:
                out.append("non-empty")
        elif hasattr(c, "metadata"):  # pydantic FieldInfo-like carriers
            out.extend(_constraints(list(c.metadata)))
    return out


def type_name(ann: Any) -> str:
    """A short human name of an annotation, with links to nested sections."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        extra = _constraints(list(args[1:]))
        return type_name(args[0]) + (f" ({', '.join(extra)})" if extra else "")
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is typing.Literal:
        return " \\| ".join(f"`{v}`" for v in args)
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[0])} → {type_name(args[1])}"
    if _is_model(ann):
        return f"[{ann.__name__}](#{ann.__name__.lower()})"
    return _SCALARS.get(ann, getattr(ann, "__name__", str(ann)))


def field_type(field: Any) -> str:
    """The field's type, with constraints pydantic moved from the annotation to the field."""
    extra = _constraints(list(field.metadata))
    return type_name(field.annotation) + (f" ({', '.join(extra)})" if extra else "")


def default_text(field: Any) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory else field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else f"`{value}`"


def _walk(model: type[BaseModel], path: str, seen: dict[type, str]) -> None:
    seen.setdefault(model, path)
    for name, field in model.model_fields.items():
        for nested, suffix in _nested(field.annotation):
            if nested not in seen:
                _walk(nested, f"{path}.{name}{suffix}".lstrip("."), seen)


def _nested(ann: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _nested(args[0], suffix)
    if origin in (typing.Union, types.UnionType):
        return [n for a in args for n in _nested(a, suffix)]
    if origin is list and args:
        return _nested(args[0], suffix + "[]")
    if origin is dict and len(args) == 2:
        return _nested(args[1], suffix + ".NAME")
    return [(ann, suffix)] if _is_model(ann) else []


def fields_markdown() -> str:
    """One table per section, in the order the spec reads."""
    sections: dict[type, str] = {}
    _walk(m.Project, "", sections)
    out = []
    for model, path in sections.items():
        title = f"`{path}`" if path else "top level"
        out.append(f"### {model.__name__}\n\n{title}\n")
        out.append("| field | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, field in model.model_fields.items():
            meaning = field.description or MEANINGS.get(f"{model.__name__}.{name}", "")
            out.append(f"| `{name}` | {field_type(field)} | {default_text(field)} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def rules_markdown() -> str:
    """The table of every diagnostic code, from the loader's codes and the rule registry."""
    from mlspec.report import all_codes

    lines = ["| code | name | severity | what it reports |", "| --- | --- | --- | --- |"]
    for code, (name, severity, doc) in all_codes().items():
        summary = doc.splitlines()[0].replace("|", "\\|")
        lines.append(f"| <a id=\"{code.lower()}\"></a>`{code}` | {name} | {severity.value} | "
                     f"{summary} |")
    return "\n".join(lines) + "\n"


def missing_meanings() -> list[str]:
    sections: dict[type, str] = {}
    _walk(m.Project, "", sections)
    return [f"{model.__name__}.{name}" for model in sections
            for name, field in model.model_fields.items()
            if not field.description and f"{model.__name__}.{name}" not in MEANINGS]


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for block, content in (("fields", fields_markdown()), ("rules", rules_markdown())):
        pattern = re.compile(re.escape(BEGIN.format(block)) + r".*?" + re.escape(END.format(block)),
                             re.S)
        if not pattern.search(text):
            raise ValueError(f"docs lack the generated block '{block}'")
        replacement = f"{BEGIN.format(block)}\n{content}{END.format(block)}"
        text = pattern.sub(lambda _, r=replacement: r, text)
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"] or ["docs/spec.md"]
    path = Path(paths[0])
    current = path.read_text(encoding="utf-8")
    fresh = render(current)
    if check:
        if fresh != current:
            print(f"{path} is out of date: run python -m mlspec.lint.docs {path}", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
