"""``report``: the batch as a whole, once every partition is scored.

It reads each partition's summary (written by its score task beside the predictions), adds
them up, measures drift of all scored rows against the training profile, and judges the
contract: more violating rows than ``batch.max_violation_fraction`` fails the batch. Either
way it writes ``_report.json`` and ``_metrics.prom`` beside the predictions and pushes the
metrics to ``batch.pushgateway_url`` when one is set (a failed batch is exactly what an alert
should see); only a batch that passed gets ``_SUCCESS``, the marker readers wait for.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from mlspec import contract
from mlspec.runtime.batch.contract import add_counts
from mlspec.runtime.batch.locations import join, read_text, write_text
from mlspec.runtime.batch.plan import read_plan, require_batch
from mlspec.runtime.batch.score import SUMMARIES, part_name
from mlspec.runtime.errors import StepError, first_line
from mlspec.runtime.io import write_json
from mlspec.runtime.spec import load_project

SUCCESS, REPORT_FILE, METRICS_FILE = "_SUCCESS", "_report.json", "_metrics.prom"
PUSH_TIMEOUT_S = 10


def run_report(spec, in_plan: str, out_report: str) -> dict[str, Any]:
    """Add up the partitions' summaries; write and publish the batch report.

    Raises:
        StepError: a partition has no summary, the contract failed, or the push failed.
    """
    from mlspec.runtime.drift.streaming import merge_states, report_from_state

    project = load_project(spec)
    batch = require_batch(project)
    plan = read_plan(in_plan)
    summaries = [_summary(plan, item["index"]) for item in plan["partitions"]]
    rows = sum(s["rows"] for s in summaries)
    scored = sum(s["scored"] for s in summaries)
    violations: dict[str, dict[str, int]] = {}
    for s in summaries:
        add_counts(violations, s["violations"])
    fraction = (rows - scored) / rows if rows else 0.0
    drift_method = project.monitoring.drift
    drift = None
    if scored and plan["profile"].get("features"):
        drift = report_from_state(plan["profile"], merge_states([s["drift"] for s in summaries]),
                                  drift_method.method, drift_method.threshold).to_dict()
    passed = fraction <= batch.max_violation_fraction
    report = {
        "version": 1, "batch_id": plan["batch_id"], "model": plan["model"],
        "input": plan["input"], "output": plan["output"], "passed": passed,
        "rows": rows, "scored": scored, "violation_rows": rows - scored,
        "violation_fraction": fraction, "max_violation_fraction": batch.max_violation_fraction,
        "violations": violations, "predictions": _merged_predictions(summaries),
        "drift": drift, "seconds": round(sum(s["seconds"] for s in summaries), 3),
        "partitions": [{"index": s["index"], "partition": s["partition"], "rows": s["rows"],
                        "scored": s["scored"], "output": s["output"]} for s in summaries],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    text = metrics_text(project, report)
    write_json(report, out_report)
    write_text(join(plan["output"], REPORT_FILE),
               json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_text(join(plan["output"], METRICS_FILE), text)
    if batch.pushgateway_url:
        push(batch.pushgateway_url, project.metadata.name, text)
    if not passed:
        worst = _worst(violations)
        raise StepError(f"batch {plan['batch_id']}: {rows - scored} of {rows} rows "
                        f"({fraction:.1%}) break the data contract, above "
                        f"batch.max_violation_fraction={batch.max_violation_fraction}"
                        + (f" (most: {worst})" if worst else "") + "; no _SUCCESS written")
    write_text(join(plan["output"], SUCCESS), "")
    return report


def _summary(plan: dict[str, Any], index: int) -> dict[str, Any]:
    uri = join(plan["output"], SUMMARIES, f"{part_name(index)}.json")
    text = read_text(uri)
    if text is None:
        raise StepError(f"partition {index} has no summary at {uri}: its score task did not "
                        "finish")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StepError(f"cannot read {uri}: {first_line(exc)}") from None


def _merged_predictions(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    if any("classes" in s["predictions"] for s in summaries):
        classes: dict[str, int] = {}
        for s in summaries:
            for label, n in s["predictions"].get("classes", {}).items():
                classes[label] = classes.get(label, 0) + n
        return {"classes": dict(sorted(classes.items()))}
    total = sum(s["predictions"].get("sum", 0.0) for s in summaries)
    squares = sum(s["predictions"].get("sum_squares", 0.0) for s in summaries)
    n = sum(s["scored"] for s in summaries)
    if not n:
        return {"mean": None, "std": None}
    mean = total / n
    return {"mean": mean, "std": max(squares / n - mean * mean, 0.0) ** 0.5}


def _worst(violations: dict[str, dict[str, int]]) -> str:
    pairs = [(n, f, k) for f, kinds in violations.items() for k, n in kinds.items()]
    if not pairs:
        return ""
    n, feature, kind = max(pairs)
    return f"{feature}: {n} {kind}"


# --- metrics -----------------------------------------------------------------------------------
def metrics_text(project, report: dict[str, Any]) -> str:
    """The batch's figures in Prometheus' text format (names and labels: mlspec.contract)."""
    base = {"model": report["model"]["name"], "version": str(report["model"]["version"])}
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            lines.append(f"{name}{{{_labels({**base, **labels})}}} {_number(value)}")

    gauge(contract.BATCH_ROWS, "Rows of the last batch, scored or set aside as violations.",
          [({"outcome": contract.SCORED}, report["scored"]),
           ({"outcome": contract.VIOLATION}, report["violation_rows"])])
    gauge(contract.BATCH_VIOLATIONS, "Rows of the last batch that broke the data contract.",
          [({"feature": f, "kind": k}, n) for f, kinds in sorted(report["violations"].items())
           for k, n in sorted(kinds.items())])
    drift = report["drift"] or {"features": []}
    gauge(contract.BATCH_FEATURE_DRIFT, "Drift of the last batch against the training data.",
          [({"feature": f["name"], "method": f["method"]},
            f["p_value"] if f["method"] == "chi2" else f["statistic"])
           for f in drift["features"] if f["statistic"] is not None])
    gauge(contract.BATCH_DURATION, "Seconds the last batch's score tasks took in all.",
          [({}, report["seconds"])])
    if report["passed"]:
        gauge(contract.BATCH_LAST_SUCCESS, "When the last complete batch finished (Unix time).",
              [({}, time.time())])
    return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    escaped = {k: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               for k, v in labels.items()}
    return ",".join(f'{k}="{v}"' for k, v in sorted(escaped.items()))


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def push(url: str, project_name: str, text: str) -> None:
    """PUT the metrics to a Pushgateway, replacing this project's group from the last batch.

    Raises:
        StepError: the Pushgateway did not take them.
    """
    group = f"/metrics/job/{contract.BATCH_JOB}/{contract.PROJECT_LABEL}/" + \
        urllib.parse.quote(project_name, safe="")
    request = urllib.request.Request(url.rstrip("/") + group, data=text.encode(), method="PUT",
                                     headers={"Content-Type": "text/plain; version=0.0.4"})
    try:
        with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_S) as answer:  # noqa: S310 - http(s) only (spec pattern)
            answer.read()
    except Exception as exc:  # noqa: BLE001 - urllib raises URLError, HTTPError, timeouts
        raise StepError(f"cannot push the batch metrics to {url}: {first_line(exc)}") from None
