"""Lint rules for ``registry``: the MLflow tracking URI and the alias a passing model gets."""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.errors import Severity
from mlspec.lint.base import Context, Finding, rule

# Tracking-store schemes MLflow understands (a bare path is a file store).
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql",
                    "databricks", "databricks-uc")


@rule("MLS230", "alias-overwrites-champion")
def alias_overwrites_champion(ctx: Context) -> Iterator[Finding]:
    """registry.alias is the baseline's alias: a passing model would replace the champion.

    Anti-pattern: ``registry: {alias: production}`` with ``baseline: {alias: production}`` — every
    model that passes the gate silently becomes production, skipping the rollout.

    Best practice: register candidates under a separate alias (``staging``) and promote them by
    the rollout.
    """
    baseline = ctx.project.validation.baseline
    alias = ctx.project.registry.alias
    if baseline is not None and baseline.alias == alias:
        yield Finding(("registry", "alias"),
                      f"registry.alias '{alias}' is also the baseline alias: a passing model "
                      "would overwrite the champion", "use another alias, e.g. staging")


@rule("MLS231", "unknown-tracking-scheme")
def unknown_tracking_scheme(ctx: Context) -> Iterator[Finding]:
    """registry.tracking_uri uses a scheme MLflow does not understand.

    Anti-pattern: ``tracking_uri: sqlite:/mlruns.db`` or ``tracking_uri: mlflow://host``.

    Best practice: ``sqlite:///mlruns.db`` (embedded), ``http(s)://HOST`` (a tracking server),
    or a database URL such as ``postgresql://…``.
    """
    uri = ctx.project.registry.tracking_uri
    scheme, sep, rest = uri.partition(":")
    if not sep or len(scheme) == 1:  # a bare path, or a Windows drive letter
        return
    base = scheme.split("+", 1)[0].lower()
    if base not in TRACKING_SCHEMES:
        yield Finding(("registry", "tracking_uri"), f"unknown tracking URI scheme '{scheme}'",
                      "use sqlite:///FILE, http(s)://HOST or a database URL")
    elif base == "sqlite" and not rest.startswith("///"):
        yield Finding(("registry", "tracking_uri"), f"'{uri}' is not a valid sqlite URL",
                      "write sqlite:///relative.db or sqlite:////absolute/path.db")


# A tracking URI that is a file on the machine it runs on: a pod's copy is new, empty and gone
# with the pod. Bare paths (no scheme, or a Windows drive letter) are file stores too.
FILE_SCHEMES = ("sqlite", "file")
# Codes about what a cluster cannot do: commands that run on this machine leave them out.
CLUSTER_ONLY = frozenset({"MLS232"})
TRACKING_SERVER_FIX = (
    "run an MLflow tracking server with proxied artifact storage (mlflow server "
    "--backend-store-uri postgresql://... --artifacts-destination s3://BUCKET/mlartifacts) and "
    "set registry.tracking_uri to its http(s):// URL, e.g. in a prod profile: "
    "registry: {tracking_uri: http://mlflow.mlflow.svc:5000, credentials_secret: "
    "mlflow-credentials}")


def file_based(uri: str) -> bool:
    """True for a tracking URI MLflow reads from the local file system (sqlite, file, a path)."""
    scheme, sep, _ = uri.partition(":")
    if not sep or len(scheme) == 1:
        return True
    return scheme.split("+", 1)[0].lower() in FILE_SCHEMES


@rule("MLS232", "file-registry-on-cluster", Severity.WARNING)
def file_registry_on_cluster(ctx: Context) -> Iterator[Finding]:
    """registry.tracking_uri is a file (sqlite, file): on a cluster each pod gets its own copy.

    Anti-pattern: ``tracking_uri: sqlite:///mlruns.db`` in a spec compiled for Kubernetes (every
    target is): the register step writes into a file on the run's volume, deleted with the run,
    and the InferenceService opens a new, empty file, so it finds no model. ``mlspec run`` (one
    laptop, one file) does not report this; ``mlspec submit`` refuses it.

    Best practice: an MLflow tracking server with proxied artifact storage (``mlflow server
    --artifacts-destination s3://...``) and ``tracking_uri: http://mlflow.mlflow.svc:5000`` in
    the profile that goes to the cluster, with ``credentials_secret`` naming the Secret that
    holds its token.
    """
    uri = ctx.project.registry.tracking_uri
    if file_based(uri):
        yield Finding(("registry", "tracking_uri"),
                      f"'{uri}' is a file: a cluster's pods would each see their own copy, and "
                      "the registered model is lost with the run",
                      "on a cluster use an MLflow tracking server's http(s):// URL, e.g. a prod "
                      "profile with tracking_uri: http://mlflow.mlflow.svc:5000 "
                      "(mlspec explain MLS232)")
