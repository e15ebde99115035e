"""The spec language: pydantic models for every section of ``mlproject.yaml``.

Models are strict (a string is never coerced into a bool or a number) and forbid unknown keys,
so a typo is an error with a "did you mean" hint rather than a silently ignored setting. Ranges
and enums live here; rules that relate several fields live in ``mlspec.lint``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mlspec.targets import PIPELINE_ENGINES

API_VERSION = "mlspec/v1"
KIND = "MLProject"

# A DNS-1123 label: it names Kubernetes objects, so it must be one.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A Kubernetes quantity such as 500m, 1, 1.5, 2Gi.
QUANTITY = r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# A Prometheus duration such as 30s, 5m, 1h, 7d.
DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
# An identifier-like name: feature names, metric names, aliases.
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
# A Secret's name (a DNS subdomain): the spec names Secrets, it never holds their values.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SecretName = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY)]
Duration = Annotated[str, StringConstraints(pattern=DURATION)]
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER, max_length=128)]
ShortText = Annotated[str, StringConstraints(max_length=256)]

Task = Literal["classification", "regression"]
Framework = Literal["sklearn", "torch"]
FeatureType = Literal["float", "int", "bool", "category", "string"]
DataFormat = Literal["csv", "parquet", "sklearn"]
DriftMethod = Literal["psi", "ks", "chi2", "js", "wasserstein"]
RolloutStrategy = Literal["canary", "ab", "shadow", "blue-green", "auto"]
# The pipeline engines come from the one target registry (mlspec.targets), so the schema's
# ``targets`` enum follows it; mypy sees a plain str.
if TYPE_CHECKING:
    Target = str
else:
    Target = Literal[PIPELINE_ENGINES]
RetrainSignal = Literal["drift", "performance"]
RETRAIN_SIGNALS: tuple[RetrainSignal, ...] = get_args(RetrainSignal)

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_weighted",
    "roc_auc",
    "log_loss",
)
REGRESSION_METRICS = ("r2", "rmse", "mae", "mse", "mape")
ALL_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
# Metrics where a smaller value is better; the gate and champion/challenger use this.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mse", "mape"})
# One list of names: the Literal is built from the tuples above (subscripting with a tuple is
# the same as listing its items).
Metric = Literal[ALL_METRICS]  # type: ignore[valid-type]
DEFAULT_METRICS: dict[str, list[str]] = {
    "classification": ["accuracy", "f1_macro"],
    "regression": ["r2", "rmse"],
}
DEFAULT_ESTIMATORS: dict[str, str] = {
    "classification": "sklearn.ensemble.RandomForestClassifier",
    "regression": "sklearn.ensemble.RandomForestRegressor",
}
ParamValue = str | int | float | bool | None | list[Any] | dict[str, Any]


class SpecModel(BaseModel):
    """Base for every section: strict types, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=False)


# --- metadata ---------------------------------------------------------------------------------
class Metadata(SpecModel):
    name: Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=40)] = Field(
        description="DNS-1123 label, at most 40 characters: it names Kubernetes objects."
    )
    version: ShortText = "0.1.0"
    owner: ShortText | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    labels: dict[Annotated[str, StringConstraints(max_length=63)], ShortText] = Field(
        default_factory=dict
    )


# --- data -------------------------------------------------------------------------------------
class Source(SpecModel):
    uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="File path (csv, parquet), s3://, gs://, https:// or sklearn://NAME."
    )
    format: DataFormat | None = Field(
        default=None, description="Inferred from the uri when omitted."
    )
    credentials_secret: SecretName | None = Field(
        default=None,
        description="A Secret in the namespace whose keys (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, ...) the steps that read the data source get as environment "
        "variables (envFrom).",
    )


class Feature(SpecModel):
    type: FeatureType = "float"
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    values: list[str | int | float | bool] | None = Field(
        default=None, description="Allowed values of a category feature."
    )


class Checks(SpecModel):
    min_rows: Annotated[int, Field(ge=0)] = 1
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] = 1.0
    max_duplicate_fraction: Annotated[float, Field(ge=0, le=1)] = 1.0


class Split(SpecModel):
    test: Annotated[float, Field(gt=0, lt=1)] = 0.2
    validation: Annotated[float, Field(ge=0, lt=1)] = 0.0
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42
    stratify: bool | None = Field(
        default=None, description="Stratify by the target; default: yes for classification."
    )


class Data(SpecModel):
    source: Source
    target: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, description="The label column; required for supervised tasks."
    )
    features: dict[Annotated[str, StringConstraints(min_length=1, max_length=256)], Feature] = (
        Field(default_factory=dict, description="The data contract that validate-data enforces.")
    )
    checks: Checks = Field(default_factory=Checks)
    split: Split = Field(default_factory=Split)


# --- model ------------------------------------------------------------------------------------
class Architecture(SpecModel):
    type: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=lambda: [64, 32])
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1


