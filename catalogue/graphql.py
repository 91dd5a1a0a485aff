"""Recognising a GraphQL document, so that a governed route can refuse one.

A GraphQL alias renames any field to any other name (``{ vehicles { brand:
driver_id_number } }``), a fragment or a variable hides which field is meant, and the
gateway has no GraphQL parser (none is installed, and a second reading of the language
beside the upstream's is the kind of difference an attacker uses). So a shaped request
carrying GraphQL is refused (``catalogue.request_names``) unless the route's ``query:``
lists ``query``; this only *recognises* a document by its first token, as the GraphQL
specification begins one (section 2.2): after ignored tokens (white space, commas, a
byte order mark, ``#`` comments), a selection set ``{`` opening on a name or a spread
``...``, or an operation or fragment keyword with a ``{`` after it. A JSON text (``{"a"``)
and free text (``query about cars``) are not documents.
"""

from __future__ import annotations

import re

_IGNORED = re.compile(r"\A(?:[\s,\ufeff]+|#[^\n\r]*)*")
_SELECTION = re.compile(r"[_A-Za-z]|\.\.\.")
_DEFINITION = re.compile(r"(?:query|mutation|subscription|fragment)(?![_0-9A-Za-z])[^{]*\{")
MEDIA_TYPE = "application/graphql"
# Apollo's automatic persisted queries: a hash standing for a document stored earlier
PERSISTED = "persistedquery"


def is_graphql(text: str) -> bool:
    """Whether ``text`` begins as a GraphQL executable document (module docstring)."""
    rest = _IGNORED.sub("", text, count=1)
    if rest.startswith("{"):
        return _SELECTION.match(_IGNORED.sub("", rest[1:], count=1)) is not None
    return _DEFINITION.match(rest) is not None
