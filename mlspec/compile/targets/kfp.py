"""The Kubeflow Pipelines target: the pipeline graph as KFP v2 IR, made by the kfp SDK's compiler.

Every step is a lightweight Python component whose ``base_image`` is the runtime image and whose
body runs ``python -m mlspec.runtime STEP`` (the runtime step contract in
``mlspec.compile.graph``), so the same IR runs on a cluster and under
``kfp.local.SubprocessRunner`` (which cannot run container components). The gate's ``passed`` value
is the gate component's string return value and ``register`` sits in a ``dsl.If(passed ==
"true")``. Everything is built inside ``render`` (never at import time) and only from the graph;
the spec enters the IR only as the default of the ``spec`` parameter.
"""

# No `from __future__ import annotations`: kfp reads the pipeline function's annotations as types.
import importlib
import inspect
import itertools
import json
import keyword
import linecache
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlspec import k8s
from mlspec.compile.context import RenderContext
from mlspec.compile.graph import (
    DATASET,
    DEPLOY_BUNDLE,
    JSON_FILE,
    MODEL,
    SOURCE_STEPS,
    TRAIN_BUNDLE,
    VALUE,
    VALUES,
    PipelineGraph,
    Step,
    build_batch_graph,
    resolved_spec,
)
from mlspec.compile.targets import OutputFile
from mlspec.errors import Diagnostic, Severity, SpecError, UsageError
from mlspec.spec.models import Project

OUTPUT_PATH = "kfp/pipeline.yaml"
BATCH_OUTPUT_PATH = "kfp/batch-pipeline.yaml"
# Diagnostic codes of this target (MLS7xx: a value the KFP output cannot carry safely).
UNSAFE_VALUE = "MLS701"

# Graph artifact kind -> the kfp artifact class a component declares for it.
ARTIFACT_TYPES = {DATASET: "Dataset", MODEL: "Model", JSON_FILE: "Artifact"}
GPU_RESOURCE = "nvidia.com/gpu"
# Pipeline parameters: the resolved spec (JSON) and the data source (overrides data.source.uri).
SPEC_PARAM, DATA_URI_PARAM = "spec", "data_uri"
# Step bundles (JSON) are further parameters: with serving.deploy: auto the deploy steps', with
# model.distributed the train step's TrainJob.
BUNDLE_PARAMS = {DEPLOY_BUNDLE: "deploy_bundle", TRAIN_BUNDLE: "train_bundle"}
# A fan-out step's item (the batch's partition index).
PARTITION_PARAM = "partition"


