"""The target-neutral pipeline graph: the one place the step order lives.

Every pipeline backend (KFP, Tekton) renders this graph; none re-derives steps from the spec.
A step runs ``python -m mlspec.runtime STEP --spec SPEC --in NAME=PATH... --out NAME=PATH...``;
its inputs name outputs of earlier steps, so the graph's edges are the artifact references.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlspec import k8s
from mlspec.spec.models import Project

# Artifact kinds decide how a backend moves them: datasets and models are files or folders,
# values are small strings (Tekton results, KFP parameters).
DATASET, MODEL, JSON_FILE, VALUE = "dataset", "model", "json", "value"
# A JSON list of strings (Tekton: an array result; KFP: a list return value): what a fan-out
# iterates over.
VALUES = "values"


@dataclass(frozen=True)
class Artifact:
    """An output of a step. ``file`` is its conventional file name inside a workspace."""

    name: str
    kind: str
    file: str


@dataclass(frozen=True)
class Input:
    """An input of a step: ``name`` as the step calls it, from ``step``'s output ``output``."""

    name: str
    step: str
    output: str


@dataclass(frozen=True)
class SecretEnv:
    """A Secret whose keys a step gets as environment variables; ``keys`` are the ones mlspec's
    runtime reads (for backends that can only map named keys)."""

    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str
    gpu: int = 0
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[tuple[tuple[str, str], ...], ...] = ()


@dataclass(frozen=True)
class Step:
    """One pipeline step: a runtime command with its inputs, outputs and scheduling."""

    name: str
    description: str
    inputs: tuple[Input, ...]
    outputs: tuple[Artifact, ...]
    resources: Resources
    retries: int = 0
    timeout_seconds: int = 3600
    cacheable: bool = True
    # Only run when this step's VALUE output equals "true" (the gate's decision).
    run_if: tuple[str, str] | None = None
    # Credentials, only ever as Secret references (registry.credentials_secret and so on).
    secrets: tuple[SecretEnv, ...] = ()
    # The bundle of cluster objects the step applies (``--bundle PATH``), by name: "deploy" (the
    # serving objects and the rollout plan) or "train" (the distributed train step's TrainJob).
    bundle: str | None = None
    # Runs as this ServiceAccount where the engine allows one per step (the deployer's RBAC).
    service_account: str | None = None
    # Fan-out: one run per item of this (step, VALUES output), the item as ``--partition``
    # (KFP: dsl.ParallelFor; Tekton: a matrix).
    fan_out: tuple[str, str] | None = None
    # Steps this one waits for besides its inputs' producers (the report waits for every
    # score task).
    after: tuple[str, ...] = ()

    def output(self, name: str) -> Artifact:
        for artifact in self.outputs:
            if artifact.name == name:
                return artifact
        raise KeyError(f"step {self.name} has no output {name!r}")


@dataclass(frozen=True)
class PipelineGraph:
    """Steps in execution order (a topological order of the artifact edges)."""

    name: str
    namespace: str
    description: str
    image: str
    data_uri: str
    steps: tuple[Step, ...]
    labels: tuple[tuple[str, str], ...] = field(default=())
    # The project's name when the graph is not the training pipeline (the batch graph is
    # NAME-batch): objects keep the project's labels, so one selector finds them all.
    project: str = ""

    @property
    def project_name(self) -> str:
        return self.project or self.name

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def upstream(self, step: Step) -> tuple[str, ...]:
        """Names of the steps ``step`` waits for, in graph order, without duplicates."""
        wanted = {i.step for i in step.inputs} | ({step.run_if[0]} if step.run_if else set()) \
            | set(step.after) | ({step.fan_out[0]} if step.fan_out else set())
        return tuple(s.name for s in self.steps if s.name in wanted)


DEFAULT_IMAGE_REPO = "ghcr.io/mlspec/mlspec-runtime"
# The steps that talk to the registry (evaluate and the gate look the champion up) and the one
# that reads the data source; they alone get the matching credentials.
REGISTRY_STEPS = ("evaluate", "gate", "register", "deploy", "rollout")
DEPLOY_BUNDLE, TRAIN_BUNDLE = "deploy", "train"
TRAIN_TIMEOUT_S = 3600
SOURCE_STEPS = ("ingest",)

