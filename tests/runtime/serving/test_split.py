"""A champion and a candidate in one server process, steered through the admin API.

Two registered versions of the iris model (a sqlite registry made by the runtime's register
step) served by ``python -m mlspec.runtime serve models:/NAME/1 --candidate models:/NAME/2``:
the split, pinned versions, mirroring, feedback routing, the merged /metrics (parsed by
Prometheus' own parser, promtool), and the admin API on its own 127.0.0.1 port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import program
from tests.runtime.serving.conftest import call

NAME = "iris-classifier"
ROW = [5.1, 3.5, 1.4, 0.2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(iris_run: dict) -> str:
    """A sqlite registry holding versions 1 and 2 of the iris model."""
    from mlspec.runtime.steps.register import run_register

    spec = iris_run["spec"]
    for n in (1, 2):
        out = Path(iris_run["dir"]) / f"registration-{n}.json"
        assert run_register(spec, iris_run["model"], iris_run["metrics"], None, None,
                            str(out))["version"] == str(n)
    return spec["registry"]["tracking_uri"]


def _start(registry: str, tmp: Path, *extra: str) -> Iterator[tuple[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlspec.runtime", "serve", f"models:/{NAME}/1", "--candidate",
         f"models:/{NAME}/2", "--host", "127.0.0.1", "--port", "0", "--admin-port", "0",
         "--tracking-uri", registry, *extra],
        cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        urls = {}
        while len(urls) < 2:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"server exited: {process.stderr.read()}")
            if line.startswith("serving "):
                urls["serve"] = line.rsplit(" ", 1)[-1].strip()
                assert "version 1 (champion) and 2 (candidate" in line, line
            elif line.startswith("admin API on "):
                urls["admin"] = line.rsplit(" ", 1)[-1].strip().removesuffix("/admin/traffic")
        assert urls["admin"].startswith("http://127.0.0.1:")
        yield urls["serve"], urls["admin"]
    finally:
        process.terminate()
        assert process.wait(15) == 0


def _call(url: str, body: object = None, method: str | None = None) -> tuple[int, object]:
    return call(url, "", body, method)


def _infer(base: str, path: str = f"/v2/models/{NAME}/infer") -> dict:
    status, answer = _call(base + path, {"inputs": [{"name": "input-0", "shape": [1, 4],
                                                     "datatype": "FP64", "data": ROW}]})
    assert status == 200, answer
    return answer  # type: ignore[return-value]


@pytest.fixture
def split(registry: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    yield from _start(registry, tmp_path, "--traffic-percent", "25")


def test_the_candidate_gets_exactly_its_share(split: tuple[str, str]) -> None:
    base, admin = split
    versions = Counter(_infer(base)["model_version"] for _ in range(100))
    assert versions == {"1": 75, "2": 25}
    state = _call(f"{admin}/admin/traffic")[1]
    assert state == {"model": state["model"], "champion": "1", "candidate": "2",
                     "candidate_percent": 25, "mirror": False,
                     "port": int(base.rsplit(":", 1)[1])}


def test_the_admin_api_moves_traffic(split: tuple[str, str]) -> None:
    base, admin = split
    for percent, expected in ((100, {"2": 20}), (0, {"1": 20}), (50, {"1": 10, "2": 10})):
        status, state = _call(f"{admin}/admin/traffic", {"candidate_percent": percent}, "PUT")
        assert status == 200 and state["candidate_percent"] == percent  # type: ignore[index]
        assert Counter(_infer(base)["model_version"] for _ in range(20)) == expected


@pytest.mark.parametrize("body", [{"candidate_percent": 101}, {"candidate_percent": 2.5},
                                  {"candidate_percent": True}, {"weight": 1}, {},
                                  {"mirror": "yes"}, "[1]"])
def test_the_admin_api_refuses_what_it_cannot_do(split: tuple[str, str], body: object) -> None:
    _, admin = split
    status, answer = _call(f"{admin}/admin/traffic", body, "PUT")
    assert status == 400 and "error" in answer, answer
    assert _call(f"{admin}/admin/traffic")[1]["candidate_percent"] == 25  # type: ignore[index]


def test_the_admin_api_is_not_on_the_public_port(split: tuple[str, str]) -> None:
    base, _ = split
    status, _ = _call(f"{base}/admin/traffic", {"candidate_percent": 100}, "PUT")
    assert status == 404


def test_a_version_in_the_path_pins_it(split: tuple[str, str]) -> None:
    base, _ = split
    for version in ("1", "2"):
        path = f"/v2/models/{NAME}/versions/{version}/infer"
        assert {_infer(base, path)["model_version"] for _ in range(8)} == {version}


def test_feedback_goes_to_the_version_that_answered(split: tuple[str, str]) -> None:
    base, _ = split
    answers = [_infer(base) for _ in range(8)]
    by_version = {a["model_version"]: a["id"] for a in answers}
    assert set(by_version) == {"1", "2"}
    for response_id in by_version.values():
        status, body = _call(f"{base}/feedback", {"ids": [response_id], "labels": [0]})
        assert status == 200, body
    metrics = _call(f"{base}/metrics")[1]
    for version in ("1", "2"):
        assert f'mlspec_model_performance{{model="{NAME}",version="{version}",metric="accuracy"}}' \
            in metrics


def test_merged_metrics_are_one_valid_exposition(split: tuple[str, str]) -> None:
    base, _ = split
    for _ in range(10):
        _infer(base)
    text = _call(f"{base}/metrics")[1]
    assert isinstance(text, str)
    assert text.count("# TYPE mlspec_requests_total counter") == 1
    for version in ("1", "2"):
        assert f'mlspec_model_info{{model="{NAME}",version="{version}"}} 1' in text
    checked = subprocess.run([program("promtool"), "check", "metrics"], input=text, text=True,
                             capture_output=True)
    assert "error" not in (checked.stdout + checked.stderr).lower(), checked.stdout + checked.stderr


def test_mirroring_sends_every_request_to_both(registry: str, tmp_path: Path) -> None:
    for base, _ in _start(registry, tmp_path, "--mirror"):
        answers = {_infer(base)["model_version"] for _ in range(12)}
        assert answers == {"1"}  # the champion answers; the candidate's answers are dropped
        text = _call(f"{base}/metrics")[1]
        for version in ("1", "2"):
            assert f'mlspec_requests_total{{model="{NAME}",version="{version}",code="200"}} 12' \
                in text
        # Two registrations of one model: every mirrored row agrees, and only the candidate
        # counts comparisons.
        assert f'mlspec_shadow_comparisons_total{{model="{NAME}",version="2",outcome="agree"}} 12' \
            in text
        assert f'{{model="{NAME}",version="2",outcome="disagree"}} 0' in text
        assert 'version="1",outcome=' not in text


def test_the_admin_sample_is_a_request_the_candidate_answers(split: tuple[str, str]) -> None:
    base, admin = split
    for version in ("1", "2"):  # readiness and metadata of each version, by its own path
        assert _call(f"{base}/v2/models/{NAME}/versions/{version}/ready")[0] == 200
        assert _call(f"{base}/v2/models/{NAME}/versions/{version}")[1]["versions"] == [version]
    status, sample = _call(f"{admin}/admin/sample")
    assert status == 200 and len(sample["inputs"]) == 4
    status, answer = _call(f"{base}/v2/models/{NAME}/versions/2/infer", sample)
    assert status == 200 and answer["model_version"] == "2" and answer["outputs"][0]["data"]


def test_agreement_per_row() -> None:
    from mlspec.runtime.serving.split import agreeing_rows, predictions_of

    assert agreeing_rows(["a", "b", 1], ["a", "c", "1"], classifier=True) == 2
    # regression: within 10 % of the champion's value (at least 0.1 absolute)
    assert agreeing_rows([100.0, 100.0, 0.0, 0.0], [109.0, 111.0, 0.09, 0.2],
                         classifier=False) == 2
    assert predictions_of(b'{"outputs":[{"name":"predict","data":[1,2]}]}') == [1, 2]
    assert predictions_of(b'{"predictions":[3]}') == [3]
    assert predictions_of(b'{"error":"x"}') is None and predictions_of(b"nope") is None


def test_options_that_need_a_candidate(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mlspec.runtime", "serve", "some-model",
                           "--traffic-percent", "10"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "go with --candidate" in done.stderr


def test_a_candidate_of_the_same_version_is_refused(registry: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mlspec.runtime", "serve", f"models:/{NAME}/1",
                           "--candidate", f"models:/{NAME}/1", "--tracking-uri", registry,
                           "--port", "0"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 2 and "same version" in done.stderr, done.stderr
