"""Output formats for auditors: CSV (formula-safe, :mod:`audit.spreadsheet`), JSON lines,
a plain table."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from audit.spreadsheet import FORMULA_START, SafeWriter, neutralise

CSV_COLUMNS = (
    "time", "event_type", "outcome", "actor_user", "actor_client", "department", "source_ip",
    "system", "resource", "items", "purpose", "reason", "status", "latency_ms", "request_id",
    "req_hash", "resp_hash", "extra", "chain_id", "seq", "hash",
)
TABLE_COLUMNS = ("time", "event_type", "outcome", "actor_user", "actor_client", "department",
                 "system", "resource", "items", "status", "reason")
# what the table never cuts: the items released and the reason are what an auditor reads
WHOLE_COLUMNS = frozenset({"items", "reason"})

__all__ = ["FORMULA_START", "neutralise", "write_csv", "write_jsonl", "write_table"]


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str],
              columns: tuple[str, ...] = CSV_COLUMNS) -> int:
    """Formula-safe CSV (:mod:`audit.spreadsheet`)."""
    w = SafeWriter(out)
    w.writerow(columns)
    n = 0
    for row in rows:
        w.writerow(row.get(c) for c in columns)
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
    data = [[_cell(row.get(c), whole=c in WHOLE_COLUMNS) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in data]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for r in data:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return len(data)


def _cell(value: Any, *, whole: bool = False) -> str:
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text if whole or len(text) <= 60 else text[:59] + "…"