def _mlspec_step(step: str, spec: str, inputs: dict, outputs: dict, values: list,
                 data_uri: str = "", bundle: str = "", partition: str = "") -> dict:
    """Run one ``mlspec.runtime`` step; this source is shipped inside every component.

    Arguments are passed as a list (never through a shell). VALUE outputs (the gate's
    ``passed``) are written by the runtime to a scratch file and returned as bare text, which
    the component returns as its ``Output`` parameter.
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile

    if data_uri:
        resolved = json.loads(spec)
        resolved["data"]["source"]["uri"] = data_uri
        spec = json.dumps(resolved, separators=(",", ":"))  # keep the spec's order
    scratch = tempfile.mkdtemp(prefix="mlspec-values-")
    paths = {**outputs, **{name: os.path.join(scratch, name) for name in values}}
    argv = [sys.executable, "-m", "mlspec.runtime", step, "--spec", spec]
    for name in sorted(inputs):
        argv += ["--in", f"{name}={inputs[name]}"]
    for name in sorted(paths):
        argv += ["--out", f"{name}={paths[name]}"]
    if bundle:  # the step's bundle, as a file (the runtime reads --bundle PATH)
        bundle_path = os.path.join(scratch, "bundle.json")
        with open(bundle_path, "w", encoding="utf-8") as fh:
            fh.write(bundle)
        argv += ["--bundle", bundle_path]
    if partition:  # a fan-out's item (dsl.ParallelFor)
        argv += ["--partition", partition]
    code = subprocess.run(argv, check=False).returncode
    if code != 0:
        raise SystemExit(f"mlspec.runtime {step} failed (exit code {code})")
    result = {}
    for name in values:
        with open(paths[name], encoding="utf-8") as fh:
            result[name] = fh.read().strip()
    return result


def render(project: Project, graph: PipelineGraph, ctx: RenderContext) -> list[OutputFile]:
    """Compile the pipeline graph to KFP v2 IR YAML (``kfp/pipeline.yaml``), and with a
    ``batch`` section the batch scoring graph (``kfp/batch-pipeline.yaml``).

    Raises:
        SpecError: a value the IR cannot carry safely (MLS7xx).
    """
    problems = check(graph)
    if problems:
        raise SpecError(problems)
    spec_json = spec_parameter(resolved_spec(project))
    bundles = {name: text for name in BUNDLE_PARAMS if (text := ctx.bundle(name))}
    pipeline_func = _pipeline_function(graph, spec_json, bundles)
    files = [OutputFile(OUTPUT_PATH, _compile(pipeline_func))]
    batch = build_batch_graph(project)
    if batch is not None:
        files.append(OutputFile(BATCH_OUTPUT_PATH,
                                _compile(_pipeline_function(batch, spec_json, {}))))
    return files


def spec_parameter(resolved: dict[str, Any]) -> str:
    """The resolved spec as the ``spec`` parameter: compact JSON in the spec's own key order.

    Not ``sort_keys``: the order of ``data.features`` is the model's input column order, so
    sorting would train a different model than the runtime run directly (or Tekton). The order
    is still deterministic: pydantic's field order, then the YAML file's order.
    """
    return json.dumps(resolved, separators=(",", ":"))


def check(graph: PipelineGraph) -> list[Diagnostic]:
    """Values the KFP output cannot carry safely.

    kfp writes parameter defaults unescaped into the IR's comment header, so a line break in
    the data uri would end the comment and inject YAML; such a uri is refused.
    """
    if k8s.breaks_lines(graph.data_uri):
        return [Diagnostic(UNSAFE_VALUE, Severity.ERROR,
                           "data.source.uri holds a control character or line break, which the "
                           "KFP pipeline cannot carry", path="data.source.uri",
                           hint="write the uri on one line, without control characters")]
    return []


def _compile(pipeline_func: Callable[..., Any]) -> str:
    import_kfp()
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="mlspec-kfp-") as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline_func, package_path=str(path))
        return path.read_text(encoding="utf-8")


def _pipeline_function(graph: PipelineGraph, spec_json: str,
                       bundles: dict[str, str]) -> Callable[..., Any]:
    """The ``@dsl.pipeline`` function: one task per graph step, the gate as ``dsl.If``;
    parameters ``spec``, ``data_uri`` and one per bundle (defaults: the compiled values)."""
    import_kfp()
    from kfp import dsl

    components = {step.name: _component(graph, step) for step in graph.steps}

    def build(spec: Any, data_uri: Any = None, **bundle_args: Any) -> None:
        tasks: dict[str, Any] = {}

        def add(step: Step, partition: Any = None) -> None:
            arguments = _arguments(graph, step, tasks, spec, data_uri)
            if step.bundle:
                arguments[BUNDLE_PARAMS[step.bundle]] = bundle_args[BUNDLE_PARAMS[step.bundle]]
            if partition is not None:
                arguments[PARTITION_PARAM] = partition
            task = _configure(components[step.name](**arguments), step)
            for name in step.after:
                task.after(tasks[name])
            tasks[step.name] = task

        def add_all(steps: Any) -> None:
            for step in steps:
                if step.fan_out is None:
                    add(step)
                    continue
                items = _output(graph, tasks, *step.fan_out)
                with dsl.ParallelFor(items=items, name=f"{step.name}-each") as item:
                    add(step, partition=item)

        # Steps under the same condition share one dsl.If: kfp refuses a task that depends on
        # one inside another condition block.
        for run_if, group in itertools.groupby(graph.steps, key=lambda s: s.run_if):
            if run_if is None:
                add_all(group)
                continue
            gate_step, value = run_if
            passed = _output(graph, tasks, gate_step, value)
            with dsl.If(passed == "true", name=f"{gate_step}-{value}"):
                for step in group:
                    add(step)

    # kfp reads the parameters from the signature (spec, data_uri, then the bundles compiled)
    # and calls the function with them in that order.
    defaults = {SPEC_PARAM: spec_json}
    if any(_reads_source(step) for step in graph.steps):
        defaults[DATA_URI_PARAM] = graph.data_uri
    defaults.update({BUNDLE_PARAMS[name]: text for name, text in bundles.items()})
    params = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=value,
                                annotation=str) for name, value in defaults.items()]

    def pipeline(*args: Any, **kwargs: Any) -> None:
        build(**{**dict(zip(defaults, args, strict=False)), **kwargs})

    pipeline.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    pipeline.__annotations__ = {p.name: str for p in params}
    return dsl.pipeline(name=graph.name, description=graph.description)(pipeline)


def _arguments(graph: PipelineGraph, step: Step, tasks: dict[str, Any], spec: Any,
               data_uri: Any) -> dict[str, Any]:
    arguments = {SPEC_PARAM: spec}
    if _reads_source(step):
        arguments[DATA_URI_PARAM] = data_uri
    for item in step.inputs:
        arguments[_identifier(item.name)] = _output(graph, tasks, item.step, item.output)
    return arguments


def _reads_source(step: Step) -> bool:
    """The step that reads the data source (ingest) gets ``data_uri``; the rest get data as
    artifacts."""
    return step.name in SOURCE_STEPS and not step.inputs


def _output(graph: PipelineGraph, tasks: dict[str, Any], step: str, output: str) -> Any:
    """A task output as a pipeline channel. A step's VALUE output is its return value: kfp.local
    resolves a condition only on a task's ``Output`` parameter, not on named ones."""
    if graph.step(step).output(output).kind in (VALUE, VALUES):
        return tasks[step].outputs["Output"]
    return tasks[step].outputs[output]


