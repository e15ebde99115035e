"""Where a rehearsal's Secrets and ConfigMaps come from.

ConfigMaps (and Secrets, should the compiled files hold any) come from the compiled YAML.
Secret data never does: it comes from local env files given with ``--secret-env``, each one
Secret::

    --secret-env mlflow-credentials=creds.env   Secret mlflow-credentials: creds.env's keys
    --secret-env mlflow-credentials.env         the same: the Secret is named after the file

An env file holds ``KEY=VALUE`` lines; blank lines and ``#`` comments are skipped, a leading
``export`` is allowed, and a value in matching single or double quotes loses them (no escapes,
no ``${…}`` expansion: the value is the text). A reference to a Secret no file provides is an
error naming the Secret, unless the reference is ``optional: true``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mlspec.errors import UsageError

# A Secret's name: a DNS-1123 subdomain.
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_KEY = re.compile(r"[-._a-zA-Z0-9]+")


class SourceError(ValueError):
    """A Secret or ConfigMap (or one of its keys) that a container needs is not there."""


@dataclass
class Sources:
    """Secret and ConfigMap data by name: ``{name: {key: value}}``."""

    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)

    def secret(self, name: str, where: str, optional: bool = False) -> dict[str, str] | None:
        if name in self.secrets:
            return self.secrets[name]
        if optional:
            return None
        raise SourceError(f"{where}: Secret {name!r} not found; give its data with "
                          f"--secret-env {name}=FILE (KEY=VALUE lines)")

    def config_map(self, name: str, where: str, optional: bool = False) -> dict[str, str] | None:
        if name in self.config_maps:
            return self.config_maps[name]
        if optional:
            return None
        raise SourceError(f"{where}: ConfigMap {name!r} not found in the compiled files")

    def key(self, kind: str, name: str, key: str, where: str, optional: bool) -> str | None:
        """One key of a Secret (``kind`` "secret") or ConfigMap, as ``…KeyRef`` reads it."""
        data = self.secret(name, where, optional) if kind == "secret" else \
            self.config_map(name, where, optional)
        if data is None:
            return None
        if key in data:
            return data[key]
        if optional:
            return None
        label = "Secret" if kind == "secret" else "ConfigMap"
        raise SourceError(f"{where}: {label} {name!r} has no key {key!r}")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (see the module doc).

    Raises:
        UsageError: the file cannot be read, or a line is not ``KEY=VALUE``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--secret-env: cannot read {path}: {exc.strerror or exc}") from None
    data: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise UsageError(f"--secret-env: {path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        data[key] = value
    return data


def parse_secret_env(values: list[str]) -> dict[str, dict[str, str]]:
    """``--secret-env`` values -> ``{secret name: data}``.

    Raises:
        UsageError: an unreadable file, a bad name, or one Secret given twice.
    """
    secrets: dict[str, dict[str, str]] = {}
    for value in values:
        name, path = _name_and_path(value)
        if name in secrets:
            raise UsageError(f"--secret-env: Secret {name!r} given twice")
        secrets[name] = read_env_file(path)
    return secrets


def _name_and_path(value: str) -> tuple[str, Path]:
    name, sep, rest = value.partition("=")
    if sep and _SECRET_NAME.fullmatch(name) and rest:
        return name, Path(rest)
    path = Path(value)
    stem = path.name[:-len(".env")] if path.name.endswith(".env") else path.name
    if not _SECRET_NAME.fullmatch(stem):
        raise UsageError(f"--secret-env {value}: name the Secret, as NAME=FILE (NAME a "
                         "lower-case DNS name), or name the file NAME.env")
    return stem, path
