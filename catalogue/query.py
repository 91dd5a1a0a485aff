"""The query parameters a consumer may send on a governed route (a route's ``query:``).

The proxy cuts an upstream's answer to the items the consumer's grant names, but
the request's query string reaches the upstream as sent. An upstream that renames
or projects on request puts a cut item under a granted item's name, and the cut
releases it: PostgREST ``GET /vehicles?select=brand:driver_id_number`` answers
``[{"brand": "<the ID number>"}]``; likewise OData ``$select``/``$apply``, the
``fields=`` of some APIs, JSONP's ``?callback=``. So, for a caller whose answer is
shaped:

    query: [a, b]   only these parameters (``[]``: none at all)
    query unset     any parameter but the well-known projection, renaming and
                    wrapping ones (:data:`REFUSED_BY_DEFAULT`)
    either way      a parameter named twice (in one spelling or two) is ambiguous:
                    upstreams differ on which one they take; but for Spring Data's
                    ``sort`` (:data:`REPEATABLE`), which it reads all of
                    (``sort=plate_number,desc&sort=brand,asc``), and PHP's and Rack's
                    list ``x[]=1&x[]=2`` (:data:`APPENDED`), each value checked

A parameter's name is compared as the laxest upstream reads it (:func:`read_name`):
split at ``&`` and ``;``, ``+`` a space, percent-decoded (``%73elect`` is
``select``; a name still holding ``%`` after one decoding is refused: double
encoding), compatibility forms and letter case folded (``SELECT``, ``ｓｅｌｅｃｔ``),
white space around it dropped, a NUL taken as its end, and a ``[...]`` suffix cut (PHP's and Rails'
``select[]``, JSON:API's ``fields[vehicles]``).

A shaped request's body is read the same way (:func:`body_refusal`): a form body's
names and a JSON object's top-level keys count as parameters beside the query's (Rack
and Rails merge them); any other body is refused.

Beyond the names, the query string and the body are read whole
(``catalogue.request_names``): a name or value naming an item the caller is not given
in the clear, at any depth (``{"filter": {"driver_id_number": ...}}``), is refused, and
so is GraphQL unless the route lists ``query`` and the caller is given every item in
the clear, and, for a caller with items withheld, a free-text search (``?q=``,
``keyword=``: ``catalogue.free_text``) the route's ``query:`` does not list.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from catalogue.graphql import MEDIA_TYPE as GRAPHQL
from catalogue.item_names import MAX_WORDS, NotGranted, TooManyWords, words_budget
from catalogue.media import media_type
from catalogue.param_path import Paths, name_path
from catalogue.refusal import BODY, MAX_SHOWN, Refusal
from catalogue.request_names import (
    Pairs,
    json_refusal,
    parameters,
    query_refusal,
    text_refusal,
)
from catalogue.routes import fold
from texts import Text, where

# a name an owner lists: letters, digits and ``_ . - $`` (OData's ``$top``), not
# starting with ``.`` or ``-``
NAME_RE = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_.$-]{0,63}\Z")
MAX_NAMES = 50
# read without a leading "$": OData 4.01 takes its system query options with or without it
REFUSED_BY_DEFAULT = frozenset({"select", "apply", "expand", "compute", "fields",
                                "callback", "jsonp"})
NOTHING = NotGranted((), ())
# names a query string may repeat: the framework takes every value (Spring Data's
# ``Pageable``: one ordering each), each is read for items' names
# (``catalogue.request_names``), so whichever an upstream takes is one the gateway checked.
# Not a JSON key (a JSON reader keeps one of two), nor a path below the name
# (``sort[x]``), nor DataTables' ``columns[0][data]``, which the gateway reads by position
REPEATABLE = frozenset({("sort",)})
# PHP's and Rack's ``x[]=1&x[]=2`` (and ``qs``' ``arrayFormat: 'brackets'``): a list
# of every value, each read for items' names; an exact repeat of a path ending in
# ``[]`` passes (``x[]`` beside ``x`` or ``x[a]`` is still named twice)
APPENDED = ""


def names_problems(value: Any) -> list[str]:
    """Problems of a route's ``query`` (None: unset, no problem)."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [Text("cat.query_list", "query must be a list of parameter names")]
    problems: list[str] = []
    if len(value) > MAX_NAMES:
        problems.append(Text("cat.query_many", "query names more than {n} parameters",
                             n=MAX_NAMES))
    seen: dict[str, int] = {}
    for k, name in enumerate(value[:MAX_NAMES + 1]):
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(where(f"query[{k}]", Text(
                "cat.query_name", "bad parameter name {name!r} (letters, digits and _ . - $, "
                "at most 64)", name=name[:MAX_SHOWN] if isinstance(name, str) else name)))
            continue
        key = fold(name)
        if key in seen:
            problems.append(where(f"query[{k}]", Text(
                "cat.query_twice", "parameter {name!r} listed twice (first at {first})",
                name=name, first=f"query[{seen[key]}]")))
        else:
            seen[key] = k
    return problems


