"""The runtime every generated container runs: ``python -m mlspec.runtime STEP``.

One module per step (ingest, validate_data, split, train, evaluate, gate, register, drift); each
exposes a plain ``run_*`` function and exchanges files: parquet datasets, MLflow model folders
and JSON reports. Nothing here imports the compiler side of mlspec, and heavy libraries
(pandas, scikit-learn, MLflow, torch, scipy) are imported inside functions.
"""