def _configure(task: Any, step: Step) -> Any:
    """Scheduling from the graph: resources, GPU, node selector, tolerations, retries, caching."""
    res = step.resources
    task.set_display_name(step.name)
    task.set_cpu_request(res.cpu).set_cpu_limit(res.cpu)
    task.set_memory_request(res.memory).set_memory_limit(res.memory)
    if res.gpu:
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(str(res.gpu))
    if step.retries:
        task.set_retry(num_retries=step.retries)
    task.set_caching_options(enable_caching=step.cacheable)
    kubernetes = kubernetes_config(step)
    if kubernetes:
        task.platform_config["kubernetes"] = kubernetes
    return task


def kubernetes_config(step: Step) -> dict[str, Any]:
    """The task's kfp-kubernetes platform config (node selector, tolerations, timeout, Secrets
    as env).

    This is exactly the JSON that ``kfp.kubernetes.add_node_selector``, ``add_toleration``,
    ``set_timeout`` and ``use_secret_as_env`` store in ``task.platform_config["kubernetes"]``
    (a test compares the two), written directly because importing ``kfp.kubernetes`` loads the
    whole Kubernetes client, which more than doubles the time of a compile.
    """
    config: dict[str, Any] = {}
    res = step.resources
    if res.node_selector:
        config["nodeSelector"] = {"labels": dict(res.node_selector)}
    if res.tolerations:
        config["tolerations"] = [dict(t) for t in res.tolerations]
    if step.timeout_seconds:
        config["activeDeadlineSeconds"] = str(step.timeout_seconds)  # int64 -> JSON string
    if step.secrets:
        # use_secret_as_env(task, name, {key: key}, optional=True): a Secret may hold only some
        # of the keys (a token, or a user name and password).
        config["secretAsEnv"] = [
            {"secretName": secret.name,
             "keyToEnv": [{"secretKey": key, "envVar": key} for key in secret.keys],
             "optional": True,
             "secretNameParameter": {"runtimeValue": {"constant": secret.name}}}
            for secret in step.secrets]
    return config


def import_kfp() -> None:
    """Import the parts of kfp that compiling needs, without ``kfp.client``.

    ``import kfp`` also imports its API client (the Kubernetes client, google-auth, requests:
    about three quarters of kfp's import time), unless ``_KFP_RUNTIME`` is set, kfp's own switch
    for its containers. The switch is set only while the top-level package is imported, so
    ``kfp.dsl`` and ``kfp.compiler`` load in full; ``kfp.Client`` stays available lazily.

    Raises:
        UsageError: kfp is not installed (the ``kfp`` extra).
    """
    if sys.modules.get("kfp") is not None:
        return
    previous = os.environ.get("_KFP_RUNTIME")
    os.environ["_KFP_RUNTIME"] = "true"
    try:
        import kfp
    except ImportError:
        raise UsageError("the kfp target needs the kfp SDK: pip install 'mlspec[kfp]'") from None
    finally:
        if previous is None:
            del os.environ["_KFP_RUNTIME"]
        else:
            os.environ["_KFP_RUNTIME"] = previous
    if not hasattr(kfp, "Client"):
        kfp.__getattr__ = _kfp_lazy_attribute