class Training(SpecModel):
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 20
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 0.001
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    early_stopping_patience: Annotated[int, Field(ge=0)] = 5


class Tuning(SpecModel):
    strategy: Literal["grid", "random"] = "grid"
    metric: Metric | None = Field(default=None, description="Default: the first validation metric.")
    trials: Annotated[int, Field(ge=1, le=10_000)] = 20
    cv: Annotated[int, Field(ge=2, le=20)] = 3
    space: dict[str, list[ParamValue]] = Field(default_factory=dict)


class Toleration(SpecModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Resources(SpecModel):
    cpu: Quantity = "1"
    memory: Quantity = "2Gi"
    gpu: Annotated[int, Field(ge=0, le=16)] = 0
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class Distributed(SpecModel):
    nodes: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=1, description="Pods of the Kubeflow Trainer TrainJob (numNodes).")
    processes_per_node: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="torchrun processes per pod (one per GPU with nccl).")
    backend: Literal["gloo", "nccl"] = Field(
        default="gloo", description="torch.distributed backend: nccl on GPUs, gloo on CPUs.")


class Model(SpecModel):
    task: Task
    framework: Framework = "sklearn"
    estimator: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, description="sklearn: the estimator's import path (from the catalog)."
    )
    params: dict[str, ParamValue] = Field(default_factory=dict)
    architecture: Architecture | None = None
    training: Training | None = None
    tuning: Tuning | None = None
    resources: Resources = Field(default_factory=Resources)
    distributed: Distributed | None = Field(
        default=None, description="torch only: train with DistributedDataParallel over "
        "nodes x processes_per_node processes (a Kubeflow Trainer TrainJob on a cluster).")

    def estimator_path(self) -> str:
        return self.estimator or DEFAULT_ESTIMATORS[self.task]


# --- validation -------------------------------------------------------------------------------
class Threshold(SpecModel):
    min: float | None = None
    max: float | None = None


class Baseline(SpecModel):
    alias: Identifier = "production"
    metric: Metric | None = Field(default=None, description="Default: the first validation metric.")
    min_delta: float = 0.0


class Validation(SpecModel):
    metrics: list[Metric] | None = Field(default=None, description="Default: per task.")
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    baseline: Baseline | None = None


# --- registry ---------------------------------------------------------------------------------
class Registry(SpecModel):
    tracking_uri: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        default="sqlite:///mlruns.db",
        description="sqlite:///FILE on a laptop (mlspec run); on a cluster the http(s):// URL of "
        "an MLflow tracking server with proxied artifact storage.",
    )
    model_name: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=256)]
        | None
    ) = None
    alias: Identifier = "staging"
    credentials_secret: SecretName | None = Field(
        default=None,
        description="A Secret in the namespace whose keys (MLFLOW_TRACKING_TOKEN or "
        "MLFLOW_TRACKING_USERNAME/PASSWORD, AWS_* for the artifact store) every step that talks "
        "to the registry and the model server get as environment variables (envFrom).",
    )


# --- serving ----------------------------------------------------------------------------------
class Replicas(SpecModel):
    min: Annotated[int, Field(ge=0, le=1000)] = 1
    max: Annotated[int, Field(ge=1, le=1000)] = 4
    target_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 10


class ServingResources(SpecModel):
    cpu: Quantity = "500m"
    memory: Quantity = "1Gi"


class Rollout(SpecModel):
    strategy: RolloutStrategy = "canary"
    traffic_percent: int = Field(default=10, description="Traffic share of the new model, 0-100.")
    steps: list[int] | None = Field(
        default=None, description="Canary step plan, e.g. [10, 50, 100]."
    )
    hold: Duration = Field(
        default="10m",
        description="How long the candidate must stay healthy before it is judged: each canary "
                    "step, the shadow's mirroring, blue-green after the switch; A/B's least "
                    "duration.",
    )
    min_agreement: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.95,
        description="shadow: the least share of mirrored rows on which the candidate's "
                    "prediction agrees with the champion's.",
    )
    min_samples: Annotated[int, Field(ge=10, le=10_000_000)] = Field(
        default=200,
        description="ab: labelled predictions (POST /feedback) each version needs before the "
                    "test gives a verdict.",
    )
    significance: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        default=0.05,
        description="ab: the one-sided test's significance level (the candidate is rolled back "
                    "when it is worse at this level).",
    )
    decide_within: Duration = Field(
        default="3h",
        description="ab: without min_samples per version by then, the candidate is rolled "
                    "back (no verdict is not a pass).",
    )
    prometheus_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"`$\\]+$",
                                                     max_length=2048)] = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        description="The Prometheus the rollout step asks for each gate (in-cluster URL).",
    )