def read_name(raw: str) -> str | None:
    """The parameter name ``raw`` (as sent, before ``=``) as the laxest upstream reads
    it, for comparison; None when it is still percent-encoded after one decoding."""
    whole = _read_whole(raw)
    return None if whole is None else whole.split("[", 1)[0].strip()


def _read_whole(raw: str) -> str | None:
    """:func:`read_name` with its ``[...]`` suffix (``catalogue.param_path``)."""
    text = unquote_to_bytes(raw.replace("+", " ")).decode("utf-8", "replace")
    if "%" in text:
        return None
    # a C upstream ends the name at a NUL
    return fold(text.split("\x00", 1)[0]).strip()


def takes_graphql(allowed: Sequence[str] | None) -> bool:
    """Whether a route whose ``query:`` is ``allowed`` says it takes GraphQL: it lists
    ``query`` (``catalogue.graphql``)."""
    return allowed is not None and "query" in {fold(n) for n in allowed}


def refusal(query: str, allowed: Sequence[str] | None, names: NotGranted = NOTHING
            ) -> Refusal | None:
    """The first parameter of the raw ``query`` string that a shaped caller may not send
    on a route whose ``query:`` is ``allowed`` (None: unset), or None (module docstring);
    ``names``: the items it may not name."""
    return (_first_refused(parameter_names(query), allowed)
            or _bounded(lambda: query_refusal(query, names, takes_graphql(allowed),
                                              listed=allowed is not None), QUERY))


def _bounded(check: Callable[[], Refusal | None], where_: str) -> Refusal | None:
    """``check`` within the words one request may make the gateway read
    (``catalogue.item_names.words_budget``); past them the request is refused."""
    try:
        with words_budget():
            return check()
    except TooManyWords:
        return Refusal(where_, Text("qr.words", "the request holds more than {n} words to "
                                    "check for items: send less in one request",
                                    n=MAX_WORDS))


