"""Output formats for auditors: CSV (formula-safe), JSON lines, a plain table."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any

CSV_COLUMNS = (
    "time", "event_type", "outcome", "actor_user", "actor_client", "department", "source_ip",
    "system", "resource", "items", "purpose", "reason", "status", "latency_ms", "request_id",
    "req_hash", "resp_hash", "extra", "chain_id", "seq", "hash",
)
TABLE_COLUMNS = ("time", "event_type", "outcome", "actor_user", "actor_client", "department",
                 "system", "resource", "status", "reason")

# a spreadsheet runs a cell that starts with one of these as a formula (OWASP CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates: a leading apostrophe if needed."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str],
              columns: tuple[str, ...] = CSV_COLUMNS) -> int:
    w = csv.writer(out)
    w.writerow(columns)
    n = 0
    for row in rows:
        w.writerow([neutralise(row.get(c)) for c in columns])
        n += 1
    return n


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n


def write_table(rows: Iterable[dict[str, Any]], out: IO[str],
                columns: tuple[str, ...] = TABLE_COLUMNS) -> int:
    data = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in data]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for r in data:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return len(data)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text if len(text) <= 60 else text[:59] + "…"
