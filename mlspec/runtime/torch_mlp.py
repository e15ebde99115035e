"""A PyTorch MLP for tabular classification and regression, saved as an MLflow pyfunc model.

The same preprocessing as the scikit-learn path (scaling, one-hot, imputation) feeds a
``Linear -> ReLU -> Dropout`` stack. Training is seeded and deterministic on CPU (one seeded
generator for initialisation and shuffling, deterministic algorithms); it runs on CUDA when
``model.training.device`` is ``auto`` and a GPU is present. Early stopping watches the loss on a
held-out slice of the training data (``data.split.validation``, default 10 %) and restores the
best weights. Regression targets are standardised for training and restored at prediction.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError

try:  # the pyfunc wrapper must be importable (by reference) when MLflow loads the model
    import mlflow.pyfunc as _pyfunc

    _PythonModel: Any = _pyfunc.PythonModel
except ImportError:  # pragma: no cover - mlflow is part of the runtime extra
    _PythonModel = object

WEIGHTS_FILE = "mlp.pt"
PREPROCESSOR_FILE = "preprocessor.pkl"
CONFIG_FILE = "mlp.json"
DEFAULT_HOLDOUT = 0.1


def _torch():
    try:
        import torch
    except ImportError:
        raise StepError("model.framework is torch but PyTorch is not installed: "
                        "pip install 'mlspec[torch]' (or torch==2.13.0)") from None
    return torch


def build_network(n_in: int, n_out: int, hidden: list[int], dropout: float):
    """The MLP: hidden ``Linear -> ReLU -> Dropout`` blocks and a linear head."""
    torch = _torch()
    layers: list[Any] = []
    width = n_in
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
        width = size
    layers.append(torch.nn.Linear(width, n_out))
    return torch.nn.Sequential(*layers)


def pick_device(requested: str) -> str:
    torch = _torch()
    if requested == "cuda" and not torch.cuda.is_available():
        raise StepError("model.training.device is cuda but no CUDA device is available")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def train_torch(project, features, X, y, path: Path | None) -> dict[str, Any]:
    """Fit the MLP on preprocessed ``X`` and save the pyfunc model folder at ``path`` (None: a
    distributed rank other than 0, which trains and writes nothing)."""
    import numpy as np

    from mlspec.runtime.preprocess import build_preprocessor

    torch = _torch()
    from mlspec.spec.models import Architecture, Training

    arch = project.model.architecture or Architecture()
    training = project.model.training or Training()
    seed = project.data.split.seed
    device = pick_device(training.device)
    classification = project.model.task == "classification"

    preprocessor = build_preprocessor(features, X)
    inputs = np.asarray(preprocessor.fit_transform(X), dtype=np.float32)
    if classification:
        classes, targets = np.unique(y, return_inverse=True)
        y_mean, y_std = 0.0, 1.0
    else:
        classes = None
        targets = np.asarray(y, dtype=np.float64)
        y_mean, y_std = float(targets.mean()), float(targets.std() or 1.0)
        targets = ((targets - y_mean) / y_std).astype(np.float32)

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    n_out = len(classes) if classes is not None else 1
    net = build_network(inputs.shape[1], n_out, list(arch.hidden), arch.dropout).to(device)
    group = _join_group(torch, project, device)
    if group is not None:
        net = torch.nn.parallel.DistributedDataParallel(net)
    holdout = project.data.split.validation or DEFAULT_HOLDOUT
    xt = torch.from_numpy(inputs).to(device)
    yt = (torch.from_numpy(targets.astype(np.int64)) if classification
          else torch.from_numpy(targets).reshape(-1, 1)).to(device)
    loss_fn = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
    try:
        with _deterministic_on_cpu(torch, device):
            epoch, best_epoch, best_loss = _fit(torch, net, xt, yt, loss_fn, training, holdout,
                                                generator, device, group, seed)
    finally:
        if group is not None:
            torch.distributed.destroy_process_group()
    net = net.module if group is not None else net
    config = {
        "n_in": int(inputs.shape[1]), "n_out": n_out, "hidden": list(arch.hidden),
        "dropout": arch.dropout, "task": project.model.task,
        "classes": [c.item() if hasattr(c, "item") else c for c in classes]
        if classes is not None else None,
        "y_mean": y_mean, "y_std": y_std,
    }
    if path is not None:  # None: a rank other than 0, which writes nothing
        _save(net.cpu(), preprocessor, config, X, path)
    return {
        "estimator": "torch.mlp",
        "params": {"hidden": list(arch.hidden), "dropout": arch.dropout,
                   **training.model_dump(mode="json")},
        "device": device,
        "epochs_trained": epoch,
        "best_epoch": best_epoch,
        "best_validation_loss": best_loss,
        **({"distributed": {"processes": group[1], "backend": group[2]}} if group else {}),
    }


@contextlib.contextmanager
def _deterministic_on_cpu(torch, device: str) -> Iterator[None]:
    """Deterministic kernels for a CPU run, and the caller's setting back afterwards (the flag
    is process-wide: a server or a test run in the same process must not inherit it)."""
    if device != "cpu":
        yield
        return
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _join_group(torch, project, device: str) -> tuple[int, int, str] | None:
    """Under torchrun: join the process group; returns (rank, world size, backend)."""
    from mlspec.runtime.distributed import local_backend, world

    place = world()
    if place is None or project.model.distributed is None:
        return None
    backend = local_backend(project.model.distributed.backend)
    if backend == "nccl" and device != "cuda":
        raise StepError("the nccl backend needs CUDA; this process trains on the CPU")
    torch.distributed.init_process_group(backend=backend)
    return place[0], place[1], backend


def _shard(torch, fit, epoch: int, seed: int, group) -> Any:
    """This rank's training rows for ``epoch``: a DistributedSampler over the fit rows (the
    same seeded shuffle on every rank, each taking its share, padded to equal length so every
    rank makes the same number of steps)."""
    from torch.utils.data import DistributedSampler

    rows: Any = range(len(fit))  # a map-style dataset of row numbers
    sampler: Any = DistributedSampler(rows, num_replicas=group[1], rank=group[0],
                                      shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return fit[torch.tensor(list(sampler), dtype=torch.long, device=fit.device)]


def _fit(torch, net, xt, yt, loss_fn, training, holdout: float, generator, device: str,
         group=None, seed: int = 0) -> tuple[int, int, float]:
    """Mini-batch training with early stopping on a held-out slice; the best weights are
    restored. Returns (epochs run, best epoch, best held-out loss).

    Distributed (``group``): each rank steps through its shard with a batch of
    ``batch_size / world`` rows, so the global batch stays ``batch_size``; DDP averages the
    gradients, so the weights (and the held-out loss every rank computes on the same rows, and
    so early stopping) stay identical on every rank."""
    n = len(xt)
    order = torch.randperm(n, generator=generator).numpy()
    n_val = max(1, int(round(n * holdout))) if n >= 10 else 0
    val_idx, fit_idx = order[:n_val], order[n_val:]
    optimizer = _optimizer(torch, training.optimizer, net.parameters(), training.learning_rate)
    best_loss, best_state, best_epoch, waited, epoch = float("inf"), None, 0, 0, 0
    fit = torch.from_numpy(fit_idx).to(device)
    watch = torch.from_numpy(val_idx if n_val else fit_idx).to(device)
    for epoch in range(1, training.epochs + 1):
        net.train()
        if group is None:
            perm = fit[torch.randperm(len(fit), generator=generator).to(device)]
            size = training.batch_size
        else:
            perm = _shard(torch, fit, epoch, seed, group)
            size = max(1, -(-training.batch_size // group[1]))
        for start in range(0, len(perm), size):
            batch = perm[start:start + size]
            optimizer.zero_grad()
            loss = loss_fn(net(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(net(xt[watch]), yt[watch]))
        if val_loss < best_loss - 1e-7:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            core = net.module if group is not None else net
            best_state = {k: v.detach().cpu().clone() for k, v in core.state_dict().items()}
        else:
            waited += 1
            if training.early_stopping_patience and waited >= training.early_stopping_patience:
                break
    if best_state is not None:
        (net.module if group is not None else net).load_state_dict(best_state)
    return epoch, best_epoch, best_loss


def _optimizer(torch, name: str, params, lr: float):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _save(net, preprocessor, config: dict, X, path: Path) -> None:
    import tempfile

    import joblib

    from mlspec.runtime.model_io import EXAMPLE_ROWS, model_requirements, quiet_mlflow

    torch = _torch()
    quiet_mlflow()
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        torch.save(net.state_dict(), tmp_path / WEIGHTS_FILE)
        joblib.dump(preprocessor, tmp_path / PREPROCESSOR_FILE)
        (tmp_path / CONFIG_FILE).write_text(json.dumps(config, sort_keys=True), encoding="utf-8")
        model = TorchMLPModel()
        model.load(tmp_path / WEIGHTS_FILE, tmp_path / PREPROCESSOR_FILE, tmp_path / CONFIG_FILE)
        example = X.head(EXAMPLE_ROWS)
        signature = infer_signature(example, model.predict(None, example))
        mlflow.pyfunc.save_model(
            str(path), python_model=TorchMLPModel(),
            artifacts={"weights": str(tmp_path / WEIGHTS_FILE),
                       "preprocessor": str(tmp_path / PREPROCESSOR_FILE),
                       "config": str(tmp_path / CONFIG_FILE)},
            signature=signature, input_example=example,
            pip_requirements=model_requirements("torch"))


class TorchMLPModel(_PythonModel):
    """The pyfunc wrapper: preprocessing + MLP on CPU; ``predict`` gives labels or values,
    ``predict_proba`` class probabilities (columns in ``classes`` order)."""

    # predict takes DataFrames and also the sklearn-style predict(X), so it has no type hints;
    # this tells MLflow not to wrap it (and not to warn about the missing hints).
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        self.load(context.artifacts["weights"], context.artifacts["preprocessor"],
                  context.artifacts["config"])

    def load(self, weights, preprocessor, config) -> None:
        import joblib

        torch = _torch()
        self.config = json.loads(Path(config).read_text(encoding="utf-8"))
        self.preprocessor = joblib.load(preprocessor)
        c = self.config
        self.net = build_network(c["n_in"], c["n_out"], c["hidden"], c["dropout"])
        self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net.eval()

    def _forward(self, X):
        import numpy as np

        torch = _torch()
        inputs = np.asarray(self.preprocessor.transform(X), dtype=np.float32)
        with torch.no_grad():
            return self.net(torch.from_numpy(inputs)).numpy()

    def predict_proba(self, X):
        import numpy as np

        if self.config["task"] != "classification":
            raise StepError("predict_proba is only defined for classification models")
        logits = self._forward(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, context, model_input=None, params=None):
        """pyfunc's ``predict(context, model_input)``; also ``predict(X)`` like sklearn."""
        import numpy as np

        X = model_input if model_input is not None else context
        out = self._forward(X)
        if self.config["task"] == "classification":
            return np.asarray(self.config["classes"])[out.argmax(axis=1)]
        return out[:, 0] * self.config["y_std"] + self.config["y_mean"]
