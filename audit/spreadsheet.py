"""CSV that a spreadsheet opens as text: the one CSV writer of every export.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula, and some take a leading tab or carriage return the same way (OWASP
"CSV Injection"): ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0`` typed into a
resource summary or an audit reason would run on the desk of whoever opens the
export. Some skip leading white space first, and a full-width ``＝`` (a Chinese
input method's) is the sign to some. :func:`neutralise` puts an apostrophe before
such a cell (and before a cell that already starts with an apostrophe and then one
of them, so that :func:`restore` gives back exactly what was written).

    export                               writer
    govgate audit query --format csv     audit.export.write_csv
    govgate audit stats --format csv     audit.export.write_csv
    govgate catalogue export --format csv  catalogue.io.write_csv (restore on import)

It lives in ``audit``, the lowest package with an export, so that ``catalogue``
can use it without importing upwards.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Iterable
from typing import IO, Any

# a spreadsheet runs a cell that starts with one of these as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ... also after white space it skips, and in full width (＝, ＋, －, ＠: what a Chinese
# input method types, and what a spreadsheet in a CJK locale takes as the sign itself)
_SIGNS = frozenset("=+-@")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def formula_like(text: str) -> bool:
    """Whether a spreadsheet may take a cell of ``text`` for a formula: it starts with
    one of :data:`FORMULA_START`, or with white space and then a sign, or with the
    sign's compatibility form (full width ＝, small ﹦, ...)."""
    if text.startswith(FORMULA_START):
        return True
    first = text.lstrip()[:1]
    return bool(first) and unicodedata.normalize("NFKC", first)[:1] in _SIGNS


def neutralise(value: Any) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates: a leading apostrophe if needed."""
    text = _cell_text(value)
    if formula_like(text) or (text.startswith("'") and formula_like(text.lstrip("'"))):
        return "'" + text
    return text


def restore(cell: str) -> str:
    """The value :func:`neutralise` made ``cell`` from (for reading an export back)."""
    if cell.startswith("'") and formula_like(cell.lstrip("'")):
        return cell[1:]
    return cell


class SafeWriter:
    """``csv.writer`` whose every cell goes through :func:`neutralise`."""

    def __init__(self, out: IO[str], *, lineterminator: str = "\r\n") -> None:
        self._writer = csv.writer(out, lineterminator=lineterminator)

    def writerow(self, cells: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(c) for c in cells])
