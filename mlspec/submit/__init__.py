"""``mlspec submit``: send the compiled pipeline to a cluster, dispatched on ``--target``.

``kfp`` uploads the IR through the KFP API (``mlspec.submit.kfp``); ``tekton`` applies the
PipelineRun through the Kubernetes API (``mlspec.submit.tekton``). Each backend module is
imported only when its target is chosen, so neither pays for the other's client library.
"""

from __future__ import annotations

import sys

from mlspec.errors import UsageError, did_you_mean
from mlspec.spec.models import PIPELINE_ENGINES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SUBMIT_TARGETS = PIPELINE_ENGINES  # each engine has a submit backend


def submit_command(spec: str, target: str, host: str | None = None, experiment: str | None = None,
                   namespace: str | None = None, apply_definitions: bool = False,
                   profile: str | None = None) -> int:
    """The ``mlspec submit`` command: returns the exit code.

    Raises:
        UsageError: unknown target or profile, or an option the target needs is missing.
    """
    if target not in SUBMIT_TARGETS:
        hint = did_you_mean(target, SUBMIT_TARGETS)
        raise UsageError(f"cannot submit to {target!r}" + (f"; {hint}" if hint else "")
                         + f" (targets: {', '.join(SUBMIT_TARGETS)})")
    if target == "kfp" and not host:
        raise UsageError("--target kfp needs --host URL (the KFP API endpoint, e.g. "
                         "http://localhost:8080)")
    from mlspec.output import load_checked

    loaded, refused = load_checked(spec, profile)
    if refused is not None:  # its diagnostics are printed
        print(f"error: {spec}: nothing submitted", file=sys.stderr)
        return refused
    if target == "kfp":
        from mlspec.submit.kfp import submit_kfp

        assert host  # checked above, before the spec was read
        return submit_kfp(loaded, host=host, experiment=experiment, namespace=namespace)
    from mlspec.submit.tekton import submit_tekton

    return submit_tekton(loaded, namespace=namespace, apply_definitions=apply_definitions)