def _kfp_lazy_attribute(name: str) -> Any:
    if name == "Client":
        from kfp.client import Client

        return Client
    if name in ("client", "components", "compiler", "dsl", "local"):
        return importlib.import_module(f"kfp.{name}")
    raise AttributeError(f"module 'kfp' has no attribute {name!r}")


# --- components -------------------------------------------------------------------------------
def _component(graph: PipelineGraph, step: Step) -> Any:
    """A lightweight component for ``step`` whose body calls ``_mlspec_step``."""
    from kfp import dsl

    func = _step_function(graph, step)
    return dsl.component(func, base_image=graph.image, install_kfp_package=False,
                         additional_funcs=[_mlspec_step])


def _step_function(graph: PipelineGraph, step: Step) -> Callable[..., Any]:
    """Define the component function from generated source.

    kfp serializes a component's body with ``inspect.getsource``, and each step has its own
    signature, so the function is written as text and registered with ``linecache``. Only graph
    names (checked to be identifiers) and ``repr`` literals go into the source, never spec text.
    """
    from kfp import dsl

    source = _step_source(graph, step)
    filename = f"<mlspec-kfp-{step.name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {
        "Input": dsl.Input, "Output": dsl.Output, "OutputPath": dsl.OutputPath,
        "Dataset": dsl.Dataset, "Model": dsl.Model, "Artifact": dsl.Artifact,
        "_mlspec_step": _mlspec_step,
    }
    exec(compile(source, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - source built from the graph
    return namespace[_identifier(step.name)]


def _step_source(graph: PipelineGraph, step: Step) -> str:
    producers = {s.name: s for s in graph.steps}
    params = [f"{SPEC_PARAM}: str"]
    if _reads_source(step):
        params.append(f"{DATA_URI_PARAM}: str")
    if step.bundle:
        params.append(f"{BUNDLE_PARAMS[step.bundle]}: str")
    if step.fan_out:
        params.append(f"{PARTITION_PARAM}: str")
    inputs, outputs = [], []
    for item in step.inputs:
        kind = producers[item.step].output(item.output).kind
        name = _identifier(item.name)
        params.append(f"{name}: {'str' if kind == VALUE else f'Input[{ARTIFACT_TYPES[kind]}]'}")
        inputs.append(f"{item.name!r}: {name}" + ("" if kind == VALUE else ".path"))
    for artifact in step.outputs:
        if artifact.kind not in (VALUE, VALUES):
            name = _identifier(artifact.name)
            params.append(f"{name}: Output[{ARTIFACT_TYPES[artifact.kind]}]")
            outputs.append(f"{artifact.name!r}: {name}.path")
    value_outputs = [a for a in step.outputs if a.kind in (VALUE, VALUES)]
    if len(value_outputs) > 1:
        raise ValueError(f"step {step.name}: KFP components return at most one value output")
    values = [a.name for a in value_outputs]
    data_uri = f", {DATA_URI_PARAM}" if _reads_source(step) else ""
    bundle = f", bundle={BUNDLE_PARAMS[step.bundle]}" if step.bundle else ""
    partition = f", partition={PARTITION_PARAM}" if step.fan_out else ""
    call = (f"_mlspec_step({step.name!r}, {SPEC_PARAM}, {{{', '.join(inputs)}}}, "
            f"{{{', '.join(outputs)}}}, {values!r}{data_uri}{bundle}{partition})")
    lines = [f"    {step.description!r}"]
    returns = ""
    if value_outputs and value_outputs[0].kind == VALUES:
        # A list the engine can fan out over (dsl.ParallelFor needs a list-typed output).
        lines += ["    import json", f"    return json.loads({call}[{values[0]!r}])"]
        returns = " -> list"
    elif values:
        lines.append(f"    return {call}[{values[0]!r}]")
        returns = " -> str"
    else:
        lines.append(f"    {call}")
    return f"def {_identifier(step.name)}({', '.join(params)}){returns}:\n" + \
        "\n".join(lines) + "\n"


def _identifier(name: str) -> str:
    """A graph name as a Python identifier (``validate-data`` -> ``validate_data``)."""
    ident = name.replace("-", "_")
    reserved = keyword.iskeyword(ident) or ident in (SPEC_PARAM, DATA_URI_PARAM, PARTITION_PARAM,
                                                     *BUNDLE_PARAMS.values())
    if not ident.isidentifier() or reserved:
        raise ValueError(f"graph name {name!r} cannot name a KFP component input")
    return ident
