"""Online drift: recent inputs in a ring buffer, compared with the training reference profile.

The request path only copies the batch's rows into a fixed-size ring buffer (O(rows)). The
comparison runs when ``/metrics`` is scraped, at most once per ``min_interval`` seconds, through
the runtime's ``drift_from_profile`` (the same statistics ``mlspec drift`` reports).
"""

from __future__ import annotations

import time

import numpy as np

from mlspec.runtime.drift.compare import drift_from_profile
from mlspec.runtime.serving.model import Column


class OnlineDrift:
    """A sliding window of the last ``window`` input rows and its drift against a profile."""

    def __init__(self, profile: dict, columns: tuple[Column, ...], method: str = "psi",
                 window: int = 1000, min_rows: int = 50, min_interval: float = 1.0,
                 features: list[str] | None = None) -> None:
        self.profile = profile
        self.method = method
        self.window = window
        self.min_rows = min_rows
        self.min_interval = min_interval
        profiled = _profiled_features(profile)
        wanted = set(features) if features else None
        self.indices = [i for i, c in enumerate(columns)
                        if (not profiled or c.name in profiled)
                        and (wanted is None or c.name in wanted)]
        self.names = [columns[i].name for i in self.indices]
        numeric = all(columns[i].numeric for i in self.indices)
        self.buffer = np.empty((window, len(self.indices)), dtype=np.float64 if numeric else object)
        self.filled = 0
        self.cursor = 0
        self._cache: dict[str, tuple[str, float]] = {}
        self._cached_at = -1.0e18
        self._dirty = False
        self._warm_up()

    def _warm_up(self) -> None:
        """Run the statistic once at start-up: its first call imports scipy and friends, which
        on the first scrape would stall the event loop (and every waiting request) for ~1 s."""
        if not self.names:
            return
        sample = np.zeros(2, dtype=self.buffer.dtype)
        try:
            drift_from_profile(self.profile, {name: sample for name in self.names}, self.method)
        except Exception:  # noqa: BLE001 - a warm-up only; real errors surface on scrape
            pass

    def add(self, rows: np.ndarray) -> None:
        """Append a batch of rows (N, F) in the model's column order; the oldest fall out."""
        part = rows[:, self.indices] if len(self.indices) != rows.shape[1] else rows
        n = part.shape[0]
        if n >= self.window:
            self.buffer[:] = part[-self.window:]
            self.cursor, self.filled = 0, self.window
        else:
            end = self.cursor + n
            if end <= self.window:
                self.buffer[self.cursor:end] = part
            else:
                first = self.window - self.cursor
                self.buffer[self.cursor:] = part[:first]
                self.buffer[:n - first] = part[first:]
            self.cursor = end % self.window
            self.filled = min(self.window, self.filled + n)
        self._dirty = True

    def values(self) -> dict[str, tuple[str, float]]:
        """Feature -> (method, statistic) over the current window; empty below ``min_rows``."""
        if self.filled < self.min_rows:
            return {}
        now = time.monotonic()
        if self._dirty and now - self._cached_at >= self.min_interval:
            self._cache = self._compute()
            self._cached_at = now
            self._dirty = False
        return self._cache

    def _compute(self) -> dict[str, tuple[str, float]]:
        current = self.buffer[:self.filled]
        columns = {name: current[:, j] for j, name in enumerate(self.names)}
        try:
            return drift_from_profile(self.profile, columns, self.method)
        except Exception:  # noqa: BLE001 - a monitoring side path must never break serving
            return self._cache


def _profiled_features(profile: dict) -> set[str]:
    features = profile.get("features") if isinstance(profile, dict) else None
    if isinstance(features, dict):
        return {str(k) for k in features}
    if isinstance(features, list):
        return {str(f.get("name")) for f in features if isinstance(f, dict)}
    return set()

