"""The CLI's languages: Simplified Chinese (for a zh_* locale) and English.

Every text is looked up by its key in one table format, ``key: (zh, en)``
(:mod:`gateway.messages`):

* the CLI's own texts (:data:`~gateway.messages.MESSAGES`), rendered with :func:`t`
  (``t("user.added", lang, username=...)``);
* library texts (:data:`~gateway.messages.LIBRARY`): the lower packages (and the
  gateway's own library code) raise a :class:`texts.Text`, the English text that
  remembers its key and parameters; :func:`render` shows it in the CLI's language by
  that key, its parameters translated in turn (a place, a nested reason, a list of
  problems).

Nothing is recognised by its English: a plain string (a database driver's message,
a text raised without a key) is shown as it is, and English is never rewritten: it
is what the library raised, which also reaches the HTTP API and the logs.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping

from gateway.messages import LIBRARY, MESSAGES
from texts import Text, message_of

__all__ = ["accept_lang", "cli_lang", "display_width", "ljust", "message_of", "render", "t"]


def cli_lang(environ: Mapping[str, str] | None = None) -> str:
    """zh when the locale asks for Chinese, else en."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def t(key: str, lang: str, **kwargs: object) -> str:
    zh, en = MESSAGES[key]
    return (zh if lang == "zh" else en).format(**kwargs)


def render(text: str, lang: str) -> str:
    """``text`` in ``lang``: a :class:`~texts.Text` by its key, its parameters
    rendered in turn; its English under ``en`` or when the table has no entry for the
    key; anything else as it is."""
    if lang != "zh" or not isinstance(text, Text):
        return str(text)
    if text.key == "list":
        return "；".join(render(p, lang) for p in text.params["problems"])
    entry = LIBRARY.get(text.key)
    if entry is None:
        return str(text)
    return entry[0].format(**{name: _param(value, lang) for name, value in text.params.items()})


def _param(value: object, lang: str) -> object:
    if isinstance(value, Text):
        return render(value, lang)
    if isinstance(value, tuple):  # a list of problems
        return "；".join(render(v, lang) if isinstance(v, str) else str(v) for v in value)
    return value


def accept_lang(header: str | None, default: str) -> str:
    """zh or en, whichever of the two an ``Accept-Language`` header ranks higher (the
    first of equals); ``default`` when it names neither (``*``, another language, no
    header)."""
    best, rank = default, 0.0
    for entry in (header or "").split(",")[:32]:
        tag, _, params = entry.partition(";")
        lang = tag.strip().lower()[:2]
        if lang not in ("zh", "en"):
            continue
        q = 1.0
        name, _, value = params.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                continue
        if q > rank and q <= 1:
            best, rank = lang, q
    return best


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a CJK character (or a full-width
    punctuation mark) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ljust(text: str, width: int) -> str:
    """``str.ljust`` by terminal columns, so that a table with Chinese text lines up."""
    return text + " " * max(0, width - display_width(text))
