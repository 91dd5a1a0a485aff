"""Texts that know which message they are.

A :class:`Text` is the English text an error (or a report line) carries, and it *is*
that string: ``str(exc)``, logs, JSON problem details and tests see the English, word
for word. It also remembers the stable ``key`` of the message, the English
``template`` written beside the code that raises it, and the ``params`` that filled
the template in, so that an edge (the CLI, the portal) can show the message in another
language by its key, without reading the English back::

    raise InvalidInput(Text("cat.until_past", "until is in the past"))
    raise UnknownObject(Text("cat.no_resource", "no resource {code!r}", code=code))

A parameter may itself be a :class:`Text` (a place and the problem found there, a
reason given by a lower layer); it is translated in turn. A tuple of texts is a list
of problems: ``"; "``-joined in English, each one translated. Anything else is shown
as it is (a name, a number, a driver's own words).

This module sits below every package (``keys``, ``audit``, ``policies``,
``catalogue``, ``gateway`` may import it) and imports nothing but the standard
library. The translations themselves live at the edge, in ``gateway/i18n.py``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Text", "joined", "message_of", "os_reason", "parts", "where"]

SEPARATOR = "; "


def _english(value: object) -> object:
    if isinstance(value, tuple):
        return SEPARATOR.join(str(v) for v in value)
    return value


class Text(str):
    """The English text of the message ``key``; ``template`` filled in with ``params``."""

    key: str
    template: str
    params: Mapping[str, Any]

    def __new__(cls, key: str, template: str, /, **params: Any) -> Text:
        self = super().__new__(cls, template.format(**{k: _english(v)
                                                       for k, v in params.items()}))
        self.key = key
        self.template = template
        self.params = params
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (and copies) keep the key
        return (_rebuild, (self.key, self.template, dict(self.params)))


def _rebuild(key: str, template: str, params: dict[str, Any]) -> Text:
    return Text(key, template, **params)


def where(place: str, problem: str) -> Text:
    """``place: problem`` (a file, a line, a field and what is wrong there)."""
    return Text("where", "{where}: {problem}", where=place, problem=problem)


def joined(problems: Iterable[str]) -> Text:
    """Several problems on one line, ``"; "``-joined in English."""
    return Text("list", "{problems}", problems=tuple(problems))


def parts(text: str) -> list[str]:
    """The problems of a :func:`joined` text, each still a :class:`Text`; any other
    text split at ``"; "``."""
    if isinstance(text, Text) and text.key == "list":
        return [str(p) if not isinstance(p, str) else p for p in text.params["problems"]]
    return text.split(SEPARATOR)


def message_of(exc: BaseException) -> str:
    """What ``exc`` says: the :class:`Text` it was raised with, when it was (also as
    its ``description``), else ``str(exc)``."""
    first = exc.args[0] if len(exc.args) == 1 else None
    if isinstance(first, Text):
        return first
    description = getattr(exc, "description", None)
    if isinstance(description, Text) and description == str(exc):
        return description
    return str(exc)


def os_reason(exc: OSError) -> str:
    """Why the operating system refused, as Python words it (``exc.strerror``), keyed
    by the errno name (``os.enoent``); ``str(exc)`` when there is no errno."""
    reason = exc.strerror or str(exc)
    name = errno.errorcode.get(exc.errno or 0)
    return Text(f"os.{name.lower()}", reason) if name and exc.strerror else reason
