"""Distributed training on a cluster: the train step submits the compiled Kubeflow Trainer
TrainJob, waits for it, and hands its model to evaluate.

The step's pod and the TrainJob's node pods share no volume (a multi-node job would need a
ReadWriteMany claim), so the data and the model travel through the registry the pipeline
already has: the step creates a *handoff* run (tag ``mlspec.handoff=trainjob``) in the model's
experiment and logs the training set as ``input/train.parquet``; it submits the compiled
TrainJob (``--bundle``, from ``training/trainjob.yaml``) named after that run, with ``--spec``
and ``--handoff RUN_ID`` appended to the trainer's arguments. On every node torchrun starts
the train step (``python -m torch.distributed.run -m mlspec.runtime train``), which fetches the
input (:func:`fetch_input`), trains its DistributedSampler shard, and on rank 0 logs the model
folder as the run's ``model/`` (:func:`hand_back`). The step polls the TrainJob's status, prints
each new condition, fails with the job's own message on ``Failed`` or when the step's timeout
runs out, and downloads ``model/`` into its output on ``Complete``.

The step needs create and get on TrainJobs (``training/trainer-rbac.yaml``) and the
registry's credentials (also given to the nodes, as Secret references).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlspec import contract
from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.io import read_json_object
from mlspec.runtime.model_io import META_FILE, check_model_dir, quiet_mlflow, replace_model_dir
from mlspec.runtime.registry import client, experiment_id, with_retries

KIND = "TrainJob"
HANDOFF_TAG = "mlspec.handoff"
INPUT_DIR, MODEL_DIR, INPUT_FILE = "input", "model", "train.parquet"
POLL_S = 5.0
DEFAULT_TIMEOUT_S = 3600.0


def submitting(bundle: str | None) -> bool:
    """Whether the train step submits a TrainJob: a bundle was given and this is not a local
    run (``mlspec run`` trains under a local torchrun: there is no cluster to submit to)."""
    return bool(bundle) and not os.environ.get(contract.LOCAL_TRAINING_ENV)


def train_on_cluster(project: Any, in_train: str, out_model: str, bundle_path: str, kube=None,
                     log: Callable[[str], None] = print, poll_s: float = POLL_S) -> dict:
    """Submit the bundle's TrainJob for this run, wait for it, download its model to
    ``out_model``; returns the model's metadata.

    Raises:
        StepError: the API refused, the job failed or timed out, or it wrote no model.
    """
    from mlspec.runtime.kube import Kube, KubeError

    template = read_json_object(bundle_path, "TrainJob bundle")
    if template.get("kind") != KIND:
        raise StepError(f"{bundle_path} is not a TrainJob bundle (kind {template.get('kind')!r})")
    final = check_model_dir(out_model)
    run_id = _start_handoff(project, in_train)
    body = job_for_run(template, project, run_id)
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    deadline = float(body["spec"].get("activeDeadlineSeconds") or DEFAULT_TIMEOUT_S)
    try:
        kube = kube if kube is not None else Kube()
        kube.create(namespace, body)
        log(f"train: submitted TrainJob {namespace}/{name} ({_shape(body)}) to {kube.host}")
        wait_for_job(kube, namespace, name, deadline, log, poll_s)
    except KubeError as exc:
        _tag(project, run_id, "failed")
        raise StepError(f"TrainJob {name}: {exc}") from None
    except StepError:
        _tag(project, run_id, "failed")
        raise
    meta = _download_model(project, run_id, final)
    _tag(project, run_id, "complete")
    return meta


def job_for_run(template: dict, project: Any, run_id: str) -> dict:
    """The compiled TrainJob with this run's values: named after the handoff run, no longer
    marked as a template, the trainer told the spec and the handoff run."""
    body = copy.deepcopy(template)
    meta = body["metadata"]
    meta["name"] = f"{meta['name']}-{run_id[:8]}"
    annotations = meta.get("annotations") or {}
    annotations.pop(contract.DEPLOY_ANNOTATION, None)
    annotations[HANDOFF_TAG] = run_id
    meta["annotations"] = annotations
    spec = json.dumps(project.model_dump(mode="json", exclude={"profiles"}),
                      separators=(",", ":"))
    body["spec"]["trainer"]["args"] = [*body["spec"]["trainer"].get("args", []),
                                       "--spec", spec, "--handoff", run_id]
    return body


def wait_for_job(kube: Any, namespace: str, name: str, timeout_s: float,
                 log: Callable[[str], None], poll_s: float = POLL_S) -> dict:
    """Poll the TrainJob until a ``Complete`` or ``Failed`` condition is true; each condition
    that appears or changes is printed. Returns the finished object.

    Raises:
        StepError: ``Failed`` (with the job's reason and message), gone, or ``timeout_s`` over.
    """
    seen: dict[str, tuple] = {}
    started = time.monotonic()
    while True:
        job = kube.get(KIND, namespace, name)
        if job is None:
            raise StepError(f"TrainJob {namespace}/{name} disappeared while it was running")
        conditions = {str(c.get("type")): c
                      for c in (job.get("status") or {}).get("conditions") or []
                      if isinstance(c, dict)}
        for kind, condition in conditions.items():
            state = (condition.get("status"), condition.get("reason"), condition.get("message"))
            if seen.get(kind) != state:
                seen[kind] = state
                log(f"train: TrainJob {name}: {kind}={state[0]}"
                    + (f" ({state[1]}: {state[2]})" if state[1] or state[2] else ""))
        if _true(conditions.get("Failed")):
            failed: dict = conditions["Failed"]
            raise StepError(f"TrainJob {namespace}/{name} failed: "
                            f"{failed.get('reason') or 'Failed'}: {failed.get('message') or ''}"
                            .rstrip(": "))
        if _true(conditions.get("Complete")):
            return job
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise StepError(f"TrainJob {namespace}/{name} did not finish in {timeout_s:.0f} s "
                            "(the step's timeout; its activeDeadlineSeconds stops it too)")
        log_wait = int(waited) // 60
        if log_wait and int(waited - poll_s) // 60 != log_wait:
            log(f"train: TrainJob {name} still running after {log_wait} min")
        time.sleep(min(poll_s, max(0.0, timeout_s - waited)))


def _true(condition: dict | None) -> bool:
    return condition is not None and str(condition.get("status")) == "True"


def _shape(body: dict) -> str:
    trainer = body["spec"]["trainer"]
    return f"{trainer.get('numNodes')} node(s) x {trainer.get('numProcPerNode')} process(es)"


# --- the handoff through the registry -----------------------------------------------------------
def _start_handoff(project: Any, in_train: str) -> str:
    """A run in the model's experiment holding the training set; returns its id."""
    uri = project.registry.tracking_uri
    quiet_mlflow()
    try:
        mlflow_client = client(uri)
        experiment = experiment_id(mlflow_client, project.model_name, uri)
        run = with_retries(lambda: mlflow_client.create_run(
            experiment, tags={HANDOFF_TAG: "trainjob", "mlspec.project": project.metadata.name},
            run_name=f"{project.model_name}-trainjob"))
        with tempfile.TemporaryDirectory(prefix="mlspec-handoff-") as tmp:
            shutil.copyfile(in_train, Path(tmp) / INPUT_FILE)
            with_retries(lambda: mlflow_client.log_artifacts(run.info.run_id, tmp, INPUT_DIR))
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - the registry's own errors, one line
        raise StepError(f"cannot hand the training data over through {uri}: "
                        f"{first_line(exc)}") from None
    return run.info.run_id


def fetch_input(project: Any, run_id: str, in_train: str) -> None:
    """On a node: put the handoff run's training set at ``in_train`` (each process downloads
    its own copy and moves it in place, so the ranks of a node never see a partial file)."""
    target = Path(in_train)
    target.parent.mkdir(parents=True, exist_ok=True)
    quiet_mlflow()
    try:
        with tempfile.TemporaryDirectory(prefix="mlspec-fetch-", dir=target.parent) as tmp:
            got = client(project.registry.tracking_uri).download_artifacts(
                run_id, f"{INPUT_DIR}/{INPUT_FILE}", tmp)
            os.replace(got, target)
    except Exception as exc:  # noqa: BLE001 - the registry's own errors, one line
        raise StepError(f"cannot fetch the training data of handoff run {run_id}: "
                        f"{first_line(exc)}") from None


def hand_back(project: Any, run_id: str, out_model: str) -> None:
    """On rank 0 of a node: log the trained model folder as the handoff run's ``model/``."""
    quiet_mlflow()
    try:
        with_retries(lambda: client(project.registry.tracking_uri).log_artifacts(
            run_id, out_model, MODEL_DIR))
    except Exception as exc:  # noqa: BLE001 - the registry's own errors, one line
        raise StepError(f"cannot hand the model back to run {run_id}: {first_line(exc)}") \
            from None


def _download_model(project: Any, run_id: str, final: Path) -> dict:
    quiet_mlflow()
    try:
        with tempfile.TemporaryDirectory(prefix="mlspec-model-", dir=final.parent) as tmp:
            got = Path(client(project.registry.tracking_uri).download_artifacts(
                run_id, MODEL_DIR, tmp))
            meta = json.loads((got / META_FILE).read_text(encoding="utf-8"))
            replace_model_dir(got, final)
    except (OSError, ValueError):
        raise StepError(f"the TrainJob finished but handoff run {run_id} holds no model") \
            from None
    except Exception as exc:  # noqa: BLE001 - the registry's own errors, one line
        raise StepError(f"cannot download the TrainJob's model from run {run_id}: "
                        f"{first_line(exc)}") from None
    return meta


def _tag(project: Any, run_id: str, outcome: str) -> None:
    try:
        client(project.registry.tracking_uri).set_tag(run_id, "mlspec.trainjob.outcome", outcome)
    except Exception:  # noqa: BLE001, S110 - a tag is a courtesy; the step's outcome stands
        pass
