"""Lint rules for ``registry``: the MLflow tracking URI and the alias a passing model gets."""

from __future__ import annotations

from collections.abc import Iterator

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
