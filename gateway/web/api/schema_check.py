"""What a ``/api/v1`` operation's declaration (``gateway.web.api.operation``) checks its
input with: the part of JSON Schema (Draft 2020-12, as OpenAPI 3.1 uses it) that the
declarations use, so the published description and the check are one schema.

Keywords: ``type`` (one or a list), ``enum``, ``minLength``/``maxLength``, ``pattern``
(searched, as JSON Schema says), ``format`` ``date`` and ``date-time`` (asserted:
a value the handler would refuse must not pass), ``minimum``/``maximum``,
``items``/``minItems``/``maxItems``/``uniqueItems``, ``properties``/``required``/
``additionalProperties`` (``false`` or a schema). A schema using any other keyword is
refused when it is declared (:func:`unsupported`), not ignored when checked.
``tests/gateway/test_openapi.py`` holds this checker's verdicts against jsonschema-rs.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from texts import Text

JSON = dict[str, Any]

#: the keywords this checker asserts, and the annotations it may ignore
ASSERTED = frozenset({
    "type", "enum", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
    "items", "minItems", "maxItems", "uniqueItems", "properties", "required",
    "additionalProperties"})
ANNOTATIONS = frozenset({"description", "title", "examples", "default", "deprecated",
                         "readOnly", "writeOnly"})
FORMATS = frozenset({"date", "date-time"})
#: a character that is not blank in Python (``str.strip``, which the handlers use) nor in
#: ECMA-262 (``\\s`` there also holds U+FEFF, Python's also U+001C-U+001F and U+0085)
NOT_BLANK = "[^\\s\\u001c-\\u001f\\u0085\\ufeff]"

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                        r"([Zz]|[+-][0-9]{2}:[0-9]{2})")

# Texts, so a Chinese refusal does not say "须为 true or false" (messages.py ``api.type_*``)
_TYPE_NAMES = {"string": Text("api.type_string", "a string"),
               "integer": Text("api.type_integer", "an integer"),
               "number": Text("api.type_number", "a number"),
               "boolean": Text("api.type_boolean", "true or false"),
               "array": Text("api.type_array", "an array"),
               "object": Text("api.type_object", "an object"),
               "null": Text("api.type_null", "null")}


def _kinds(wanted: list[str]) -> Text:
    """``wanted``'s type names, "a or b or c" in the message's language."""
    found = _TYPE_NAMES[wanted[0]]
    for k in wanted[1:]:
        found = Text("api.type_either", "{a} or {b}", a=found, b=_TYPE_NAMES[k])
    return found


def _is(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return kind == "null" and value is None


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as ECMA-262 reads it where the two differ in what declarations use: a
    final ``$`` is the end of the text (Python's also matches before a final newline).
    Declarations spell digits ``[0-9]`` (``\\d`` is wider in Python) and blanks with
    :data:`NOT_BLANK`."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _format_ok(fmt: str, value: str) -> bool:
    try:
        # RFC 3339's full-date (Python also reads 20261231 and 2026-W53-1 as dates)
        if fmt == "date":
            return bool(_DATE.fullmatch(value)) and date.fromisoformat(value) is not None
        if fmt == "date-time":  # a date, "T", a time and an offset ("Z" or ±hh:mm)
            return bool(_DATE_TIME.fullmatch(value)) and datetime.fromisoformat(
                value.upper().replace("Z", "+00:00")) is not None
    except ValueError:
        return False
    return True


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 and 1.0 are equal, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def problems(schema: JSON, value: Any, at: str = "") -> list[Text]:
    """Why ``value`` (found at ``at``, e.g. ``items[2].name``; "" for a whole body) does
    not match ``schema``; empty when it does."""
    kinds = schema.get("type")
    if kinds is not None:
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_is(k, value) for k in wanted):
            return [Text("api.not_type", "{at}: must be {kind}", at=at or "body",
                         kind=_kinds(wanted))]
    out: list[Text] = []
    if "enum" in schema and not any(_equal(value, v) for v in schema["enum"]):
        out.append(Text("api.not_one_of", "{at}: must be one of {known}", at=at,
                        known=", ".join(str(v) for v in schema["enum"])))
    if isinstance(value, str):
        out += _string(schema, value, at)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(Text("api.too_small", "{at}: must be at least {limit}", at=at,
                            limit=schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            out.append(Text("api.too_large", "{at}: must be at most {limit}", at=at,
                            limit=schema["maximum"]))
    elif isinstance(value, list):
        out += _array(schema, value, at)
    elif isinstance(value, dict):
        out += _object(schema, value, at)
    return out


def _string(schema: JSON, value: str, at: str) -> list[Text]:
    out: list[Text] = []
    length = len(value)  # code points, as JSON Schema counts
    if "minLength" in schema and length < schema["minLength"]:
        out.append(Text("api.too_short", "{at}: must be at least {n} characters long",
                        at=at, n=schema["minLength"]))
    if "maxLength" in schema and length > schema["maxLength"]:
        # the catalogue's wording (catalogue.limits.too_long), whose limits these are
        out.append(Text("api.too_long", "{at} longer than {n} characters",
                        at=at, n=schema["maxLength"]))
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        out.append(Text("api.no_match", "{at}: does not match {pattern}", at=at,
                        pattern=schema["pattern"]))
    fmt = schema.get("format")
    if fmt in FORMATS and not _format_ok(fmt, value):
        out.append(Text("api.bad_format", "{at}: must be a {format}", at=at, format=fmt))
    return out


def _array(schema: JSON, value: list[Any], at: str) -> list[Text]:
    out: list[Text] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append(Text("api.few_items", "{at}: must hold at least {n} entries", at=at,
                        n=schema["minItems"]))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(Text("api.many_items", "{at}: must hold at most {n} entries", at=at,
                        n=schema["maxItems"]))
    if schema.get("uniqueItems") and any(
            _equal(a, b) for i, a in enumerate(value) for b in value[i + 1:]):
        out.append(Text("api.repeated_items", "{at}: names an entry twice", at=at))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, v in enumerate(value):
            out += problems(items, v, f"{at or 'body'}[{i}]")
    return out


def _object(schema: JSON, value: dict[str, Any], at: str) -> list[Text]:
    out: list[Text] = []
    props: JSON = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for name, v in value.items():
        if name in props:
            out += problems(props[name], v, _in(at, name))
        elif extra is False:
            out.append(Text("api.unknown_field", "{at}: unknown field", at=_in(at, name[:64])))
        elif isinstance(extra, dict):
            out += problems(extra, v, _in(at, name))
    for name in schema.get("required", ()):
        if name not in value:
            out.append(Text("api.missing", "missing {at}", at=_in(at, name)))
    return out


def _in(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def field_of(problem: Text) -> str:
    """The top-level field a problem of :func:`problems` is about ("body": the whole)."""
    at = str(problem.params.get("at", "body"))
    return at.split(".")[0].split("[")[0]


def unsupported(schema: Any, at: str = "#") -> list[str]:
    """Where ``schema`` uses a keyword (or format) this checker does not assert: a
    declaration must not rely on what is not checked."""
    if not isinstance(schema, dict):
        return [f"{at}: not a schema"]
    out = [f"{at}: {k}" for k in schema if k not in ASSERTED and k not in ANNOTATIONS]
    if "format" in schema and schema["format"] not in FORMATS:
        out.append(f"{at}: format {schema['format']}")
    for name, sub in schema.get("properties", {}).items():
        out += unsupported(sub, f"{at}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            out += unsupported(schema[key], f"{at}/{key}")
    return out
