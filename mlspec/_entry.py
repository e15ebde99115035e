"""The ``mlspec`` console script: a fast path for ``mlspec validate``, then the typer CLI.

``validate`` runs on every push in users' CI and as a pre-commit hook, where start-up is most of
its time. Importing typer and building its commands costs about a third of a single-file run, so
plain ``validate`` arguments are handled by :func:`mlspec.commands.validate.fast_validate`
without it; everything else (other commands, ``--help``, mistakes) goes to
:mod:`mlspec.commands.app` unchanged.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1 and sys.argv[1] == "validate":
        from mlspec.commands.validate import fast_validate

        code = fast_validate(sys.argv[2:])
        if code is not None:
            sys.stdout.flush()
            raise SystemExit(code)
    from mlspec.commands.app import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
