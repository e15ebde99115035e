"""Rollouts: the decisions a rollout plan (``serving/rollout-plan.yaml``) asks for.

``gates.py`` asks Prometheus each gate's PromQL over its HTTP API and judges the answer, failing
closed: a Prometheus that cannot be reached, a query with no data, a value that is not a finite
number or a timeout fails the gate, never passes it.
"""
