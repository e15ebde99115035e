"""PromQL quoting shared by the targets that write queries (monitoring rules, serving's
rollout gates) and Alertmanager matchers: the one escaper, below both of them.
"""

from __future__ import annotations


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal (also valid in Alertmanager matchers).

    PromQL strings take Go's escapes; every backslash, quote and control character is escaped,
    so no spec value can end the string and add matchers or operators.
    """
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def regex_literal(value: str) -> str:
    """A RE2 regex (Prometheus' dialect) that matches exactly ``value``.

    Go's regexp treats a backslash before any ASCII punctuation as that literal character, so
    escaping every ASCII character that is not alphanumeric or ``_`` is always safe.
    """
    return "".join(
        "\\" + char if ord(char) < 0x80 and not (char.isalnum() or char == "_") else char
        for char in value
    )
