"""The syntax of values that Kubernetes and Tekton carry as they are: label keys and values,
container image references, one-line text; and the labels every generated object carries.

Both ``mlspec validate`` (lint rules MLS280-MLS282) and the targets that write these values
(Tekton's MLS801/802, KFP's MLS701, checked again at compile) use these functions, so a spec that
validates also compiles. Standard library only: validation must stay fast.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

MANAGED_BY = "mlspec"
PREFIX = "mlspec.dev/"  # mlspec's own label and annotation keys
# The UID and GID every generated container runs as; the runtime image's USER (Containerfile)
# is the same number, so files the image holds and files the pod writes have one owner.
RUN_AS = 65532

# The environment variables a credentials Secret may hold, by what it opens. Kubernetes passes a
# Secret's keys whole (``envFrom``); KFP can only map named keys, so it maps these (optional).
REGISTRY_SECRET_KEYS = (
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    # the artifact store, when the tracking server does not proxy artifacts
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MLFLOW_S3_ENDPOINT_URL",
)
DATA_SECRET_KEYS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
)

# Kubernetes label names and values (k8s.io/apimachinery validation: 63 characters,
# alphanumerics, '-', '_', '.', starting and ending with an alphanumeric).
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# A container image reference (the distribution/reference grammar, tag and digest optional).
_IMAGE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$")
# Unicode categories that end or break a line, or are control characters.
_LINE_BREAKING = ("Cc", "Zl", "Zp")

LABEL_KEY_HINT = "use [prefix/]name: alphanumerics, '-', '_', '.', at most 63"
LABEL_VALUE_HINT = ("at most 63 characters: alphanumerics, '-', '_', '.', starting and ending "
                    "with an alphanumeric")
IMAGE_HINT = "e.g. ghcr.io/org/mlspec-runtime:0.1.0"


def valid_label_key(key: str) -> bool:
    """``[prefix/]name``: a DNS subdomain prefix (at most 253) and a label name."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_LABEL_NAME.match(name))


def valid_label_value(value: str) -> bool:
    return value == "" or bool(_LABEL_NAME.match(value))


def label_problems(pairs: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(key, message, hint) for each pair that is not a valid Kubernetes label."""
    problems = []
    for key, value in pairs.items():
        if not valid_label_key(key):
            problems.append((key, f"{key!r} is not a valid Kubernetes label key",
                             LABEL_KEY_HINT))
        elif not valid_label_value(value):
            problems.append((key, f"{value!r} is not a valid Kubernetes label value",
                             LABEL_VALUE_HINT))
    return problems


def spec_label_problems(labels: Mapping[str, str], resources: Any
                        ) -> list[tuple[tuple[str | int, ...], str, str]]:
    """(spec path, message, hint) for each label the spec sets that Kubernetes would reject:
    ``metadata.labels``, ``model.resources.node_selector`` and each toleration's key and value
    (``resources`` is the spec's ``model.resources``). Lint MLS280 and the Tekton target's guard
    both report these, so a spec that validates compiles."""
    out: list[tuple[tuple[str | int, ...], str, str]] = []
    for path, pairs in ((("metadata", "labels"), labels),
                        (("model", "resources", "node_selector"), resources.node_selector)):
        for key, message, hint in label_problems(pairs):
            out.append(((*path, key), message, hint))
    for i, toleration in enumerate(resources.tolerations):
        if toleration.key is None:
            continue
        for key, message, hint in label_problems({toleration.key: toleration.value or ""}):
            part = "value" if valid_label_key(key) else "key"
            out.append((("model", "resources", "tolerations", i, part), message, hint))
    return out


def valid_image(reference: str) -> bool:
    return bool(_IMAGE.match(reference))


def breaks_lines(text: str) -> bool:
    """True when the text holds a control character or a line or paragraph separator."""
    return any(unicodedata.category(c) in _LINE_BREAKING for c in text)


def deployer_account(name: str) -> str:
    """The ServiceAccount (and Role) of project ``name``'s deploy and rollout steps."""
    return f"{name}-deployer"


def trainer_account(name: str) -> str:
    """The ServiceAccount (and Role) of project ``name``'s distributed train step."""
    return f"{name}-trainer"


def standard_labels(name: str, spec_labels: Mapping[str, str] | Iterable[tuple[str, str]],
                    extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels of an object generated for project ``name``: the spec's ``metadata.labels``
    (valid ones; lint MLS280 refuses the rest), then the ``app.kubernetes.io`` set and
    ``extra`` — ours win on a clash, so selectors on them keep working. One set for every
    target, so one selector finds everything mlspec deployed for a project."""
    pairs = spec_labels.items() if isinstance(spec_labels, Mapping) else spec_labels
    labels = {key: value for key, value in sorted(pairs)
              if valid_label_key(key) and valid_label_value(value)}
    labels.update({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": name,
                   "app.kubernetes.io/managed-by": MANAGED_BY})
    labels.update(extra or {})
    return labels
