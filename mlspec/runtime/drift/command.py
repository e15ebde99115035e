"""``mlspec drift`` and the ``drift`` runtime step: load the inputs, compare, write the report.

The reference is a dataset (csv/parquet), a model folder (its ``reference_profile.json``) or a
``reference_profile.json`` file. With a spec, ``monitoring.drift`` gives the method, threshold
and features, and ``data.features`` the feature types; ``--method``/``--threshold`` override.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mlspec.errors import UsageError
from mlspec.runtime.errors import StepError

FORMATS = ("text", "json", "html")


def load_reference(reference: str) -> tuple[Any, str]:
    """(a DataFrame or a profile dict, a label for reports)."""
    from mlspec.runtime.io import read_dataset, read_json
    from mlspec.runtime.profile import PROFILE_FILE

    path = Path(reference)
    if path.is_dir():
        profile_path = path / PROFILE_FILE
        if not profile_path.is_file():
            raise StepError(f"{reference} is a folder without {PROFILE_FILE} (not a model folder "
                            "written by mlspec train)")
        return _profile(read_json(profile_path, "reference profile"), reference), \
            f"training data of {path.name}"
    if path.suffix.lower() == ".json":
        return _profile(read_json(path, "reference profile"), reference), path.name
    if not path.exists():
        raise StepError(f"reference not found: {reference}")
    return read_dataset(path), path.name


def _profile(data: Any, where: str) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise StepError(f"{where} is not a reference profile (no 'features' object)")
    return data


def _settings(spec: str | None, method: str | None, threshold: float | None):
    """(method, threshold, features, kinds) from the spec and the overrides."""
    features: list[str] | None = None
    kinds: dict[str, str] | None = None
    if spec is not None:
        from mlspec.runtime.spec import load_project

        project = load_project(spec)
        drift = project.monitoring.drift
        method = method or drift.method
        threshold = threshold if threshold is not None else drift.threshold
        if drift.features != "all":
            features = list(drift.features)
        elif project.data.features:
            features = list(project.data.features)
        kinds = {name: "numeric" if f.type in ("float", "int") else "categorical"
                 for name, f in project.data.features.items()}
    return method or "psi", threshold, features, kinds


def compute(reference: str, current: str, spec: str | None = None, method: str | None = None,
            threshold: float | None = None, charts: bool = True):
    """(DriftReport, reference label, current label) for file inputs."""
    from mlspec.runtime.drift.compare import compare
    from mlspec.runtime.io import read_dataset

    method, threshold, features, kinds = _settings(spec, method, threshold)
    ref, ref_label = load_reference(reference)
    if not Path(current).exists():
        raise StepError(f"current data not found: {current}")
    cur = read_dataset(current)
    if isinstance(ref, dict) and features:
        features = [f for f in features if f in ref["features"]]
    report = compare(ref, cur, method, threshold, features, kinds, charts=charts)
    return report, ref_label, Path(current).name


def drift_command(reference: str, current: str, method: str | None = None,
                  threshold: float | None = None, spec: str | None = None,
                  output_format: str = "text", output: str | None = None) -> int:
    """``mlspec drift``: print or write the report. Exit 0 no drift, 1 drift, 2 usage/IO."""
    if output_format not in FORMATS:
        raise UsageError(f"unknown format {output_format!r}; use one of {', '.join(FORMATS)}")
    try:
        report, ref_label, cur_label = compute(reference, current, spec, method, threshold,
                                               charts=output_format == "html")
    except StepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = None
    if output_format == "json":
        text = json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"
    elif output_format == "html":
        from mlspec.runtime.drift.report import render_html

        text = render_html(report, ref_label, cur_label)
    try:
        if text is not None:
            if output:
                Path(output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        else:
            from mlspec.runtime.drift.report import render_text

            if output:
                with open(output, "w", encoding="utf-8") as handle:
                    render_text(report, file=handle)
            else:
                render_text(report)
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 1 if report.drift else 0


def run_drift_step(spec: str | None, reference: str, current: str, out_report: str | None,
                   out_html: str | None = None, method: str | None = None,
                   threshold: float | None = None) -> dict:
    """The ``drift`` runtime step: write the JSON report (and the HTML one); exit 0 either way
    (the report's ``drift`` field carries the verdict)."""
    from mlspec.runtime.io import write_json, write_text

    report, ref_label, cur_label = compute(reference, current, spec, method, threshold,
                                           charts=out_html is not None)
    data = report.to_dict()
    if out_report:
        write_json(data, out_report)
    if out_html:
        from mlspec.runtime.drift.report import render_html

        write_text(render_html(report, ref_label, cur_label), out_html)
    return data
