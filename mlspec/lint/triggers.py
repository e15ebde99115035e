"""Lint rules for ``triggers``: the schedule, git and alert-driven retraining."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlspec.errors import Severity
from mlspec.lint.base import Context, Finding, rule
from mlspec.lint.cron import CronError, parse_cron

_GIT_URL = re.compile(r"^(https?://|ssh://|git://|git@[^:]+:)\S+$")


def _parsed_schedule(ctx: Context):
    """(schedule, parsed cron), the cron None when there is no schedule or it does not parse
    (MLS260 reports that)."""
    schedule = ctx.project.triggers.schedule
    if schedule is None:
        return schedule, None
    try:
        return schedule, parse_cron(schedule)
    except CronError:
        return schedule, None


@rule("MLS260", "bad-cron")
def bad_cron(ctx: Context) -> Iterator[Finding]:
    """triggers.schedule is not a valid five-field cron expression.

    Anti-pattern: ``schedule: "0 3 * *"`` (four fields), ``"0 25 * * *"`` (hour 25),
    ``"0 3 * * 7"`` (Kubernetes CronJobs count weekdays 0–6).

    Best practice: ``minute hour day-of-month month day-of-week``, e.g. ``"0 3 * * 1"``
    (Mondays at 03:00), or a macro such as ``@daily``.
    """
    schedule = ctx.project.triggers.schedule
    if schedule is None:
        return
    try:
        parse_cron(schedule)
    except CronError as exc:
        yield Finding(("triggers", "schedule"), f"invalid cron schedule '{schedule}': {exc}",
                      "format: minute hour day-of-month month day-of-week, e.g. '0 3 * * 1'")


@rule("MLS261", "cron-never-fires", Severity.WARNING)
def cron_never_fires(ctx: Context) -> Iterator[Finding]:
    """triggers.schedule parses but names a day that never comes.

    Anti-pattern: ``"0 0 30 2 *"`` (30 February) or ``"0 0 31 4,6 *"``.

    Best practice: a day that every chosen month has.
    """
    schedule, cron = _parsed_schedule(ctx)
    if cron is not None and not cron.can_fire():
        yield Finding(("triggers", "schedule"), f"the schedule '{schedule}' never fires "
                      "(no chosen month has that day)")


@rule("MLS262", "on-alert-without-retrain-on")
def on_alert_without_retrain_on(ctx: Context) -> Iterator[Finding]:
    """triggers.on_alert is true but monitoring.alerts.retrain_on is empty.

    Anti-pattern: ``on_alert: true`` with ``retrain_on: []`` — no alert is routed to the
    retraining trigger, so it never runs.

    Best practice: ``retrain_on: [drift, performance]``, or ``on_alert: false``.
    """
    if ctx.project.triggers.on_alert and not ctx.project.monitoring.alerts.retrain_on:
        yield Finding(("triggers", "on_alert"),
                      "on_alert is true, but monitoring.alerts.retrain_on is empty",
                      "list alerts in retrain_on, e.g. [drift, performance]")


@rule("MLS263", "bad-git-url", Severity.WARNING)
def bad_git_url(ctx: Context) -> Iterator[Finding]:
    """triggers.git.repo is not a git URL.

    Anti-pattern: ``repo: example/iris`` (no host) — the EventListener cannot match pushes.

    Best practice: ``https://github.com/example/iris`` or ``git@github.com:example/iris.git``.
    """
    git = ctx.project.triggers.git
    if git is not None and not _GIT_URL.match(git.repo):
        yield Finding(("triggers", "git", "repo"), f"'{git.repo}' is not a git URL",
                      "use https://HOST/OWNER/REPO or git@HOST:OWNER/REPO.git")


@rule("MLS264", "cron-day-or", Severity.WARNING)
def cron_day_or(ctx: Context) -> Iterator[Finding]:
    """triggers.schedule restricts both day of month and day of week, which cron ORs.

    Anti-pattern: ``"0 3 1-7 * mon"`` meant as "the first Monday": cron runs on days 1–7 *and*
    on every Monday.

    Best practice: restrict one of the two day fields and leave the other ``*``.
    """
    schedule, cron = _parsed_schedule(ctx)
    if cron is not None and not cron.star[2] and not cron.star[4]:
        yield Finding(("triggers", "schedule"), f"'{schedule}' runs when either the day of month "
                      "or the day of week matches, not when both do",
                      "restrict only one of the two day fields")