def body_refusal(body: bytes, content_type: str | None, content_encoding: str | None,
                 query: str, allowed: Sequence[str] | None, names: NotGranted = NOTHING
                 ) -> Refusal | None:
    """The first parameter of a shaped request's ``body`` (beside its raw ``query``)
    that the caller may not send, or why the body cannot be checked (parameter
    ``(body)``), or None. Rack merges a form body's parameters into the request's, Rails
    a JSON object's top-level keys: those are names as the query's are, under the same
    rules, and one named in both the query and the body is named twice. A JSON array
    or scalar has no parameter names. Any body is then read whole for the items of
    ``names`` and GraphQL (``catalogue.request_names``; ``application/graphql`` only
    there). Any other body (multipart, text, a coded or a non-UTF-8 one) is refused: the
    gateway cannot check what it cannot read."""
    if not body:
        return None
    if content_encoding is not None and content_encoding.strip().lower() not in IDENTITY:
        return Refusal(BODY, Text("qr.coding", "a body in the {coding!r} coding cannot be "
                                  "checked", coding=content_encoding[:MAX_SHOWN]))
    media, charset = media_type(content_type)
    if charset is not None and charset not in CHARSETS:
        return Refusal(BODY, Text("qr.charset", "a body in the {charset!r} charset cannot "
                                  "be checked", charset=charset[:MAX_SHOWN]))
    is_json = media == "application/json" or (media.startswith("application/")
                                              and media.endswith("+json"))
    if media != FORM and not is_json and media != GRAPHQL:
        return Refusal(BODY, Text("qr.media", "a {media} body cannot be checked (only a "
                                  "form or a JSON body)", media=media[:MAX_SHOWN] or "untyped"))
    try:
        # UTF-8 only (RFC 8259 8.1; a form's names are percent-encoded ASCII): another
        # reading of the bytes could find a name this one does not
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(BODY, Text("qr.not_utf8", "the body is not UTF-8"))
    graphql = takes_graphql(allowed)
    if media == GRAPHQL:
        return _bounded(lambda: text_refusal(text, names, graphql), BODY)
    if media == FORM:
        return (_first_refused(itertools.chain(parameter_names(query),
                                               parameter_names(text)), allowed)
                or _bounded(lambda: query_refusal(text, names, graphql,
                                                  listed=allowed is not None), BODY))
    try:
        doc = json.loads(text, object_pairs_hook=Pairs)
    except (ValueError, RecursionError):
        return Refusal(BODY, Text("qr.not_json", "the body is not valid JSON"))
    if isinstance(doc, Pairs):  # an array or a scalar has no parameter names
        found = _first_refused(parameter_names(query), allowed,
                               keys=[key for key, _ in doc])
        if found is not None:
            return found
    # a free-text member passes where the route lists the top-level key it stands under
    # (an array's members stand under none)
    return _bounded(lambda: json_refusal(doc, names, graphql,
                                         listed=allowed is not None and isinstance(doc, Pairs)),
                    BODY)


FORM = "application/x-www-form-urlencoded"
QUERY = "(query)"  # the parameter a refusal of a query string as a whole names
IDENTITY = frozenset({"", "identity"})
CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def parameter_names(query: str) -> Iterator[str]:
    """The raw parameter names of a query string (or a form body), as sent."""
    for part in parameters(query):
        raw = part.split("=", 1)[0]
        if raw:  # "&&", "=x": no name, nothing an upstream selects by
            yield raw


_KEYS = "(keys)"  # where a JSON body's keys start, by identity


def _first_refused(raws: Iterable[str], allowed: Sequence[str] | None,
                   keys: Sequence[str] = ()) -> Refusal | None:
    """The first of the parameter names ``raws`` (then a JSON body's top-level ``keys``,
    which repeat nothing) that is refused, or None."""
    permitted = None if allowed is None else {fold(n) for n in allowed}
    seen = Paths()
    repeats = True  # until the keys
    for raw in itertools.chain(raws, (_KEYS,), keys):
        if raw is _KEYS:
            repeats = False
            continue
        shown = raw[:MAX_SHOWN]
        whole = _read_whole(raw)
        if whole is None:
            return Refusal(shown, Text("qr.percent", "its name holds a % once decoded "
                                       "(double or bad percent-encoding)"))
        name = whole.split("[", 1)[0].strip()
        # by the whole path: ``columns[0][data]`` and ``columns[1][data]`` are two
        # parameters, ``limit`` and ``limit[x]`` collide (``catalogue.param_path``)
        path = name_path(whole)
        first = seen.clash(path, shown, repeatable=repeats and (
            path in REPEATABLE or path[-1] == APPENDED))
        if first is not None:
            return Refusal(shown, Text("qr.twice", "named twice ({first!r} and {shown!r}): "
                                       "upstreams differ on which one they take",
                                       first=first, shown=shown))
        if permitted is not None:
            if name not in permitted:
                return Refusal(shown, Text("qr.unlisted",
                                           "not among the route's query parameters"))
        elif name.lstrip("$") in REFUSED_BY_DEFAULT:
            return Refusal(shown, Text("qr.projection", "a projection, renaming or wrapping "
                                       "parameter, refused unless the route lists it in "
                                       "query"))
    return None
