"""One audit record as an RFC 5424 syslog message, octet-counted for a TCP or TLS
stream (RFC 5425 §4.3, RFC 6587 §3.4.1): pure, no I/O.

    <PRI>1 TIMESTAMP HOSTNAME govgate PROCID MSGID [govgate@32473 id=".." ...] BOM{json}

PRI is facility × 8 + a severity from the outcome; TIMESTAMP is the record's time
(UTC, milliseconds); MSGID its event type. The structured data carry what a SIEM
filters on and the de-duplication key (``id``, and ``chain``/``seq``); MSG is the
record as ``govgate audit query --format jsonl`` writes it, UTF-8 after a BOM (RFC
5424 §6.4). 32473 is the example enterprise number of RFC 5612: an agency that has
its own IANA number may set another (``audit_syslog_enterprise``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6,
    "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13,
    "console": 14, "solaris-cron": 15, **{f"local{i}": 16 + i for i in range(8)},
}
# error → err (3), a refusal or failure → warning (4), the rest → informational (6)
SEVERITIES = {"error": 3, "failure": 4, "deny": 4, "success": 6, "allow": 6}
APP_NAME = "govgate"
DOCUMENTATION_PEN = 32473
BOM = "\ufeff".encode()
# PARAM-NAME → the record's field (None values are left out)
SD_PARAMS = (("id", "id"), ("chain", "chain_id"), ("seq", "seq"), ("outcome", "outcome"),
             ("system", "system"), ("actor", "actor_user"), ("client", "actor_client"),
             ("request_id", "request_id"))


def sd_escape(value: str) -> str:
    """A PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped with a backslash (RFC 5424 §6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def header_token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` long, or
    the NILVALUE ``-``."""
    kept = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return kept or "-"


def timestamp(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def message(record: Mapping[str, Any], *, facility: int, hostname: str, procid: str,
            enterprise: int = DOCUMENTATION_PEN) -> bytes:
    """The RFC 5424 message of one record (a :func:`audit.query.row_dict`)."""
    pri = facility * 8 + SEVERITIES.get(str(record.get("outcome")), 5)
    params = " ".join(f'{name}="{sd_escape(str(record[field]))}"'
                      for name, field in SD_PARAMS if record.get(field) is not None)
    sd = f"[{APP_NAME}@{enterprise} {params}]" if params else "-"
    head = (f"<{pri}>1 {timestamp(int(record['ts']))} {header_token(hostname, 255)} "
            f"{APP_NAME} {header_token(procid, 128)} "
            f"{header_token(str(record.get('event_type') or ''), 32)} {sd} ")
    body = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
    return head.encode("utf-8") + BOM + body.encode("utf-8")


def frame(msg: bytes) -> bytes:
    """Octet counting: the length in bytes, a space, the message."""
    return str(len(msg)).encode("ascii") + b" " + msg
