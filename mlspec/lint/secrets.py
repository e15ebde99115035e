"""Lint rule for credentials written into a spec: a spec names Secrets, it never holds one.

Every value of a spec ends up in plain text somewhere: a ConfigMap, a PipelineRun, a container's
env, a Git history. So any value that looks like a credential is an error, found by its key
(``password``, ``api_key``, ``AWS_SECRET_ACCESS_KEY``...) or by its shape (a URL with a
password, a presigned URL's signature, a cloud or Git token, a private key, ``NAME_TOKEN=...``).
The message never repeats the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from mlspec.lint.base import Context, Finding, SpecPath, rule

# Key names that hold a secret: by their last word, or their last two.
_SECRET_WORDS = frozenset({"password", "passwd", "pwd", "secret", "token", "apikey",
                           "passphrase", "credential", "credentials"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("secret", "key"),
                           ("private", "key"), ("auth", "token"), ("access", "token"),
                           ("client", "secret")})
# Keys whose value is a Secret's name, not its content.
_SECRET_NAME_KEYS = frozenset({"credentials_secret"})

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a URL with a password", re.compile(r"://[^/\s:@]+:[^/\s@]+@")),
    ("a signed URL's credential", re.compile(
        r"[?&](x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|sig|"
        r"access_token|token|api_key|apikey|password)=[^&\s]", re.IGNORECASE)),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a secret environment variable's value", re.compile(
        r"\b[A-Z][A-Z0-9_]*(PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY)[A-Z0-9_]*=\S")),
)

SECRET_CODE = "MLS233"  # the report redacts the lines this code points at
FIX = ("keep credentials in a Kubernetes Secret and name it: registry.credentials_secret "
       "(tracking server, artifact store) or data.source.credentials_secret (the data source); "
       "mlspec run reads the same variables from the environment")


def secret_key(key: str) -> bool:
    """True when a mapping key names a secret (``db_password``, ``apiKey``, ``AWS_SECRET...``)."""
    if key in _SECRET_NAME_KEYS:
        return False
    # camelCase -> words, then split on separators.
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
                                 .lower()) if w]
    if not words:
        return False
    return words[-1] in _SECRET_WORDS or tuple(words[-2:]) in _SECRET_PAIRS


def secret_shape(value: str) -> str | None:
    """What a string value looks like when it looks like a credential, else None."""
    for what, pattern in _SHAPES:
        if pattern.search(value):
            return what
    return None


def _walk(node: Any, path: SpecPath) -> Iterator[tuple[SpecPath, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))
    else:
        yield path, node


@rule(SECRET_CODE, "secret-in-spec")
def secret_in_spec(ctx: Context) -> Iterator[Finding]:
    """A value in the spec looks like a credential (a password, a token, a key).

    Anti-pattern: ``tracking_uri: https://ci:hunter2@mlflow.example.com``, ``uri:
    s3://bucket/x.csv?X-Amz-Signature=...``, ``params: {api_key: sk-...}`` — the spec is
    committed, and every compiled output (ConfigMaps, PipelineRuns, env) carries its values in
    plain text.

    Best practice: the credential in a Kubernetes Secret (``MLFLOW_TRACKING_TOKEN``,
    ``AWS_ACCESS_KEY_ID``...), the spec naming it: ``registry: {credentials_secret:
    mlflow-credentials}``, ``data: {source: {credentials_secret: data-reader}}``.
    """
    for path, value in _walk(ctx.data, ()):
        if not isinstance(value, str) or not value.strip():
            continue
        key = path[-1] if path and isinstance(path[-1], str) else ""
        if key and secret_key(key):
            yield Finding(path, f"'{key}' holds a literal value: a spec never carries a secret",
                          FIX)
        elif (what := secret_shape(value)) is not None:
            yield Finding(path, f"the value looks like {what}: a spec never carries a secret",
                          FIX)
