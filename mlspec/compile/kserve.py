"""KServe's objects for a project: InferenceServices, the rollout strategy's routers, the plan.

The ``serving`` target writes them as files (``mlspec.compile.targets.serving``) and the pipeline
targets embed the same objects as the deploy step's bundle (:func:`deploy_bundle`), so what a
reviewer reads in ``serving/`` is exactly what the pipeline applies. Everything is plain dicts
(no spec value can add a YAML key or a document); container arguments are an argv list.

What is served is always a pinned registry version. The compiled objects are deploy templates:
each InferenceService names ``models:/NAME/unpinned`` and carries its role
(``mlspec.io/model-role``: ``candidate`` = the version the pipeline just registered, ``stable`` =
the version the baseline alias names when the deploy runs); the deploy step, ``mlspec rollout``
and ``mlspec serve --manifest FILE --model-version N`` write the version in
(``mlspec.runtime.rollout.deploy``). An alias that moves later changes nothing that runs.

Per strategy (``serving.rollout.strategy``; ``auto`` is resolved by :func:`mlspec.commands.plan
.choose_strategy`), with ``stable`` = the model at the baseline alias (default ``production``)
and ``candidate`` = the version the gate just let through (registered with ``registry.alias``):

============  ============================================================================
canary        one InferenceService serving the candidate with ``canaryTrafficPercent``
              (serverless mode)
shadow        InferenceService (stable) + ``NAME-shadow`` (candidate) + an Istio VirtualService
              on the stable predictor's host that mirrors ``traffic_percent`` % of requests to
              the candidate
ab            InferenceService (stable) + ``NAME-candidate`` + an InferenceGraph whose Splitter
              sends ``traffic_percent`` % to the candidate
blue-green    ``NAME-blue`` (stable) + ``NAME-green`` (candidate) + a VirtualService whose route
              stays on blue until the rollout switches it to green (blue is kept for rollback)
============  ============================================================================

Each strategy also writes ``rollout-plan.yaml``, a ConfigMap with its plan
(``mlspec.compile.rollout_plan``), which the rollout step carries out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from mlspec import contract, k8s
from mlspec.compile import rollout_plan as plans
from mlspec.compile.graph import runtime_image
from mlspec.spec.models import Project

KSERVE_API = "serving.kserve.io/v1beta1"
GRAPH_API = "serving.kserve.io/v1alpha1"
ISTIO_API = "networking.istio.io/v1"
DEPLOYMENT_MODES = {"serverless": "Serverless", "raw": "RawDeployment"}
DEFAULT_STABLE_ALIAS = "production"
# The deploy template's model version, pinned at deploy time (mlspec.contract.UNPINNED_VERSION),
# and the roles that say which version goes where.
CANDIDATE, STABLE = contract.CANDIDATE_ROLE, contract.STABLE_ROLE
BUNDLE_VERSION = 1
PLAN_FILE = "rollout-plan.yaml"
RAW_CPU_TARGET = 80  # raw mode: the HorizontalPodAutoscaler's CPU utilization target, percent

# Autoscaling per deployment mode: Knative scales on in-flight requests per pod; raw mode's HPA
# cannot see concurrency, so it scales on CPU (lint MLS247 warns about a concurrency target).
SCALING: dict[str, Callable[[Project], dict]] = {
    "serverless": lambda p: {"scaleMetric": "concurrency",
                             "scaleTarget": p.serving.replicas.target_concurrency},
    "raw": lambda p: {"scaleMetric": "cpu", "scaleMetricType": "Utilization",
                      "scaleTarget": RAW_CPU_TARGET},
}

def _labels(project: Project, role: str) -> dict[str, str]:
    return k8s.standard_labels(project.metadata.name, project.metadata.labels, {
        "app.kubernetes.io/component": "model-server", f"{k8s.PREFIX}role": role})


def _meta(project: Project, name: str, role: str, annotations: dict | None = None,
          deployed: bool = True) -> dict:
    """Metadata; ``deployed`` objects carry ``mlspec.dev/deploy: template`` (the deploy pins and
    applies them; ``kustomization.yaml`` leaves them out)."""
    notes = {**(annotations or {}), **({contract.DEPLOY_ANNOTATION: contract.DEPLOY_TEMPLATE}
                                       if deployed else {})}
    meta: dict[str, Any] = {"name": name, "namespace": project.namespace,
                            "labels": _labels(project, role)}
    if notes:
        meta["annotations"] = notes
    return meta


def stable_alias(project: Project) -> str:
    """The registry alias of the model in production (the baseline the gate compares with)."""
    baseline = project.validation.baseline
    return baseline.alias if baseline else DEFAULT_STABLE_ALIAS


def template_uri(project: Project) -> str:
    """The deploy template's model URI: the deploy pins the version (see the module)."""
    return f"models:/{project.model_name}/{contract.UNPINNED_VERSION}"


