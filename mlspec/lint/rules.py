"""The registry: every lint rule, in the order they run. Add a rule with one line here."""

from __future__ import annotations

from mlspec.lint import (
    batch,
    data,
    model,
    monitoring,
    profiles,
    registry,
    secrets,
    serving,
    targets,
    triggers,
    validation,
)
from mlspec.lint.base import Rule

RULES: tuple[Rule, ...] = (
    # model
    model.unknown_estimator,
    model.estimator_task_mismatch,
    model.unknown_param,
    model.unknown_tuning_param,
    model.framework_fields,
    model.required_param_missing,
    model.gpu_with_sklearn,
    model.cuda_without_gpu,
    model.task_vs_dataset,
    model.distributed_one_process,
    model.distributed_backend,
    model.distributed_needs_torch,
    model.distributed_gloo_on_gpus,
    # data
    data.target_missing,
    data.target_is_feature,
    data.category_without_values,
    data.range_on_non_numeric,
    data.min_above_max,
    data.values_on_non_category,
    data.stratify_regression,
    data.split_too_large,
    data.unreadable_source,
    data.column_not_in_dataset,
    # validation
    validation.threshold_not_computed,
    validation.metric_wrong_task,
    validation.metric_not_computed,
    validation.proba_metric_without_proba,
    validation.threshold_unreachable,
    validation.threshold_direction,
    validation.empty_threshold,
    validation.binary_metric_multiclass,
    validation.negative_min_delta,
    # registry
    registry.alias_overwrites_champion,
    registry.unknown_tracking_scheme,
    registry.file_registry_on_cluster,
    # credentials
    secrets.secret_in_spec,
    # serving
    serving.traffic_percent_range,
    serving.replicas_min_above_max,
    serving.canary_in_raw_mode,
    serving.bad_rollout_steps,
    serving.steps_without_canary,
    serving.raw_scale_to_zero,
    serving.canary_all_or_nothing,
    serving.traffic_percent_with_blue_green,
    serving.ab_without_ground_truth,
    serving.concurrency_in_raw_mode,
    # monitoring
    monitoring.drift_feature_unknown,
    monitoring.performance_metric_wrong_task,
    monitoring.performance_without_bound,
    monitoring.performance_metric_not_online,
    monitoring.drift_method_feature_type,
    monitoring.drift_threshold_unreachable,
    monitoring.retrain_on_missing_performance,
    # triggers
    triggers.bad_cron,
    triggers.cron_never_fires,
    triggers.on_alert_without_retrain_on,
    triggers.bad_git_url,
    triggers.cron_day_or,
    # batch scoring
    batch.bad_batch_cron,
    batch.batch_schedule_without_tekton,
    batch.batch_unsupported_location,
    batch.batch_key_collides,
    batch.batch_output_inside_input,
    # values the compiled output carries as they are
    targets.invalid_label,
    targets.invalid_image,
    targets.uri_breaks_lines,
    # profiles
    profiles.empty_profile,
    profiles.profile_overlays_identity,
)

# Codes of the reading and schema layers (not rules: the loader reports them), and of the
# targets' compile-time guards.
BUILTIN_CODES: dict[str, tuple[str, str]] = {
    "MLS001": ("unreadable-file", "The file cannot be read (missing, a directory, no permission)."),
    "MLS002": ("not-text", "The file is binary, not UTF-8, or holds a control character YAML "
               "refuses.\n\nBest practice: save the spec as UTF-8 text."),
    "MLS003": ("file-too-large", "The file is larger than a spec may be (1 MB).\n\n"
               "Best practice: a spec is a short file; keep data out of it."),
    "MLS004": ("yaml-syntax", "The YAML does not parse, or uses a feature a spec refuses: custom "
               "tags, merge keys ('<<'), complex keys, unknown aliases.\n\nBest practice: plain "
               "YAML mappings, lists and scalars."),
    "MLS005": ("duplicate-key", "A key appears twice in one mapping; YAML loaders keep the last "
               "one silently.\n\nBest practice: write each key once."),
    "MLS006": ("too-deep", "Nesting is deeper than 64 levels.\n\nBest practice: a spec is "
               "a few levels deep."),
    "MLS007": ("alias-bomb", "Aliases expand to more than 100,000 nodes (a 'billion laughs' "
               "document).\n\nBest practice: do not use anchors and aliases to build large "
               "values; use profiles for variants."),
    "MLS008": ("empty-file", "The file is empty.\n\nBest practice: start with "
               "'apiVersion: mlspec/v1' and 'kind: MLProject' (see 'mlspec init')."),
    "MLS009": ("not-a-mapping", "The top level is not a mapping of sections."),
    "MLS010": ("multiple-documents", "The file holds more than one YAML document ('---').\n\n"
               "Best practice: one spec per file."),
    "MLS011": ("yaml-1.1-value", "A plain value reads differently in YAML 1.1 tools (yes/no/on/off "
               "as booleans, 010 as octal, 1:30 as base 60, 1_000 and 0b1 as numbers, 1e3 as a "
               "string). mlspec reads YAML 1.2, where they are strings or decimal numbers.\n\n"
               "Best practice: quote the value, or write true/false or the plain number."),
    "MLS100": ("invalid-value", "A value does not match its pattern or constraint (e.g. a name "
               "that is not a DNS label, a quantity such as '2GB' instead of '2Gi')."),
    "MLS101": ("unknown-key", "A key the spec does not define; usually a typo.\n\nAnti-pattern: "
               "'estimater:'.\n\nBest practice: use the suggested key (did you mean …)."),
    "MLS102": ("missing-key", "A required key is missing (apiVersion, kind, metadata.name, "
               "data.source.uri, model.task …)."),
    "MLS103": ("wrong-type", "A value has the wrong type: a string where a number is expected "
               "('0.9' in quotes), a list for a mapping, … Values are never coerced."),
    "MLS104": ("bad-choice", "A value is not one of the allowed choices (task, framework, "
               "metric, drift method, rollout strategy …)."),
    "MLS105": ("out-of-range", "A number or length is outside its allowed range (split.test "
               "between 0 and 1, name at most 40 characters …)."),
    # The targets' own guards, reported by `mlspec compile` (validate reports the same values
    # earlier under the lint code named).
    "MLS701": ("kfp-unsafe-value", "A value the KFP pipeline cannot carry safely: "
               "data.source.uri with a line break or a control character (the kfp compiler writes "
               "parameter defaults into a YAML comment). `mlspec validate` reports it as MLS282."
               "\n\nBest practice: the uri on one line."),
    "MLS801": ("tekton-invalid-label", "A label, node selector or toleration the Tekton output "
               "cannot carry: not a valid Kubernetes label. `mlspec validate` reports it as "
               "MLS280.\n\nBest practice: keys and values of at most 63 characters of "
               "alphanumerics, '-', '_' and '.', alphanumeric at both ends."),
    "MLS802": ("tekton-invalid-image", "serving.image is not a container image reference, and "
               "Tekton substitutes the field it goes into. `mlspec validate` reports it as MLS281."
               "\n\nBest practice: [registry[:port]/]path[:tag][@sha256:digest]."),
    "MLS803": ("tekton-invalid-schedule", "triggers.schedule is not a five-field cron line or "
               "macro, so the CronJob cannot carry it. `mlspec validate` reports it as MLS260."
               "\n\nBest practice: e.g. '0 3 * * 1' (03:00 UTC every Monday)."),
    "MLS299": ("internal-error", "mlspec failed while checking this spec (a bug in a lint rule or "
               "the reader); the other rules still ran. Please report it with the spec."),
}
