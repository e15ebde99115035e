"""Benchmark: `mlspec validate` against check-jsonschema on the same files, side by side.

    .venv/bin/python bench/validate_bench.py [--repeats 7] [--files 500]

Both tools validate 1 spec and N specs (copies of the examples) in one call each; the script
prints the median wall time of several runs and the ratio. check-jsonschema is installed into
its own venv (bench/.venv-check-jsonschema) on first use. mlspec does more work per file: the
positioned YAML reader, the pydantic models, every lint rule, and every profile merged.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "mlproject.schema.json"
CHECK_VENV = REPO / "bench" / ".venv-check-jsonschema"
CHECK_VERSION = "check-jsonschema"  # the latest the registry has; printed below
REFERENCE_IMPORT = 0.15  # seconds for `python -c "import yaml, jsonschema"` in issue 2's figures


def mlspec_exe() -> str:
    exe = Path(sys.executable).parent / "mlspec"
    if not exe.exists():
        sys.exit(f"no mlspec next to {sys.executable}; run with the project's .venv/bin/python")
    return str(exe)


def check_jsonschema_exe() -> str:
    exe = CHECK_VENV / "bin" / "check-jsonschema"
    if not exe.exists():
        print(f"installing check-jsonschema into {CHECK_VENV.relative_to(REPO)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(CHECK_VENV)], check=True)
        subprocess.run([str(CHECK_VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", CHECK_VERSION], check=True)
    return str(exe)


def tool_version(python: Path, package: str) -> str:
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys; "
                          f"print(m.version({package!r}))"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def make_specs(folder: Path, count: int) -> list[str]:
    examples = sorted(REPO.glob("examples/*/mlproject.yaml"))
    paths = []
    for i in range(count):
        target = folder / f"spec-{i:04d}.yaml"
        shutil.copyfile(examples[i % len(examples)], target)
        paths.append(str(target))
    return paths


def median_times(cmd: list[str], repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``repeats`` runs, after a warm-up.

    CPU time is printed too because it hardly depends on what else the machine is doing.
    """
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if result.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()

    mlspec = mlspec_exe()
    check = check_jsonschema_exe()
    with tempfile.TemporaryDirectory(prefix="mlspec-bench-") as tmp:
        specs = make_specs(Path(tmp), args.files)
        # The issue measured this at 0.15 s: it tells how fast this machine is right now.
        calibration = median_times([sys.executable, "-c", "import yaml, jsonschema"],
                                   args.repeats)[0]
        rows = []
        for label, files in (("1 spec", specs[:1]), (f"{args.files} specs", specs)):
            ours = median_times([mlspec, "validate", "-f", "json", *files], args.repeats)
            theirs = median_times([check, "--schemafile", str(SCHEMA), *files], args.repeats)
            rows.append((label, ours, theirs))
    print(f"\nmedians of {args.repeats} runs (mlspec "
          f"{tool_version(Path(sys.executable), 'mlspec')}, check-jsonschema "
          f"{tool_version(CHECK_VENV / 'bin' / 'python', 'check-jsonschema')}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'files':>10}  {'':>5}  {'mlspec validate':>16}  {'check-jsonschema':>17}  "
          f"{'speed-up':>8}")
    print(f"calibration: python -c 'import yaml, jsonschema' takes {calibration:.3f}s here "
          f"(0.15s on the reference machine); mlspec scaled to it: "
          + ", ".join(f"{label} {ours[0] * REFERENCE_IMPORT / calibration:.3f}s"
                      for label, ours, _ in rows))
    for label, ours, theirs in rows:
        for i, kind in enumerate(("wall", "cpu")):
            print(f"{label if i == 0 else '':>10}  {kind:>5}  {ours[i]:>15.3f}s  "
                  f"{theirs[i]:>16.3f}s  {theirs[i] / ours[i]:>7.1f}x")


if __name__ == "__main__":
    main()
