"""mlspec.lint.secrets (MLS233): what counts as a secret, and that a finding never repeats it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlspec.lint.secrets import secret_key, secret_shape
from tests.conftest import VENV_BIN
from tests.lint.casefile import apply_patch, load_base, render


@pytest.mark.parametrize("key", ["password", "db_password", "apiKey", "api_key", "API_KEY",
                                 "AWS_SECRET_ACCESS_KEY", "client_secret", "authToken",
                                 "MLFLOW_TRACKING_TOKEN", "private_key"])
def test_secret_keys(key: str) -> None:
    assert secret_key(key)


@pytest.mark.parametrize("key", ["credentials_secret", "max_tokens", "tokenizer", "key",
                                 "secret_name_hint", "n_estimators", "primary_key_column"])
def test_keys_that_are_not_secrets(key: str) -> None:
    assert not secret_key(key)


@pytest.mark.parametrize("value", [
    "https://user:pa55@host/x", "s3://b/k?X-Amz-Signature=abc", "AKIAABCDEFGHIJKLMNOP",
    "-----BEGIN RSA PRIVATE KEY-----", "MY_API_KEY=abc",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig"])
def test_secret_shapes(value: str) -> None:
    assert secret_shape(value)


@pytest.mark.parametrize("value", [
    "http://mlflow.mlflow.svc:5000", "s3://bucket/data/part-0.parquet", "sklearn://iris",
    "postgresql+psycopg2://u@db/mlflow", "https://example.com/x.csv?version=3",
    "mlflow-credentials"])
def test_ordinary_values(value: str) -> None:
    assert secret_shape(value) is None


def test_the_finding_names_the_place_never_the_value(tmp_path: Path) -> None:
    value = "s3cr3t-Value-42"
    spec = tmp_path / "mlproject.yaml"
    spec.write_text(render(apply_patch(load_base(), {
        "registry": {"tracking_uri": f"https://ci:{value}@mlflow.example.com"},
        "model": {"params": {"api_key": value}}})))
    for fmt in ("text", "json", "github", "sarif"):
        done = subprocess.run([str(VENV_BIN / "mlspec"), "validate", "-f", fmt, str(spec)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stdout
        assert value not in done.stdout + done.stderr, fmt
    report = json.loads(subprocess.run([str(VENV_BIN / "mlspec"), "validate", "-f", "json",
                                        str(spec)], capture_output=True, text=True).stdout)
    paths = {d["path"] for f in report["files"] for d in f["diagnostics"] if d["code"] == "MLS233"}
    assert paths == {"registry.tracking_uri", "model.params.api_key"}


@pytest.mark.parametrize("line,shown", [
    ("    api_key: abc", "    api_key: <redacted>"),
    ("  - token: 'x y'", "  - token: <redacted>"),
    ('  "my key": v', '  "my key": <redacted>'),
    ("  tracking_uri: https://a:b@h", "  tracking_uri: <redacted>"),
    ("    - https://a:b@h", "     <redacted>"),
])
def test_a_redacted_line_keeps_its_key_only(line: str, shown: str) -> None:
    from mlspec.commands.report import redact

    assert redact(line) == shown