def _container(project: Project, compares: bool = False) -> dict:
    """The runtime image serving the pinned version on port 8080 (argv, no shell).

    ``compares`` (the shadow): the server holds the stable version too and answers every
    request with it while the candidate answers a mirrored copy, compared row by row
    (``mlspec_shadow_comparisons_total``): Istio drops a mirrored request's answer, so the
    comparison has to happen where both answers exist."""
    drift = project.monitoring.drift
    served = ([f"models:/{project.model_name}/{contract.UNPINNED_STABLE_VERSION}",
               "--candidate", template_uri(project), "--mirror"] if compares
              else [template_uri(project)])
    args = ["serve", *served, "--host", "0.0.0.0",
            "--port", str(contract.SERVER_PORT), "--name", project.model_name,
            "--drift-method", drift.method]
    if drift.features != "all":
        for feature in drift.features:
            args += ["--drift-feature", feature]
    resources = project.serving.resources
    probe = {"httpGet": {"path": "", "port": contract.SERVER_PORT}, "periodSeconds": 10,
             "timeoutSeconds": 2, "failureThreshold": 3}
    secret = project.registry.credentials_secret
    # The registry's credentials as a Secret reference: the server loads its model over HTTP.
    env_from = {"envFrom": [{"secretRef": {"name": secret}}]} if secret else {}
    return {
        "name": "kserve-container",
        "image": runtime_image(project),
        "command": ["python", "-m", "mlspec.runtime"],
        "args": args,
        "env": [
            {"name": "MLFLOW_TRACKING_URI", "value": project.registry.tracking_uri},
            {"name": "HOME", "value": "/tmp"},
            {"name": "TMPDIR", "value": "/tmp"},
        ],
        **env_from,
        "ports": [{"containerPort": contract.SERVER_PORT, "name": "http1", "protocol": "TCP"}],
        "readinessProbe": {**probe, "httpGet": {"path": "/v2/health/ready",
                                                "port": contract.SERVER_PORT},
                           "initialDelaySeconds": 5},
        "livenessProbe": {**probe, "httpGet": {"path": "/v2/health/live",
                                               "port": contract.SERVER_PORT},
                          "initialDelaySeconds": 30},
        "resources": {"requests": {"cpu": resources.cpu, "memory": resources.memory},
                      "limits": {"cpu": resources.cpu, "memory": resources.memory}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            # The runtime image's user (Containerfile), as the pipeline steps run.
            "runAsUser": k8s.RUN_AS,
            "runAsGroup": k8s.RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def inference_service(project: Project, name: str, model_role: str, role: str,
                      canary_percent: int | None = None, compares: bool = False) -> dict:
    """A ``serving.kserve.io/v1beta1`` InferenceService with the runtime as custom predictor;
    ``model_role`` (candidate or stable) says which version the deploy pins into it."""
    replicas = project.serving.replicas
    annotations = {
        "serving.kserve.io/deploymentMode": DEPLOYMENT_MODES[project.serving.deployment_mode],
        "serving.kserve.io/enable-prometheus-scraping": "true",
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(contract.SERVER_PORT),
        "prometheus.io/path": contract.METRICS_PATH,
        contract.MODEL_URI_ANNOTATION: template_uri(project),
        contract.MODEL_ROLE_ANNOTATION: model_role,
        f"{k8s.PREFIX}protocol": project.serving.protocol,
    }
    predictor: dict[str, Any] = {
        "minReplicas": replicas.min,
        "maxReplicas": replicas.max,
        **SCALING[project.serving.deployment_mode](project),
        "containers": [_container(project, compares)],
        "securityContext": {"runAsNonRoot": True, "runAsUser": k8s.RUN_AS,
                            "runAsGroup": k8s.RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return {"apiVersion": KSERVE_API, "kind": "InferenceService",
            "metadata": _meta(project, name, role, annotations),
            "spec": {"predictor": predictor}}


def _host(project: Project, service: str) -> str:
    return f"{service}.{project.namespace}.svc.cluster.local"


def _predictor_host(project: Project, isvc: str) -> str:
    """The cluster-local Service KServe creates for an InferenceService's predictor."""
    return _host(project, f"{isvc}-predictor")


def _virtual_service(project: Project, name: str, role: str, host: str,
                     http: list[dict]) -> dict:
    return {"apiVersion": ISTIO_API, "kind": "VirtualService",
            "metadata": _meta(project, name, role),
            "spec": {"hosts": [host], "gateways": ["mesh"], "http": http}}


def _mesh_service(project: Project, name: str) -> dict:
    """A selector-less ClusterIP Service: it gives the routed host a cluster IP, and the
    VirtualService (the mesh sidecars) decides where its traffic goes."""
    # Not a deploy template: nothing in it depends on a version, so ``kubectl apply -k`` puts it
    # in place once and the deployer's Role needs no rights on Services.
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(project, name, "router", deployed=False),
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80,
                                                     "protocol": "TCP",
                                                     "targetPort": contract.SERVER_PORT}]}}


