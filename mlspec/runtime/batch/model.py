"""The registered model a batch scores with: downloaded by version, with its profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError, first_line


def download_model(project, uri: str, folder: str) -> str:
    """The model folder of registry URI ``uri``, downloaded into ``folder``."""
    from mlspec.runtime.model_io import quiet_mlflow
    from mlspec.runtime.registry import point_mlflow_at, with_retries

    quiet_mlflow()
    import mlflow.artifacts

    point_mlflow_at(project.registry.tracking_uri)
    try:
        return with_retries(lambda: mlflow.artifacts.download_artifacts(artifact_uri=uri,
                                                                        dst_path=folder))
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types
        raise StepError(f"cannot download {uri}: {first_line(exc)}") from None


def read_profile(folder: str) -> dict[str, Any]:
    """The reference profile saved in a model folder (no features when it has none)."""
    import json

    from mlspec.runtime.profile import PROFILE_FILE

    try:
        return json.loads((Path(folder) / PROFILE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"features": {}}
