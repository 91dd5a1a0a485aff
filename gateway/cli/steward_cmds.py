"""The data stewards' time limits from the command line.

    govgate calendar import FILE [--dry-run]     a file with a ``calendar:`` section
    govgate calendar show [--year YEAR]          the holidays and 调休 working days
    govgate catalogue escalate-overdue           one referral round, for cron
    govgate catalogue webhook-secret             the secret the webhook receiver verifies with

The import goes through the state file's applier (validated whole first, one
transaction, audited as ``state_applied``); the round is the gateway's own
(gateway.referrals), run under the operator's name.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import click

from catalogue import store as catalogue_store
from catalogue.calendar import CalendarYear, WorkCalendar
from catalogue.model import CST
from gateway.cli.catalogue_cmd import _os_user
from gateway.cli.context import CliContext, input_error, pass_cli
from gateway.cli.state_cmds import report
from gateway.referrals import run_round
from gateway.referrals.webhook import secret
from gateway.statefile import load_file

WEEKDAYS_ZH = "一二三四五六日"


@click.group()
def calendar() -> None:
    """The holiday calendar the applications' time limits count on (工作日)."""


@calendar.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and plan; write nothing.")
@pass_cli
def import_(cli_ctx: CliContext, file: Path, dry_run: bool) -> None:
    """Import the years of FILE (YAML with a `calendar:` section, as
    examples/calendar-2026.yaml); each year replaces that year as stored."""
    try:
        regular = file.is_file()
    except OSError:  # a name longer than the file system takes: no such file either
        regular = False
    if not regular:
        raise input_error("calendar.no_file", path=file)
    doc = load_file(file)
    others = sorted(k for k in doc if k != "calendar")
    if others or "calendar" not in doc:
        raise input_error("calendar.only_calendar", path=file, found=", ".join(others) or "-")
    report(cli_ctx, cli_ctx.gateway.state_applier().apply({"calendar": doc["calendar"]},
                                                          dry_run=dry_run), dry_run)


def _day(d: date, lang: str) -> str:
    if lang == "zh":
        return f"{d.isoformat()}（周{WEEKDAYS_ZH[d.weekday()]}）"
    return f"{d.isoformat()} ({d:%a})"


def _working_days(cal: WorkCalendar, year: int) -> int:
    start = date(year, 1, 1)
    return sum(1 for k in range((date(year + 1, 1, 1) - start).days)
               if cal.is_working_day(start + timedelta(days=k)))


def _show_year(cli_ctx: CliContext, y: CalendarYear, cal: WorkCalendar) -> None:
    lang = cli_ctx.lang
    click.echo(cli_ctx.msg("calendar.year", year=y.year, n=_working_days(cal, y.year)))
    if y.source:
        click.echo(cli_ctx.msg("calendar.source", source=y.source))
    for h in y.holidays:
        days = len(h.days())
        span = h.start.isoformat() if days == 1 else cli_ctx.msg(
            "calendar.span", start=h.start.isoformat(), end=h.end.isoformat())
        line = cli_ctx.msg("calendar.holiday", span=span, name=h.name, n=days)
        if h.workdays:
            line += cli_ctx.msg("calendar.workdays",
                                days=("、" if lang == "zh" else ", ").join(
                                    _day(d, lang) for d in h.workdays))
        click.echo(line)


@calendar.command()
@click.option("--year", type=click.IntRange(2000, 2100), default=None,
              help="Only this year (default: every imported year).")
@pass_cli
def show(cli_ctx: CliContext, year: int | None) -> None:
    """The imported holidays, each with its 调休 make-up working days, and the number
    of working days of the year."""
    with cli_ctx.services.engine.connect() as conn:
        years = catalogue_store.load_calendar(conn)
    cal = WorkCalendar.of(years)
    shown = [y for y in years if year is None or y.year == year]
    for k, y in enumerate(shown):
        if k:
            click.echo("")
        _show_year(cli_ctx, y, cal)
    if year is not None and not shown:
        click.echo(cli_ctx.msg("calendar.not_imported", year=year,
                               n=_working_days(cal, year)))
    elif not shown:
        today = cli_ctx.services.clock().astimezone(CST).date()
        click.echo(cli_ctx.msg("calendar.none", year=today.year))


@click.command("escalate-overdue")
@pass_cli
def escalate_overdue(cli_ctx: CliContext) -> None:
    """Refer every overdue application to its provider's department head, then send
    the pending notices (webhook, e-mail); for cron, beside the gateway's own rounds."""

    done = run_round(cli_ctx.gateway, _os_user())
    for app in done.referred:
        click.echo(cli_ctx.msg("referral.referred", id=app.id, resource=app.resource,
                               due=app.due_at.astimezone(CST).strftime("%Y-%m-%d %H:%M")))
    if not done.referred:
        click.echo(cli_ctx.msg("referral.none"))
    if done.sent:
        click.echo(cli_ctx.msg("referral.sent", n=len(done.sent)))
    for notice, why in sorted(done.failed.items()):
        click.echo(cli_ctx.msg("referral.failed", id=notice, why=why), err=True)
    if done.failed:
        raise click.exceptions.Exit(1)


@click.command("webhook-secret")
@pass_cli
def webhook_secret(cli_ctx: CliContext) -> None:
    """Print the secret the referral webhook's receiver verifies signatures with
    (hex). Anyone holding it can forge notices: hand it over as a password."""

    services = cli_ctx.services
    services.record_admin_change("referral_webhook_secret_shown", {"actor": _os_user()})
    click.echo(secret(services.keys).hex())
