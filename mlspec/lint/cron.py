"""A small parser for five-field cron expressions, as Kubernetes CronJobs accept them.

Fields: minute, hour, day of month, month, day of week. Each is a comma-separated list of
``*``, ``N``, ``A-B``, each optionally with ``/STEP``; months and weekdays also take names
(``jan``, ``mon``). ``?`` means ``*`` in the day fields. The macros ``@yearly``, ``@annually``,
``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and ``@hourly`` are accepted. No dependency:
validation must not import a scheduler library.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = ("minute", "hour", "day of month", "month", "day of week")
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
DAY_NAMES = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, MONTH_NAMES, DAY_NAMES)
# The longest each month can be (February in a leap year).
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class CronError(ValueError):
    """The expression does not parse; ``field`` is the 0-based field index, or None."""

    def __init__(self, message: str, field: int | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the set of allowed values per field, and which were ``*``."""

    values: tuple[frozenset[int], ...]
    star: tuple[bool, ...]

    def can_fire(self) -> bool:
        """False when the day-of-month and month fields never meet (e.g. 30 February)."""
        dom, months = self.values[2], self.values[3]
        if self.star[2] or not self.star[4]:
            return True  # with both day fields restricted, cron fires on either one
        return any(day <= MONTH_DAYS[m - 1] for m in months for day in dom)


@lru_cache(maxsize=256)  # three rules and every profile read the same schedule
def parse_cron(expr: str) -> Cron:
    """Parse a five-field cron expression or macro.

    Raises:
        CronError: with a message that names the field at fault.
    """
    text = expr.strip()
    if text.startswith("@"):
        if text not in MACROS:
            known = ", ".join(sorted(MACROS))
            raise CronError(f"unknown cron macro '{text}' (known: {known})")
        text = MACROS[text]
    parts = text.split()
    if parts and "=" in parts[0]:
        raise CronError("time zones (CRON_TZ=/TZ=) are not allowed in the schedule")
    if len(parts) != 5:
        raise CronError(f"a cron expression has 5 fields (minute hour day month weekday); "
                        f"got {len(parts)}")
    values, star = [], []
    for index, part in enumerate(parts):
        allowed, is_star = _parse_field(part, index)
        values.append(frozenset(allowed))
        star.append(is_star)
    return Cron(tuple(values), tuple(star))


def _parse_field(text: str, index: int) -> tuple[set[int], bool]:
    out: set[int] = set()
    is_star = False
    for item in text.split(","):
        if not item:
            raise CronError(f"empty list item in the {FIELDS[index]} field '{text}'", index)
        values, item_star = _parse_item(item, index)
        out |= values
        is_star = is_star or item_star
    return out, is_star


def _parse_item(item: str, index: int) -> tuple[set[int], bool]:
    low, high = BOUNDS[index]
    name = FIELDS[index]
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"bad step '/{step_text}' in the {name} field", index)
        step = int(step_text)
        if step > high - low + 1 and high > low:
            raise CronError(f"step {step} is larger than the {name} range {low}-{high}", index)
    day_field = index in (2, 4)
    if base == "*" or (base == "?" and day_field):
        return set(range(low, high + 1, step)), not slash
    start_text, dash, end_text = base.partition("-")
    start = _value(start_text, index)
    if dash:
        end = _value(end_text, index)
        if end < start:
            raise CronError(f"range {base} in the {name} field runs backwards", index)
    else:
        end = high if slash else start  # "N/STEP" means N through the field's maximum
    return set(range(start, end + 1, step)), False


def _value(text: str, index: int) -> int:
    low, high = BOUNDS[index]
    name = FIELDS[index]
    names = _NAMES[index]
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        hint = f" (names: {', '.join(names)})" if names else ""
        raise CronError(f"'{text}' is not a valid {name}{hint}", index)
    value = int(text)
    if not low <= value <= high:
        extra = "; use 0 for Sunday" if index == 4 and value == 7 else ""
        raise CronError(f"{value} is outside the {name} range {low}-{high}{extra}", index)
    return value