class Serving(SpecModel):
    image: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        default=None, description="Default: the runtime image of this mlspec version."
    )
    protocol: Literal["v1", "v2"] = "v2"
    deployment_mode: Literal["serverless", "raw"] = "serverless"
    replicas: Replicas = Field(default_factory=Replicas)
    resources: ServingResources = Field(default_factory=ServingResources)
    rollout: Rollout = Field(default_factory=Rollout)
    deploy: Literal["auto", "manual"] = Field(
        default="manual",
        description="auto: the pipeline deploys a version that passed the gate and runs its "
                    "rollout; manual: the pipeline ends at register (mlspec rollout deploys).",
    )


# --- monitoring -------------------------------------------------------------------------------
class Drift(SpecModel):
    method: DriftMethod = "psi"
    threshold: Annotated[float, Field(gt=0)] = 0.2
    features: Literal["all"] | list[str] = "all"
    window: Duration = "1h"


class Performance(SpecModel):
    metric: Metric = "accuracy"
    min: float | None = None
    max: float | None = None
    window: Duration = "24h"


class Service(SpecModel):
    latency_p99_ms: Annotated[float, Field(gt=0)] = 250.0
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01


class Alerts(SpecModel):
    severity: Literal["info", "warning", "critical"] = "warning"
    retrain_on: list[RetrainSignal] = Field(
        default_factory=lambda: list(RETRAIN_SIGNALS)
    )


class Monitoring(SpecModel):
    drift: Drift = Field(default_factory=Drift)
    performance: Performance | None = None
    service: Service = Field(default_factory=Service)
    alerts: Alerts = Field(default_factory=Alerts)


# --- triggers ---------------------------------------------------------------------------------
class GitTrigger(SpecModel):
    repo: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    branch: Annotated[str, StringConstraints(min_length=1, max_length=255)] = "main"


class Triggers(SpecModel):
    schedule: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="A five-field cron expression."
    )
    git: GitTrigger | None = None
    on_alert: bool = False


# --- batch scoring ----------------------------------------------------------------------------
BatchUri = Annotated[str, StringConstraints(min_length=1, max_length=2048,
                                            pattern=r"^[^\x00-\x1f\x7f]+$")]


class Batch(SpecModel):
    input: BatchUri = Field(
        description="What to score: a csv or parquet file, a folder of parquet partitions, or "
                    "an s3:// or gs:// prefix of them (each file is one partition).")
    output: BatchUri = Field(
        description="Where predictions go: a folder or an s3:// or gs:// prefix. Each batch "
                    "writes BATCH_ID/part-NNNNN.parquet and, once every partition is scored, "
                    "_SUCCESS.")
    model: Identifier | Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="A registry alias or a version number; default: validation.baseline.alias "
                    "(the champion), else registry.alias.")
    schedule: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="A five-field cron expression (UTC): a CronJob starts the "
                                  "batch pipeline.")
    chunk_rows: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        default=100_000, description="Rows read, checked and scored at a time (bounds memory).")
    keys: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None,
        description="Input columns copied beside the predictions (ids); default: every input "
                    "column that is neither a feature nor the target.")
    max_violation_fraction: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05,
        description="The batch fails when more of its rows than this break the data contract "
                    "(violating rows are never scored; they are counted by feature and kind).")
    pushgateway_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s'\"`$\\]+$",
                                                      max_length=2048)] | None = Field(
        default=None,
        description="A Prometheus Pushgateway the report step pushes the batch's figures to "
                    "(rows scored, violations, drift); without it they are only written as "
                    "_metrics.prom beside the predictions.")


# --- the project ------------------------------------------------------------------------------
class Project(SpecModel):
    """One ``mlproject.yaml``."""

    apiVersion: Literal["mlspec/v1"]
    kind: Literal["MLProject"]
    metadata: Metadata
    data: Data
    model: Model
    validation: Validation = Field(default_factory=Validation)
    registry: Registry = Field(default_factory=Registry)
    serving: Serving = Field(default_factory=Serving)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    triggers: Triggers = Field(default_factory=Triggers)
    batch: Batch | None = None
    targets: list[Target] = Field(default_factory=lambda: list(PIPELINE_ENGINES))
    namespace: DnsLabel = "default"
    profiles: dict[
        Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)], dict[str, Any]
    ] = Field(
        default_factory=dict, description="Overlays deep-merged over the base with --profile."
    )

    # Derived values every consumer needs; one definition each.
    @property
    def model_name(self) -> str:
        return self.registry.model_name or self.metadata.name

    @property
    def metrics(self) -> list[str]:
        return list(self.validation.metrics or DEFAULT_METRICS[self.model.task])

    @property
    def batch_model_ref(self) -> str | int:
        """The alias or version batch scoring uses (``batch.model`` or its default)."""
        if self.batch is not None and self.batch.model is not None:
            return self.batch.model
        if self.validation.baseline is not None:
            return self.validation.baseline.alias
        return self.registry.alias

    @property
    def stratify(self) -> bool:
        if self.data.split.stratify is None:
            return self.model.task == "classification"
        return self.data.split.stratify
