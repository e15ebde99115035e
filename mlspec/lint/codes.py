"""Every diagnostic code mlspec can report: the reserved ones and the registered rules'."""

from __future__ import annotations

from mlspec.errors import Severity, UsageError, did_you_mean


def all_codes() -> dict[str, tuple[str, Severity, str]]:
    """Every diagnostic code: (name, default severity, documentation)."""
    from mlspec.lint.rules import BUILTIN_CODES, RULES

    out: dict[str, tuple[str, Severity, str]] = {}
    for code, (name, doc) in BUILTIN_CODES.items():
        severity = Severity.WARNING if code == "MLS011" else Severity.ERROR
        out[code] = (name, severity, doc)
    for rule in RULES:
        out[rule.code] = (rule.name, rule.severity, rule.doc)
    return dict(sorted(out.items()))


def describe(code: str) -> tuple[str, Severity, str]:
    """(name, severity, documentation) of a code; raises UsageError when unknown."""
    codes = all_codes()
    key = code.strip().upper()
    if key not in codes and key.replace("O", "0") in codes:  # MLS2O3 -> MLS203
        key = key.replace("O", "0")
    if key not in codes:
        by_name = {name: c for c, (name, _, _) in codes.items()}
        if code.strip().lower() in by_name:
            return codes[by_name[code.strip().lower()]]
        hint = did_you_mean(key, codes) or did_you_mean(code.lower(), by_name)
        raise UsageError(f"unknown code '{code}'" + (f"; {hint}" if hint else "")
                         + " (run 'mlspec explain list' for all codes)")
    return codes[key]
