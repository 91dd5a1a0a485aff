"""Match a request (method, path inside a system) against resource route templates.

A template is a path whose segments are literals or ``{name}`` placeholders; a
placeholder matches exactly one non-empty segment. When several templates
match, the one with more literal segments wins (``/api/vehicles/export`` over
``/api/vehicles/{plate}``). A route's method ``*`` matches any method; HEAD is
matched as GET.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def template_problems(template: str) -> list[str]:
    problems = []
    names: set[str] = set()
    for seg in template.strip("/").split("/"):
        if "{" in seg or "}" in seg:
            m = _PARAM.match(seg)
            if not m:
                problems.append(f"bad placeholder segment {seg!r} (use a whole segment {{name}})")
            elif m.group(1) in names:
                problems.append(f"placeholder {{{m.group(1)}}} used twice")
            else:
                names.add(m.group(1))
    return problems


@dataclass(frozen=True)
class Template:
    path: str
    segments: tuple[str | None, ...]  # None = placeholder
    names: tuple[str, ...]

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
        return cls(path, tuple(segs), tuple(names))

    @property
    def literals(self) -> int:
        return sum(1 for s in self.segments if s is not None)

    def match(self, path: str) -> dict[str, str] | None:
        parts = _split(path)
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        names = iter(self.names)
        for want, got in zip(self.segments, parts, strict=True):
            if want is None:
                if not got:
                    return None
                params[next(names)] = unquote(got)
            elif want != got:
                return None
        return params


def _split(path: str) -> list[str]:
    path = path.split("?", 1)[0]
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


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
        for method, path, target in entries:
            self.add(method, path, target)

    def add(self, method: str, path: str, target: T) -> None:
        self._entries.append((method.upper(), Template.parse(path), target))
        self._entries.sort(key=lambda e: (-e[1].literals, -len(e[1].segments)))

    def match(self, method: str, path: str) -> Match[T] | None:
        for route_method, template, target in self._entries:
            if not method_matches(route_method, method):
                continue
            params = template.match(path)
            if params is not None:
                return Match(target, params)
        return None


def same_route(a_method: str, a_path: str, b_method: str, b_path: str) -> bool:
    """Two routes that would always match the same requests."""
    methods_overlap = a_method == "*" or b_method == "*" or a_method.upper() == b_method.upper()
    return methods_overlap and Template.parse(a_path).segments == Template.parse(b_path).segments
