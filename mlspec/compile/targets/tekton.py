"""The Tekton target: the pipeline graph as ``tekton.dev/v1`` Tasks, a Pipeline and a PipelineRun,
``triggers.tekton.dev`` objects for git pushes, the schedule and monitoring alerts, a CronJob for
the schedule (Tekton has no cron), and least-privilege RBAC.

Output is rendered from Jinja templates under ``templates/tekton/`` (``StrictUndefined``,
autoescape off). Injection safety does not rest on the templates: every value reaches them through
the ``q`` filter, which writes a YAML double-quoted scalar (or a flow list/map of them) with every
character outside printable ASCII, and every ``$``, escaped. A spec value can therefore never add
a key, end a document or even show ``$(`` in the text. Template-owned Tekton expressions
(``$(workspaces.artifacts.path)``...) are ``TektonExpr`` values, the only strings ``q`` writes with
a bare ``$``.

Where spec values go, and why that is safe:

* The resolved spec reaches the steps as a file: an immutable ConfigMap (its name carries the
  hash of its content) bound as the read-only ``spec`` workspace, read with
  ``--spec $(workspaces.spec.path)/spec.json``. Tekton never substitutes ``$(...)`` inside a
  ConfigMap's data, so no spec value (data uri, tracking uri, feature names...) is ever inside a
  field Tekton or Kubernetes expands, nor in a command line; and a run reads the spec it was
  started with even when the next compile changes it. (A Pipeline param with the JSON would put
  the spec where Tekton substitutes ``$(context...)`` and into every TaskRun's params.)
* Free text (description, owner, git repo and branch) goes only into ``metadata.annotations`` of
  Pipelines, Tasks and EventListeners (never substituted by Tekton) and into CEL string literals
  (escaped by ``cel_string``); the TriggerTemplate's resource template, which Tekton Triggers
  substitutes as a whole, carries no spec text.
* Values with a syntax of their own are checked and rejected with a clear error when invalid:
  label keys and values (``metadata.labels``, node selectors, tolerations), the image reference
  (it is a field Tekton substitutes) and the cron schedule.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from mlspec import k8s
from mlspec.compile.context import RenderContext
from mlspec.compile.graph import (
    DEPLOY_BUNDLE,
    TRAIN_BUNDLE,
    VALUE,
    VALUES,
    PipelineGraph,
    Step,
    build_batch_graph,
    resolved_spec,
)
from mlspec.compile.targets import OutputFile
from mlspec.contract import DEPLOY_BUNDLE_FILE, TRAIN_BUNDLE_FILE
from mlspec.errors import Diagnostic, Severity, SpecError
from mlspec.spec.models import Project
from mlspec.spec.yamlpos import dotted
from mlspec.targets import target as target_record

OUT_DIR = "tekton"
ARTIFACTS, SPEC = "artifacts", "spec"  # the two workspaces every Task declares
SPEC_FILE = "spec.json"
# Each step bundle's file in the spec ConfigMap (deploy first: the order files are written).
BUNDLE_FILES = {DEPLOY_BUNDLE: DEPLOY_BUNDLE_FILE, TRAIN_BUNDLE: TRAIN_BUNDLE_FILE}
ENGINE = "tekton"  # its record in mlspec.targets (whose alert_webhook is the EventListener URL)
EL_PORT = 8080  # Tekton Triggers' EventListener port (also in the registry's alert_webhook)
GPU_RESOURCE = "nvidia.com/gpu"
# Pod Security "restricted" wants a non-root user; a fixed one (k8s.RUN_AS, the image's USER)
# also owns the per-run PVC through fsGroup, so every step can write the previous ones' artifacts.
RUN_AS = k8s.RUN_AS
CURL_IMAGE = "docker.io/curlimages/curl:8.11.1"
WORKSPACE_SIZE = "1Gi"
SCHEDULE_HEADER = "X-Mlspec-Trigger"
# Diagnostic codes of this target (MLS8xx: a value the Tekton output cannot carry safely).
BAD_LABEL, BAD_IMAGE, BAD_SCHEDULE = "MLS801", "MLS802", "MLS803"
# A fan-out step's Task param, which the Pipeline's matrix sets from the producer's array result.
FAN_OUT_PARAM = "partition"
RESULT_DESCRIPTIONS = {VALUE: "The gate's decision: true or false.",
                       VALUES: "The items the next step fans out over (a matrix)."}


class TektonExpr(str):
    """A Tekton/Triggers substitution written by this module (never derived from the spec).

    ``q`` writes it with a bare ``$``; every other string gets ``$`` escaped as ``\\u0024``.
    """


# --- quoting ---------------------------------------------------------------------------------
_YAML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def yaml_str(value: str, allow_dollar: bool = False) -> str:
    """``value`` as a YAML double-quoted scalar that reads back exactly as ``value``.

    Only printable ASCII is written as itself; everything else (newlines, control characters,
    non-ASCII, and ``$`` unless ``allow_dollar``) is a ``\\uXXXX``/``\\UXXXXXXXX`` escape.
    """
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[ch])
        elif ch == "$" and not allow_dollar:
            out.append("\\u0024")
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def q(value: Any) -> str:
    """The Jinja filter every value goes through: a YAML scalar, or a flow list/map of them.

    Mappings are written with sorted keys so that output never depends on dict order.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("cannot write a non-finite number")
        return json.dumps(value)
    if isinstance(value, str):
        return yaml_str(value, allow_dollar=isinstance(value, TektonExpr))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(q(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{q(str(k))}: {q(v)}" for k, v in items) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} into YAML")


def cel_string(value: str) -> str:
    """``value`` as a CEL string literal (single-quoted) that evaluates exactly to ``value``.

    Printable ASCII other than quotes, backslash and ``$`` stays as is; everything else is a
    ``\\uXXXX``/``\\UXXXXXXXX`` escape, so the literal never ends early, never spans lines and
    never contains a ``$(`` that a substitution could see.
    """
    out = ["'"]
    for ch in value:
        code = ord(ch)
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F and ch != "$":
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append("'")
    return "".join(out)


def block(text: str, indent: int) -> str:
    """``text`` as the body of a YAML literal block scalar (``|-``), indented by ``indent``.

    Only for text this module made (JSON with ``ensure_ascii``): printable ASCII and newlines,
    not starting with a space nor ending with a newline, so the block reads back exactly.
    """
    printable = all(0x20 <= ord(c) < 0x7F for c in text.replace("\n", ""))
    if not text or text[0] in " \n" or text.endswith("\n") or not printable:
        raise ValueError("text cannot be written as a literal block")
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in text.split("\n"))


