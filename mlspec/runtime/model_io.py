"""The model folder: an MLflow model plus mlspec's metadata and the reference profile.

```
model/
  MLmodel                  MLflow flavors (sklearn + python_function, or python_function for
                           torch), with the signature and the input example's file name
  model.pkl | python_model.pkl + artifacts/   the fitted sklearn Pipeline / the torch wrapper
  input_example.json, serving_input_example.json, conda.yaml, python_env.yaml, requirements.txt
  mlspec_model.json        task, framework, features (name, type, nullable), target, classes
  reference_profile.json   the training data's profile (see mlspec.runtime.profile)
```
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.features import FeatureSpec

META_FILE = "mlspec_model.json"
MLMODEL_FILE = "MLmodel"


def quiet_mlflow() -> None:
    """Keep MLflow's banners, progress bars and INFO logs off stderr."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow  # noqa: F401  (it configures its loggers on import; override after)

    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")


def check_model_dir(path: str | Path) -> Path:
    """Check that a model may be written at ``path``: nothing there, an empty folder (a pipeline
    engine may create it) or an earlier model, which :func:`replace_model_dir` replaces only
    once the new one is complete; anything else is an error."""
    path = Path(path)
    if path.is_dir():
        if any(path.iterdir()) and not (path / MLMODEL_FILE).exists():
            raise StepError(f"output model folder {path} exists and is not an MLflow model; "
                            "refusing to overwrite it")
    elif path.exists():
        raise StepError(f"output model path {path} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def replace_model_dir(built: Path, final: Path) -> None:
    """Move a complete model folder to ``final`` (checked by :func:`check_model_dir`), in place
    of the earlier model or empty folder there."""
    if final.is_dir():
        shutil.rmtree(final)
    os.replace(built, final)


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                  encoding="utf-8")


def read_meta(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_dir():
        raise StepError(f"model folder not found: {path}")
    if not (path / MLMODEL_FILE).is_file():
        raise StepError(f"{path} is not an MLflow model folder (no MLmodel file)")
    try:
        return json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"{path} was not written by mlspec train (no {META_FILE})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise StepError(f"cannot read {path / META_FILE}: {exc}") from None


@dataclass
class LoadedModel:
    """A trained model with a uniform interface over the sklearn and torch flavors."""

    meta: dict[str, Any]
    model: Any

    @property
    def features(self) -> list[FeatureSpec]:
        return [FeatureSpec(f["name"], f["type"], f.get("nullable", False))
                for f in self.meta["features"]]

    @property
    def classes(self) -> list | None:
        return self.meta.get("classes")

    def predict(self, X):
        return self.model.predict(X)

    def predict_proba(self, X):
        """Class probabilities (columns in ``classes`` order), or None when unsupported."""
        if hasattr(self.model, "predict_proba"):
            return self.model.predict_proba(X)
        return None


def load_model(path: str | Path) -> LoadedModel:
    """Load a model folder written by ``train`` (or downloaded from the registry).

    Raises:
        StepError: the folder is missing, not an MLflow model, or cannot be unpickled.
    """
    meta = read_meta(path)
    quiet_mlflow()
    try:
        if meta.get("framework") == "torch":
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(path)).unwrap_python_model()
        else:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(str(path))
    except StepError:
        raise
    except Exception as exc:  # unpickling errors come in many types
        detail = first_line(exc, with_type=True)
        raise StepError(f"cannot load the model in {path}: {detail}") from None
    return LoadedModel(meta, model)


# Rows of training data saved as the model's input example (and used for its signature).
EXAMPLE_ROWS = 5


def model_requirements(*extra: str) -> list[str]:
    """Pinned pip requirements of a model folder: what loading it needs, at our versions."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ("mlflow", "numpy", "pandas", "scikit-learn", "cloudpickle", *extra):
        try:
            out.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return sorted(set(out))
