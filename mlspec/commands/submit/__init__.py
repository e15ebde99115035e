"""``mlspec submit``: send the compiled pipeline to a cluster, dispatched on ``--target``.

The backend of each engine is the ``submit`` module of its record in :mod:`mlspec.targets`
(``kfp``: the KFP API; ``tekton``: the Kubernetes API). A backend module has
``check_options(options)`` (before the spec is read) and ``submit_spec(loaded, options)``; it is
imported only when its target is chosen, so neither pays for the other's client library. A
target without a backend is refused: nothing is ever sent to another engine's backend.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from mlspec.errors import UsageError, did_you_mean
from mlspec.targets import SUBMIT_TARGETS, target

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class SubmitOptions:
    """The command line's submit options; each backend reads the ones it understands."""

    host: str | None = None
    experiment: str | None = None
    namespace: str | None = None
    apply_definitions: bool = False


def submit_command(spec: str, target_name: str, host: str | None = None,
                   experiment: str | None = None, namespace: str | None = None,
                   apply_definitions: bool = False, profile: str | None = None) -> int:
    """The ``mlspec submit`` command: returns the exit code.

    Raises:
        UsageError: unknown target or profile, or an option the target needs is missing.
    """
    backend = _backend(target_name)
    options = SubmitOptions(host, experiment, namespace, apply_definitions)
    backend.check_options(options)
    from mlspec.commands.checked import load_checked

    loaded, refused = load_checked(spec, profile)
    if refused is not None:  # its diagnostics are printed
        print(f"error: {spec}: nothing submitted", file=sys.stderr)
        return refused
    if not registry_survives_a_cluster(loaded.project, spec):
        return EXIT_FAILED
    return int(backend.submit_spec(loaded, options))


def registry_survives_a_cluster(project, spec: str) -> bool:
    """False (and the fix printed) when the tracking URI is a file: on a cluster every pod would
    see its own copy, and the run's registration would vanish with its volume (MLS232)."""
    from mlspec.lint.registry import TRACKING_SERVER_FIX, file_based

    uri = project.registry.tracking_uri
    if not file_based(uri):
        return True
    print(f"error: {spec}: registry.tracking_uri '{uri}' is a file, which does not survive a "
          f"cluster; nothing submitted\n  fix: {TRACKING_SERVER_FIX}", file=sys.stderr)
    return False


def _backend(name: str):
    if name not in SUBMIT_TARGETS:
        hint = did_you_mean(name, SUBMIT_TARGETS)
        raise UsageError(f"cannot submit to {name!r}" + (f"; {hint}" if hint else "")
                         + f" (targets: {', '.join(SUBMIT_TARGETS)})")
    module = target(name).submit
    assert module  # SUBMIT_TARGETS holds only records with a backend
    return importlib.import_module(module)