# --- names -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    """Every object name, in one place (all derived from ``metadata.name``, a DNS label)."""

    base: str
    namespace: str

    def task(self, step: str) -> str:
        return f"{self.base}-{step}"

    @property
    def pipeline(self) -> str:
        return self.base

    @property
    def runner(self) -> str:
        return f"{self.base}-runner"

    @property
    def triggers(self) -> str:
        return f"{self.base}-triggers"

    @property
    def cluster_role(self) -> str:
        # Cluster-scoped: unique per namespace and project.
        return f"mlspec-{self.namespace}-{self.base}-triggers"

    @property
    def listener(self) -> str:
        return self.base

    @property
    def template(self) -> str:
        return self.base

    def binding(self, trigger: str) -> str:
        return f"{self.base}-{trigger}"

    @property
    def cronjob(self) -> str:
        return f"{self.base}-schedule"


# --- checks of values with a syntax of their own --------------------------------------------
# Labels and the image follow mlspec.k8s, as lint does (MLS280, MLS281): a spec that validates
# compiles. The schedule's full check is lint's (MLS260); this guard only keeps it a cron line.
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _problem(code: str, path: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, path=path, hint=hint)


def check(project: Project, graph: PipelineGraph) -> list[Diagnostic]:
    """Values the Tekton output cannot carry: bad labels, image reference or cron schedule."""
    problems = [Diagnostic(BAD_LABEL, Severity.ERROR, message, path=dotted(keys), hint=hint,
                           keys=keys)
                for keys, message, hint in k8s.spec_label_problems(project.metadata.labels,
                                                                   project.model.resources)]
    if not k8s.valid_image(graph.image):
        problems.append(_problem(BAD_IMAGE, "serving.image",
                                 f"{graph.image!r} is not a container image reference",
                                 k8s.IMAGE_HINT))
    if project.triggers.schedule is not None and _schedule(project.triggers.schedule) is None:
        problems.append(_problem(BAD_SCHEDULE, "triggers.schedule",
                                 f"{project.triggers.schedule!r} is not a five-field cron "
                                 "schedule", "e.g. '0 3 * * 1' (03:00 UTC every Monday)"))
    batch = project.batch
    if batch is not None and batch.schedule is not None and _schedule(batch.schedule) is None:
        problems.append(_problem(BAD_SCHEDULE, "batch.schedule",
                                 f"{batch.schedule!r} is not a five-field cron schedule",
                                 "e.g. '0 2 * * *' (02:00 UTC every day)"))
    return problems


