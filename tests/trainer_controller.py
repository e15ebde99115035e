"""A stand-in for Kubeflow Trainer's TrainJob controller, on this machine.

No cluster (and so no Trainer controller, JobSet or kubelet) can run here. This one watches the
stand-in Kubernetes API (tests/kube_api.py) for TrainJobs and runs each as the torch runtime
would: one process per node (``numNodes``), each the trainer's own ``command`` + ``args`` with
the variables Trainer's torch plugin sets on a node (``PET_NNODES``, ``PET_NPROC_PER_NODE``,
``PET_NODE_RANK``, ``PET_MASTER_ADDR``, ``PET_MASTER_PORT``) and the trainer's ``env`` values
(Secret references are skipped: there are no Secrets). The container's ``python`` is this
interpreter and the node's emptyDir (the compiled ``/workspace/train``) a folder per node, as
the Tekton rehearsal maps a container's paths. It then writes the TrainJob's status as Trainer
does: ``Created``, then ``Complete`` or ``Failed`` (with, unlike Trainer, the failing node's
last ``error:`` line in the message, so a test can see which failure it was). ``stall`` leaves
every job running (for timeouts).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.kube_api import FakeKubeApi

PLURAL = "trainjobs"
WORK_DIR = "/workspace/train"


class TrainerController:
    def __init__(self, api: FakeKubeApi, root: Path, stall: bool = False) -> None:
        self.api, self.root, self.stall = api, root, stall
        self.ran: list[str] = []
        self.logs: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TrainerController:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            for (namespace, plural, name), job in list(self.api.objects.items()):
                if plural == PLURAL and name not in self.ran:
                    self.ran.append(name)
                    self._condition(namespace, name, "Created", "JobsCreationSucceeded",
                                    "Succeeded to create Jobs")
                    if not self.stall:
                        self._run(namespace, name, job)

    def _run(self, namespace: str, name: str, job: dict[str, Any]) -> None:
        trainer = job["spec"]["trainer"]
        nodes, port = int(trainer.get("numNodes", 1)), _free_port()
        procs = []
        for rank in range(nodes):
            node = self.root / name / f"node-{rank}"
            node.mkdir(parents=True)
            env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
                   "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "LANG": "C.UTF-8",
                   "PET_NNODES": str(nodes),
                   "PET_NPROC_PER_NODE": str(trainer.get("numProcPerNode", 1)),
                   "PET_NODE_RANK": str(rank), "PET_MASTER_ADDR": "127.0.0.1",
                   "PET_MASTER_PORT": str(port)}
            env.update({e["name"]: _mapped(e["value"], node) for e in trainer.get("env", [])
                        if "value" in e})
            command = [sys.executable if word == "python" else _mapped(word, node)
                       for word in trainer["command"] + trainer.get("args", [])]
            procs.append(subprocess.Popen(command, cwd=node, env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        self.logs[name] = outputs
        failed = [(rank, out) for rank, (p, out) in enumerate(zip(procs, outputs, strict=True))
                  if p.returncode != 0]
        if failed:
            rank, out = failed[0]
            errors = [line for line in out.splitlines() if line.startswith("error: ")]
            detail = errors[-1] if errors else (out.strip().splitlines() or ["no output"])[-1]
            self._condition(namespace, name, "Failed", "TrainingFailed",
                            f"node {rank} exited non-zero: {detail}")
        else:
            self._condition(namespace, name, "Complete", "JobsCompleted", "TrainJob completed")

    def _condition(self, namespace: str, name: str, kind: str, reason: str,
                   message: str) -> None:
        with self.api._lock:
            job = self.api.objects[(namespace, PLURAL, name)]
            conditions = job.setdefault("status", {}).setdefault("conditions", [])
            conditions.append({"type": kind, "status": "True", "reason": reason,
                               "message": message,
                               "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime())})
            self.api._stamp(job, job)


def _mapped(text: str, node: Path) -> str:
    return text.replace(WORK_DIR, str(node / "work"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
