"""The batch report pushes its figures to a real Pushgateway (Debian's prometheus-pushgateway)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from mlspec import contract
from mlspec.runtime.batch.report import push
from mlspec.runtime.errors import StepError
from tests.conftest import program
from tests.e2e.live import Timeline, free_port, healthy, processes, wait_for
from tests.runtime.batch.conftest import BROKEN_ROWS, batch_spec, make_inputs
from tests.runtime.conftest import run_step, write_spec


@pytest.fixture
def pushgateway(tmp_path):
    binary = program("prometheus-pushgateway", "pushgateway")
    port = free_port()
    (tmp_path / "logs").mkdir()
    with processes(tmp_path / "logs") as procs:
        procs.start("pushgateway", [binary, f"--web.listen-address=127.0.0.1:{port}"], tmp_path)
        url = f"http://127.0.0.1:{port}"
        wait_for("the pushgateway", lambda: healthy(f"{url}/-/ready"), Timeline(30), procs)
        yield url


def _scraped(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        return answer.read().decode()


def _value(text: str, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            body, value = line[len(name) + 1:].rsplit("} ", 1)
            pairs = dict(part.split("=", 1) for part in body.split(","))
            if all(pairs.get(k) == f'"{v}"' for k, v in labels.items()):
                found.append(float(value))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_the_report_pushes_the_batch_figures(registered, tmp_path, pushgateway):
    make_inputs(tmp_path)
    spec = write_spec(tmp_path, batch_spec(registered, tmp_path, pushgateway_url=pushgateway))
    plan = tmp_path / "plan.json"
    assert run_step("partitions", "--spec", spec, "--out", f"plan={plan}").returncode == 0
    for index in ("0", "1"):
        assert run_step("score", "--spec", spec, "--in", f"plan={plan}",
                        "--partition", index).returncode == 0
    before = time.time()
    done = run_step("report", "--spec", spec, "--in", f"plan={plan}",
                    "--out", f"report={tmp_path / 'r.json'}")
    assert done.returncode == 0, done.stderr
    text = _scraped(pushgateway)
    group = {contract.PROJECT_LABEL: "iris-classifier", "job": contract.BATCH_JOB,
             "model": "iris-classifier", "version": "1"}
    assert _value(text, contract.BATCH_ROWS, outcome="violation", **group) == BROKEN_ROWS
    assert _value(text, contract.BATCH_ROWS, outcome="scored", **group) == 150 - BROKEN_ROWS
    assert _value(text, contract.BATCH_VIOLATIONS, feature="sepal_length", kind="range",
                  **group) == BROKEN_ROWS
    assert _value(text, contract.BATCH_LAST_SUCCESS, **group) >= before - 1
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True


def test_a_refused_push_fails_the_report(pushgateway):
    with pytest.raises(StepError, match="cannot push the batch metrics"):
        push(pushgateway, "p", "this is not the text format\n")
    with pytest.raises(StepError, match="cannot push"):
        push(f"http://127.0.0.1:{free_port()}", "p", "x 1\n")
