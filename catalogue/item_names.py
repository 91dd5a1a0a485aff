"""Item names as lax readers compare them, and finding one named in a request's text.

A consumer whose answer is cut to some items can still *query by* an item it is not
given in the clear, and learn it from whether records come back (an oracle: is this ID
number in the fleet?): ``{"filter": {"driver_id_number": "4501..."}}``, Django's
``driver_id_number__startswith``, Ransack's ``driver_id_number_start``, a filter list's
``{"field": "driverIdNumber"}``, an ordering ``-driver_id_number`` (sorting by it
bisects it). :class:`NotGranted` finds such a name in any key or string value.

A text is read token by token (runs of letters, digits, ``_`` and ``-``, after NFKC),
each split into words at ``_``, ``-``, digits and camelCase humps. A token names an
item when the item's words stand in it in a row once the granted items' own words are
taken out (so ``driver_name_cont`` names the granted ``driver_name``, not a cut
``name``), or when the whole token is the item's name as :func:`item_key` compares
(``DRIVERIDNUMBER``). Free text naming the words apart (``driver id number``) is not
a name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from catalogue.routes import fold

_SEPARATORS = re.compile(r"[\W_]+")
_TOKENS = re.compile(r"[\w-]+")
# ASCII humps first (``IDNumber`` is ID, Number), then digits, then other scripts' words
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_A-Za-z]+")
# letters Java's equalsIgnoreCase and Unicode case-insensitive matching read as ASCII
# ones (``catalogue.routes.fold``), mapped before a text is cut into words
_AS_ASCII = str.maketrans({"\u0131": "i", "\u0130": "I", "\u017f": "s"})


def item_key(name: str) -> str:
    """``name`` as a lax reader compares keys: compatibility forms, letter case and
    the separators between words (``_``, ``-``, spaces) aside."""
    return _SEPARATORS.sub("", fold(name))


def words(token: str) -> tuple[str, ...]:
    """The words of one token (``driverIdNumber``: driver, id, number), case folded."""
    return tuple(w.casefold() for w in _WORDS.findall(token))


def _within(seq: tuple[str, ...], run: list[str]) -> bool:
    n = len(seq)
    return any(tuple(run[k:k + n]) == seq for k in range(len(run) - n + 1))


class NotGranted:
    """The items of a resource a caller is not given in the clear (cut, or masked), and
    where a request's text names one of them (module docstring)."""

    def __init__(self, items: Iterable[str], granted: Iterable[str]) -> None:
        clear = [n for n in dict.fromkeys(granted)]
        self.items = tuple(n for n in dict.fromkeys(items) if n not in clear)
        self._keys = {item_key(n): n for n in self.items}
        self._any = re.compile("|".join(map(re.escape, self._keys)) or r"(?!)")
        self._seqs = [(n, words(n)) for n in self.items if words(n)]
        # longest first: ``driver_phone_number`` is taken out before ``driver_phone``
        self._granted = sorted((s for s in (words(n) for n in clear) if s),
                               key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.items)

    def named(self, text: str) -> str | None:
        """The first item of these that ``text`` names, or None."""
        # every way of naming an item below leaves its key in the text's: most text
        # (values, other names) is done with here, at C speed
        if self._any.search(item_key(text)) is None:
            return None
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text).translate(_AS_ASCII)
        for token in _TOKENS.findall(text):
            found = self._keys.get(item_key(token))
            if found is not None:
                return found
            for run in self._runs(words(token)):
                for name, seq in self._seqs:
                    if _within(seq, run):
                        return name
        return None

    def _runs(self, ws: tuple[str, ...]) -> list[list[str]]:
        """``ws`` split where a granted item's words stand in a row (those taken out)."""
        runs: list[list[str]] = [[]]
        k = 0
        while k < len(ws):
            seq = next((s for s in self._granted if ws[k:k + len(s)] == s), None)
            if seq is None:
                runs[-1].append(ws[k])
                k += 1
            else:
                runs.append([])
                k += len(seq)
        return [r for r in runs if r]