def _schedule(text: str) -> str | None:
    """The schedule normalised to single spaces, or None when it is not a cron expression."""
    fields = text.split()
    if len(fields) == 1 and fields[0] in _CRON_MACROS:
        return fields[0]
    if len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields):
        return " ".join(fields)
    return None


# --- the model the templates render ----------------------------------------------------------
def _duration(seconds: int) -> str:
    """Seconds as a Go duration (``1h0m0s``), the form Tekton writes back."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"


def _ws_path(file: str) -> TektonExpr:
    return TektonExpr(f"$(workspaces.{ARTIFACTS}.path)/{file}")


def step_args(graph: PipelineGraph, step: Step) -> list[str]:
    """The runtime command's arguments (after ``python``): the step contract of
    ``mlspec.compile.graph``.

    Each path is one whole argument; nothing here comes from the spec but step and file names.
    """
    args: list[str] = ["-m", "mlspec.runtime", step.name, "--spec",
                       TektonExpr(f"$(workspaces.{SPEC}.path)/{SPEC_FILE}")]
    for item in step.inputs:
        file = graph.step(item.step).output(item.output).file
        args += ["--in", TektonExpr(f"{item.name}={_ws_path(file)}")]
    for out in step.outputs:
        target = f"$(results.{out.name}.path)" if out.kind in (VALUE, VALUES) else \
            _ws_path(out.file)
        args += ["--out", TektonExpr(f"{out.name}={target}")]
    if step.fan_out:  # one TaskRun per item of the matrix (the partition's index)
        args += ["--partition", TektonExpr(f"$(params.{FAN_OUT_PARAM})")]
    if step.bundle:
        file = BUNDLE_FILES[step.bundle]
        args += ["--bundle", TektonExpr(f"$(workspaces.{SPEC}.path)/{file}")]
    return args


def _compute_resources(step: Step) -> dict[str, Any]:
    res = step.resources
    limits: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpu:
        limits[GPU_RESOURCE] = str(res.gpu)
    return {"requests": {"cpu": res.cpu, "memory": res.memory}, "limits": limits}


def _pod_placement(step: Step) -> dict[str, Any] | None:
    """node selector and tolerations of a step, as a Tekton pod template (None when unset)."""
    res = step.resources
    if not res.node_selector and not res.tolerations:
        return None
    placement: dict[str, Any] = {}
    if res.node_selector:
        placement["nodeSelector"] = dict(res.node_selector)
    if res.tolerations:
        placement["tolerations"] = [dict(t) for t in res.tolerations]
    return placement


def _labels(graph: PipelineGraph, **extra: str) -> dict[str, str]:
    if graph.project_name != graph.name:  # the batch pipeline: the project's, and which one
        extra = {f"{k8s.PREFIX}pipeline": BATCH_PIPELINE_LABEL, **extra}
    return k8s.standard_labels(graph.project_name, graph.labels, extra)


BATCH_PIPELINE_LABEL = "batch"


def _annotations(project: Project, graph: PipelineGraph) -> dict[str, str]:
    notes = {f"{k8s.PREFIX}version": project.metadata.version,
             f"{k8s.PREFIX}description": graph.description}
    if project.metadata.owner:
        notes[f"{k8s.PREFIX}owner"] = project.metadata.owner
    return notes


def spec_json(project: Project) -> str:
    """The ConfigMap's ``spec.json``: the resolved spec, with ``$`` written as ``\\u0024``.

    Keys keep the spec's order (not sorted): the order of ``data.features`` is the order of the
    model's input columns, so sorting would train a different model. The order is still
    deterministic: pydantic dumps fields in declaration order and mappings in file order.
    """
    return dollars_escaped(json.dumps(resolved_spec(project), indent=2, ensure_ascii=True))


def dollars_escaped(json_text: str) -> str:
    """JSON with every ``$`` written ``\\u0024``: it only occurs inside JSON strings, where
    the escape reads back as ``$``, and Tekton finds nothing to substitute."""
    return json_text.replace("$", "\\u0024")


# Pod Security "restricted" at pod level; RUN_AS also owns the per-run volume (fsGroup).
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}


def _task(graph: PipelineGraph, step: Step, names: Names) -> dict[str, Any]:
    """What the Task and its entry in the Pipeline need of one step."""
    when = []
    matrix = None
    if step.fan_out:
        producer, output = step.fan_out
        matrix = {"param": FAN_OUT_PARAM,
                  "value": TektonExpr(f"$(tasks.{producer}.results.{output}[*])")}
    if step.run_if:
        gate, value = step.run_if
        when = [{"input": TektonExpr(f"$(tasks.{gate}.results.{value})"), "operator": "in",
                 "values": ["true"]}]
    return {
        "step": step.name,
        "name": names.task(step.name),
        "labels": _labels(graph, **{f"{k8s.PREFIX}step": step.name}),
        "description": step.description,
        "args": step_args(graph, step),
        "results": [{"name": o.name, "type": "array" if o.kind == VALUES else "string",
                     "description": RESULT_DESCRIPTIONS[o.kind]}
                    for o in step.outputs if o.kind in (VALUE, VALUES)],
        "params": [FAN_OUT_PARAM] if step.fan_out else [],
        "matrix": matrix,
        "resources": _compute_resources(step),
        "run_after": list(graph.upstream(step)),
        "retries": step.retries,
        "timeout": _duration(step.timeout_seconds),
        "when": when,
        "placement": _pod_placement(step),
        "service_account": step.service_account,
        "secrets": [secret.name for secret in step.secrets],
    }


def _run_context(graph: PipelineGraph, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """The PipelineRun's settings: timeout, per-task pod templates, the gate's result."""
    total = sum(s.timeout_seconds * (s.retries + 1) for s in graph.steps)
    gate = next(({"result_ref": TektonExpr(f"$(tasks.{t['step']}.results.{r['name']})")}
                 for t in tasks for r in t["results"] if r["type"] == "string"), None)
    placements = [{"step": t["step"], "service_account": t["service_account"],
                   "pod_template": ({**t["placement"], "securityContext": POD_SECURITY}
                                    if t["placement"] else None)}
                  for t in tasks if t["placement"] or t["service_account"]]
    return {"pipeline_timeout": _duration(total), "gate": gate, "placements": placements,
            "pod_security": POD_SECURITY, "workspace_size": WORKSPACE_SIZE}


def _trigger_context(project: Project, graph: PipelineGraph, ctx: RenderContext,
                     batch: bool = False) -> dict[str, Any]:
    triggers = project.triggers
    if batch:  # the batch pipeline has one trigger: batch.schedule (through its own listener)
        schedule = project.batch.schedule if project.batch else None
        kinds = ["schedule"] if schedule else []
        webhook = target_record(ENGINE).alert_webhook or ""
        url = webhook.format(name=graph.name, namespace=graph.namespace)
    else:
        schedule = triggers.schedule
        kinds = [k for k, on in (("git", triggers.git is not None),
                                  ("schedule", triggers.schedule is not None),
                                  ("alert", triggers.on_alert)) if on]
        url = ctx.webhook(ENGINE)
    return {
        "trigger_kinds": kinds,
        "filters": _filters(project),
        "listener_annotations": {**_annotations(project, graph), **_git_annotations(project)},
        "git_revision_ref": TektonExpr("$(body.after)"),
        "run_labels": {**_labels(graph),
                       f"{k8s.PREFIX}trigger": TektonExpr("$(tt.params.trigger)")},
        "run_annotations": {f"{k8s.PREFIX}git-revision": TektonExpr("$(tt.params.git-revision)")},
        "schedule": _schedule(schedule) if schedule else None,
        "schedule_header": SCHEDULE_HEADER,
        "curl_args": curl_args(url),
        "curl_image": CURL_IMAGE,
        "el_port": EL_PORT,
    }


def _context(project: Project, graph: PipelineGraph, ctx: RenderContext,
             batch: bool = False) -> dict[str, Any]:
    """Everything the templates read: plain data, every spec value still to be quoted."""
    names = Names(graph.name, graph.namespace)
    spec_text = spec_json(project)
    # The steps' bundles travel in the same ConfigMap ("$" escaped as in the spec).
    bundles = [] if batch else [(file, dollars_escaped(text))
                                for name, file in BUNDLE_FILES.items()
                                if (text := ctx.bundle(name))]
    spec_hash = hashlib.sha256((spec_text + "".join(t for _, t in bundles)).encode()).hexdigest()
    tasks = [_task(graph, step, names) for step in graph.steps]
    return {
        "names": names,
        "namespace": graph.namespace,
        "image": graph.image,
        "labels": _labels(graph),
        "annotations": _annotations(project, graph),
        "tasks": tasks,
        "ws": {"artifacts": ARTIFACTS, "spec": SPEC},
        "workdir": TektonExpr(f"$(workspaces.{ARTIFACTS}.path)"),
        "spec_file": SPEC_FILE,
        "spec_text": spec_text,
        "bundles": bundles,
        "spec_configmap": f"{graph.name}-spec-{spec_hash[:10]}",
        "spec_sha256": spec_hash,
        "pipeline_description": f"mlspec {'batch scoring' if batch else 'training'} pipeline "
                                f"of {project.metadata.name}: "
                                + " -> ".join(s.name for s in graph.steps) + ".",
        **_run_context(graph, tasks),
        **_trigger_context(project, graph, ctx, batch),
    }


def _filters(project: Project) -> dict[str, str]:
    """The CEL filter of each trigger of the EventListener."""
    filters = {
        "schedule": f"header.match({cel_string(SCHEDULE_HEADER)}, 'schedule')",
        "alert": _alert_filter(project.metadata.name),
    }
    if project.triggers.git is not None:
        filters["git"] = _git_filter(project.triggers.git.branch)
    return filters


def _alert_filter(name: str) -> str:
    """CEL: an Alertmanager notification (webhook payload v4) with a firing retraining alert of
    this project (the labels of ``mlspec.contract``); resolved notifications start nothing."""
    from mlspec.contract import PROJECT_LABEL, RETRAIN_LABEL

    return ("has(body.alerts) && has(body.status) && body.status == 'firing' && "
            f"body.alerts.exists(a, a.status == 'firing' && has(a.labels.{PROJECT_LABEL}) && "
            f"a.labels.{PROJECT_LABEL} == {cel_string(name)} && has(a.labels.{RETRAIN_LABEL}) && "
            f"a.labels.{RETRAIN_LABEL} == 'true')")


def _git_annotations(project: Project) -> dict[str, str]:
    git = project.triggers.git
    return {f"{k8s.PREFIX}git-repo": git.repo, f"{k8s.PREFIX}git-branch": git.branch} if git else {}


def curl_args(event_listener_url: str) -> list[str]:
    """The schedule's request: POST ``{}`` as JSON to the EventListener, with retries."""
    return ["--fail", "--silent", "--show-error", "--max-time", "30", "--retry", "5",
            "--retry-connrefused", "--request", "POST",
            "--header", "Content-Type: application/json",
            "--header", f"{SCHEDULE_HEADER}: schedule",
            "--data", "{}", event_listener_url]


