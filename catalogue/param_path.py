"""A parameter's name as a path of parts, as the frameworks that nest parameters read it.

PHP, Rack, Express's ``qs`` and Spring's data binder read ``columns[0][data]`` and
``orders[0].column`` as a path (``columns``, ``0``, ``data``), not as one name:
jQuery DataTables sends ``columns[i][data]`` for every column of its table, 若依
(RuoYi) ``params[beginTime]`` beside ``params[endTime]``, MyBatis-Plus
``orders[0].column`` beside ``orders[0].asc``. Two such names are the same parameter
only when their paths are, and they collide when one path holds the other
(``limit=1&limit[x]=2``: one upstream takes the text, another the map): the "named
twice" rule of ``catalogue.query`` compares these paths.

Each part is read as the laxest of those upstreams reads it: ``[x]`` and ``.x`` alike
(Spring reads ``a[0].b``, ``qs`` with ``allowDots`` ``a.b`` as ``a[b]``), white space
around it dropped, an index as its number (Spring's ``columns[00]`` is ``columns[0]``).
"""

from __future__ import annotations

import re

_BASE = re.compile(r"[^\[.]*")
_PART = re.compile(r"\[([^\]]*)\]?|\.([^.\[]*)")
_INDEX = re.compile(r"[+-]?[0-9]+")


def name_path(name: str) -> tuple[str, ...]:
    """The parts of ``name`` (decoded and folded as ``catalogue.query.read_name``
    reads it, before it cuts the ``[...]`` suffix)."""
    base = _BASE.match(name)
    assert base is not None  # the pattern matches the empty string
    parts = [base[0].strip()]
    for m in _PART.finditer(name, base.end()):
        part = (m[1] if m[1] is not None else m[2] or "").strip()
        parts.append(str(int(part)) if _INDEX.fullmatch(part) else part)
    return tuple(parts)


class Paths:
    """The paths of a request's parameters seen so far: :meth:`clash` finds the one a
    new path collides with (the same, or one holding the other)."""

    def __init__(self) -> None:
        self._whole: dict[tuple[str, ...], str] = {}
        self._within: dict[tuple[str, ...], str] = {}  # proper prefixes of those

    def clash(self, path: tuple[str, ...], shown: str, *, repeatable: bool = False
              ) -> str | None:
        """The name (as shown) of a path seen before that ``path`` collides with, or
        None, then remembering ``path`` as ``shown``. ``repeatable``: ``path`` may
        repeat itself (not a path below it: ``sort=a&sort[x]=b`` still collides)."""
        if repeatable and path in self._whole and path not in self._within:
            return None
        found = self._whole.get(path) or self._within.get(path)
        if found is None:
            found = next((self._whole[path[:k]] for k in range(1, len(path))
                          if path[:k] in self._whole), None)
        if found is not None:
            return found
        self._whole[path] = shown
        for k in range(1, len(path)):
            self._within.setdefault(path[:k], shown)
        return None
