"""Security audit (安全审计, GB/T 22239-2019 8.1.4.3 a-c) and its central collection
and retention (集中管控, 8.1.5.4 c; 网络安全法 art. 21)."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from audit import ShipError
from audit.ship import backlog
from audit.ship_marks import lag
from audit.syslog_ship import TARGET as SYSLOG
from audit.tables import chains, records
from audit.verify import keyservice_sigcheck, verify_database
from gateway.audit_shipping import syslog_target
from gateway.compliance.model import Check, State, names, verdict
from gateway.proxy.identity_headers import PLAIN
from gateway.tables import systems
from texts import Text, message_of

MIN_RETENTION_DAYS = 180  # 网络安全法 art. 21: network logs kept at least six months
MAX_CHECKPOINT_SECONDS = 60.0
MAX_CHECKPOINT_EVERY = 10_000
MAX_SHIP_LAG = timedelta(minutes=10)
# a trusted proxy network wider than these lets too many peers name the client address
MIN_PREFIX = {4: 16, 6: 48}
# what a record says (GB/T 22239 8.1.4.3 b): when, who, what, how it ended, from where
RECORD_FIELDS = ("ts", "actor_user", "actor_client", "event_type", "outcome", "source_ip",
                 "request_id")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def coverage(state: State) -> tuple[str, list[str]]:
    """Every sign-in, token, admin change and proxied call is recorded before it is
    answered (no audit, no access); what an operator can weaken is a system that takes
    calls from around the gateway as if they came through it."""
    with state.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one()
        writers = conn.execute(sa.select(sa.func.count()).select_from(chains)).scalar_one()
        rows = conn.execute(sa.select(systems.c.code, systems.c.identity_headers,
                                      systems.c.tls).order_by(systems.c.code)).fetchall()
    trusting = [r.code for r in rows if r.identity_headers == PLAIN
                and not (r.tls or {}).get("cert_pem")]
    problems = [Text("compliance.headers_only",
                     "systems that take plain identity headers with no client certificate "
                     "from the gateway, so calls made around it look the same and are not "
                     "recorded: {systems}", systems=names(trusting))] if trusting else []
    return verdict(problems, [
        Text("compliance.audit_always_on",
             "always on, for every user, client and administrator: no setting turns it off, "
             "and a request whose record cannot be written is refused (503)"),
        Text("compliance.audit_size", "{records} records from {writers} writers",
             records=count, writers=writers),
        Text("compliance.systems_prove",
             "{proving} of {total} systems receive the signed assertion or the gateway's "
             "client certificate and can refuse calls that did not come through it",
             proving=len(rows) - len(trusting), total=len(rows)),
    ])


def _too_wide(entry: str) -> bool:
    net = ipaddress.ip_network(entry, strict=False)
    return net.prefixlen < MIN_PREFIX[net.version]


def record_content(state: State) -> tuple[str, list[str]]:
    with state.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("audit_records")}
    missing = [f for f in RECORD_FIELDS if f not in columns]
    problems: list[str] = []
    if missing:
        problems.append(Text("compliance.record_fields_missing",
                             "the audit table lacks {fields}", fields=", ".join(missing)))
    wide = [e for e in state.settings.trusted_proxies if _too_wide(e)]
    if wide:
        problems.append(Text("compliance.trusted_too_wide",
                             "trusted_proxies {entries}: peers in so wide a network may name "
                             "any client address, and the records would show it",
                             entries=", ".join(wide)))
    trusted = state.settings.trusted_proxies
    return verdict(problems, [
        Text("compliance.record_fields",
             "each record has its time (UTC, ms), user or client, department, event type, "
             "outcome and reason, source address, request id, system and resource, the items "
             "released"),
        Text("compliance.source_address",
             "the source address is the peer's, or X-Forwarded-For from trusted_proxies only "
             "({trusted})", trusted=", ".join(trusted)) if trusted else
        Text("compliance.source_peer", "the source address is the peer's (no trusted_proxies)"),
    ])


def protection(state: State) -> tuple[str, list[str]]:
    s = state.settings
    # with the checkpoint interval, as `govgate audit verify` checks: deleted
    # checkpoints are damage, records no audit key could sign are unanchored
    report = verify_database(state.engine, keyservice_sigcheck(state.keys),
                             checkpoint_seconds=s.audit_checkpoint_seconds)
    problems: list[str] = []
    bad = report.first_problem
    if bad is not None:
        problems.append(Text("compliance.audit_tampered",
                             "the audit log does not verify: {where}: {detail}",
                             where=bad.where, detail=bad.detail))
    elif report.unsigned:
        first = report.unsigned[0]
        problems.append(Text("compliance.audit_unanchored",
                             "the audit log is consistent but unanchored (no checkpoint "
                             "signs it): {where}: {detail}",
                             where=first.where, detail=first.detail))
    if s.audit_checkpoint_seconds > MAX_CHECKPOINT_SECONDS or \
            s.audit_checkpoint_every > MAX_CHECKPOINT_EVERY or s.audit_checkpoint_every == 0:
        problems.append(Text("compliance.checkpoints_rare",
                             "signed checkpoints every {every} records or {seconds} s (at "
                             "most {max_every} and {max_seconds} s)",
                             every=s.audit_checkpoint_every, seconds=s.audit_checkpoint_seconds,
                             max_every=MAX_CHECKPOINT_EVERY, max_seconds=MAX_CHECKPOINT_SECONDS))
    return verdict(problems, [
        Text("compliance.audit_verified",
             "hash chains and signed checkpoints: {records} records in {chains} chains and "
             "{checkpoints} checkpoints verified now", records=report.records,
             chains=report.chains, checkpoints=report.checkpoints),
        Text("compliance.audit_append_only",
             "records are only appended; the only deletion is a purge behind a verified "
             "archive (govgate audit export: verifies offline)"),
    ])


def retention(state: State) -> tuple[str, list[str]]:
    days = state.settings.audit_retention_days
    with state.engine.connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(records.c.ts))).scalar()
    problems = [Text("compliance.retention_short",
                     "records may be purged after {days} days (at least {min})",
                     days=days, min=MIN_RETENTION_DAYS)] if days < MIN_RETENTION_DAYS else []
    return verdict(problems, [
        Text("compliance.retention",
             "kept online and queryable for at least {days} days (audit_retention_days): a "
             "purge refuses younger records and any not in a verified archive", days=days),
        Text("compliance.oldest_record", "oldest record: {when}",
             when=_day(int(oldest)) if oldest is not None else "-"),
    ])


def central_collection(state: State) -> tuple[str, list[str]]:
    path = state.settings.audit_ship_path
    syslog = syslog_target(state.settings)
    if path is None and syslog is None:
        return verdict([Text("compliance.no_shipping",
                             "no audit shipping configured (audit_ship_file): the records "
                             "stay in the gateway's database only")], [])
    problems: list[str] = []
    facts: list[str] = []
    if path is not None:
        _file_collection(state, path, problems, facts)
    if syslog is not None:
        waiting = lag(state.engine, SYSLOG)
        if _too_old(state, waiting.oldest_ts):
            problems.append(Text(
                "compliance.syslog_behind",
                "{n} records wait since {since} for the syslog receiver {address} (is it "
                "reachable? govgate audit ship --syslog catches up)", n=waiting.records,
                since=_day(waiting.oldest_ts or 0), address=syslog.address))
        facts.append(Text(
            "compliance.syslog",
            "every record goes to the syslog receiver {address} (RFC 5424 over {transport}); "
            "{n} waiting", address=syslog.address, transport="TLS" if syslog.tls else "TCP",
            n=waiting.records))
    return verdict(problems, facts)


def _too_old(state: State, oldest_ts: int | None) -> bool:
    now_ms = int(state.now.timestamp() * 1000)
    return oldest_ts is not None and now_ms - oldest_ts > MAX_SHIP_LAG.total_seconds() * 1000


def _file_collection(state: State, path: Path, problems: list[str], facts: list[str]
                     ) -> None:
    folder = path.parent
    if not (folder.is_dir() and os.access(folder, os.W_OK)) or (
            path.exists() and not os.access(path, os.W_OK)):
        problems.append(Text("compliance.ship_unwritable", "{path} cannot be written",
                             path=path))
    try:
        waiting = backlog(state.engine, path)
    except ShipError as exc:
        problems.append(message_of(exc))
        return
    if _too_old(state, waiting.oldest_ts):
        problems.append(Text("compliance.ship_behind",
                             "{n} records wait since {since} (govgate serve ships once a "
                             "second; govgate audit ship catches up)", n=waiting.records,
                             since=_day(waiting.oldest_ts or 0)))
    facts.append(Text(
        "compliance.shipping",
        "every record goes to {path} as a JSON line for a log collector to tail; {n} waiting",
        path=path, n=waiting.records))


CHECKS = (
    Check("au.coverage", Text(
        "compliance.title.audit_coverage",
        "Audit coverage (GB/T 22239-2019 8.1.4.3 a)"), coverage),
    Check("au.record_content", Text(
        "compliance.title.record_content",
        "Audit record content (GB/T 22239-2019 8.1.4.3 b)"), record_content),
    Check("au.protection", Text(
        "compliance.title.audit_protection",
        "Audit record protection (GB/T 22239-2019 8.1.4.3 c)"), protection),
    Check("au.retention", Text(
        "compliance.title.audit_retention",
        "Audit retention of 180 days or more (GB/T 22239-2019 8.1.5.4 c; Cybersecurity Law "
        "art. 21)"), retention),
    Check("au.central_collection", Text(
        "compliance.title.central_collection",
        "Central collection of audit records (GB/T 22239-2019 8.1.5.4 c)"), central_collection),
)
