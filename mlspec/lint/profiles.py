"""Lint rules for ``profiles``. Each merged profile is also validated in full by
:func:`mlspec.lint.check_file`; the rules here look at the overlays themselves."""

from __future__ import annotations

from collections.abc import Iterator

from mlspec.errors import Severity
from mlspec.lint.base import Context, Finding, rule


@rule("MLS270", "empty-profile", Severity.WARNING)
def empty_profile(ctx: Context) -> Iterator[Finding]:
    """A profile overlays nothing.

    Anti-pattern: ``profiles: {prod: {}}`` — ``--profile prod`` silently compiles the base.

    Best practice: remove the profile, or give it the settings that differ.
    """
    for name, overlay in ctx.project.profiles.items():
        if not overlay:
            yield Finding(("profiles", name), f"profile '{name}' is empty")


@rule("MLS271", "profile-overlays-identity", Severity.WARNING)
def profile_overlays_identity(ctx: Context) -> Iterator[Finding]:
    """A profile overlays apiVersion, kind or profiles.

    Anti-pattern: ``profiles: {dev: {apiVersion: ...}}`` — a profile changes settings of one
    project; it cannot change what the file is, and profiles do not nest.

    Best practice: overlay sections such as ``registry``, ``serving`` or ``namespace``.
    """
    for name, overlay in ctx.project.profiles.items():
        for key in ("apiVersion", "kind", "profiles"):
            if key in overlay:
                yield Finding(("profiles", name, key),
                              f"profile '{name}' overlays '{key}', which profiles cannot change")
