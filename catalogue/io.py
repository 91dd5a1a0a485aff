"""Import and export of the catalogue: the state-file YAML and CSV.

CSV is the spreadsheet form agencies keep: one row per data item, the
resource columns repeated (or left empty) on the rows after a resource's
first. It is written formula-safe (a cell a spreadsheet would run gets a
leading apostrophe, taken off again on import). Headers may be the English
keys below or their Chinese titles.
Every problem names its row (the header is row 1), e.g.
``row 4: items[1]: level must be 1, 2, 3 or 4``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import yaml

import statedoc
from audit.spreadsheet import SafeWriter, restore
from catalogue.errors import InvalidInput
from catalogue.model import Resource, resource_problems
from texts import Text, where

RESOURCE_COLUMNS = [
    ("code", "资源代码"), ("name", "资源名称"), ("summary", "摘要"), ("provider", "提供方"),
    ("system", "系统"), ("share_type", "共享类型"), ("conditions", "共享条件"),
    ("basis", "依据"), ("share_method", "共享方式"), ("update_cycle", "更新周期"),
    ("open_attr", "开放属性"), ("status", "状态"), ("route_method", "方法"),
    ("route_path", "路径"), ("route_records", "记录位置"), ("route_query", "查询参数"),
    ("route_envelope", "外层保留键"),
]
ITEM_COLUMNS = [
    ("item_name", "信息项"), ("item_title", "信息项名称"), ("item_type", "数据类型"),
    ("item_level", "分级"), ("item_mask", "脱敏规则"), ("item_encrypt", "加密"),
    ("item_authoritative", "权威来源"), ("item_shareable", "可共享"),
]
COLUMNS = [c for c, _ in RESOURCE_COLUMNS + ITEM_COLUMNS]
ALIASES = {title: key for key, title in RESOURCE_COLUMNS + ITEM_COLUMNS}
SHARE_TITLES = {"无条件共享": "unconditional", "有条件共享": "conditional", "不予共享": "none"}
TRUE = {"true", "yes", "y", "1", "是", "t"}
FALSE = {"false", "no", "n", "0", "否", "f"}
# route_query, route_envelope: the names separated by spaces or commas; this alone for
# "none at all" (an empty cell leaves the route without a list: catalogue.query,
# catalogue.envelope)
NO_QUERY = "-"
MAX_ROWS = 100_000
# an import file is read whole: at most this (100 000 rows of a wide CSV)
MAX_IMPORT_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------------------
# YAML


def load_yaml(text: str) -> dict[str, Any]:
    """A document with ``catalogue:`` (and maybe ``grants:``); a bare list is a catalogue."""
    try:
        doc = statedoc.load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(Text("field.not_yaml", "not valid YAML: {detail}",
                                detail=str(exc).replace("\n", " "))) from None
    if doc is None:
        return {}
    if isinstance(doc, list):
        return {"catalogue": doc}
    if not isinstance(doc, dict):
        raise InvalidInput(Text("cat.yaml_mapping",
                                "the YAML must be a mapping with catalogue: (and grants:)"))
    unknown = sorted(set(doc) - {"catalogue", "grants"})
    if unknown:
        raise InvalidInput(Text("cat.sections",
                                "unknown section(s) {names}; an import holds catalogue: and "
                                "grants:",
                                names=", ".join(map(str, unknown))))
    return doc


def dump_yaml(resources: Iterable[Resource], grants: list[dict[str, Any]] | None = None) -> str:
    doc: dict[str, Any] = {"catalogue": [r.to_entry() for r in resources]}
    if grants:
        doc["grants"] = grants
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)


# ---------------------------------------------------------------------------
# CSV


def _row(n: int) -> Text:
    return Text("row", "row {n}", n=n)


def _bool(value: str, column: str) -> tuple[bool | None, str | None]:
    v = value.strip().lower()
    if not v:
        return None, None
    if v in TRUE:
        return True, None
    if v in FALSE:
        return False, None
    return None, Text("field.bool_got", "{field} must be true or false (got {value!r})",
                      field=column, value=value)


def read_csv(text: str) -> tuple[list[dict[str, Any]], dict[str, int], list[str]]:
    """Resource entries, the row each starts on (by code), and the row-numbered
    problems found while reading (columns, booleans, numbers, conflicting repeats)."""
    text = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], {}, [where(_row(1), Text("cat.csv_empty",
                                              "the file is empty (needs a header row)"))]
    except csv.Error as exc:
        return [], {}, [where(_row(1), str(exc))]
    columns = [ALIASES.get(h.strip(), h.strip()) for h in header]
    problems: list[str] = []
    unknown = [h for h in columns if h not in COLUMNS]
    if unknown:
        problems.append(where(_row(1), Text("cat.csv_columns",
                                            "unknown column(s) {names}; known: {known}",
                                           names=", ".join(unknown), known=", ".join(COLUMNS))))
    for needed in ("code", "item_name", "item_title"):
        if needed not in columns:
            problems.append(where(_row(1), Text("cat.csv_missing", "missing column {name}",
                                               name=needed)))
    if problems:
        return [], {}, problems
    entries: dict[str, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    try:
        for n, raw in enumerate(reader, start=2):
            if n > MAX_ROWS:
                problems.append(where(_row(n), Text("cat.csv_rows",
                                                    "more than {n} rows", n=MAX_ROWS)))
                break
            if not any(c.strip() for c in raw):
                continue
            if len(raw) > len(columns):
                problems.append(where(_row(n), Text("cat.csv_cells",
                                                    "{n} cells, the header has {count}",
                                                   n=len(raw), count=len(columns))))
                continue
            row = {c: (restore(raw[k].strip()) if k < len(raw) else "")
                   for k, c in enumerate(columns)}
            problems += _row_into(row, n, entries, first_row)
    except csv.Error as exc:
        problems.append(where(_row(reader.line_num), str(exc)))
    return list(entries.values()), first_row, problems


def _row_into(row: dict[str, str], n: int, entries: dict[str, dict[str, Any]],
              first_row: dict[str, int]) -> list[str]:
    problems: list[str] = []
    code = row.get("code", "")
    if not code:
        return [where(_row(n), Text("cat.csv_no_code", "code is empty"))]
    share = row.get("share_type", "")
    row["share_type"] = SHARE_TITLES.get(share, share)
    resource: dict[str, Any] = {}
    for key in ("code", "name", "summary", "provider", "system", "share_type", "conditions",
                "basis", "share_method", "update_cycle", "open_attr", "status"):
        if row.get(key):
            resource[key] = row[key]
    route: dict[str, Any] = {k: row[f"route_{k}"] for k in ("method", "path", "records")
                             if row.get(f"route_{k}")}
    for key in ("query", "envelope"):
        if row.get(f"route_{key}"):
            route[key] = query_cell(row[f"route_{key}"])
    item: dict[str, Any] = {"name": row.get("item_name", ""), "title": row.get("item_title", "")}
    if row.get("item_type"):
        item["type"] = row["item_type"]
    if row.get("item_level"):
        try:
            item["level"] = int(row["item_level"])
        except ValueError:
            problems.append(where(_row(n), Text("cat.csv_level",
                                               "item_level must be a number 1-4 (got {value!r})",
                                               value=row["item_level"])))
    if row.get("item_mask"):
        item["mask"] = row["item_mask"]
    for col, key in (("item_encrypt", "encrypt"), ("item_authoritative", "authoritative"),
                     ("item_shareable", "shareable")):
        value, problem = _bool(row.get(col, ""), col)
        if problem:
            problems.append(where(_row(n), problem))
        elif value is not None:
            item[key] = value
    entry = entries.get(code)
    if entry is None:
        entry = {**resource, "items": []}
        if route:
            entry["route"] = route
        entries[code] = entry
        first_row[code] = n
    else:
        for key, text in resource.items():
            if key in entry and entry[key] != text:
                problems.append(where(_row(n), Text(
                    "cat.csv_differs", "{column} {text!r} differs from row {n} ({first!r})",
                    column=key, text=text, n=first_row[code], first=entry[key])))
        for key, text in route.items():
            old = entry.setdefault("route", {}).get(key)
            if old is not None and old != text:
                problems.append(where(_row(n), Text(
                    "cat.csv_differs", "{column} {text!r} differs from row {n} ({first!r})",
                    column=f"route_{key}", text=text, n=first_row[code], first=old)))
            entry["route"][key] = text
    entry["items"].append(item)
    entry.setdefault("_rows", []).append(n)
    return problems


def query_cell(text: str) -> list[str]:
    """A ``route_query`` (or ``route_envelope``) cell as the route's list."""
    return [] if text.strip() == NO_QUERY else text.replace(",", " ").split()


