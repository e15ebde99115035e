"""``python -m mlspec.runtime STEP --spec SPEC --in NAME=PATH ... --out NAME=PATH ...``.

Input and output names are the pipeline graph's (``mlspec.compile.graph``). Exit codes: 0 ok, 1 the
step failed (one line on stderr, no traceback), 2 usage. A rejected model makes the gate exit 1,
except when the caller asks for the verdict as a value (``--out passed=PATH``): pipelines branch
on that value, so there the gate exits 0 either way (``--fail-on-reject`` forces exit 1).

``train`` with ``--bundle trainjob.json`` (a distributed torch spec, on a cluster) submits the
compiled Kubeflow Trainer TrainJob and waits for it; the job's processes run ``train --handoff
RUN_ID`` (``mlspec.runtime.trainjob``).

``deploy`` pins the registered version into the deploy bundle's serving objects and applies them
(``--in registration=PATH --bundle deploy.json --out deployment=PATH``). ``rollout`` carries out a
canary plan, on a cluster after deploy (``--in deployment=PATH --bundle deploy.json --out
report=PATH``) or against ``mlspec serve --candidate`` (``--in plan=plan.yaml --out report=PATH
--version N --admin URL --prometheus URL [--hold D]``): exit 0 promoted, 1 rolled back.

Batch scoring: ``partitions --out plan=PATH [--out partitions=PATH]`` pins the model version and
lists the input's partitions (the value output is a JSON list of their indices), ``score --in
plan=PATH --partition I`` scores one, ``report --in plan=PATH --out report=PATH`` adds them up
and marks the batch complete (``mlspec.runtime.batch``).

``python -m mlspec.runtime serve ...`` starts the model server
(``mlspec.runtime.serving.server``); it is the serving container's entry point.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlspec.runtime.errors import StepError


@dataclass(frozen=True)
class StepDef:
    """A step's command-line shape: required/optional inputs and outputs, and its runner."""

    run: Callable[..., Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    optional_inputs: tuple[str, ...] = ()
    optional_outputs: tuple[str, ...] = ()
    needs_spec: bool = True


def _ingest(spec, i, o, a):
    from mlspec.runtime.steps.ingest import run_ingest

    r = run_ingest(spec, o["dataset"])
    return f"ingest: {r['rows']} rows, {len(r['columns'])} columns from {r['source']}"


def _validate(spec, i, o, a):
    from mlspec.runtime.steps.validate_data import run_validate_data

    r = run_validate_data(spec, i["dataset"], o["report"])
    return f"validate-data: passed ({r['rows']} rows)"


def _split(spec, i, o, a):
    from mlspec.runtime.steps.split import run_split

    r = run_split(spec, i["dataset"], o["train"], o["test"], in_report=i.get("report"))
    return f"split: {r['train_rows']} train rows, {r['test_rows']} test rows"


def _train(spec, i, o, a):
    from mlspec.runtime.steps.train import run_train

    r = run_train(spec, i["train"], o["model"], bundle=a.bundle, handoff=a.handoff)
    return f"train: {r.get('estimator', 'torch MLP')} on {r['train_rows']} rows -> {o['model']}"


def _evaluate(spec, i, o, a):
    from mlspec.runtime.steps.evaluate import run_evaluate

    r = run_evaluate(spec, i["model"], i["test"], o["metrics"])
    shown = ", ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items())
    return f"evaluate: {shown}"


def _gate(spec, i, o, a):
    from mlspec.runtime.steps.gate import run_gate

    r = run_gate(spec, i["metrics"], o["decision"], o.get("passed"))
    text = f"gate: {'passed' if r['passed'] else 'failed'}: " + "; ".join(r["reasons"])
    # Without a `passed` value output nobody can branch on the verdict: a rejection must fail.
    if not r["passed"] and (a.fail_on_reject or "passed" not in o):
        raise StepError(text)
    return text


def _register(spec, i, o, a):
    from mlspec.runtime.steps.register import run_register

    r = run_register(spec, i["model"], i.get("metrics"), i.get("decision"), i.get("dataset"),
                     o["registration"])
    alias = f" alias {r['alias']}" if r["alias"] else " (no alias: no passed gate decision)"
    return f"register: {r['model_uri']}{alias}"


def _drift(spec, i, o, a):
    from mlspec.runtime.drift.command import run_drift_step

    r = run_drift_step(spec, i["reference"], i["current"], o.get("report"), o.get("html"),
                       method=a.method, threshold=a.threshold)
    drifted = [f["name"] for f in r["features"] if f["drifted"]]
    return f"drift: {'drift in ' + ', '.join(drifted) if drifted else 'no drift'}"


def _deploy(spec, i, o, a):
    from mlspec.runtime.steps.deploy import run_deploy

    if a.bundle is None:
        raise StepError("deploy needs --bundle PATH (the compiled deploy bundle)")
    r = run_deploy(spec, i["registration"], a.bundle, o["deployment"])
    return f"deploy: {r['model_uri']} ({len(r['objects'])} objects applied)"


def _rollout(spec, i, o, a):
    from mlspec.runtime.steps.rollout import read_plan, run_cluster_rollout, run_rollout

    if "deployment" in i:
        if a.bundle is None:
            raise StepError("rollout --in deployment=PATH needs --bundle PATH")
        r = run_cluster_rollout(spec, i["deployment"], a.bundle, o["report"],
                                prometheus_url=a.prometheus, hold=a.hold,
                                predictor_url=a.predictor_url)
    else:
        for flag, value in (("--in plan=PATH (or --in deployment=PATH)", i.get("plan")),
                            ("--version", a.version), ("--admin", a.admin)):
            if value is None:
                raise StepError(f"rollout needs {flag}")
        r = run_rollout(spec, read_plan(i["plan"]), a.version, a.admin,
                        a.prometheus or LOCAL_PROMETHEUS, o["report"], hold=a.hold)
    text = f"rollout: {r['outcome']} {r['model']} version {r['version']}: {r['reason']}"
    if r["outcome"] != "promoted":
        raise StepError(text)
    return text


def _partitions(spec, i, o, a):
    from mlspec.runtime.batch.plan import run_plan

    r = run_plan(spec, o["plan"], o.get("partitions"))
    return (f"partitions: {len(r['partitions'])} partition(s) of {r['input']}, model "
            f"{r['model']['uri']}, batch {r['batch_id']}")


def _score(spec, i, o, a):
    from mlspec.runtime.batch.score import run_score

    if a.partition is None:
        raise StepError("score needs --partition INDEX (an index of the plan's partitions)")
    r = run_score(spec, i["plan"], a.partition, o.get("summary"))
    return (f"score: partition {r['index']}: {r['scored']} of {r['rows']} rows scored "
            f"({r['violation_rows']} broke the data contract) -> {r['output']}")


def _report(spec, i, o, a):
    from mlspec.runtime.batch.report import run_report

    r = run_report(spec, i["plan"], o["report"])
    drift = r["drift"] or {"drift": False, "features": []}
    drifted = [f["name"] for f in drift["features"] if f["drifted"]]
    return (f"report: batch {r['batch_id']} complete: {r['scored']} of {r['rows']} rows "
            f"scored; {'drift in ' + ', '.join(drifted) if drifted else 'no drift'}")


STEPS: dict[str, StepDef] = {
    "ingest": StepDef(_ingest, (), ("dataset",)),
    "validate-data": StepDef(_validate, ("dataset",), ("report",)),
    "split": StepDef(_split, ("dataset",), ("train", "test"), optional_inputs=("report",)),
    "train": StepDef(_train, ("train",), ("model",)),
    "evaluate": StepDef(_evaluate, ("model", "test"), ("metrics",)),
    "gate": StepDef(_gate, ("metrics",), ("decision",), optional_outputs=("passed",)),
    "register": StepDef(_register, ("model",), ("registration",),
                        optional_inputs=("metrics", "decision", "dataset")),
    "drift": StepDef(_drift, ("reference", "current"), (), optional_outputs=("report", "html"),
                     needs_spec=False),
    "deploy": StepDef(_deploy, ("registration",), ("deployment",)),
    "rollout": StepDef(_rollout, (), ("report",), optional_inputs=("plan", "deployment")),
    # Batch scoring (mlspec.runtime.batch): partitions -> score (one task per partition) ->
    # report.
    "partitions": StepDef(_partitions, (), ("plan",), optional_outputs=("partitions",)),
    "score": StepDef(_score, ("plan",), (), optional_outputs=("summary",)),
    "report": StepDef(_report, ("plan",), ("report",)),
}


LOCAL_PROMETHEUS = "http://127.0.0.1:9090"


class _Usage(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlspec.runtime",
        description="Run one mlspec pipeline step. Names of --in/--out are the pipeline "
                    "graph's artifact names.")
    parser.add_argument("step", choices=sorted(STEPS), help="the step to run")
    parser.add_argument("--spec", help="resolved spec: a JSON/YAML file or inline JSON")
    parser.add_argument("--in", dest="inputs", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--out", dest="outputs", action="append", default=[],
                        metavar="NAME=PATH")
    parser.add_argument("--fail-on-reject", action="store_true",
                        help="gate: exit 1 on rejection even when --out passed=PATH is given")
    parser.add_argument("--method", help="drift: psi, ks, chi2, js or wasserstein")
    parser.add_argument("--threshold", type=float, help="drift: the threshold")
    parser.add_argument("--version", type=int, help="rollout: the candidate's registry version")
    parser.add_argument("--admin", help="rollout: the admin API of mlspec serve --candidate")
    parser.add_argument("--prometheus",
                        help="rollout: Prometheus' URL (default: the bundle's on a cluster, "
                             f"{LOCAL_PROMETHEUS} locally)")
    parser.add_argument("--bundle", help="deploy, rollout: the compiled deploy bundle (JSON); "
                        "train: the compiled TrainJob (distributed torch on a cluster)")
    parser.add_argument("--handoff", help="train, in a TrainJob's processes: the registry run "
                        "that carries the training data and the model")
    parser.add_argument("--partition", help="score: the index of the plan's partition to score")
    parser.add_argument("--hold", help="rollout: hold every step this long (e.g. 30s)")
    parser.add_argument("--predictor-url",
                        help="rollout (blue-green): where green's predictor answers the smoke "
                             "inference (default: its Service in the cluster)")
    return parser


def _pairs(values: list[str], allowed: tuple[str, ...], flag: str, step: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise _Usage(f"{flag} expects NAME=PATH, got {value!r}")
        if name not in allowed:
            raise _Usage(f"step {step} has no {flag.lstrip('-')}put {name!r} (it has: "
                         f"{', '.join(allowed) or 'none'})")
        if name in out:
            raise _Usage(f"{flag} {name} given twice")
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse, run the step, map errors to exit codes."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the serving container's entry point
        from mlspec.runtime.serving.server import main as serve_main

        return serve_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    step = STEPS[args.step]
    try:
        inputs = _pairs(args.inputs, step.inputs + step.optional_inputs, "--in", args.step)
        outputs = _pairs(args.outputs, step.outputs + step.optional_outputs, "--out", args.step)
        missing = [f"--in {n}=PATH" for n in step.inputs if n not in inputs]
        missing += [f"--out {n}=PATH" for n in step.outputs if n not in outputs]
        if missing:
            raise _Usage(f"step {args.step} needs {', '.join(missing)}")
        if step.needs_spec and not args.spec:
            raise _Usage(f"step {args.step} needs --spec")
    except _Usage as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        message = step.run(args.spec, inputs, outputs, args)
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug, not bad input: still one line unless debugging
        if os.environ.get("MLSPEC_DEBUG"):
            raise
        text = str(exc).strip().splitlines()
        print(f"error: {args.step} failed unexpectedly: {type(exc).__name__}: "
              f"{text[0] if text else ''} (set MLSPEC_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
    if message:
        print(message)
    return 0
