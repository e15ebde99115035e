"""Names shared by the model server and the monitoring rules: one contract, in one module.

The server exports these metrics; the monitoring target writes PromQL over them. Neither side
spells a metric name anywhere else.
"""

from __future__ import annotations

REQUESTS_TOTAL = "mlspec_requests_total"  # counter {model, version, code}
REQUEST_DURATION = "mlspec_request_duration_seconds"  # histogram {model, version}
PREDICTIONS_TOTAL = "mlspec_predictions_total"  # counter {model, version, class}
FEATURE_DRIFT = "mlspec_feature_drift"  # gauge {model, version, feature, method}
MODEL_PERFORMANCE = "mlspec_model_performance"  # gauge {model, version, metric}
MODEL_INFO = "mlspec_model_info"  # gauge = 1 {model, version}
# Ground truth as counters, for a rollout's statistical test (A/B): labelled predictions, and the
# sum and the sum of squares of their loss (0/1 misclassification, or squared error).
FEEDBACK_TOTAL = "mlspec_feedback_total"  # counter {model, version}
FEEDBACK_LOSS = "mlspec_feedback_loss_total"  # counter {model, version}
FEEDBACK_LOSS_SQUARED = "mlspec_feedback_loss_squared_total"  # counter {model, version}
# A shadow's answers compared with the champion's on the same mirrored requests, per row.
SHADOW_COMPARISONS = "mlspec_shadow_comparisons_total"  # counter {model, version, outcome}
AGREE, DISAGREE = "agree", "disagree"

# Batch scoring's figures, pushed by the batch report step to a Pushgateway (grouping key
# job=JOB, mlspec_project=NAME) and written as _metrics.prom beside the predictions: the last
# batch's values, as gauges.
BATCH_ROWS = "mlspec_batch_rows"  # gauge {model, version, outcome=scored|violation}
BATCH_VIOLATIONS = "mlspec_batch_violations"  # gauge {model, version, feature, kind}
BATCH_FEATURE_DRIFT = "mlspec_batch_feature_drift"  # gauge {model, version, feature, method}
BATCH_DURATION = "mlspec_batch_duration_seconds"  # gauge {model, version}
BATCH_LAST_SUCCESS = "mlspec_batch_last_success_timestamp_seconds"  # gauge {model, version}
BATCH_JOB = "mlspec_batch"
SCORED, VIOLATION = "scored", "violation"

METRIC_LABELS: dict[str, tuple[str, ...]] = {
    REQUESTS_TOTAL: ("model", "version", "code"),
    REQUEST_DURATION: ("model", "version"),
    PREDICTIONS_TOTAL: ("model", "version", "class"),
    FEATURE_DRIFT: ("model", "version", "feature", "method"),
    MODEL_PERFORMANCE: ("model", "version", "metric"),
    MODEL_INFO: ("model", "version"),
    FEEDBACK_TOTAL: ("model", "version"),
    FEEDBACK_LOSS: ("model", "version"),
    FEEDBACK_LOSS_SQUARED: ("model", "version"),
    SHADOW_COMPARISONS: ("model", "version", "outcome"),
}
# The batch report step's metrics (not the server's).
BATCH_METRIC_LABELS: dict[str, tuple[str, ...]] = {
    BATCH_ROWS: ("model", "version", "outcome"),
    BATCH_VIOLATIONS: ("model", "version", "feature", "kind"),
    BATCH_FEATURE_DRIFT: ("model", "version", "feature", "method"),
    BATCH_DURATION: ("model", "version"),
    BATCH_LAST_SUCCESS: ("model", "version"),
}

# Model-quality metrics the server computes from ground truth (POST /feedback): the only values
# `mlspec_model_performance{metric=...}` can take, so the only ones a performance alert can use.
ONLINE_PERFORMANCE_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted",
                       "precision_macro", "recall_macro"),
    "regression": ("r2", "rmse", "mae", "mse", "mape"),
}

# Latency histogram buckets, seconds; the p99 alert reads these.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SERVER_PORT = 8080
# The port of the Service in front of `mlspec trigger serve` on a cluster (Alertmanager's
# webhook URL names it); the Service maps it to the trigger's --port (default 9095).
TRIGGER_SERVICE_PORT = 8080
METRICS_PATH = "/metrics"
FEEDBACK_PATH = "/feedback"

# Alert labels the monitoring rules set and Alertmanager's retraining route and the retraining
# trigger (``mlspec trigger serve``) match on.
PROJECT_LABEL = "mlspec_project"  # metadata.name of the project an alert belongs to
RETRAIN_LABEL = "mlspec_retrain"  # "true" on the alerts in monitoring.alerts.retrain_on

# The deploy contract between the compiled serving objects and the runtime that applies them
# (mlspec.compile.kserve writes it, mlspec.runtime.rollout.deploy fills it in). A compiled
# InferenceService is a template: its model URI names this version, and the role annotation
# says which registry version the deploy writes in (candidate: the one just registered; stable:
# the one the baseline alias names when the deploy runs).
UNPINNED_VERSION = "unpinned"
# In the shadow's server, the champion it compares the candidate with: the stable version.
UNPINNED_STABLE_VERSION = "unpinned-stable"
MODEL_URI_ANNOTATION = "mlspec.dev/model-uri"
MODEL_ROLE_ANNOTATION = "mlspec.dev/model-role"
CANDIDATE_ROLE, STABLE_ROLE = "candidate", "stable"
# On every object the deploy applies (not kubectl apply -k: unpinned, it would serve nothing).
DEPLOY_ANNOTATION, DEPLOY_TEMPLATE = "mlspec.dev/deploy", "template"
# The bundle's file name inside the spec ConfigMap (Tekton) and the KFP pipeline parameter.
DEPLOY_BUNDLE_FILE = "deploy.json"

# The distributed train step's contract between the compiled TrainJob (mlspec.compile.trainjob)
# and the train step that submits it (mlspec.runtime.trainjob): the template travels as this
# file in the spec ConfigMap (Tekton) and as a KFP parameter; the step appends the run's values
# (--spec, --handoff) to the trainer's args and names the TrainJob per run.
TRAIN_BUNDLE_FILE = "trainjob.json"
TRAINJOB_RUNTIME = "torch-distributed"
# The replicated job of Kubeflow Trainer's torch runtimes whose pods run the trainer.
TRAINJOB_NODE_JOB = "node"
# `mlspec run` sets this: the train step trains under a local torchrun instead of submitting.
LOCAL_TRAINING_ENV = "MLSPEC_LOCAL_TRAINING"