def _destination(project: Project, isvc: str, weight: int | None = None) -> dict:
    out: dict[str, Any] = {"destination": {"host": _predictor_host(project, isvc),
                                           "port": {"number": 80}}}
    if weight is not None:
        out["weight"] = weight
    return out


# --- strategies -------------------------------------------------------------------------------
Files = list[tuple[str, list[dict]]]
# Every strategy gets the InferenceService names of the render context (stable first), so the
# ServiceMonitor that selects them and the objects written here can never disagree.
Names = tuple[str, ...]


def _plan(project: Project, plan: dict) -> tuple[str, list[dict]]:
    """``rollout-plan.yaml``: the strategy's plan (``mlspec.compile.rollout_plan``), which the
    rollout step carries out; not applied by the deploy (the bundle carries the plan itself)."""
    meta = _meta(project, f"{project.metadata.name}-rollout-plan", "rollout-plan",
                 deployed=False)
    return (PLAN_FILE, [plans.plan_config_map(project, plan, meta)])


def canary(project: Project, names: Names) -> Files:
    """One InferenceService with ``canaryTrafficPercent`` and the gated step plan."""
    (name,) = names
    plan = plans.canary_plan(project, name)
    isvc = inference_service(project, name, CANDIDATE, "primary",
                             canary_percent=plan["steps"][0]["trafficPercent"])
    return [("inferenceservice.yaml", [isvc]), _plan(project, plan)]


def shadow(project: Project, names: Names) -> Files:
    """Stable + shadow InferenceServices and a VirtualService mirroring to the shadow."""
    name, shadow_name = names
    route = {"name": "stable", "route": [_destination(project, name)],
             "mirror": {"host": _predictor_host(project, shadow_name), "port": {"number": 80}},
             "mirrorPercentage": {"value": float(project.serving.rollout.traffic_percent)}}
    return [
        ("inferenceservice.yaml",
         [inference_service(project, name, STABLE, "stable")]),
        ("inferenceservice-shadow.yaml",
         [inference_service(project, shadow_name, CANDIDATE, "shadow", compares=True)]),
        # On the stable predictor's own host: clients keep calling what they called before.
        ("virtualservice.yaml", [_virtual_service(project, f"{name}-shadow", "router",
                                                  _predictor_host(project, name), [route])]),
        _plan(project, plans.shadow_plan(project, name, shadow_name, f"{name}-shadow")),
    ]


