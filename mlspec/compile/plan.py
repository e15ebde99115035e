"""Classify a spec change's risk and pick the rollout strategy (``mlspec plan``, ``auto``).

Every changed spec path is matched against :data:`CHANGE_TABLE` (first match wins) and gets a
change category with its risk, from the MLOps reference design's table:

- serving bug fix, library update, base image update: low
- serving feature enhancement, API change: medium
- minor training data change: low; major data set change, hyper-parameter change: medium
- model type or architecture change: high

Paths that change neither the model nor its API (monitoring, validation policy, triggers,
metadata) are low. The overall risk is the highest; the strategy follows
:data:`STRATEGY_BY_RISK` (high: shadow, medium: A/B, low: canary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOW, MEDIUM, HIGH = "low", "medium", "high"
RISK_ORDER = {LOW: 0, MEDIUM: 1, HIGH: 2}
STRATEGY_BY_RISK = {HIGH: "shadow", MEDIUM: "ab", LOW: "canary"}

# (path pattern, change category, risk). A pattern is a tuple of path segments: "*" matches one
# segment, a trailing "**" any number (including none). First match wins: specific rows first.
CHANGE_TABLE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("model", "task"), "model type", HIGH),
    (("model", "framework"), "model type", HIGH),
    (("model", "estimator"), "model type", HIGH),
    (("model", "architecture", "**"), "architecture", HIGH),
    (("model", "params", "**"), "hyper-parameter", MEDIUM),
    (("model", "training", "**"), "hyper-parameter", MEDIUM),
    (("model", "tuning", "**"), "hyper-parameter", MEDIUM),
    (("model", "resources", "**"), "training resources", LOW),
    (("data", "source", "**"), "major data set change", MEDIUM),
    (("data", "target"), "major data set change", MEDIUM),
    (("data", "features", "*", "**", "*"), "minor training data change", LOW),
    (("data", "features", "**"), "API change", MEDIUM),  # a feature added or removed
    (("data", "checks", "**"), "minor training data change", LOW),
    (("data", "split", "**"), "minor training data change", LOW),
    (("serving", "image"), "base image update", LOW),  # refined to "library update" below
    (("serving", "protocol"), "API change", MEDIUM),
    (("serving", "deployment_mode"), "serving feature enhancement", MEDIUM),
    (("serving", "**"), "serving bug fix", LOW),
    (("registry", "model_name"), "API change", MEDIUM),
    (("metadata", "name"), "API change", MEDIUM),
    (("namespace",), "API change", MEDIUM),
    (("monitoring", "**"), "monitoring change", LOW),
    (("validation", "**"), "validation policy change", LOW),
    (("registry", "**"), "registry change", LOW),
    (("triggers", "**"), "pipeline change", LOW),
    (("targets", "**"), "pipeline change", LOW),
    (("profiles", "**"), "profile change", LOW),
    (("metadata", "**"), "metadata change", LOW),
    (("**",), "other", LOW),
)


@dataclass(frozen=True)
class Change:
    """One changed spec path with its category and risk."""

    path: str
    change: str
    risk: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "change": self.change, "risk": self.risk}


@dataclass(frozen=True)
class Plan:
    """The classified changes, the overall risk and the rollout strategy it calls for."""

    risk: str
    strategy: str
    changes: tuple[Change, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "risk": self.risk, "strategy": self.strategy,
                "changes": [c.to_dict() for c in self.changes]}


# --- matching and diffing ---------------------------------------------------------------------
def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and (head == "*" or head == path[0]) and _matches(rest, path[1:])


def classify(path: tuple[str, ...], old: Any = None, new: Any = None) -> Change:
    """The category and risk of a change at ``path`` (from :data:`CHANGE_TABLE`)."""
    dotted = ".".join(path)
    for pattern, change, risk in CHANGE_TABLE:
        if _matches(pattern, path):
            if path == ("serving", "image") and _same_repository(old, new):
                change = "library update"  # only the tag moved: a new runtime release
            return Change(dotted, change, risk)
    raise AssertionError("the table ends with a catch-all row")


def _same_repository(old: Any, new: Any) -> bool:
    def repo(image: Any) -> str | None:
        if not isinstance(image, str):
            return None
        name = image.split("@", 1)[0]
        slash = name.rfind("/")
        colon = name.rfind(":")
        return name[:colon] if colon > slash else name

    return repo(old) is not None and repo(old) == repo(new)


def diff(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any, Any]]:
    """Leaf-level differences between two plain values: (path, old, new); lists are leaves, a
    key present on one side only is one difference at that key."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                out.append((path + (str(key),), old.get(key), new.get(key)))
            else:
                out.extend(diff(old[key], new[key], path + (str(key),)))
        return out
    return [] if old == new else [(path, old, new)]


def _normalized(project: Any) -> dict:
    """The project as plain data with defaults filled in, so an explicit default is no change."""
    return project.model_dump(mode="json")


def plan(old: Any, new: Any) -> Plan:
    """Classify every change from ``old`` to ``new`` (``Project``s; ``old`` may be None)."""
    if old is None:
        return Plan(LOW, STRATEGY_BY_RISK[LOW], ())
    old_data, new_data = _normalized(old), _normalized(new)
    changes = tuple(classify(p, a, b) for p, a, b in diff(old_data, new_data))
    risk = max((c.risk for c in changes), key=RISK_ORDER.__getitem__, default=LOW)
    return Plan(risk, STRATEGY_BY_RISK[risk], changes)


def choose_strategy(old: Any, new: Any) -> str:
    """The rollout strategy for ``serving.rollout.strategy: auto``: from the change's risk;
    canary when there is no previous spec to compare with."""
    return plan(old, new).strategy
