"""A champion and a candidate in one server process, and the admin endpoint that steers them.

``mlspec serve CHAMPION --candidate CANDIDATE --traffic-percent N`` serves both versions of one
model behind the same URLs: a request for ``/v2/models/NAME/infer`` (or KServe v1's
``:predict``) goes to the candidate for N of every 100 requests, spread evenly (a running
remainder, not a coin: over any 100 consecutive requests exactly N go to the candidate), else to
the champion. ``/v2/models/NAME/versions/V/...`` goes to version V. With ``--mirror`` every
request is answered by the champion and also sent to the candidate, whose answer is dropped:
the shadow strategy's mirroring, so the candidate's metrics measure the same traffic, and the two
answers are compared row by row (``mlspec_shadow_comparisons_total{outcome="agree|disagree"}``
on the candidate's version: the prediction agreement a shadow rollout gates on).

Each version keeps its own metrics (labelled ``version``), feedback window and drift window;
``/metrics`` shows both under one set of HELP/TYPE lines. ``/feedback`` with response ``ids``
goes to the version that gave those answers (ids are per version); with ``instances`` it goes
to the champion, or to ``"version"`` when the body names one.

The admin endpoint is a separate listener (``--admin-port``, bound to 127.0.0.1 unless
``--admin-host`` says otherwise) so that the traffic split is never reachable through the
public port:

* ``GET /admin/traffic`` → ``{"champion": V1, "candidate": V2, "candidate_percent": N,
  "mirror": false}``
* ``PUT /admin/traffic`` with ``{"candidate_percent": N}`` (0–100) and/or ``{"mirror": bool}``
  → the new state. A rollout executor moves traffic through it. ``port`` is the public port.
* ``GET /admin/sample`` → a v2 inference request of plausible rows for the candidate (the
  blue-green rollout's smoke inference, sent to ``/v2/models/NAME/versions/V/infer``).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote, unquote

from mlspec import contract
from mlspec.runtime.serving.httpserver import JSON, TEXT
from mlspec.runtime.serving.jsonio import dumps as _dumps
from mlspec.runtime.serving.jsonio import error_body
from mlspec.runtime.serving.jsonio import loads as _loads
from mlspec.runtime.serving.metrics import render_all

ADMIN_PATH = "/admin/traffic"
SAMPLE_PATH = "/admin/sample"
SMALL_SHARE_BATCH_DELAY_S = 0.002
REGRESSION_AGREEMENT = 0.1  # a regressor's shadow agrees within 10 % of the champion's value


class _Mirrored:
    """One mirrored request's two answers: the champion's goes to the client, the candidate's
    is dropped; when both have arrived (each server may answer after its batch) their
    predictions are compared row by row into the candidate's ``mlspec_shadow_comparisons_total``.
    """

    __slots__ = ("answers", "split")

    def __init__(self, split: TrafficSplit) -> None:
        self.answers: list = [None, None]
        self.split = split

    def arrived(self, index: int, status: int, body: bytes) -> None:
        self.answers[index] = (status, body)
        if self.answers[1 - index] is not None:
            self.split.compare(self.answers[0], self.answers[1])


class _ChampionCopy:
    """The client's request as the champion sees it: its answer goes to the client and to the
    comparison."""

    __slots__ = ("req", "pair", "method", "path", "query", "body", "slot", "started")

    def __init__(self, req: Any, pair: _Mirrored) -> None:
        self.req, self.pair = req, pair
        self.method, self.path, self.query, self.body = req.method, req.path, req.query, req.body
        self.slot, self.started = req.slot, req.started

    def reply(self, status: int, body: bytes, content_type: bytes = JSON) -> None:
        self.req.reply(status, body, content_type)
        self.pair.arrived(0, status, body)


class _Dropped:
    """A mirrored copy of a request: the candidate answers it, only the comparison reads it."""

    __slots__ = ("method", "path", "query", "body", "slot", "started", "pair")

    def __init__(self, req: Any, pair: _Mirrored | None = None) -> None:
        self.method, self.path, self.query, self.body = req.method, req.path, req.query, req.body
        self.started = req.started
        self.slot: list = [None, False]
        self.pair = pair

    def reply(self, status: int, body: bytes, content_type: bytes = b"") -> None:
        self.slot[0] = b""
        if self.pair is not None:
            self.pair.arrived(1, status, body)


def predictions_of(body: bytes) -> list | None:
    """The ``predict`` output of an inference answer (v2 or v1), or None if it has none."""
    try:
        answer = _loads(body)
    except Exception:  # noqa: BLE001 - not an answer that can be compared
        return None
    if not isinstance(answer, dict):
        return None
    if isinstance(answer.get("predictions"), list):
        return answer["predictions"]
    for output in answer.get("outputs") or []:
        if isinstance(output, dict) and output.get("name") == "predict" \
                and isinstance(output.get("data"), list):
            return output["data"]
    return None


def agreeing_rows(champion: list, candidate: list, classifier: bool) -> int:
    """Rows on which the two predictions agree: the same class, or (regression) a value within
    ``REGRESSION_AGREEMENT`` of the champion's, relative to its size (at least 1)."""
    if classifier:
        return sum(str(a) == str(b) for a, b in zip(champion, candidate, strict=False))
    agree = 0
    for a, b in zip(champion, candidate, strict=False):
        try:
            agree += abs(float(a) - float(b)) <= REGRESSION_AGREEMENT * max(1.0, abs(float(a)))
        except (TypeError, ValueError):
            pass
    return agree


