"""The model server: Open Inference Protocol v2, KServe v1, /metrics, /feedback, online drift.

``mlspec serve MODEL_URI`` and the container entry point (``python -m mlspec.runtime serve``,
through :func:`main`) both end up in :func:`run_server`. Concurrent inference requests that
arrive in the same event-loop turn are answered by one ``predict`` call (adaptive
micro-batching: no added wait, the batch is whatever is already in the socket buffers), and the
request path only does O(1) metric updates and an O(rows) copy into the drift window.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote

import numpy as np

from mlspec import contract
from mlspec.runtime.serving.codec import BadRequest, decode_v1, decode_v2, encode_outputs
from mlspec.runtime.serving.feedback import Feedback
from mlspec.runtime.serving.httpserver import TEXT
from mlspec.runtime.serving.jsonio import JSON_ERRORS as _JSON_ERRORS
from mlspec.runtime.serving.jsonio import dumps as _dumps
from mlspec.runtime.serving.jsonio import error_body
from mlspec.runtime.serving.jsonio import loads as _loads
from mlspec.runtime.serving.metrics import Metrics
from mlspec.runtime.serving.model import to_frame

DEFAULT_MAX_BODY = 8 * 1024 * 1024
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

class Job:
    """One decoded inference request waiting for the next batch."""

    __slots__ = ("request", "rows", "request_id", "proba", "kind")

    def __init__(self, request: Any, rows: Any, request_id: str | None, proba: bool,
                 kind: str) -> None:
        self.request = request
        self.rows = rows
        self.request_id = request_id
        self.proba = proba
        self.kind = kind


class ModelServer:
    """Routes requests, batches predictions, keeps metrics, feedback and the drift window."""

    def __init__(self, model: Any, *, drift_method: str = "psi", drift_window: int = 1000,
                 drift_features: list[str] | None = None, feedback_window: int = 10000,
                 remember: int = 10000, max_batch_rows: int = 8192) -> None:
        self.model = model
        self.metrics = Metrics(model.name, model.version)
        self.feedback = Feedback(model.classifier, feedback_window)
        self.metrics.feedback_loss = self.feedback.loss
        self.max_batch_rows = max_batch_rows
        # 0: a batch is what arrived in this loop turn. A server that gets a small share of the
        # requests (a canary's candidate) waits this long to gather a batch instead.
        self.batch_delay_s = 0.0
        self.queue: list[Job] = []
        self.scheduled = False
        self.ids = itertools.count(1)
        self.id_prefix = f"{os.getpid():x}-{int(time.time()):x}"
        # Recent predictions by response id, for feedback that names ids (bounded, O(1)).
        self.recent: OrderedDict[str, list] = OrderedDict()
        self.remember = remember
        self.drift = None
        if model.profile:
            from mlspec.runtime.serving.online_drift import OnlineDrift

            self.drift = OnlineDrift(model.profile, model.columns, method=drift_method,
                                     window=drift_window, features=drift_features)
            self.metrics.drift_source = self.drift.values
        self.metadata = _dumps(self._metadata())
        server_metadata = _dumps({"name": "mlspec", "version": _mlspec_version(),
                                  "extensions": []})
        self.exact = {
            ("GET", "/v2/health/live"): lambda r: r.reply(200, b'{"live":true}'),
            ("GET", "/v2/health/ready"): lambda r: r.reply(200, b'{"ready":true}'),
            # The protocol's OpenAPI definition names /v2/; clients also call /v2.
            ("GET", "/v2"): lambda r: r.reply(200, server_metadata),
            ("GET", "/v2/"): lambda r: r.reply(200, server_metadata),
            ("GET", contract.METRICS_PATH): self._metrics,
            ("POST", contract.FEEDBACK_PATH): self._feedback,
            ("GET", "/v1/models"): lambda r: r.reply(200, _dumps({"models": [model.name]})),
        }

    # --- routing -----------------------------------------------------------------------------
    def handle(self, req: Any) -> None:
        """Answer one request (now, or after the current batch for inference)."""
        try:
            self._route(req)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            req.reply(500, error_body(f"internal error: {type(exc).__name__}: {exc}"))

    def _route(self, req: Any) -> None:
        route = self.exact.get((req.method, req.path))
        if route is not None:
            route(req)
            return
        path = req.path
        if path.startswith("/v2/models/"):
            self._v2(req, path[len("/v2/models/"):].split("/"))
        elif path.startswith("/v1/models/"):
            self._v1(req, path[len("/v1/models/"):])
        elif any(path == p for _, p in self.exact):
            req.reply(405, error_body(f"method {req.method} is not allowed on {path}"))
        else:
            req.reply(404, error_body(f"no route {path}"))

    def _v2(self, req: Any, parts: list[str]) -> None:
        if unquote(parts[0]) != self.model.name:
            req.reply(404, error_body(f"model {unquote(parts[0])!r} is not served here "
                                      f"(this server serves {self.model.name!r})"))
            return
        rest = parts[1:]
        if rest[:1] == ["versions"]:
            if len(rest) < 2 or unquote(rest[1]) != self.model.version:
                req.reply(404, error_body(f"version {unquote(rest[1]) if len(rest) > 1 else ''!r}"
                                          f" is not served (serving {self.model.version!r})"))
                return
            rest = rest[2:]
        action = rest[0] if rest else ""
        if len(rest) > 1 or action not in ("", "ready", "infer"):
            req.reply(404, error_body(f"no route {req.path}"))
        elif action == "infer":
            if self._post_only(req):
                self._infer(req, "v2")
        elif req.method != "GET":
            req.reply(405, error_body(f"method {req.method} is not allowed on {req.path}"))
        elif action == "ready":
            req.reply(200, _dumps({"name": self.model.name, "ready": True}))
        else:
            req.reply(200, self.metadata)

    def _v1(self, req: Any, rest: str) -> None:
        verb = "predict" if rest.endswith(":predict") else ""
        name = rest[:-len(":predict")] if verb else rest
        if unquote(name) != self.model.name:
            req.reply(404, error_body(f"model {unquote(name)!r} is not served here "
                                      f"(this server serves {self.model.name!r})"))
        elif verb == "predict":
            if self._post_only(req):
                self._infer(req, "v1")
        elif req.method == "GET":
            req.reply(200, _dumps({"name": self.model.name, "ready": True}))
        else:
            req.reply(405, error_body(f"method {req.method} is not allowed on {req.path}"))

    @staticmethod
    def _post_only(req: Any) -> bool:
        if req.method == "POST":
            return True
        req.reply(405, error_body(f"use POST for {req.path}"))
        return False

    # --- inference ---------------------------------------------------------------------------
    def _infer(self, req: Any, kind: str) -> None:
        try:
            body = _loads(req.body)
        except _JSON_ERRORS as exc:
            self._fail(req, 400, f"malformed JSON: {exc}")
            return
        try:
            if kind == "v2":
                rows, request_id, proba = decode_v2(self.model, body)
            else:
                rows, request_id, proba = decode_v1(self.model, body), None, False
        except BadRequest as exc:
            self._fail(req, exc.status, exc.message)
            return
        if proba and not self.model.extra.get("predict_proba"):
            self._fail(req, 400, "this model has no 'predict_proba' output")
            return
        if rows.shape[0] > self.max_batch_rows:
            self._fail(req, 413, f"{rows.shape[0]} rows in one request; the limit is "
                                 f"{self.max_batch_rows}")
            return
        self.queue.append(Job(req, rows, request_id, proba, kind))
        if not self.scheduled:
            self.scheduled = True
            if self.batch_delay_s:
                asyncio.get_running_loop().call_later(self.batch_delay_s, self._run_batch)
            else:
                asyncio.get_running_loop().call_soon(self._run_batch)

    def _fail(self, req: Any, status: int, message: str) -> None:
        req.reply(status, error_body(message))
        self.metrics.observe(status, time.perf_counter() - req.started)

    def _run_batch(self) -> None:
        jobs, self.queue, self.scheduled = self.queue, [], False
        try:
            self._batch(jobs)
        except Exception as exc:  # noqa: BLE001 - a bug: answer, never leave a client hanging
            for job in jobs:
                if job.request.slot[0] is None:
                    job.request.reply(500, error_body(f"internal error: {type(exc).__name__}"))

    def _batch(self, jobs: list[Job]) -> None:
        rows = jobs[0].rows if len(jobs) == 1 else np.concatenate([j.rows for j in jobs])
        try:
            predictions = self._predict(rows)
        except Exception:  # noqa: BLE001 - find the request that broke the batch
            for job in jobs:
                self._run_one(job)
            return
        if self.drift is not None:
            self.drift.add(rows)
        self._count(predictions)
        start = 0
        for job in jobs:
            end = start + job.rows.shape[0]
            self._answer(job, predictions[start:end])
            start = end

    def _run_one(self, job: Job) -> None:
        try:
            predictions = self._predict(job.rows)
        except Exception as exc:  # noqa: BLE001 - the model rejects this input: a client error
            self._fail(job.request, 422, f"the model cannot predict this input: "
                                         f"{type(exc).__name__}: {str(exc)[:300]}")
            return
        if self.drift is not None:
            self.drift.add(job.rows)
        self._count(predictions)
        self._answer(job, predictions)

    def _predict(self, rows: Any) -> Any:
        model = self.model
        x = rows if model.takes_ndarray else to_frame(model, rows)
        return np.asarray(model.predict(x))

    def _count(self, predictions: Any) -> None:
        if self.model.classifier:
            self.metrics.count_predictions(predictions.tolist())
        else:
            self.metrics.count_values(len(predictions))

    def _answer(self, job: Job, predictions: Any) -> None:
        model = self.model
        request_id = job.request_id or f"{self.id_prefix}-{next(self.ids)}"
        if self.remember:
            self.recent[request_id] = predictions.tolist()
            if len(self.recent) > self.remember:
                self.recent.popitem(last=False)
        if job.kind == "v1":
            body = _dumps({"predictions": predictions.tolist(), "id": request_id})
        else:
            outputs = [encode_outputs(predictions, model.output_datatype)]
            if job.proba:
                outputs.append(self._proba(job.rows))
            body = _dumps({"model_name": model.name, "model_version": model.version,
                           "id": request_id, "outputs": outputs})
        job.request.reply(200, body)
        self.metrics.observe(200, time.perf_counter() - job.request.started)

    def _proba(self, rows: Any) -> dict:
        x = rows if self.model.takes_ndarray else to_frame(self.model, rows)
        return encode_outputs(np.asarray(self.model.extra["predict_proba"](x), dtype=np.float64),
                              "FP64", "predict_proba")

    # --- metrics and feedback ----------------------------------------------------------------
    def _metrics(self, req: Any) -> None:
        req.reply(200, self.metrics.render().encode(), TEXT)

    def _feedback(self, req: Any) -> None:
        try:
            body = _loads(req.body)
        except _JSON_ERRORS as exc:
            req.reply(400, error_body(f"malformed JSON: {exc}"))
            return
        try:
            predictions, labels = self._feedback_pairs(body)
            accepted = self.feedback.add(predictions, labels)
        except BadRequest as exc:
            req.reply(exc.status, error_body(exc.message))
            return
        self.metrics.performance.update(self.feedback.scores())
        req.reply(200, _dumps({"accepted": accepted, "window": len(self.feedback),
                               "performance": self.metrics.performance}))

    def _feedback_pairs(self, body: Any) -> tuple[list, list]:
        """Predictions and ground-truth labels from a feedback body (see docs/serving.md)."""
        if not isinstance(body, dict):
            raise BadRequest("feedback must be a JSON object with 'labels' and 'ids' or "
                             "'instances'")
        labels = body.get("labels")
        if not isinstance(labels, list) or not labels:
            raise BadRequest("'labels' must be a non-empty list of ground-truth values")
        ids = body.get("ids", [body["id"]] if "id" in body else None)
        if ids is not None:
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise BadRequest("'ids' must be a list of response ids (strings)")
            predictions: list = []
            for request_id in ids:
                known = self.recent.get(request_id)
                if known is None:
                    raise BadRequest(f"unknown or expired response id {request_id!r}", 422)
                predictions.extend(known)
        elif "instances" in body:
            rows = decode_v1(self.model, {"instances": body["instances"]})
            predictions = self._predict(rows).tolist()
        else:
            raise BadRequest("feedback needs 'ids' (or 'id') of earlier responses, or 'instances'")
        if len(predictions) != len(labels):
            raise BadRequest(f"{len(labels)} labels for {len(predictions)} predictions")
        return predictions, labels

    def _metadata(self) -> dict:
        model = self.model
        inputs = [{"name": c.name, "datatype": c.datatype, "shape": [-1]} for c in model.columns]
        outputs = [{"name": "predict", "datatype": model.output_datatype, "shape": [-1]}]
        if model.extra.get("predict_proba"):
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
        return {"name": model.name, "versions": [model.version], "platform": model.platform,
                "inputs": inputs, "outputs": outputs,
                "parameters": {"content_type": "np", "row_input": {
                    "name": "input-0", "datatype": "FP64" if model.all_numeric else "BYTES",
                    "shape": [-1, len(model.columns)]}}}


def _mlspec_version() -> str:
    from mlspec import __version__

    return __version__


# --- running ---------------------------------------------------------------------------------
def run_server(server: Any, host: str, port: int, max_body: int = DEFAULT_MAX_BODY,
               announce: bool = True, admin: tuple[str, int] | None = None) -> int:
    """Serve ``server`` (a :class:`ModelServer`, or a ``split.TrafficSplit``) until
    SIGINT/SIGTERM; ``admin`` (host, port) also serves the split's admin API there. Returns
    the exit code."""
    from mlspec.runtime.serving.httpserver import serve_forever

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the runtime extra
        uvloop = None  # type: ignore[assignment]

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(bound: int) -> None:
            if hasattr(server, "public_port"):
                server.public_port = bound
            if announce:
                print(f"serving {describe(server)} on http://{host}:{bound}", flush=True)

        def admin_ready(bound: int) -> None:
            if announce and admin:
                print(f"admin API on http://{admin[0]}:{bound}/admin/traffic", flush=True)

        listeners = [serve_forever(server.handle, host, port, max_body, time.perf_counter,
                                   error_body, ready, stop)]
        if admin is not None:
            listeners.append(serve_forever(server.admin, admin[0], admin[1], 64 * 1024,
                                           time.perf_counter, error_body, admin_ready, stop))
        await asyncio.gather(*listeners)

    try:
        if uvloop is not None:
            uvloop.run(main())
        else:
            asyncio.run(main())
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def describe(server: Any) -> str:
    """What a server serves, for its start-up line."""
    if hasattr(server, "candidate"):
        share = "mirrored" if server.mirror else f"{server.percent}%"
        return (f"{server.model.name} version {server.champion.model.version} (champion) and "
                f"{server.candidate.model.version} (candidate, {share})")
    return f"{server.model.name} version {server.model.version}"


def serve_command(model_uri: str, host: str = "127.0.0.1", port: int = contract.SERVER_PORT,
                  name: str | None = None, tracking_uri: str | None = None,
                  drift_method: str = "psi", drift_window: int = 1000,
                  drift_features: list[str] | None = None, feedback_window: int = 10000,
                  max_body: int = DEFAULT_MAX_BODY, candidate_uri: str | None = None,
                  traffic_percent: int = 0, mirror: bool = False,
                  admin_host: str = "127.0.0.1", admin_port: int | None = None) -> int:
    """Load a model and serve it: the body of ``mlspec serve``.

    Args:
        model_uri: A model folder, ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/``.
        host: Address to listen on.
        port: Port to listen on (0: any free port; the chosen one is printed).
        name: The model's name in URLs; default: the registered name or the folder name.
        tracking_uri: MLflow tracking/registry URI (default: ``MLFLOW_TRACKING_URI``).
        drift_method: Online drift statistic (psi, ks, chi2, js, wasserstein).
        drift_window: Number of recent input rows the drift is computed over.
        drift_features: Only these features' drift (default: every profiled feature).
        feedback_window: Number of recent labelled predictions performance is computed over.
        max_body: Largest accepted request body, bytes.
        candidate_uri: Also serve this version of the model as the candidate (see split.py).
        traffic_percent: The candidate's share of inference requests, 0-100.
        mirror: Send every request to the candidate as well, dropping its answer (shadow).
        admin_host: Where the admin API listens (with a candidate only).
        admin_port: The admin API's port (default: the serving port + 1; 0: any free port).

    Returns:
        0 after a clean shutdown, 1 when it cannot listen, 2 when a model cannot be loaded or
        the options do not fit together.
    """
    from mlspec.runtime.serving.model import ModelLoadError, load_model

    if candidate_uri is None and (traffic_percent or mirror or admin_port is not None):
        print("error: --traffic-percent, --mirror and --admin-port go with --candidate",
              file=sys.stderr)
        return EXIT_USAGE
    options: dict[str, Any] = {"drift_method": drift_method, "drift_window": drift_window,
                               "drift_features": drift_features,
                               "feedback_window": feedback_window}
    try:
        model = load_model(model_uri, name=name, tracking_uri=tracking_uri)
        server: Any = ModelServer(model, **options)
        admin = None
        if candidate_uri is not None:
            from mlspec.runtime.serving.split import TrafficSplit

            candidate = ModelServer(load_model(candidate_uri, name=model.name,
                                               tracking_uri=tracking_uri), **options)
            server = TrafficSplit(server, candidate, traffic_percent, mirror)
            admin = (admin_host, port + 1 if admin_port is None and port else admin_port or 0)
    except (ModelLoadError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_server(server, host, port, max_body, admin=admin)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlspec.runtime serve",
                                description="Serve an MLflow model (Open Inference Protocol v2).")
    p.add_argument("model_uri", help="Model folder, models:/NAME@ALIAS, models:/NAME/V or runs:/")
    p.add_argument("--host", default=os.environ.get("MLSPEC_HOST", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", contract.SERVER_PORT)))
    p.add_argument("--name", default=None, help="Model name in the API")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    p.add_argument("--drift-method", default="psi",
                   choices=["psi", "ks", "chi2", "js", "wasserstein"])
    p.add_argument("--drift-window", type=int, default=1000, help="Rows in the drift window")
    p.add_argument("--drift-feature", action="append", dest="drift_features", default=None,
                   help="Only this feature's drift (repeatable)")
    p.add_argument("--feedback-window", type=int, default=10000)
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="Bytes")
    p.add_argument("--candidate", default=None, help="Also serve this model version as the "
                   "candidate of a rollout")
    p.add_argument("--traffic-percent", type=int, default=0,
                   help="The candidate's share of requests (0-100)")
    p.add_argument("--mirror", action="store_true", help="Mirror every request to the candidate")
    p.add_argument("--admin-host", default="127.0.0.1", help="Where the admin API listens")
    p.add_argument("--admin-port", type=int, default=None,
                   help="The admin API's port (default: --port + 1)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Container entry point: ``python -m mlspec.runtime serve MODEL_URI [options]``.

    Accepts the arguments with or without the leading ``serve``.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["serve"]:
        args_list = args_list[1:]
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.drift_window < 1 or args.feedback_window < 1 or args.max_body < 1:
        print("error: windows and --max-body must be positive", file=sys.stderr)
        return EXIT_USAGE
    return serve_command(args.model_uri, host=args.host, port=args.port, name=args.name,
                         tracking_uri=args.tracking_uri, drift_method=args.drift_method,
                         drift_window=args.drift_window, drift_features=args.drift_features,
                         feedback_window=args.feedback_window, max_body=args.max_body,
                         candidate_uri=args.candidate, traffic_percent=args.traffic_percent,
                         mirror=args.mirror, admin_host=args.admin_host,
                         admin_port=args.admin_port)


if __name__ == "__main__":
    sys.exit(main())
