"""The pipeline steps, one module each, every one a ``run_*`` function that ``runtime/cli.py``
dispatches ``python -m mlspec.runtime STEP`` to."""