class TrafficSplit:
    """Routes each request to the champion's or the candidate's ``server.ModelServer``
    (``Any`` here: the server module builds a split, so this one cannot import it)."""

    def __init__(self, champion: Any, candidate: Any, percent: int = 0,
                 mirror: bool = False) -> None:
        if champion.model.name != candidate.model.name:
            raise ValueError(f"the candidate serves {candidate.model.name!r}, the champion "
                             f"{champion.model.name!r}: a split is between versions of one model")
        if champion.model.version == candidate.model.version:
            raise ValueError(f"champion and candidate are the same version "
                             f"({champion.model.version!r})")
        self.champion, self.candidate = champion, candidate
        self.model = champion.model  # what the server announces
        self.percent = _percent(percent)
        self.mirror = mirror
        self.public_port: int | None = None  # set once the public listener is bound
        self._pace()
        self._remainder = 0
        self.by_version = {champion.model.version: champion, candidate.model.version: candidate}
        name = quote(champion.model.name, safe="")
        # The paths nearly every request takes, for a set lookup before anything else.
        self.split_paths = {f"/v2/models/{name}/infer", f"/v1/models/{name}:predict"}

    # --- the public port ---------------------------------------------------------------------
    def handle(self, req: Any) -> None:
        if req.path in self.split_paths and not self.mirror:
            # The hot path, inline: each server's own handle() catches its errors.
            self._remainder += self.percent
            if self._remainder >= 100:
                self._remainder -= 100
                self.candidate.handle(req)
            else:
                self.champion.handle(req)
            return
        try:
            self._route(req)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
            req.reply(500, error_body(f"internal error: {type(exc).__name__}: {exc}"))

    def _route(self, req: Any) -> None:
        path = req.path
        if path == contract.METRICS_PATH and req.method == "GET":
            req.reply(200, render_all([self.champion.metrics,
                                       self.candidate.metrics]).encode(), TEXT)
        elif path == contract.FEEDBACK_PATH and req.method == "POST":
            self._feedback_target(req).handle(req)
        elif (pinned := self._pinned_version(path)) is not None:
            pinned.handle(req)  # any /v2/models/NAME/versions/V/... goes to version V
        elif self._is_inference(path):
            if self.mirror:
                pair = _Mirrored(self)
                self.champion.handle(_ChampionCopy(req, pair))
                self.candidate.handle(_Dropped(req, pair))
            else:
                self._next().handle(req)
        else:
            self.champion.handle(req)

    @staticmethod
    def _is_inference(path: str) -> bool:
        return (path.startswith("/v2/models/") and path.endswith("/infer")) or (
            path.startswith("/v1/models/") and path.endswith(":predict"))

    def _pinned_version(self, path: str) -> Any | None:
        parts = path.split("/")
        if len(parts) > 5 and parts[1:3] == ["v2", "models"] and parts[4] == "versions":
            return self.by_version.get(unquote(parts[5]))
        return None

    def _next(self) -> Any:
        """The candidate for ``percent`` of every 100 requests, evenly spread."""
        self._remainder += self.percent
        if self._remainder >= 100:
            self._remainder -= 100
            return self.candidate
        return self.champion

    def _feedback_target(self, req: Any) -> Any:
        try:
            body = _loads(req.body)
        except Exception:  # noqa: BLE001 - the champion answers the malformed body with a 400
            return self.champion
        if not isinstance(body, dict):
            return self.champion
        named = body.get("version")
        if isinstance(named, str) and named in self.by_version:
            return self.by_version[named]
        ids = body.get("ids", [body["id"]] if "id" in body else None)
        if isinstance(ids, list) and ids and isinstance(ids[0], str) \
                and ids[0] in self.candidate.recent:
            return self.candidate
        return self.champion

    def compare(self, champion: tuple[int, bytes], candidate: tuple[int, bytes]) -> None:
        """Count a mirrored request's rows as agreeing or not (both answered 200; a failed
        answer is already in the requests counter, by code)."""
        if champion[0] != 200 or candidate[0] != 200:
            return
        ours, theirs = predictions_of(champion[1]), predictions_of(candidate[1])
        if ours is None or theirs is None:
            return
        rows = max(len(ours), len(theirs))
        agree = agreeing_rows(ours, theirs, bool(self.champion.model.classifier))
        counts = self.candidate.metrics.shadow
        counts[contract.AGREE] = counts.get(contract.AGREE, 0) + agree
        counts[contract.DISAGREE] = counts.get(contract.DISAGREE, 0) + rows - agree

    # --- the admin port ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"model": self.champion.model.name, "champion": self.champion.model.version,
                "candidate": self.candidate.model.version,
                "candidate_percent": self.percent, "mirror": self.mirror,
                "port": self.public_port}

    def admin(self, req: Any) -> None:
        """``GET`` / ``PUT`` ``/admin/traffic``, ``GET /admin/sample`` (see the module)."""
        if req.path == SAMPLE_PATH and req.method == "GET":
            from mlspec.runtime.serving.model import sample_request

            req.reply(200, _dumps(sample_request(self.candidate.model)))
        elif req.path != ADMIN_PATH:
            req.reply(404, error_body(f"no route {req.path} (the admin API is {ADMIN_PATH})"))
        elif req.method == "GET":
            req.reply(200, _dumps(self.state()))
        elif req.method in ("PUT", "POST"):
            try:
                self._change(req.body)
            except ValueError as exc:
                req.reply(400, error_body(str(exc)))
                return
            req.reply(200, _dumps(self.state()))
        else:
            req.reply(405, error_body(f"use GET or PUT on {ADMIN_PATH}"))

    def _change(self, raw: bytes) -> None:
        try:
            body = _loads(raw)
        except Exception:  # noqa: BLE001 - any decoding error is the client's
            raise ValueError("the body must be JSON: {\"candidate_percent\": N}") from None
        if not isinstance(body, dict) or not body or set(body) - {"candidate_percent", "mirror"}:
            raise ValueError("give candidate_percent (0-100) and/or mirror (true/false), "
                             "nothing else")
        percent = _percent(body["candidate_percent"]) if "candidate_percent" in body else None
        mirror = body.get("mirror", self.mirror)
        if not isinstance(mirror, bool):
            raise ValueError("mirror must be true or false")
        if percent is not None:
            self.percent, self._remainder = percent, 0
        self.mirror = mirror
        self._pace()

    def _pace(self) -> None:
        """The version with the smaller share gathers its batches for up to 2 ms: one predict
        call for a few requests instead of one per event-loop turn (each call has a fixed cost
        that a 10 % share would otherwise pay almost per request)."""
        small = self.candidate if self.mirror or self.percent <= 50 else self.champion
        for server in (self.champion, self.candidate):
            server.batch_delay_s = SMALL_SHARE_BATCH_DELAY_S if server is small else 0.0


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value != int(value) or not 0 <= value <= 100:
        raise ValueError(f"candidate_percent must be a whole number from 0 to 100, not {value!r}")
    return int(value)
