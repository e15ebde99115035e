"""Lint rules for ``model``: the estimator, its parameters, tuning, framework and resources."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from mlspec.errors import Severity, did_you_mean
from mlspec.lint.base import Context, Finding, rule
from mlspec.lint.datasets import SKLEARN_DATASETS, sklearn_dataset_name
from mlspec.spec.catalog import kind_for_task, load_catalog, lookup
from mlspec.spec.models import Architecture, Training


def _estimator(ctx: Context):
    model = ctx.project.model
    if model.framework != "sklearn":
        return None
    return lookup(model.estimator_path())


@rule("MLS201", "unknown-estimator")
def unknown_estimator(ctx: Context) -> Iterator[Finding]:
    """model.estimator is not a scikit-learn estimator in the catalog.

    Anti-pattern: ``estimator: sklearn.ensemble.RandomForestClassifer`` (a typo), a bare class
    name such as ``RandomForestClassifier``, or an arbitrary import path. mlspec never imports an
    object a spec names; the runtime only builds estimators listed in its catalog.

    Best practice: write the full import path of a scikit-learn estimator, e.g.
    ``sklearn.ensemble.RandomForestClassifier``.
    """
    model = ctx.project.model
    if model.framework != "sklearn" or model.estimator is None or lookup(model.estimator):
        return
    name = model.estimator
    yield Finding(("model", "estimator"),
                  f"'{name}' is not a scikit-learn estimator that mlspec knows",
                  _estimator_hint(name))


def _estimator_hint(name: str) -> str:
    """A did-you-mean over catalog paths, or over class names for a bare or misplaced class."""
    catalog = load_catalog()
    by_class = {path.rsplit(".", 1)[-1].lower(): path for path in catalog}
    cls = name.rsplit(".", 1)[-1]
    if cls.lower() in by_class:
        path = by_class[cls.lower()]
        return f"did you mean '{path}'?" + (" (write the full import path)" if "." not in name
                                             else "")
    close = difflib.get_close_matches(name, list(catalog), n=1, cutoff=0.75)
    if not close:
        close = [by_class[c] for c in difflib.get_close_matches(cls.lower(), list(by_class), n=1)]
    if close:
        return f"did you mean '{close[0]}'?"
    return "see 'mlspec explain MLS201'; estimators come from sklearn.utils.all_estimators()"


@rule("MLS202", "estimator-task-mismatch")
def estimator_task_mismatch(ctx: Context) -> Iterator[Finding]:
    """The estimator's kind does not match model.task.

    Anti-pattern: ``task: regression`` with ``estimator: sklearn.ensemble.RandomForestClassifier``.

    Best practice: a classifier for classification, a regressor for regression
    (e.g. ``RandomForestRegressor``).
    """
    info = _estimator(ctx)
    task = ctx.project.model.task
    if info is None or info.kind == kind_for_task(task):
        return
    twin = None
    if info.kind == "classifier" and info.path.endswith("Classifier"):
        twin = info.path[: -len("Classifier")] + "Regressor"
    elif info.kind == "regressor" and info.path.endswith("Regressor"):
        twin = info.path[: -len("Regressor")] + "Classifier"
    hint = f"did you mean '{twin}'?" if twin and lookup(twin) else None
    yield Finding(("model", "estimator") if ctx.project.model.estimator else ("model", "task"),
                  f"{info.path} is a {info.kind}, but model.task is {task}", hint)


@rule("MLS203", "unknown-estimator-param")
def unknown_param(ctx: Context) -> Iterator[Finding]:
    """model.params names a parameter the estimator does not take.

    Anti-pattern: ``params: {max_dept: 8}`` — scikit-learn would raise at training time, after
    the pipeline has already ingested and split the data.

    Best practice: use the estimator's own parameter names (see its scikit-learn documentation).
    """
    info = _estimator(ctx)
    if info is None:
        return
    for name in ctx.project.model.params:
        if name not in info.params:
            hint = did_you_mean(name, info.params) or (
                "parameters: " + ", ".join(sorted(info.params)) if info.params else None)
            yield Finding(("model", "params", name),
                          f"{info.path.rsplit('.', 1)[-1]} has no parameter '{name}'", hint)


_TORCH_TUNABLE = frozenset(Training.model_fields) | (
    frozenset(Architecture.model_fields) - {"type"})


@rule("MLS204", "unknown-tuning-param")
def unknown_tuning_param(ctx: Context) -> Iterator[Finding]:
    """model.tuning.space names a parameter the model does not have.

    Anti-pattern: ``space: {max_dept: [4, 8]}`` — every trial would fail.

    Best practice: tune the estimator's parameters (sklearn) or the ``training`` and
    ``architecture`` fields (torch: ``learning_rate``, ``hidden``, ``dropout`` ...).
    """
    tuning = ctx.project.model.tuning
    if tuning is None:
        return
    model = ctx.project.model
    if model.framework == "torch":
        allowed = _TORCH_TUNABLE
    else:
        info = _estimator(ctx)
        if info is None:
            return
        allowed = info.params
    for name, values in tuning.space.items():
        if name not in allowed:
            yield Finding(("model", "tuning", "space", name),
                          f"tuning.space names '{name}', which the model does not take",
                          did_you_mean(name, allowed))
        elif not values:
            yield Finding(("model", "tuning", "space", name),
                          f"tuning.space '{name}' has no values to try")


@rule("MLS205", "framework-fields")
def framework_fields(ctx: Context) -> Iterator[Finding]:
    """Settings of the other framework are set, and would be ignored.

    Anti-pattern: ``framework: torch`` with ``estimator`` or ``params``; ``framework: sklearn``
    with ``architecture`` or ``training``.

    Best practice: sklearn models use ``estimator`` and ``params``; torch models use
    ``architecture`` and ``training``.
    """
    model = ctx.project.model
    if model.framework == "torch":
        wrong = [k for k in ("estimator", "params") if ctx.given(("model", k))
                 and getattr(model, k)]
        fix = "torch models take 'architecture' and 'training'"
    else:
        wrong = [k for k in ("architecture", "training") if getattr(model, k) is not None]
        fix = "sklearn models take 'estimator' and 'params'"
    for key in wrong:
        yield Finding(("model", key), f"model.{key} is not used with framework {model.framework}",
                      f"remove it, or set the framework; {fix}")


@rule("MLS206", "required-param-missing")
def required_param_missing(ctx: Context) -> Iterator[Finding]:
    """The estimator needs a parameter the spec does not give.

    Anti-pattern: a meta-estimator such as ``sklearn.ensemble.StackingClassifier`` whose
    ``estimators`` are objects that a YAML spec cannot express.

    Best practice: choose an estimator that can be built from plain parameter values.
    """
    info = _estimator(ctx)
    if info is None:
        return
    for name in sorted(info.required - set(ctx.project.model.params)):
        yield Finding(("model", "estimator"),
                      f"{info.path.rsplit('.', 1)[-1]} requires the parameter '{name}', "
                      "which model.params does not set",
                      "meta-estimators that wrap other estimators cannot be built from a spec")


@rule("MLS207", "gpu-with-sklearn", Severity.WARNING)
def gpu_with_sklearn(ctx: Context) -> Iterator[Finding]:
    """A GPU is requested for a scikit-learn model, which cannot use it.

    Anti-pattern: ``framework: sklearn`` with ``resources: {gpu: 1}`` — the step waits for a GPU
    node and then leaves the GPU idle.

    Best practice: request GPUs only for torch models.
    """
    model = ctx.project.model
    if model.framework == "sklearn" and model.resources.gpu > 0:
        yield Finding(("model", "resources", "gpu"),
                      "scikit-learn does not use GPUs; this only delays scheduling",
                      "set gpu: 0")


@rule("MLS208", "cuda-without-gpu")
def cuda_without_gpu(ctx: Context) -> Iterator[Finding]:
    """Training asks for CUDA, but the step requests no GPU.

    Anti-pattern: ``training: {device: cuda}`` with ``resources.gpu: 0`` — the pod lands on a node
    without a GPU and training fails.

    Best practice: set ``resources.gpu`` to at least 1, or use ``device: auto``.
    """
    model = ctx.project.model
    if model.framework == "torch" and model.training and model.training.device == "cuda" \
            and model.resources.gpu == 0:
        yield Finding(("model", "training", "device"),
                      "device is cuda but model.resources.gpu is 0",
                      "request a GPU (resources: {gpu: 1}) or use device: auto")


@rule("MLS209", "task-does-not-fit-data")
def task_vs_dataset(ctx: Context) -> Iterator[Finding]:
    """model.task does not fit the bundled data set's target.

    Anti-pattern: ``sklearn://diabetes`` (a continuous target) with ``task: classification``.

    Best practice: regression for a continuous target, classification for classes.
    """
    name = sklearn_dataset_name(ctx.project.data.source.uri)
    info = SKLEARN_DATASETS.get(name or "")
    task = ctx.project.model.task
    if info and info.task != task:
        yield Finding(("model", "task"),
                      f"sklearn://{name} is a {info.task} data set, but model.task is {task}",
                      f"set task: {info.task}")



@rule("MLS290", "distributed-one-process")
def distributed_one_process(ctx: Context) -> Iterator[Finding]:
    """``model.distributed`` that adds up to a single process.

    Anti-pattern: ``distributed: {nodes: 1, processes_per_node: 1}`` — a TrainJob and a process
    group for one process: all the cost of distribution, none of the speed.

    Best practice: at least 2 processes in all (``nodes × processes_per_node``), or no
    ``distributed`` section.
    """
    dist = ctx.project.model.distributed
    if dist is not None and dist.nodes * dist.processes_per_node < 2:
        yield Finding(("model", "distributed"),
                      f"{dist.nodes} node x {dist.processes_per_node} process is one process",
                      "use at least 2 processes in all (e.g. processes_per_node: 2), or remove "
                      "model.distributed")


@rule("MLS291", "distributed-backend-without-gpu")
def distributed_backend(ctx: Context) -> Iterator[Finding]:
    """``backend: nccl`` with no GPU requested.

    Anti-pattern: ``distributed: {backend: nccl}`` with ``resources.gpu: 0`` — NCCL runs on GPUs
    only; every process fails at ``init_process_group``.

    Best practice: ``backend: gloo`` on CPUs; ``nccl`` with ``resources.gpu`` ≥ 1 (one process
    per GPU).
    """
    model = ctx.project.model
    dist = model.distributed
    if dist is not None and dist.backend == "nccl" and model.resources.gpu == 0:
        yield Finding(("model", "distributed", "backend"),
                      "the nccl backend needs GPUs, and model.resources.gpu is 0",
                      "use backend: gloo, or request GPUs (resources: {gpu: 1})")


@rule("MLS292", "distributed-needs-torch")
def distributed_needs_torch(ctx: Context) -> Iterator[Finding]:
    """``model.distributed`` on a framework that does not train distributed.

    Anti-pattern: ``framework: sklearn`` with ``distributed`` — scikit-learn estimators train in
    one process; the section would be silently ignored.

    Best practice: ``distributed`` with ``framework: torch`` only.
    """
    model = ctx.project.model
    if model.distributed is not None and model.framework != "torch":
        yield Finding(("model", "distributed"),
                      f"framework {model.framework} does not train distributed",
                      "remove model.distributed, or use framework: torch")


@rule("MLS293", "distributed-gloo-on-gpus", Severity.WARNING)
def distributed_gloo_on_gpus(ctx: Context) -> Iterator[Finding]:
    """``backend: gloo`` while GPUs are requested.

    Anti-pattern: ``distributed: {backend: gloo}`` with ``resources.gpu: 4`` — gloo moves
    gradients through the CPU; on GPUs NCCL is several times faster.

    Best practice: ``backend: nccl`` when the processes have GPUs.
    """
    model = ctx.project.model
    dist = model.distributed
    if dist is not None and dist.backend == "gloo" and model.resources.gpu > 0:
        yield Finding(("model", "distributed", "backend"),
                      "gloo on GPUs sends every gradient through the CPU",
                      "use backend: nccl")
