"""Batch scoring: plan the partitions, score each one (fanned out by the engine), report.

``plan`` pins the model version and lists the input's partitions; every ``score`` task scores
one partition in chunks of ``batch.chunk_rows`` rows; ``report`` adds the partitions' figures
up, judges drift and the contract, publishes the metrics and marks the batch complete.
"""