def _git_filter(branch: str) -> str:
    """CEL: a push to ``branch`` from GitHub (``X-GitHub-Event: push``) or GitLab (Push Hook)."""
    ref = cel_string(f"refs/heads/{branch}")
    return ("(header.match('X-GitHub-Event', 'push') || header.match('X-Gitlab-Event', "
            f"'Push Hook')) && has(body.ref) && body.ref == {ref}")


# --- rendering -------------------------------------------------------------------------------
@cache
def _environment():
    import jinja2

    from mlspec.resources import templates_dir

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / "tekton")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # YAML, not HTML: safety comes from the q filter on every value
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = q
    env.filters["block"] = block
    return env


# Output file -> template; a template that renders to nothing (no triggers) writes no file.
FILES = (
    ("tasks.yaml", "tasks.yaml.j2"),
    ("pipeline.yaml", "pipeline.yaml.j2"),
    ("pipelinerun.yaml", "pipelinerun.yaml.j2"),
    ("spec-configmap.yaml", "spec-configmap.yaml.j2"),
    ("rbac.yaml", "rbac.yaml.j2"),
    ("triggers.yaml", "triggers.yaml.j2"),
    ("cronjob.yaml", "cronjob.yaml.j2"),
)


def render(project: Project, graph: PipelineGraph, ctx: RenderContext) -> list[OutputFile]:
    """Render the graph to ``tekton/*.yaml``.

    Raises:
        SpecError: a label, node selector, toleration, image or schedule the output cannot carry.
    """
    problems = check(project, graph)
    if problems:
        raise SpecError(problems)
    files = _render_files(_context(project, graph, ctx))
    batch = build_batch_graph(project)
    if batch is not None:
        # The batch pipeline is rendered by the same templates, its objects named
        # <name>-batch-*, its files batch-*.yaml.
        files += _render_files(_context(project, batch, ctx, batch=True), BATCH_PREFIX)
    return files


BATCH_PREFIX = "batch-"


def _render_files(context: dict[str, Any], prefix: str = "") -> list[OutputFile]:
    env = _environment()
    files = []
    for out, template in FILES:
        text = env.get_template(template).render(**context)
        if text.strip():
            files.append(OutputFile(f"{OUT_DIR}/{prefix}{out}", text))
    return files