# The step table: (name, description, inputs, outputs, retries, cacheable). Inputs are
# (input name, producing step, output name). Kept as data so backends and docs read one source.
_STEP_TABLE: tuple[
    tuple[str, str, tuple[tuple[str, str, str], ...], tuple[Artifact, ...], int, bool], ...
] = (
    (
        "ingest",
        "Read the data source into a parquet dataset.",
        (),
        (Artifact("dataset", DATASET, "dataset.parquet"),),
        2,
        True,
    ),
    (
        "validate-data",
        "Check the data contract (features, ranges, nulls, duplicates).",
        (("dataset", "ingest", "dataset"),),
        (Artifact("report", JSON_FILE, "data_report.json"),),
        0,
        True,
    ),
    (
        "split",
        "Split into train and test sets (stratified, seeded).",
        (("dataset", "ingest", "dataset"), ("report", "validate-data", "report")),
        (Artifact("train", DATASET, "train.parquet"), Artifact("test", DATASET, "test.parquet")),
        0,
        True,
    ),
    (
        "train",
        "Fit the model (with tuning when configured) and profile the training data.",
        (("train", "split", "train"),),
        (Artifact("model", MODEL, "model"),),
        0,
        True,
    ),
    (
        "evaluate",
        "Compute the validation metrics on the test set.",
        (("model", "train", "model"), ("test", "split", "test")),
        (Artifact("metrics", JSON_FILE, "metrics.json"),),
        0,
        True,
    ),
    (
        "gate",
        "Apply thresholds and the champion/challenger rule.",
        (("metrics", "evaluate", "metrics"),),
        (Artifact("decision", JSON_FILE, "gate.json"), Artifact("passed", VALUE, "passed")),
        1,
        False,
    ),
    (
        "register",
        "Register the model in the MLflow Model Registry and set its alias.",
        (
            ("model", "train", "model"),
            ("metrics", "evaluate", "metrics"),
            ("decision", "gate", "decision"),
            ("dataset", "ingest", "dataset"),
        ),
        (Artifact("registration", JSON_FILE, "registration.json"),),
        2,
        False,
    ),
)


# With serving.deploy: auto, after register: pin the registered version into the serving objects
# and apply them, then carry the rollout out (promote or roll back on Prometheus' figures).
_DEPLOY_STEPS: tuple[
    tuple[str, str, tuple[tuple[str, str, str], ...], tuple[Artifact, ...], int, int], ...
] = (
    (
        "deploy",
        "Pin the registered version into the serving objects and apply them.",
        (("registration", "register", "registration"),),
        (Artifact("deployment", JSON_FILE, "deployment.json"),),
        2,
        600,
    ),
    (
        "rollout",
        "Step the candidate's traffic through the plan, gated on Prometheus; promote or roll "
        "back.",
        (("deployment", "deploy", "deployment"),),
        (Artifact("report", JSON_FILE, "rollout.json"),),
        0,
        # The plan's holds (10 minutes a step by default) with room for the judging.
        4 * 3600,
    ),
)


def runtime_image(project: Project) -> str:
    """The container image every step and the server run: serving.image, else this version's
    runtime image, its torch variant for a torch model (scripts/build-image.sh tags both)."""
    from mlspec import __version__

    if project.serving.image:
        return project.serving.image
    variant = "-torch" if project.model.framework == "torch" else ""
    return f"{DEFAULT_IMAGE_REPO}:{__version__}{variant}"


def build_graph(project: Project) -> PipelineGraph:
    """The pipeline graph of a validated project."""
    spec_resources = project.model.resources
    heavy = Resources(
        cpu=spec_resources.cpu,
        memory=spec_resources.memory,
        gpu=spec_resources.gpu,
        node_selector=tuple(sorted(spec_resources.node_selector.items())),
        tolerations=tuple(
            tuple(sorted((k, v) for k, v in t.model_dump().items() if v is not None))
            for t in spec_resources.tolerations
        ),
    )
    light = Resources(cpu="500m", memory="1Gi")
    # With a baseline, evaluate also scores the champion the registry names now: a cached
    # result would replay an old champion (or "none") to the gate.
    evaluate_reads_registry = project.validation.baseline is not None
    steps = []
    # A distributed torch model trains in a Kubeflow Trainer TrainJob that the train step
    # submits and waits for: the step itself is light, runs as the trainer account, and hands
    # the data over through the registry (so it gets the registry's credentials).
    submits = distributed_training(project)
    for name, description, inputs, outputs, retries, cacheable in _STEP_TABLE:
        trains_here = name == "train" and not submits
        steps.append(
            Step(
                name=name,
                description=description,
                inputs=tuple(Input(*i) for i in inputs),
                outputs=outputs,
                # Only training needs the spec's resources (and its GPU); the rest is light work.
                resources=heavy if trains_here else light,
                retries=retries,
                timeout_seconds=TRAIN_TIMEOUT_S,
                cacheable=cacheable and not (name == "evaluate" and evaluate_reads_registry),
                run_if=("gate", "passed") if name == "register" else None,
                secrets=step_secrets(project, name),
                bundle=TRAIN_BUNDLE if name == "train" and submits else None,
                service_account=k8s.trainer_account(project.metadata.name)
                if name == "train" and submits else None,
            )
        )
    if project.serving.deploy == "auto":
        account = k8s.deployer_account(project.metadata.name)
        for name, description, inputs, outputs, retries, timeout in _DEPLOY_STEPS:
            steps.append(Step(name=name, description=description,
                              inputs=tuple(Input(*i) for i in inputs), outputs=outputs,
                              resources=light, retries=retries, timeout_seconds=timeout,
                              cacheable=False, run_if=("gate", "passed"),
                              secrets=step_secrets(project, name), bundle=DEPLOY_BUNDLE,
                              service_account=account))
    return PipelineGraph(
        name=project.metadata.name,
        namespace=project.namespace,
        description=project.metadata.description or f"mlspec pipeline for {project.metadata.name}",
        image=runtime_image(project),
        data_uri=project.data.source.uri,
        steps=tuple(steps),
        labels=tuple(sorted(project.metadata.labels.items())),
    )


