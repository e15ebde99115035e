"""Distributed torch training: the train step under torchrun, and the process group inside it.

``model.distributed`` makes the torch MLP train with DistributedDataParallel. Locally (``mlspec
run``, or the train step run by hand) the step re-runs itself under ``torchrun --standalone
--nnodes 1 --nproc-per-node N×M`` (the cluster's world size: ``nodes`` × ``processes_per_node``,
so the same shards as the TrainJob's) on the CPU with the gloo backend (nccl only where CUDA is
present), waits, and fails with the failing rank's own message. On a cluster the TrainJob's
nodes run it under their own torchrun (mlspec.runtime.trainjob). Inside, every rank trains on
its DistributedSampler shard with the same seed; rank 0 alone writes the model folder and the
reference profile.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlspec.runtime.errors import StepError

TIMEOUT_S = 24 * 3600


def world() -> tuple[int, int] | None:
    """(rank, world size) when this process is one of several torchrun started, else None."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size < 2 or "LOCAL_RANK" not in os.environ:
        return None
    return int(os.environ.get("RANK", "0")), size


def under_torchrun() -> bool:
    """Whether torchrun started this process (it sets LOCAL_RANK, even in a world of one)."""
    return "LOCAL_RANK" in os.environ


def is_writer() -> bool:
    """Whether this process writes files (rank 0, or the only process)."""
    place = world()
    return place is None or place[0] == 0


def local_backend(requested: str) -> str:
    """nccl needs CUDA; without it a local run uses gloo (said in the step's output)."""
    if requested == "nccl":
        import torch

        if not torch.cuda.is_available():
            print("train: no CUDA device here; the local run uses the gloo backend",
                  file=sys.stderr)
            return "gloo"
    return requested


def launch(spec: dict[str, Any], in_train: str, out_model: str, processes: int) -> dict:
    """Run the train step under torchrun with ``processes`` local processes; returns the
    model's metadata as rank 0 wrote it.

    Raises:
        StepError: a rank failed (its own error message), or no model was written.
    """
    with tempfile.TemporaryDirectory(prefix="mlspec-ddp-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nnodes", "1", "--nproc-per-node", str(processes), "-m", "mlspec.runtime",
                   "train", "--spec", str(spec_path), "--in", f"train={in_train}",
                   "--out", f"model={out_model}"]
        print(f"train: {processes} processes under torchrun (DistributedDataParallel)",
              flush=True)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
        except subprocess.TimeoutExpired:
            raise StepError(f"distributed training did not finish in {TIMEOUT_S} s") from None
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        raise StepError(f"distributed training failed: {_rank_failure(done.stderr)}")
    meta_path = Path(out_model) / "mlspec_model.json"
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StepError(f"distributed training ended but wrote no model to {out_model}") from None


def _rank_failure(stderr: str) -> str:
    """The failing rank and its own message, from torchrun's output."""
    errors = [line.removeprefix("error: ").strip() for line in stderr.splitlines()
              if line.startswith("error: ")]
    ranks = re.findall(r"^\s*rank\s*:\s*(\d+)", stderr, flags=re.MULTILINE)
    where = f"rank {ranks[0]}" if ranks else "a rank"
    if errors:
        return f"{where}: {errors[0]}"
    tail = [line for line in stderr.strip().splitlines() if line.strip()]
    return f"{where}: {tail[-1] if tail else 'no message'}"
