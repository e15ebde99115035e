"""The five-field cron parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec.lint.cron import CronError, parse_cron


def test_fields_expand() -> None:
    cron = parse_cron("*/15 1-5,22 ? jan-mar,DEC mon-fri")
    minute, hour, dom, month, dow = cron.values
    assert minute == {0, 15, 30, 45}
    assert hour == {1, 2, 3, 4, 5, 22}
    assert dom == set(range(1, 32)) and cron.star[2]
    assert month == {1, 2, 3, 12}
    assert dow == {1, 2, 3, 4, 5}


def test_start_with_step_runs_to_the_maximum() -> None:
    assert parse_cron("10/20 * * * *").values[0] == {10, 30, 50}
    assert parse_cron("0-10/5 * * * *").values[0] == {0, 5, 10}


@pytest.mark.parametrize("macro", ["@yearly", "@annually", "@monthly", "@weekly", "@daily",
                                   "@midnight", "@hourly"])
def test_macros(macro: str) -> None:
    assert parse_cron(macro).can_fire()


@pytest.mark.parametrize(("expr", "field"), [
    ("60 * * * *", 0), ("* 24 * * *", 1), ("* * 0 * *", 2), ("* * * 13 *", 3),
    ("* * * * 7", 4), ("* * * * funday", 4), ("*/0 * * * *", 0), ("5-1 * * * *", 0),
    ("1,,2 * * * *", 0), ("*/61 * * * *", 0), ("a * * * *", 0),
])
def test_errors_name_the_field(expr: str, field: int) -> None:
    with pytest.raises(CronError) as info:
        parse_cron(expr)
    assert info.value.field == field


@pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * *", "@reboot", "@every 1h",
                                  "TZ=UTC * * * * *"])
def test_whole_expression_errors(expr: str) -> None:
    with pytest.raises(CronError):
        parse_cron(expr)


def test_impossible_days() -> None:
    assert not parse_cron("0 0 30 2 *").can_fire()
    assert parse_cron("0 0 29 2 *").can_fire()
    assert parse_cron("0 0 30 2 mon").can_fire()  # either day field matches


@settings(max_examples=500, derandomize=True, deadline=None, database=None)
@given(st.one_of(st.text(max_size=40),
                 st.lists(st.sampled_from(["*", "?", "0", "7", "59", "1-5", "*/2", "5/0", "a-b",
                                           "mon", "jan-dec", ",", "-", "/", "60", "@daily"]),
                          min_size=1, max_size=7).map(" ".join)))
def test_any_text_parses_or_raises_cron_error(expr: str) -> None:
    try:
        cron = parse_cron(expr)
    except CronError:
        return
    assert len(cron.values) == 5 and all(cron.values)
