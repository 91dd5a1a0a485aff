"""Match a request (method, path inside a system) against resource route templates.

A template is a path whose segments are literals or ``{name}`` placeholders; a
placeholder matches exactly one non-empty segment. When several templates
match, the one with more literal segments wins (``/api/vehicles/export`` over
``/api/vehicles/{plate}``). A route's method ``*`` matches any method; HEAD is
matched as GET.

The path given is already decoded once (``gateway.proxy.path``). Upstream
servers disagree on which spellings name the same resource, and a spelling the
catalogue does not recognise but the upstream does would let governed records
out raw. So two levels of "the same":

    match       (governed) letters compared case-insensitively (unless the system
                is case-sensitive), trailing slashes ignored
                ``/API/Vehicles/`` is ``/api/vehicles``
    resembling  (ambiguous) what some upstreams also read as the route: a ``;``
                path parameter (servlet containers), trailing dots and white
                space and a ``::$DATA`` stream name (Windows, IIS), a trailing
                ``+`` (a form decoder's space), a decoded ``?`` or ``#``, a format
                suffix such as ``.json`` on the last segment (Rails; old Spring
                reads anything from the first dot: ``.a.b``), each also in its
                compatibility form (full-width ``．`` and ``；``, as Windows' best
                fit reads them)
                ``/api/vehicles;x=1``, ``/api/vehicles.``, ``/api/vehicles.json``,
                ``/api/vehicles+``, ``/api/vehicles．``

The proxy shapes what matches and refuses what only resembles: it cannot know
which reading a given upstream applies.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from texts import Text

T = TypeVar("T")

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}\Z")
# what an upstream may drop from a segment: everything from a ";" (path parameter), a
# "?" or "#" that arrived percent-encoded, an NTFS stream or attribute name that IIS
# reads as the file itself ("::$DATA", ":$I30:$INDEX_ALLOCATION"), and trailing
# dots, white space and "+"
_LOOSE_CUT = re.compile(r"[;?#].*$|:{1,2}\$.*$", re.DOTALL)
_LOOSE_TAIL = re.compile(r"[.\s+]+$")
# a format suffix on the last segment (".json", ".xml", ".do", ...): everything from
# its first dot after a letter, as Spring MVC's suffix pattern match (on by default
# before 5.3) serves "/admin.a.b" and "/admin.-" from the handler of "/admin"; a
# segment that is only a format (Rails reads "/admin/.json" as "/admin/")
_SUFFIX = re.compile(r"(?<=[^.\s])\..*$|^\.[A-Za-z0-9]{1,8}$", re.DOTALL)


def template_problems(template: str) -> list[str]:
    problems: list[str] = []
    names: set[str] = set()
    for seg in template.strip("/").split("/"):
        if "{" in seg or "}" in seg:
            m = _PARAM.match(seg)
            if not m:
                problems.append(Text("cat.placeholder_segment",
                                     "bad placeholder segment {segment!r} (use a whole segment "
                                     "{{name}})", segment=seg))
            elif m.group(1) in names:
                problems.append(Text("cat.placeholder_twice", "placeholder {{{name}}} used twice",
                                     name=m.group(1)))
            else:
                names.add(m.group(1))
    return problems


def fold(text: str) -> str:
    """``text`` with letter case and compatibility forms taken out, as the laxest
    upstream compares: NFKC (full-width ａｐｉ is api), then upper and lower case (so
    dotless ı and dotted İ, which Java's equalsIgnoreCase and regex engines' case-
    insensitive modes read as i, are i; ſ is s; the Kelvin sign is k)."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text).upper().lower()
    return unicodedata.normalize("NFKC", text.replace("i\u0307", "i"))


def _loose(segment: str, *, last: bool, fold_case: bool = True) -> str:
    """``segment`` as the laxest upstream reads it (see the module docstring); ``fold``:
    letter case ignored as well."""
    if not segment.isascii():  # full-width ．and ；are cut as . and ; are
        segment = unicodedata.normalize("NFKC", segment)
    seg = _LOOSE_TAIL.sub("", _LOOSE_CUT.sub("", segment))
    if last:
        seg = _LOOSE_TAIL.sub("", _SUFFIX.sub("", seg))
    return fold(seg) if fold_case else seg