def _query_text(query: tuple[str, ...] | None) -> str:
    if query is None:
        return ""
    return " ".join(query) if query else NO_QUERY


def csv_problems(entries: list[dict[str, Any]], first_row: dict[str, int]) -> list[str]:
    """Model problems of entries read from CSV, placed by row: item problems on the
    item's row, resource problems on the resource's first row."""
    out: list[str] = []
    for e in entries:
        rows = e.get("_rows", [])
        clean = {k: v for k, v in e.items() if k != "_rows"}
        for p in resource_problems(clean):
            if p.startswith("items[") and "]" in p:
                k = int(p[6:p.index("]")])
                row = rows[k] if k < len(rows) else first_row.get(str(e.get("code")), 0)
                out.append(where(_row(row), p))
            else:
                out.append(where(_row(first_row.get(str(e.get("code")), 0)), p))
    return out


def strip_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "_rows"} for e in entries]


def write_csv(resources: Iterable[Resource]) -> str:
    """One row per item; every cell formula-safe (:mod:`audit.spreadsheet`), which
    :func:`read_csv` undoes."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in resources:
        for k, i in enumerate(r.items):
            head = [
                r.code, r.name, r.summary, r.provider, r.system, r.share_type, r.conditions,
                r.basis, r.share_method, r.update_cycle, r.open_attr, r.status,
                r.route.method, r.route.path, r.route.records, _query_text(r.route.query),
                _query_text(r.route.envelope),
            ] if k == 0 else [r.code] + [""] * (len(RESOURCE_COLUMNS) - 1)
            flags = [("true" if f else "false")
                     for f in (i.encrypt, i.authoritative, i.shareable)]
            writer.writerow([*head, i.name, i.title, i.type, str(i.level), i.mask or "", *flags])
    return out.getvalue()