BATCH_SUFFIX = "batch"


def build_batch_graph(project: Project) -> PipelineGraph | None:
    """The batch scoring pipeline (``batch:``): partitions -> score per partition -> report;
    None without a batch section."""
    if project.batch is None:
        return None
    spec_resources = project.model.resources
    # Scoring holds one chunk at a time; it gets training's CPU and memory, never its GPU.
    scoring = Resources(cpu=spec_resources.cpu, memory=spec_resources.memory,
                        node_selector=tuple(sorted(spec_resources.node_selector.items())))
    light = Resources(cpu="500m", memory="1Gi")
    secrets = batch_secrets(project)
    plan = Input("plan", "partitions", "plan")
    steps = (
        Step("partitions", "Pin the model version and list the input's partitions.", (),
             (Artifact("plan", JSON_FILE, "plan.json"), Artifact("partitions", VALUES,
                                                                 "partitions")),
             light, retries=2, timeout_seconds=600, cacheable=False, secrets=secrets),
        Step("score", "Score one partition in chunks: contract check, predictions, drift "
             "counts.", (plan,), (), scoring, retries=1, timeout_seconds=TRAIN_TIMEOUT_S,
             cacheable=False, secrets=secrets, fan_out=("partitions", "partitions")),
        Step("report", "Add the partitions up, judge drift and the contract, publish the "
             "metrics, mark the batch complete.", (plan,),
             (Artifact("report", JSON_FILE, "batch_report.json"),), light, retries=1,
             timeout_seconds=600, cacheable=False, secrets=secrets, after=("score",)),
    )
    return PipelineGraph(
        name=f"{project.metadata.name}-{BATCH_SUFFIX}",
        namespace=project.namespace,
        description=f"mlspec batch scoring for {project.metadata.name}",
        image=runtime_image(project),
        data_uri=project.batch.input,
        steps=steps,
        labels=tuple(sorted(project.metadata.labels.items())),
        project=project.metadata.name,
    )


def batch_secrets(project: Project) -> tuple[SecretEnv, ...]:
    """Batch steps read the input and write the output (the data source's credentials) and
    download the model (the registry's)."""
    wanted = []
    if project.data.source.credentials_secret:
        wanted.append(SecretEnv(project.data.source.credentials_secret, k8s.DATA_SECRET_KEYS))
    if project.registry.credentials_secret:
        wanted.append(SecretEnv(project.registry.credentials_secret, k8s.REGISTRY_SECRET_KEYS))
    return tuple(wanted)


def distributed_training(project: Project) -> bool:
    """Whether the train step submits a Kubeflow Trainer TrainJob (distributed torch)."""
    return project.model.distributed is not None and project.model.framework == "torch"


def step_secrets(project: Project, step: str) -> tuple[SecretEnv, ...]:
    """The credentials Secrets step ``step`` gets: the data source's, the registry's."""
    wanted = []
    if step in SOURCE_STEPS and project.data.source.credentials_secret:
        wanted.append(SecretEnv(project.data.source.credentials_secret, k8s.DATA_SECRET_KEYS))
    registry_step = step in REGISTRY_STEPS or (step == "train" and distributed_training(project))
    if registry_step and project.registry.credentials_secret:
        wanted.append(SecretEnv(project.registry.credentials_secret, k8s.REGISTRY_SECRET_KEYS))
    return tuple(wanted)


def resolved_spec(project: Project) -> dict:
    """The spec as the runtime receives it: defaults filled in, profiles already applied."""
    return project.model_dump(mode="json", exclude={"profiles"})
