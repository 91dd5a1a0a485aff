"""The CLI's languages: Simplified Chinese (for a zh_* locale) and English.

Every text is looked up by its key in one table, :data:`gateway.messages.MESSAGES`
(``key: (zh, en)``):

* the CLI's own texts, rendered with :func:`t` (``t("user.added", lang, username=...)``);
* library texts: the lower packages (and the gateway's own library code) raise a
  :class:`texts.Text`, the English text that remembers its key and parameters;
  :func:`render` shows it in the CLI's language by that key, its parameters
  translated in turn (a place, a nested reason, a list of problems).

What reaches :func:`render` as a plain string is, under a Chinese locale, still
matched against the table's not-yet-keyed ``lib.*`` entries by its English form
(:func:`localize`), the old way, until every library text is raised with a key;
a text nothing matches (a database driver's message) is shown as it is. English is
never rewritten: it is what the library raised, which also reaches the HTTP API and
the logs.
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from gateway.messages import LIBRARY, MESSAGES
from texts import Text, message_of

__all__ = ["cli_lang", "display_width", "ljust", "localize", "message_of", "render", "t"]

# Placeholders of library entries whose captured text is itself a library text,
# localised in turn: a place ({where}) and free text from a lower layer ({detail})
# when they can be; a {reason} or {problem} must be recognised, or the entry does not
# apply (a line is never half translated for the sake of its frame).
NESTED = frozenset({"where", "detail", "reason", "problem"})
OPTIONAL = frozenset({"where", "detail"})
# What a placeholder of a library entry stands for, so that an entry matches only
# its own texts. By default one token, or one quoted value (a Python repr: 'x y'),
# so that "unknown department {code}" never swallows "unknown department in subject
# 'x'"; some are narrower (a number, a field name, a share type, a state), some wider:
# any text but "; " (the separator of a list of problems), or any text at all for the
# nested ones.
_ONE_VALUE = r"""'[^']*'|"[^"]*"|\S+?"""
_PHRASE = r"(?:(?!; ).)+?"
_LETTER = re.compile(r"[A-Za-z]")
SHAPES = {
    **dict.fromkeys(("n", "line", "count", "seq", "days", "limit"), r"-?[0-9]+"),
    "field": r"[a-z_]+",
    "share_type": r"unconditional|conditional|none",
    "status": r"[a-z_]+",
    **dict.fromkeys(("role1", "role2", "role3"), r"[a-z_]+"),
    **dict.fromkeys(("where", "known", "names", "allowed", "kind", "path", "file",
                     "directory", "source_name", "text"), _PHRASE),
    **dict.fromkeys(NESTED - {"where"}, r".+?"),
}


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
    """``text`` in ``lang``: a :class:`~texts.Text` by its key (its English under
    ``en``, or when the table has no entry for it), a plain string through the
    English-pattern fallback (:func:`localize`)."""
    if lang != "zh" or not text:
        return str(text)
    if not isinstance(text, Text):
        return localize(text, lang)
    if text.key == "list":
        return "；".join(render(p, lang) for p in text.params["problems"])
    entry = LIBRARY.get(text.key)
    if entry is None:
        return str(text)
    params = {name: _render_param(name, value, lang) for name, value in text.params.items()}
    return entry[0].format(**params)


def _render_param(name: str, value: object, lang: str) -> object:
    if isinstance(value, Text):
        return render(value, lang)
    if isinstance(value, tuple):
        return "；".join(render(str(v), lang) if isinstance(v, str) else str(v)
                        for v in value)
    if isinstance(value, str) and name in NESTED:  # a lower layer's words, not yet keyed
        return localize(value, lang)
    return value




class _Verbatim(string.Formatter):
    """Fills a template with text captured from its English form, which already shows
    any ``!r`` quotes."""

    def convert_field(self, value: object, conversion: str | None) -> object:
        return value


_VERBATIM = _Verbatim()


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str], int, bool], ...]:
    """(key, regex of the English text, weight, generic) of every library entry.

    The weight (letters outside placeholders) makes the most specific entry win."""
    out = []
    for key, (_zh, en) in LIBRARY.items():
        regex, seen, letters = [], set(), 0
        for literal, name, _spec, _conv in string.Formatter().parse(en):
            regex.append(re.escape(literal))
            letters += len(_LETTER.findall(literal))
            if name is None:
                continue
            if name in seen:
                regex.append(f"(?P={name})")
            else:
                seen.add(name)
                regex.append(f"(?P<{name}>{SHAPES.get(name, _ONE_VALUE)})")
        out.append((key, re.compile("".join(regex), re.DOTALL), letters, letters == 0))
    return tuple(out)


def _match(text: str, depth: int, generic: bool) -> str | None:
    """The best entry for the whole of ``text``, among the specific entries or the
    generic ones (no letters of their own, e.g. ``{where}: {problem}``), which are
    tried last."""
    best: tuple[int, str, dict[str, str]] | None = None
    for key, regex, weight, is_generic in _patterns():
        if is_generic != generic or (best is not None and weight <= best[0]):
            continue
        m = regex.fullmatch(text)
        if m is None:
            continue
        values = m.groupdict()
        missed = False
        for name, value in values.items():
            if name in NESTED:
                inner = _recognise(value, depth + 1) if depth < 6 else None
                if inner is not None:
                    values[name] = inner
                elif name not in OPTIONAL:
                    missed = True
        if missed:
            continue
        best = (weight, key, values)
    return None if best is None else _VERBATIM.format(LIBRARY[best[1]][0], **best[2])


def _recognise(text: str, depth: int) -> str | None:
    found = _match(text, depth, generic=False)
    if found is None and "; " in text:  # a list of problems: every one, or none
        parts = [_recognise(part, depth + 1) for part in text.split("; ")]
        if all(parts):
            found = "；".join(p for p in parts if p)
    return found if found is not None else _match(text, depth, generic=True)


def localize(text: str, lang: str) -> str:
    """``text`` from the library layer in ``lang``: the Chinese form of a recognised
    English text under ``zh``; anything else (and every text under ``en``) unchanged."""
    if lang != "zh" or not text:
        return text
    return _recognise(text, 0) or text


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a CJK character (or a full-width
    punctuation mark) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ljust(text: str, width: int) -> str:
    """``str.ljust`` by terminal columns, so that a table with Chinese text lines up."""
    return text + " " * max(0, width - display_width(text))
