"""``govgate audit``: verify, query, export, purge, stats.

Exit codes: ``verify`` 0 intact, 1 tampered, 3 an archive consistent but unanchored
(no ``--trust``, ``--key-fingerprint`` or ``--gateway-keys``: its signatures are by
keys that came with it); every command 1 on an error (one line on stderr), 2 on bad
usage (a malformed filter or a reversed time range included) and on an ``--archive``,
trust file or fingerprint that is missing, unreadable or not one at all (one line).
Queries, exports and purges run by an operator are themselves audited, with the
operating-system account as the actor.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from audit import (
    ArchiveError,
    ArchiveUnreadable,
    AuditError,
    AuditQueryError,
)
from audit.archive import FILES, discard_archive, export_archive, purge, verify_archive
from audit.export import write_csv, write_jsonl, write_table
from audit.journal import Journal
from audit.journal_verify import verify_journal
from audit.query import EXACT, parse_filters, parse_time, query_records
from audit.stats import DIMENSIONS, check_days, usage_stats
from audit.usage_rebuild import DayRebuilt, rebuild_usage
from audit.verify import (
    SigCheck,
    VerifyReport,
    count_records,
    keyservice_sigcheck,
    verify_database,
)
from gateway.cli.audit_keys_cmd import archive_trust, keys_cmd
from gateway.cli.audit_ship_cmd import lag_rows
from gateway.cli.context import GovgateGroup, cli_context, input_error
from gateway.i18n import cli_lang, message_of, render, t
from texts import Text, os_reason, where

SHOWN_PROBLEMS = 10
ARCHIVE_FILES = ("manifest.json", "manifest.sig", *FILES)
UNANCHORED = 3  # verify's exit code for an archive no trust anchor vouched for, or a log
# whose records no checkpoint signed while no audit key existed to sign them
# AuditQueryError names the field; the option a user typed is sometimes spelled otherwise
OPTION_OF_FIELD = {"group_by": "--by"}


def _bad_filter(exc: AuditQueryError) -> click.BadParameter:
    """A usage error naming the option as typed (``--by``, ``--event-type``)."""
    option = OPTION_OF_FIELD.get(exc.field, "--" + exc.field.replace("_", "-"))
    return click.BadParameter(render(exc.reason, cli_lang()), param_hint=option)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if "\n" in text else text


def _time(param: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_time(param, value)
    except AuditQueryError as exc:
        raise _bad_filter(exc) from None


def _archive(path: str) -> Path:
    """``--archive`` as a directory that holds an archive: a path that is missing,
    cannot be listed or holds none of an archive's files is an input error (exit 2),
    not a tampered archive. One that holds some of them is verified, and any missing
    or changed file is reported as tampering."""
    d = Path(path)
    try:
        names = {p.name for p in d.iterdir()}
    except FileNotFoundError:
        raise input_error("audit.archive_missing", path=path) from None
    except OSError as exc:
        raise input_error("audit.archive_unreadable", path=path,
                          reason=render(os_reason(exc), cli_lang())) from None
    if not names & set(ARCHIVE_FILES):
        raise input_error("audit.not_an_archive", path=path, files=", ".join(ARCHIVE_FILES))
    return d


audit = GovgateGroup("audit", help="Verify, query, export and purge the audit log.")
audit.add_command(keys_cmd)


# -- verify -----------------------------------------------------------------------------


def _report(rep: VerifyReport) -> None:
    lang = cli_lang()
    if not rep.ok or rep.unsigned:
        for n, p in enumerate((rep.problems or rep.unsigned)[:SHOWN_PROBLEMS]):
            click.echo(t("audit.first_bad" if n == 0 else "audit.also", lang,
                         where=render(p.where, lang), detail=render(p.detail, lang)))
        if len(rep.problems or rep.unsigned) > SHOWN_PROBLEMS:
            click.echo(t("audit.more", lang,
                         n=len(rep.problems or rep.unsigned) - SHOWN_PROBLEMS))
    click.echo(render(rep.summary(), lang))


@audit.command()
@click.option("--since", help="Only records at or after this time (ISO 8601 or epoch ms).")
@click.option("--until", help="Only records before this time.")
@click.option("--archive", "archive_dir", type=click.Path(file_okay=False),
              help="Verify an exported archive offline instead of the database.")
@click.option("--trust", "trust_files", multiple=True, type=click.Path(dir_okay=False),
              help="With --archive: the archive must be signed by a key in this file "
              "(`govgate audit keys`; repeatable).")
@click.option("--key-fingerprint", "fingerprints", multiple=True,
              help="With --archive: or by the key with this fingerprint (SHA-256:... or "
              "SM3:..., `govgate audit keys --fingerprints`; repeatable).")
@click.option("--gateway-keys", is_flag=True,
              help="With --archive: or by an audit key this gateway's key ring made (needs "
              "its database and master key).")
@click.pass_context
def verify(ctx: click.Context, since: str | None, until: str | None,
           archive_dir: str | None, trust_files: tuple[str, ...],
           fingerprints: tuple[str, ...], gateway_keys: bool) -> None:
    """Recompute every hash and check every checkpoint signature.

    Exits 0 with a one-line summary when intact, 1 naming the first bad record or
    checkpoint otherwise; 2 (one line) when --archive is missing or unreadable; 3 when
    an archive is consistent but no --trust, --key-fingerprint or --gateway-keys says
    whose keys signed it, or when the log's records were signed by no checkpoint while
    no audit key existed to sign them.
    """
    t_since, t_until = _time("since", since), _time("until", until)
    if t_since is not None and t_until is not None and t_since >= t_until:
        # [since, until) would be empty, and an empty window always verifies "intact"
        raise click.BadParameter(t("audit.until_after_since", cli_lang()), param_hint="--until")
    if archive_dir is None and (trust_files or fingerprints or gateway_keys):
        raise click.UsageError(t("audit.trust_needs_archive", cli_lang()))
    if archive_dir is not None:
        if since or until:
            raise click.UsageError(t("audit.archive_no_window", cli_lang()))
        directory = _archive(archive_dir)
        trust = archive_trust(ctx, trust_files, fingerprints, gateway_keys)
        try:
            rep = verify_archive(directory, trust)
        except ArchiveUnreadable as exc:
            raise input_error("audit.archive_unreadable", path=archive_dir,
                              reason=render(exc.description, cli_lang())) from None
        _report(rep)
        ctx.exit(UNANCHORED if rep.unanchored else 0 if rep.ok else 1)
    st = cli_context(ctx)
    sigcheck: SigCheck | None
    try:
        sigcheck = keyservice_sigcheck(st.services.keys)
    except Exception as exc:  # no key ring: still check every hash and link
        click.echo(t("audit.unsigned", cli_lang(),
                     detail=render(_first_line(message_of(exc)), cli_lang())), err=True)
        sigcheck = None
    every = st.services.settings.audit_checkpoint_seconds
    if sys.stdout.isatty():
        total = count_records(st.services.engine)
        with click.progressbar(length=total, label=t("audit.verifying", cli_lang()),
                               file=sys.stderr) as bar:
            done = [0]

            def progress(n: int) -> None:
                bar.update(n - done[0])
                done[0] = n

            rep = verify_database(st.services.engine, sigcheck, since=t_since, until=t_until,
                                  progress=progress, checkpoint_seconds=every)
    else:
        rep = verify_database(st.services.engine, sigcheck, since=t_since, until=t_until,
                              checkpoint_seconds=every)
    folder = st.services.settings.audit_journal_path
    if folder is not None and folder.is_dir():  # journal mode: the journal against the tables
        journaled = verify_journal(st.services.engine, Journal(folder))
        for problem in journaled.problems:
            rep.add(problem)
        click.echo(t("audit.journal_checked", cli_lang(), chains=journaled.chains,
                     frames=journaled.frames))
    _report(rep)
    ctx.exit(UNANCHORED if rep.unanchored else 0 if rep.ok else 1)


# -- query ------------------------------------------------------------------------------


def _filter_options(f: Any) -> Any:
    for name in reversed([*EXACT, "text"]):
        f = click.option(f"--{name.replace('_', '-')}", name, default=None,
                         help=f"Only records with this {name.replace('_', ' ')}."
                         if name != "text"
                         else "Substring of the reason, purpose or extra fields.")(f)
    return f


@audit.command()
@click.option("--since", help="From this time, inclusive (ISO 8601 or epoch ms).")
@click.option("--until", help="Up to this time, exclusive.")
@_filter_options
@click.option("--limit", default="100", show_default=True, help="Records per page (1..1000).")
@click.option("--cursor", default=None, help="Continue after a previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Follow the cursor to the last page.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True)
@click.pass_context
def query(ctx: click.Context, fmt: str, all_pages: bool, **params: Any) -> None:
    """Records matching the filters, newest first."""
    raw = {k: str(v) for k, v in params.items() if v is not None}
    try:
        f = parse_filters(raw)
    except AuditQueryError as exc:
        raise _bad_filter(exc) from None
    st = cli_context(ctx)
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = query_records(st.services.engine, f)
        rows += page.records
        cursor = page.next_cursor
        if not all_pages or cursor is None:
            break
        f = parse_filters({**raw, "cursor": cursor})
    st.record("audit_query", "audit records queried (cli)", filters=parse_filters(raw).as_dict(),
              returned=len(rows))
    out = io.StringIO()
    {"table": write_table, "jsonl": write_jsonl, "csv": write_csv}[fmt](rows, out)
    click.echo(out.getvalue(), nl=False)
    if cursor and fmt == "table":
        click.echo(t("audit.next_page", cli_lang(), cursor=cursor), err=True)


# -- export and purge -----------------------------------------------------------------------


@audit.command()
@click.option("--until", default=None,
              help="Export records older than this time (ISO 8601 or epoch ms; default: "
                   "now, every record written so far).")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
              help="An empty or new directory.")
@click.pass_context
def export(ctx: click.Context, until: str | None, to: str) -> None:
    """Write records, checkpoints and public keys to a directory that verifies offline.

    The archive starts at each chain's oldest record still in the database (its first,
    or the first after the last purge): a chain is exported as one unbroken run so
    that it verifies on its own, hence no --since. It ends before --until, by default
    now."""
    t_until = _time("until", until)
    st = cli_context(ctx)
    if t_until is None:  # now, by the gateway's clock (a test's may be frozen)
        t_until = int(st.services.clock().timestamp() * 1000)
        click.echo(t("audit.export_until_now", cli_lang(),
                     until=datetime.fromtimestamp(t_until / 1000, UTC).isoformat(
                         timespec="seconds")), err=True)
    # the archive's signature would vouch for whatever the database holds: a log whose
    # checkpoints were deleted (audit.coverage) is not exported under the live key
    rep = verify_database(st.services.engine, keyservice_sigcheck(st.services.keys),
                          until=t_until,
                          checkpoint_seconds=st.services.settings.audit_checkpoint_seconds)
    bad = rep.first_problem or (rep.unsigned[0] if rep.unsigned else None)
    if bad is not None:
        raise ArchiveError(Text("audit.export_unverified",
                                "the log up to --until does not verify ({where}: {detail}); "
                                "nothing exported: see `govgate audit verify`",
                                where=bad.where, detail=bad.detail))
    created = not Path(to).exists()
    try:
        res = export_archive(st.services.engine, st.services.keys, until=t_until, to=to)
    except OSError as exc:  # a folder it may not create or write, a full disk
        raise ArchiveError(where(str(to), os_reason(exc))) from None
    try:
        st.record("audit_export", f"archive {res.archive_id[:16]} written",
                  archive=res.archive_id, until=t_until, records=res.records,
                  directory=str(res.directory))
    except BaseException:
        discard_archive(res.directory, created)  # no record of the export, no export
        raise
    click.echo(t("audit.exported", cli_lang(), records=res.records, chains=res.chains,
                 checkpoints=res.checkpoints, directory=res.directory, archive=res.archive_id))


@audit.command("purge")
@click.option("--until", required=True, help="Purge records older than this time.")
@click.option("--archive", "archive_dir", required=True, type=click.Path(file_okay=False),
              help="The verified archive that holds them.")
@click.pass_context
def purge_cmd(ctx: click.Context, until: str, archive_dir: str) -> None:
    """Delete archived records older than --until (never inside the retention period)."""
    t_until = _time("until", until)
    assert t_until is not None
    archive = _archive(archive_dir)
    st = cli_context(ctx)
    res = purge(st.services.engine, st.services.audit, until=t_until, archive=archive,
                retention_days=st.settings.audit_retention_days)
    lang = cli_lang()
    if not res.records:
        click.echo(t("audit.nothing_to_purge", lang))
        return
    click.echo(t("audit.purged_sealed", lang, records=res.records, chains=len(res.chains),
                 seal=f"{res.seal[0]}/{res.seal[1]}") if res.seal
               else t("audit.purged", lang, records=res.records))
    if res.partitions:
        click.echo(t("audit.partitions_dropped", lang, n=len(res.partitions),
                     names=", ".join(res.partitions)))


# -- stats --------------------------------------------------------------------------------


@audit.command()
@click.option("--by", default="day,system,resource,department,kind", show_default=True,
              help=f"Comma-separated: {', '.join(DIMENSIONS)}.")
@click.option("--since", help="First day, YYYY-MM-DD (UTC).")
@click.option("--until", help="Last day, YYYY-MM-DD (UTC), inclusive.")
@click.option("--system", default=None)
@click.option("--resource", default=None)
@click.option("--department", default=None)
@click.option("--event-type", default=None,
              help="Count only this event type (default: every event that named a system "
              "or resource).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True)
@click.option("--shipping", is_flag=True,
              help="Instead: what each shipping target (file, syslog) has not taken yet.")
@click.option("--rebuild", is_flag=True,
              help="Instead: recompute the figures of the days --since .. --until (default: "
              "every day) from the audit records, one transaction per day; days whose "
              "records were purged keep their figures.")
@click.pass_context
def stats(ctx: click.Context, by: str, since: str | None, until: str | None,
          system: str | None, resource: str | None, department: str | None,
          event_type: str | None, fmt: str, shipping: bool, rebuild: bool) -> None:
    """Usage figures: counts by day, system, resource, consumer department and kind
    (delivered, not_delivered, unconfirmed, refused, unauthenticated, failed, other)."""
    if rebuild:
        if shipping or system or resource or department or event_type:
            raise click.UsageError(t("audit.rebuild_alone", cli_lang()))
        _rebuild(ctx, since, until)
        return
    group_by = [d.strip() for d in by.split(",") if d.strip()]
    try:
        if shipping:
            rows = lag_rows(cli_context(ctx))
            group_by = ["target", "where", "records", "seconds"]
        else:
            rows = usage_stats(cli_context(ctx).services.engine, group_by=group_by,
                               since_day=since, until_day=until, system=system,
                               resource=resource, department=department,
                               event_type=event_type or None)
    except AuditQueryError as exc:
        raise _bad_filter(exc) from None
    cols = (*group_by, "oldest" if shipping else "count")
    out = io.StringIO()
    if fmt == "table":
        write_table(rows, out, columns=cols)
    elif fmt == "csv":
        write_csv(rows, out, columns=cols)
    else:
        write_jsonl(rows, out)
    click.echo(out.getvalue(), nl=False)


def _rebuild(ctx: click.Context, since: str | None, until: str | None) -> None:
    """``stats --rebuild``: each day changed or kept on a line, then the totals; audited
    as an admin change, with what was done even when a day fails."""
    try:
        check_days(since, until)  # before the services open: bad input is usage
    except AuditQueryError as exc:
        raise _bad_filter(exc) from None
    st = cli_context(ctx)
    lang = cli_lang()
    done: list[DayRebuilt] = []

    def shown(d: DayRebuilt) -> None:
        done.append(d)
        if d.state == "rebuilt":
            click.echo(t("audit.rebuilt_day", lang, day=d.day, before=d.before, after=d.after))
        elif d.state == "kept" and d.before:
            click.echo(t("audit.rebuild_kept_day", lang, day=d.day, count=d.before))

    try:
        rebuild_usage(st.services.engine, since=since, until=until, progress=shown)
    except AuditQueryError as exc:
        raise _bad_filter(exc) from None
    finally:
        if done:
            changed = [d for d in done if d.state == "rebuilt"]
            st.record_change("usage_rebuilt", since=done[0].day, until=done[-1].day,
                             days=len(done), rebuilt=[d.day for d in changed],
                             kept=[d.day for d in done if d.state == "kept" and d.before],
                             before=sum(d.before for d in changed),
                             after=sum(d.after for d in changed))
    counts = {s: sum(1 for d in done if d.state == s) for s in ("rebuilt", "unchanged", "kept")}
    click.echo(t("audit.rebuild_done", lang, days=len(done), **counts))


__all__ = ["AuditError", "audit"]
