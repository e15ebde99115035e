"""What several targets must agree on, computed once before any renders: the render context.

Serving writes the InferenceServices of the rollout strategy; monitoring's ServiceMonitor must
select exactly those, and its Alertmanager route must POST to the engine that retrains. Instead
of one renderer calling into another (or reading a previous spec from the environment), compile
builds a :class:`RenderContext` from the project, the previous spec and the target registry, and
hands the same one to every ``render(project, graph, ctx)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlspec import contract
from mlspec.compile.graph import (
    DEPLOY_BUNDLE,
    TRAIN_BUNDLE,
    TRAIN_TIMEOUT_S,
    distributed_training,
    runtime_image,
)
from mlspec.compile.kserve import bundle_json
from mlspec.compile.plan import choose_strategy
from mlspec.compile.trainjob import trainjob_json
from mlspec.spec.models import Project
from mlspec.targets import TARGETS

# Per rollout strategy, the InferenceServices serving writes, as name suffixes of
# ``metadata.name``: the stable (champion) one first, then the candidate, where there are two.
INFERENCE_SERVICE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "canary": ("",),
    "shadow": ("", "-shadow"),
    "ab": ("", "-candidate"),
    "blue-green": ("-blue", "-green"),
}


@dataclass(frozen=True)
class RenderContext:
    """Facts every renderer reads the same way.

    Attributes:
        strategy: the rollout strategy, ``auto`` resolved against the previous spec.
        inference_services: the InferenceService names serving writes (stable first).
        webhooks: engine name -> the in-cluster URL where a POST starts its pipeline.
        retrain_webhook_url: where Alertmanager sends retraining alerts: the first compiled
            engine's webhook, else the ``mlspec trigger serve`` Service.
        deploy_bundle: with ``serving.deploy: auto``, what the pipeline's deploy and rollout
            steps receive (``mlspec.compile.kserve.deploy_bundle`` as compact JSON, keys
            sorted), so the pipelines apply exactly the objects ``serving/`` shows; else None.
        train_bundle: with a distributed torch model, the TrainJob the train step submits
            (``mlspec.compile.trainjob``, compact JSON), the object ``training/`` shows; else
            None.
    """

    strategy: str
    inference_services: tuple[str, ...]
    webhooks: tuple[tuple[str, str], ...]
    retrain_webhook_url: str
    deploy_bundle: str | None = None
    train_bundle: str | None = None

    def bundle(self, name: str) -> str | None:
        """The bundle a step names (``Step.bundle``): "deploy" or "train"."""
        return {DEPLOY_BUNDLE: self.deploy_bundle, TRAIN_BUNDLE: self.train_bundle}[name]

    def webhook(self, engine: str) -> str:
        """The webhook URL of ``engine`` (one with ``alert_webhook`` in the registry)."""
        return dict(self.webhooks)[engine]


def resolve_strategy(project: Project, previous: Project | None) -> str:
    """``serving.rollout.strategy``; ``auto`` is decided from the change against ``previous``
    (canary when there is no previous spec to compare with)."""
    strategy = project.serving.rollout.strategy
    return choose_strategy(previous, project) if strategy == "auto" else strategy


def trigger_service_url(project: Project) -> str:
    """The ``mlspec trigger serve`` Service: a Deployment behind a Service named
    ``<name>-trigger`` whose port ``TRIGGER_SERVICE_PORT`` maps to the trigger's ``--port``."""
    return (f"http://{project.metadata.name}-trigger.{project.namespace}.svc.cluster.local:"
            f"{contract.TRIGGER_SERVICE_PORT}/alerts")


def build_context(project: Project, previous: Project | None = None) -> RenderContext:
    """The render context of a validated project (``previous``: the spec now in production)."""
    strategy = resolve_strategy(project, previous)
    name = project.metadata.name
    webhooks = tuple(
        (t.name, t.alert_webhook.format(name=name, namespace=project.namespace))
        for t in TARGETS if t.alert_webhook)
    retrain = next((url for engine, url in webhooks if engine in project.targets),
                   trigger_service_url(project))
    services = tuple(name + s for s in INFERENCE_SERVICE_SUFFIXES[strategy])
    bundle = bundle_json(project, strategy, services) if project.serving.deploy == "auto" else None
    return RenderContext(
        strategy=strategy,
        inference_services=services,
        webhooks=webhooks,
        retrain_webhook_url=retrain,
        deploy_bundle=bundle,
        train_bundle=trainjob_json(project, runtime_image(project), TRAIN_TIMEOUT_S)
        if distributed_training(project) else None,
    )
