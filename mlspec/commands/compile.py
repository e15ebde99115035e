"""``mlspec compile SPEC``: check the spec, render its targets, write them atomically."""

from __future__ import annotations

from pathlib import Path

from mlspec.commands.checked import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    compile_loaded,
    load_checked,
    write_or_report,
)


def compile_command(spec: str, output: str | None, targets: list[str], profile: str | None,
                    strict: bool = False, previous: str | None = None) -> int:
    """The ``mlspec compile`` command: returns the exit code.

    Raises:
        UsageError: unknown profile or target, an unreadable previous spec, or an output folder
            that is not ours.
    """
    loaded, refused = load_checked(spec, profile, strict)
    if refused is not None:
        return refused
    dest = Path(output) if output else Path("build") / loaded.project.metadata.name
    compiled = compile_loaded(loaded, spec, targets, profile, strict, previous)
    if compiled is None:
        return EXIT_INVALID
    if not write_or_report(dest, compiled.files):
        return EXIT_USAGE
    print(f"compiled {compiled.name} -> {dest} ({len(compiled.files)} files; "
          f"targets: {', '.join(compiled.targets)})")
    return EXIT_OK
