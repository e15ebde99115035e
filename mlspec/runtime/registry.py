"""The MLflow Model Registry as the runtime uses it: connect quietly, find the champion,
serialise writers on an embedded sqlite registry, retry "database is locked"."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.model_io import quiet_mlflow

T = TypeVar("T")
RETRIES = 8


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (relative to the working dir)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


_URI_ENV_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def point_mlflow_at(tracking_uri: str) -> None:
    """Make ``tracking_uri`` MLflow's tracking and registry URI in this process only.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` (and the registry's
    variable) to ``os.environ``, so every process started afterwards would silently write to this
    registry. The variables are put back as they were; MLflow keeps its in-process setting.
    """
    import mlflow

    saved = {name: os.environ.get(name) for name in _URI_ENV_VARS}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def client(tracking_uri: str):
    """An MlflowClient on ``tracking_uri`` (also its registry), with MLflow kept quiet."""
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    point_mlflow_at(tracking_uri)
    return with_retries(lambda: MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri))


@contextlib.contextmanager
def writer_lock(tracking_uri: str) -> Iterator[None]:
    """Serialise writers of one embedded sqlite registry across processes (sqlite has one
    writer at a time; the first writer also creates the schema, which must not race)."""
    path = sqlite_path(tracking_uri)
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def with_retries(call: Callable[[], T], what: str = "the registry") -> T:
    """Run ``call``, retrying transient sqlite lock errors with jittered backoff."""
    for attempt in range(RETRIES):
        try:
            return call()
        except Exception as exc:  # MlflowException and sqlalchemy errors alike
            text = str(exc).lower()
            transient = "database is locked" in text or "database table is locked" in text
            if not transient or attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * 2 ** attempt + random.random() * 0.05)
    raise AssertionError("unreachable")


def champion(project, download: bool = True) -> dict[str, Any] | None:
    """The model version behind ``validation.baseline.alias``, or None when there is none.

    Returns:
        ``{"version", "model_uri", "run_id", "logged_metrics", "local_path", "download_dir"}``
        (local_path: the model folder downloaded into download_dir, a temporary folder, when
        ``download``).

    Raises:
        StepError: the registry cannot be reached.
    """
    baseline = project.validation.baseline
    uri = project.registry.tracking_uri
    path = sqlite_path(uri)
    if baseline is None or (path is not None and not path.exists()):
        return None  # an embedded registry that was never written has no champion
    name = project.model_name
    try:
        mlflow_client = client(uri)
        version = _version_by_alias(mlflow_client, name, baseline.alias)
        if version is None:
            return None
        run_metrics = {}
        if version.run_id:
            run = with_retries(lambda: mlflow_client.get_run(version.run_id))
            run_metrics = dict(run.data.metrics)
        out = {"version": str(version.version), "model_uri": f"models:/{name}/{version.version}",
               "run_id": version.run_id, "logged_metrics": run_metrics}
        if download:
            import mlflow.artifacts

            target = tempfile.mkdtemp(prefix="mlspec-champion-")
            out["download_dir"] = target  # the caller removes it
            out["local_path"] = mlflow.artifacts.download_artifacts(
                artifact_uri=version.source, dst_path=target)
        return out
    except StepError:
        raise
    except Exception as exc:
        raise StepError(f"cannot read the registry {uri}: {first_line(exc)}") from None


def version_by_alias(tracking_uri: str, name: str, alias: str) -> str | None:
    """The version ``alias`` names now, or None when the alias (or the model) does not exist.

    Raises:
        StepError: the registry cannot be reached.
    """
    try:
        found = _version_by_alias(client(tracking_uri), name, alias)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types; all mean this
        raise StepError(f"cannot read alias {alias!r} of {name} in {tracking_uri}: "
                        f"{first_line(exc)}") from None
    return None if found is None else str(found.version)


def _version_by_alias(mlflow_client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return with_retries(lambda: mlflow_client.get_model_version_by_alias(name, alias))
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND") or \
                "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
            return None
        raise


def git_commit(cwd: str | None = None) -> str | None:
    """The commit of the git checkout we run in, or None outside a repository."""
    import subprocess

    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def experiment_id(mlflow_client, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when missing (a sqlite registry keeps its
    artifacts beside the database)."""
    from mlflow.exceptions import MlflowException

    found = with_retries(lambda: mlflow_client.get_experiment_by_name(name))
    if found is not None:
        return found.experiment_id
    location = None
    db = sqlite_path(uri)
    if db is not None:
        # Keep an embedded registry's artifacts beside its database, whatever the cwd later is.
        location = (db.resolve().parent / "mlartifacts").as_uri()
    try:
        return with_retries(lambda: mlflow_client.create_experiment(name,
                                                                    artifact_location=location))
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        return with_retries(lambda: mlflow_client.get_experiment_by_name(name)).experiment_id
