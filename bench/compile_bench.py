"""Benchmark: ``mlspec compile --target kfp`` against the same pipeline written by hand in kfp.

Side by side, in one run, each a fresh process (what a user or CI pays):

* ``mlspec``   — ``mlspec compile SPEC --target kfp -o DIR`` (the venv's console script);
* ``kfp only`` — a 7-step pipeline written by hand in the kfp DSL (the same lightweight
  components, signatures, ``dsl.If`` gate, resources, retries and caching) compiled by
  ``kfp.compiler`` alone: ``import kfp`` + compile;
* ``core DSL`` — the same script without kfp-kubernetes (so without the step timeouts that
  mlspec's IR carries): what kfp costs when its Kubernetes extension is not imported;
* ``all``      — ``mlspec compile SPEC`` with every target (kfp, tekton, serving, monitoring).

mlspec's IR carries kfp-kubernetes' platform config without importing ``kfp.kubernetes`` (which
loads the whole Kubernetes client) and imports kfp without ``kfp.client``; see
``mlspec.compile.targets.kfp.import_kfp`` and ``kubernetes_config``.

Prints the median and minimum wall time and the median CPU time of several interleaved repeats,
the ratio mlspec / kfp-only (goal <= 1.1), and the all-targets wall time (goal <= 1.2 s).

    .venv/bin/python bench/compile_bench.py [--repeats 9] [--spec examples/iris/mlproject.yaml]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL_RATIO, GOAL_ALL_S = 1.1, 1.2

# The pipeline mlspec generates, written the way a KFP user would write it by hand.
HAND_WRITTEN = textwrap.dedent('''
    import subprocess, sys
    from kfp import compiler, dsl
    CORE_ONLY = sys.argv[2:] == ["--core-only"]
    if not CORE_ONLY:
        from kfp import kubernetes
    from kfp.dsl import Artifact, Dataset, Input, Model, Output

    IMAGE = "ghcr.io/mlspec/mlspec-runtime:0.1.0"

    def _run(step, spec, inputs, outputs):
        argv = [sys.executable, "-m", "mlspec.runtime", step, "--spec", spec]
        for k, v in inputs.items():
            argv += ["--in", f"{k}={v}"]
        for k, v in outputs.items():
            argv += ["--out", f"{k}={v}"]
        subprocess.run(argv, check=True)

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def ingest(spec: str, data_uri: str, dataset: Output[Dataset]):
        _run("ingest", spec, {}, {"dataset": dataset.path})

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def validate_data(spec: str, dataset: Input[Dataset], report: Output[Artifact]):
        _run("validate-data", spec, {"dataset": dataset.path}, {"report": report.path})

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def split(spec: str, dataset: Input[Dataset], report: Input[Artifact],
              train: Output[Dataset], test: Output[Dataset]):
        _run("split", spec, {"dataset": dataset.path, "report": report.path},
             {"train": train.path, "test": test.path})

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def train(spec: str, train: Input[Dataset], model: Output[Model]):
        _run("train", spec, {"train": train.path}, {"model": model.path})

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def evaluate(spec: str, model: Input[Model], test: Input[Dataset], metrics: Output[Artifact]):
        _run("evaluate", spec, {"model": model.path, "test": test.path}, {"metrics": metrics.path})

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def gate(spec: str, metrics: Input[Artifact], decision: Output[Artifact]) -> str:
        _run("gate", spec, {"metrics": metrics.path}, {"decision": decision.path})
        return "true"

    @dsl.component(base_image=IMAGE, install_kfp_package=False, additional_funcs=[_run])
    def register(spec: str, model: Input[Model], metrics: Input[Artifact],
                 decision: Input[Artifact], dataset: Input[Dataset],
                 registration: Output[Artifact]):
        _run("register", spec, {"model": model.path, "metrics": metrics.path,
                                "decision": decision.path, "dataset": dataset.path},
             {"registration": registration.path})

    def configure(task, cpu="500m", memory="1Gi", retries=0, cache=True):
        task.set_cpu_request(cpu).set_cpu_limit(cpu)
        task.set_memory_request(memory).set_memory_limit(memory)
        if retries:
            task.set_retry(num_retries=retries)
        task.set_caching_options(enable_caching=cache)
        if not CORE_ONLY:  # the step timeout needs kfp-kubernetes, as in mlspec's IR
            kubernetes.set_timeout(task, 3600)
        return task

    @dsl.pipeline(name="iris-classifier", description="hand-written")
    def pipeline(spec: str = "{}", data_uri: str = "sklearn://iris"):
        i = configure(ingest(spec=spec, data_uri=data_uri), retries=2)
        v = configure(validate_data(spec=spec, dataset=i.outputs["dataset"]))
        s = configure(split(spec=spec, dataset=i.outputs["dataset"], report=v.outputs["report"]))
        t = configure(train(spec=spec, train=s.outputs["train"]), cpu="1", memory="2Gi")
        e = configure(evaluate(spec=spec, model=t.outputs["model"], test=s.outputs["test"]))
        g = configure(gate(spec=spec, metrics=e.outputs["metrics"]), retries=1, cache=False)
        with dsl.If(g.outputs["Output"] == "true"):
            configure(register(spec=spec, model=t.outputs["model"], metrics=e.outputs["metrics"],
                               decision=g.outputs["decision"], dataset=i.outputs["dataset"]),
                      retries=2, cache=False)

    compiler.Compiler().compile(pipeline, package_path=sys.argv[1])
''')


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+system) of one fresh process running ``argv``.

    CPU time is reported too because it is far less sensitive than wall time to other load on
    a shared machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--spec", default=str(REPO / "examples" / "iris" / "mlproject.yaml"))
    args = parser.parse_args()
    mlspec = str(BIN / "mlspec")
    with tempfile.TemporaryDirectory(prefix="mlspec-bench-") as tmp:
        script = Path(tmp) / "hand_written_pipeline.py"
        script.write_text(HAND_WRITTEN)
        commands = {
            "mlspec compile --target kfp": [mlspec, "compile", args.spec, "--target", "kfp",
                                            "-o", f"{tmp}/kfp"],
            "kfp only (hand-written DSL)": [sys.executable, str(script), f"{tmp}/hand.yaml"],
            "kfp only, core DSL (no timeouts)": [sys.executable, str(script), f"{tmp}/core.yaml",
                                                 "--core-only"],
            "mlspec compile (all targets)": [mlspec, "compile", args.spec, "-o", f"{tmp}/all"],
        }
        for argv in commands.values():  # warm the page cache and __pycache__
            timed(argv)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for i in range(args.repeats):
            # Interleave (and alternate the order) so that machine noise hits every command.
            order = list(commands) if i % 2 == 0 else list(reversed(commands))
            for name in order:
                samples[name].append(timed(commands[name]))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.repeats} "
          "repeats, fresh processes")
    print(f"{'command':<34} {'wall median':>11} {'wall min':>9} {'cpu median':>11}")
    wall, cpu = {}, {}
    for name, values in samples.items():
        wall[name] = statistics.median(v[0] for v in values)
        cpu[name] = statistics.median(v[1] for v in values)
        print(f"{name:<34} {wall[name]:>10.3f}s {min(v[0] for v in values):>8.3f}s "
              f"{cpu[name]:>10.3f}s")
    ours, hand = "mlspec compile --target kfp", "kfp only (hand-written DSL)"
    core = "kfp only, core DSL (no timeouts)"
    ratio = wall[ours] / wall[hand]
    print(f"ratio mlspec/kfp-only: wall {ratio:.3f}, cpu {cpu[ours] / cpu[hand]:.3f}  "
          f"(goal <= {GOAL_RATIO}) {'ok' if ratio <= GOAL_RATIO else 'MISSED'}")
    print(f"ratio mlspec/kfp-only core DSL without kfp-kubernetes: wall "
          f"{wall[ours] / wall[core]:.3f}, cpu {cpu[ours] / cpu[core]:.3f}")
    all_s = wall["mlspec compile (all targets)"]
    print(f"all targets: wall {all_s:.3f}s, cpu {cpu['mlspec compile (all targets)']:.3f}s  "
          f"(goal <= {GOAL_ALL_S}s wall) {'ok' if all_s <= GOAL_ALL_S else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