def ab(project: Project, names: Names) -> Files:
    """Stable + candidate InferenceServices behind an InferenceGraph Splitter."""
    name, candidate = names
    percent = project.serving.rollout.traffic_percent
    graph = {
        "apiVersion": GRAPH_API, "kind": "InferenceGraph",
        "metadata": _meta(project, f"{name}-ab", "router", {
            "serving.kserve.io/deploymentMode":
                DEPLOYMENT_MODES[project.serving.deployment_mode]}),
        "spec": {"nodes": {"root": {"routerType": "Splitter", "steps": [
            {"name": "a", "serviceName": name, "weight": 100 - percent},
            {"name": "b", "serviceName": candidate, "weight": percent},
        ]}}},
    }
    return [
        ("inferenceservice.yaml",
         [inference_service(project, name, STABLE, "stable")]),
        ("inferenceservice-candidate.yaml",
         [inference_service(project, candidate, CANDIDATE, "candidate")]),
        ("inferencegraph.yaml", [graph]),
        _plan(project, plans.ab_plan(project, name, candidate, f"{name}-ab")),
    ]


def blue_green(project: Project, names: Names) -> Files:
    """Blue (stable) and green (candidate) InferenceServices; the route stays on blue until
    the rollout has seen green ready and answering, then switches (blue stays up at weight 0
    for an instant switch-back)."""
    name = project.metadata.name
    blue, green = names
    route = {"name": "active", "route": [_destination(project, blue, 100),
                                         _destination(project, green, 0)]}
    return [
        ("inferenceservice-blue.yaml",
         [inference_service(project, blue, STABLE, "blue")]),
        ("inferenceservice-green.yaml",
         [inference_service(project, green, CANDIDATE, "green")]),
        ("service.yaml", [_mesh_service(project, name)]),
        ("virtualservice.yaml", [_virtual_service(project, name, "router",
                                                  _host(project, name), [route])]),
        _plan(project, plans.blue_green_plan(project, blue, green, name)),
    ]


STRATEGIES: dict[str, Callable[[Project, Names], Files]] = {
    "canary": canary,
    "shadow": shadow,
    "ab": ab,
    "blue-green": blue_green,
}


def strategy_files(project: Project, strategy: str, names: Names) -> Files:
    """The serving files of ``strategy`` (file name, objects), in the order they are written."""
    return STRATEGIES[strategy](project, names)


def bundle_json(project: Project, strategy: str, names: Names) -> str:
    """:func:`deploy_bundle` as the pipelines carry it: compact JSON, keys sorted, ASCII."""
    return json.dumps(deploy_bundle(project, strategy, names), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)


def deploy_bundle(project: Project, strategy: str, names: Names) -> dict[str, Any]:
    """What the pipeline's deploy and rollout steps receive: the strategy's objects (the same
    ones ``serving/`` holds, still unpinned) and its rollout plan.

    Plain JSON data: the runtime reads it without the compiler (``mlspec.runtime.rollout``).
    """
    objects: list[dict] = []
    plan = None
    for file, docs in strategy_files(project, strategy, names):
        if file == PLAN_FILE:
            plan = yaml.safe_load(docs[0]["data"]["plan.yaml"])
        else:
            objects.extend(d for d in docs if (d["metadata"].get("annotations") or {})
                           .get(contract.DEPLOY_ANNOTATION) == contract.DEPLOY_TEMPLATE)
    return {"version": BUNDLE_VERSION, "model": project.model_name,
            "namespace": project.namespace, "strategy": strategy,
            "stableAlias": stable_alias(project),
            "prometheus": project.serving.rollout.prometheus_url,
            "objects": objects, "plan": plan}