@dataclass(frozen=True)
class Template:
    path: str
    segments: tuple[str | None, ...]  # None = placeholder
    names: tuple[str, ...]
    folded: tuple[str | None, ...] = ()  # segments case-folded
    loose: tuple[str | None, ...] = ()  # segments as the laxest upstream reads them
    loose_cased: tuple[str | None, ...] = ()  # the same, letter case kept

    @classmethod
    def parse(cls, path: str) -> Template:
        segs: list[str | None] = []
        names: list[str] = []
        for seg in _split(path):
            m = _PARAM.match(seg)
            if m:
                segs.append(None)
                names.append(m.group(1))
            else:
                segs.append(seg)
        last = len(segs) - 1
        return cls(path, tuple(segs), tuple(names),
                   tuple(None if s is None else fold(s) for s in segs),
                   tuple(None if s is None else _loose(s, last=i == last)
                         for i, s in enumerate(segs)),
                   tuple(None if s is None else _loose(s, last=i == last, fold_case=False)
                         for i, s in enumerate(segs)))

    @property
    def literals(self) -> int:
        return sum(1 for s in self.segments if s is not None)

    def match(self, path: str, *, case_sensitive: bool = True) -> dict[str, str] | None:
        return self.match_parts(_split(path), case_sensitive=case_sensitive)

    def match_parts(self, parts: list[str], *, case_sensitive: bool = True
                    ) -> dict[str, str] | None:
        """Placeholder values when ``parts`` (a path split by :func:`_split`) match."""
        if len(parts) != len(self.segments):
            return None
        want_segments = self.segments if case_sensitive else self.folded
        params: dict[str, str] = {}
        names = iter(self.names)
        for want, got in zip(want_segments, parts, strict=True):
            if want is None:
                if not got:
                    return None
                params[next(names)] = got
            elif want != (got if case_sensitive else fold(got)):
                return None
        return params

    def resembles(self, loose: list[str], *, prefix: bool = False,
                  case_sensitive: bool = False) -> bool:
        """True when the loosened path ``loose`` (:func:`loosen`, with the same
        ``case_sensitive``) reads as this template (``prefix``: or a path below it)."""
        mine = self.loose_cased if case_sensitive else self.loose
        if len(loose) != len(mine) and not (prefix and len(loose) > len(mine)):
            return False
        return all(got if want is None else want == got
                   for want, got in zip(mine, loose, strict=False))


def _split(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def loosen(path: str, *, case_sensitive: bool = False) -> list[str]:
    """``path`` split and read as the laxest upstream reads it (letter case kept when
    the upstream tells letters apart)."""
    parts = _split(path)
    last = len(parts) - 1
    return [_loose(p, last=i == last, fold_case=not case_sensitive)
            for i, p in enumerate(parts)]


def method_matches(route_method: str, method: str) -> bool:
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    return route_method == "*" or route_method.upper() == method


@dataclass(frozen=True)
class Match(Generic[T]):
    target: T
    params: dict[str, str]


class RouteTable(Generic[T]):
    """Templates of one system, each with its target (a resource)."""

    def __init__(self, entries: Iterable[tuple[str, str, T]] = ()) -> None:
        self._entries: list[tuple[str, Template, T]] = []
        # the entries most literal segments first, then longest (ties in the order
        # added), and the same by segment count: built on the first lookup after an
        # add. Sorting on every add made a snapshot of n routes cost n sorts (10,000
        # routes of one system: minutes); a path only ever matches a template of
        # its own segment count, so match() looks at those alone, in the same order
        self._index: tuple[list[tuple[str, Template, T]],
                           dict[int, list[tuple[str, Template, T]]]] | None = None
        for method, path, target in entries:
            self.add(method, path, target)

    def add(self, method: str, path: str, target: T) -> None:
        self._entries.append((method.upper(), _parsed(path), target))
        self._index = None

    def _indexed(self) -> tuple[list[tuple[str, Template, T]],
                                dict[int, list[tuple[str, Template, T]]]]:
        index = self._index
        if index is None:  # built aside and swapped in whole: a concurrent reader is safe
            ordered = sorted(self._entries, key=lambda e: (-e[1].literals, -len(e[1].segments)))
            by_length: dict[int, list[tuple[str, Template, T]]] = {}
            for entry in ordered:
                by_length.setdefault(len(entry[1].segments), []).append(entry)
            index = self._index = (ordered, by_length)
        return index

    def match(self, method: str, path: str, *, case_sensitive: bool = False,
              any_method: bool = False) -> Match[T] | None:
        """The route that governs ``path`` (letters compared without case unless
        ``case_sensitive``; trailing slashes ignored); ``any_method``: whatever its
        method."""
        parts = _split(path)
        for route_method, template, target in self._indexed()[1].get(len(parts), ()):
            if not any_method and not method_matches(route_method, method):
                continue
            params = template.match_parts(parts, case_sensitive=case_sensitive)
            if params is not None:
                return Match(target, params)
        return None

    def resembling(self, method: str, path: str, *, prefix: bool = False,
                   case_sensitive: bool = False, any_method: bool = False) -> T | None:
        """The target of a route that a lax upstream could read ``path`` as (with
        ``prefix``: or a path below it), for a path :meth:`match` did not govern."""
        loose = loosen(path, case_sensitive=case_sensitive)
        for route_method, template, target in self._indexed()[0]:
            if (any_method or method_matches(route_method, method)) and template.resembles(
                    loose, prefix=prefix, case_sensitive=case_sensitive):
                return target
        return None


@lru_cache(maxsize=1 << 16)
def _parsed(path: str) -> Template:
    """:meth:`Template.parse`, kept: a Template is immutable, and a snapshot reload after
    one change re-adds every unchanged route (a third of a 10,000-route build)."""
    return Template.parse(path)


def same_route(a_method: str, a_path: str, b_method: str, b_path: str) -> bool:
    """Two routes that would always match the same requests."""
    methods_overlap = a_method == "*" or b_method == "*" or a_method.upper() == b_method.upper()
    return methods_overlap and Template.parse(a_path).segments == Template.parse(b_path).segments
