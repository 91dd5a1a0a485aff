"""Property-based tests (hypothesis, bounded and derandomised for CI):

1. path normalisation against the catalogue route matcher: whatever request target a
   client sends, if an upstream of one of the kinds below would read what the gateway
   forwards as a governed route, the gateway matched that route (and shapes) or refused
   the request (400): never passed on ungoverned;
2. the audit chain: any change to any field of any record of a real chain, through
   the database, is found by ``verify_database``;
3. masking: a masked value shows nothing of the input beyond the mask's documented
   kept part, and the text masks are idempotent;
4. CSV cells: whatever text an export holds, no spreadsheet reads its cell as a
   formula, and the import reads back exactly what was written.

The upstream models say explicitly what "the same route" means to each kind of server
behind the gateway. Each reads the path the gateway forwards (``Target.upstream_path``)
as its router would."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import string
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.chain import RECORD_COLUMNS, record_payload
from audit.record import AuditRecord
from audit.spreadsheet import neutralise, restore
from audit.tables import records
from audit.verify import keyservice_sigcheck, verify_database
from audit.writer import AuditLog
from catalogue.routes import RouteTable
from catalogue.shaping import apply_mask, keep_first_char, keep_last_4, phone_middle
from gateway.proxy.path import BadPath, parse
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.setup import initialise
from tests.catalogue.conftest import lax_path
from tests.hostile.test_csv import spreadsheet_runs

# the same examples on every run (CI), none kept in an example database
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

# -- 1. the upstream models -------------------------------------------------------------

# Windows' "best fit" when a wide path is turned into the ANSI code page (the WorstFit
# research, 2025): compatibility forms (full-width ／ ＼ ． ； and letters) as NFKC gives
# them, and look-alikes NFKC leaves alone
BEST_FIT = {"\u2215": "/", "\u2044": "/", "\u29f8": "/", "\u00a5": "\\", "\u20a9": "\\",
            "\u29f5": "\\", "\u29f9": "\\"}


def _segments_resolved(path: str) -> str:
    """Dot segments resolved (RFC 3986 5.2.4), empty segments merged, as nginx reads."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


def starlette(forwarded: str) -> str:
    """Decoded once, letter for letter; a trailing slash redirected away."""
    return unquote(forwarded).rstrip("/") or "/"


def nginx(forwarded: str) -> str:
    """Decoded, slashes merged, dot segments resolved (``merge_slashes on``)."""
    return _segments_resolved(unquote(forwarded))


def servlet(forwarded: str) -> str:
    """Tomcat and Spring: ``;`` parameters dropped per segment, dots resolved, a
    trailing slash and a format suffix matched away."""
    decoded = unquote(forwarded)
    path = _segments_resolved("/".join(s.split(";", 1)[0] for s in decoded.split("/")))
    return re.sub(r"\.(json|xml|do|action|html)$", "", path.rstrip("/")) or "/"


def windows(forwarded: str) -> str:
    """IIS and .NET on Windows: best fit to the code page, ``\\`` a separator, trailing
    dots and spaces off each name (a name of dots only is a parent), letters without
    case."""
    text = "".join(BEST_FIT.get(c, c) for c in unquote(forwarded))
    text = unicodedata.normalize("NFKC", text).replace("\\", "/")
    segs = []
    for seg in text.split("/"):
        stripped = seg.rstrip(". ")
        segs.append(".." if seg and not stripped and "." in seg else stripped)
    return _segments_resolved("/".join(segs)).lower()


def form_decoder(forwarded: str) -> str:
    """A path put through a form decoder (PHP ``urldecode``, Java ``URLDecoder``: ``+``
    is a space) and looked up in a table whose collation ignores case and trailing
    spaces (MySQL's PAD SPACE)."""
    decoded = unquote(forwarded.replace("+", " "))
    return "/".join(s.rstrip(" ") for s in decoded.split("/")).rstrip("/").lower() or "/"


def laxest(forwarded: str) -> str:
    """Every laxness of tests/catalogue/conftest.py's ``lax_path`` at once."""
    return lax_path(unquote(forwarded))


UPSTREAMS: dict[str, Callable[[str], str]] = {
    "starlette": starlette, "nginx": nginx, "servlet": servlet, "windows": windows,
    "form decoder": form_decoder, "laxest": laxest}

TABLE: RouteTable[str] = RouteTable([("GET", "/api/vehicles", "vehicles"),
                                     ("GET", "/api/rooms/{room}", "rooms")])
ROOM = re.compile(r"/api/rooms/[^/]+")


def governs(read: str) -> str | None:
    """The route an upstream that read the path as ``read`` serves."""
    if read == "/api/vehicles":
        return "vehicles"
    return "rooms" if ROOM.fullmatch(read) else None


# -- 1. the spellings a client may send -------------------------------------------------

FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in string.ascii_letters}
LOOK_ALIKE = {"i": ["\u0131", "\u0130"], "s": ["\u017f"], "k": ["\u212a"]}


@st.composite
def letter(draw: st.DrawFn, ch: str) -> str:
    """One letter of the route as a client may spell it, as raw target text (non-ASCII
    as percent-encoded UTF-8 or as raw UTF-8 bytes, decoded later as latin-1)."""
    forms = ["same", "upper", "encoded", "full width"] + (["look-alike"] if ch in LOOK_ALIKE
                                                           else [])
    form = draw(st.sampled_from(forms))
    if form == "upper":
        return ch.upper()
    if form == "encoded":
        return f"%{ord(ch):02{draw(st.sampled_from(['x', 'X']))}}"
    if form in ("full width", "look-alike"):
        other = FULL_WIDTH[ch] if form == "full width" else draw(
            st.sampled_from(LOOK_ALIKE[ch]))
        return _non_ascii(other, draw(st.booleans()))
    return ch


def _non_ascii(text: str, encoded: bool) -> str:
    data = text.encode("utf-8")
    return "".join(f"%{b:02X}" for b in data) if encoded else data.decode("latin-1")


# what may follow a name: parameters, dots, blanks, suffixes, encoded delimiters, and the
# full-width and look-alike forms of each
TAILS = ["", ";x=1", ";", ".", "..", ". ", "%20", "+", "%2B", ".json", ".JSON", "%3F",
         "%3Fa=1", "%23", "%00", "%09", "%2e", "%E3%80%80", "%C2%A0", "%EF%BC%8E",
         "%EF%BC%8E%EF%BC%8E", "%EF%BC%9Bx", "%E2%80%A6", "%EF%BC%8Ejson", "%E2%80%8B"]
# what may stand between two names
SEPARATORS = ["/", "//", "\\", "%2F", "%5C", "/./", "/x/../", "/%2e/", "/x/%2e%2e/",
              "%EF%BC%8F", "%EF%BC%BC", "%E2%88%95", "%C2%A5", "/%EF%BC%8E/",
              "/x/%EF%BC%8E%EF%BC%8E/", "/x/%E2%80%A5/", "/x/%E2%80%A6/", "/x/... /",
              "/x/.. /", "/x/..%20/", "/x/...%2e/", "/;x/"]


@st.composite
def spelling(draw: st.DrawFn) -> bytes:
    """A request target for ``/s/cheliang`` spelling one of the routes."""
    rooms = draw(st.booleans())
    names = ["api", "rooms", draw(st.sampled_from(["1", "a1", "x"]))] if rooms else [
        "api", "vehicles"]
    out = draw(st.sampled_from(["/", "/", "//", "/./", "\\", "%EF%BC%8F"]))
    for n, name in enumerate(names):
        if n:
            out += draw(st.sampled_from(SEPARATORS))
        out += "".join(draw(letter(c)) if c.isalpha() else c for c in name)
        out += draw(st.sampled_from(TAILS))
    out += draw(st.sampled_from(["", "", "/", "//", "/.", "/%2e"]))
    return b"/s/cheliang" + out.encode("latin-1")


@BOUNDED
@given(raw=spelling())
def test_what_any_upstream_reads_as_a_governed_route_is_governed_or_refused(
        raw: bytes) -> None:
    try:
        target = parse(raw)
    except BadPath:
        return  # 400 before any decision: nothing forwarded
    found = TABLE.match("GET", target.path)
    matched = found.target if found is not None else None
    resembles = TABLE.resembling("GET", target.path)  # 400 as an ambiguous spelling
    for name, upstream in UPSTREAMS.items():
        served = governs(upstream(target.upstream_path))
        if served is not None:
            assert served in (matched, resembles), (
                f"{name} reads {target.upstream_path!r} (sent as {raw!r}) as the "
                f"{served} route; the gateway matched {matched}, resembling {resembles}")


@BOUNDED
@given(raw=st.binary(max_size=40))
def test_any_bytes_are_one_canonical_path_or_refused(raw: bytes) -> None:
    """What policy sees and what the upstream receives are one path: the forwarded
    path decodes to exactly the decided one, and parsing it again changes nothing."""
    try:
        target = parse(b"/s/echo/" + raw)
    except BadPath:
        return
    assert unquote(target.upstream_path, errors="strict") == target.path
    again = parse(b"/s/echo" + target.upstream_path.encode("ascii"))
    assert (again.path, again.upstream_path) == (target.path, target.upstream_path)
    for segment in target.path.split("/")[1:]:
        assert "\\" not in segment and "\x00" not in segment
        # nor read as a separator or a dot segment by Windows (best fit, then trailing
        # dots and spaces dropped)
        read = unicodedata.normalize("NFKC", "".join(BEST_FIT.get(c, c) for c in segment))
        assert "/" not in read and "\\" not in read, segment
        name = read.split(";", 1)[0]
        assert not name or name.strip(". ") or "." not in name, segment


@BOUNDED
@given(below=st.lists(st.sampled_from(
    ["a", "..", ".", "%2e", "%EF%BC%8E", "\uff0e".encode().decode("latin-1"), " ", "%20",
     "%E2%80%A5", "%E2%80%A6", "%EF%BC%8F", "%E2%88%95", "%C2%A5", ";x", "/", "b"]),
    max_size=8))
def test_no_spelling_climbs_above_a_path_policy(below: list[str]) -> None:
    """A policy line for ``/s/echo/public/*`` covers only what every upstream reads
    below ``/public``: dots, full-width dots and look-alike slashes included."""
    raw = ("/s/echo/public/" + "".join(below)).encode("latin-1")
    try:
        target = parse(raw)
    except BadPath:
        return
    assert target.path.startswith("/public/") or target.path == "/public"
    for name, upstream in UPSTREAMS.items():
        read = upstream(target.upstream_path)
        assert read.lower().startswith("/public"), (name, raw, read)


# -- 2. the audit chain -----------------------------------------------------------------

TEXT_COLUMNS = ("event_type", "outcome", "actor_user", "actor_client", "department",
                "source_ip", "system", "resource", "purpose", "reason", "request_id",
                "req_hash", "resp_hash", "items", "extra", "prev_hash", "hash", "chain_id")
INT_COLUMNS = ("seq", "ckpt", "ts", "status", "latency_ms")


@pytest.fixture(scope="module")
def chain(module_settings: Settings, cheap_hashes: None) -> Iterator[tuple[Services, int]]:
    """A real database with two writers' chains of 12 records each (checkpoints every
    5): the services and how many records there are."""
    initialise(module_settings, password_factory=lambda: "Admin-Passw0rd-2026!")
    services = open_services(module_settings)
    logs = [AuditLog(services.engine, keys=services.keys, writer_id=w, checkpoint_every=5)
            for w in ("hostile-a", "hostile-b")]
    for w, log in enumerate(logs):
        for start in (0, 5, 10):
            log.append_many_sync([AuditRecord(
                event_type="proxy_request", outcome="allow" if i % 3 else "deny",
                actor_user=f"user{i}", department="czt", system="vehicles",
                resource="JG-0001", items=["plate_number"], reason=f"grant {w}-{i}",
                status=200, latency_ms=i, request_id=f"req-{w}-{i}",
                extra={"path": f"/s/vehicles/api/{i}"}) for i in range(start, start + 5)])
            log.checkpoint_sync()
    for log in logs:
        log.close_sync()
    report = verify_database(services.engine, keyservice_sigcheck(services.keys))
    assert report.ok, report.problems
    yield services, report.records
    services.close()


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_change_to_any_field_of_any_record_is_found(chain: tuple[Services, int],
                                                        data: st.DataObject) -> None:
    services, count = chain
    engine = services.engine
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(sa.select(records.c.id).order_by(records.c.id))]
    assert len(ids) == count
    record_id = data.draw(st.sampled_from(ids), label="record")
    column = data.draw(st.sampled_from([c for c in RECORD_COLUMNS if c != "hash"]
                                       + ["hash"]), label="column")
    with engine.connect() as conn:
        before = conn.execute(sa.select(records.c[column]).where(
            records.c.id == record_id)).scalar_one()
    after: Any
    if column in INT_COLUMNS:
        after = data.draw(st.integers(min_value=-2**31, max_value=2**31 - 1).filter(
            lambda v: v != before), label="new value")
    else:
        after = data.draw(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=(
            "Cs",)), max_size=30).filter(lambda v: v != before), label="new value")
    if column in ("seq", "chain_id"):
        # the key of a record: another record may hold it already
        with engine.connect() as conn:
            taken = conn.execute(sa.select(records.c.id).where(
                records.c[column] == after, records.c.id != record_id)).first()
        if taken is not None:
            return
    # a careful forger also writes the changed record's hash anew
    rehash = column != "hash" and data.draw(st.booleans(), label="hash recomputed")
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(records).where(
            records.c.id == record_id)).mappings().one())
    changed = {column: after}
    if rehash:
        changed["hash"] = hashlib.sha256(record_payload({**stored, **changed})).hexdigest()
    try:
        try:
            with engine.begin() as conn:
                conn.execute(records.update().where(records.c.id == record_id).values(changed))
        except (sa.exc.OperationalError, sa.exc.DataError):
            # the database itself refuses the forgery: an ``extra`` that is no JSON
            # (the delegate's expression index, 0032_edges_act_sub_index, reads it), or
            # a NUL in PostgreSQL's text
            assert column == "extra" or "\x00" in str(after), (column, after)
            return
        report = verify_database(engine, keyservice_sigcheck(services.keys))
        assert not report.ok, (record_id, column, before, after, rehash)
    finally:
        with engine.begin() as conn:
            conn.execute(records.update().where(records.c.id == record_id).values(
                {c: stored[c] for c in changed}))
    assert verify_database(engine, keyservice_sigcheck(services.keys)).ok


# -- 3. masking ------------------------------------------------------------------------

ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)


def shown(mask: str, value: str) -> set[int]:
    """The positions of ``value`` that ``mask`` documents as kept (catalogue.shaping,
    docs/catalogue.md): the last four, the first character, all but the middle four
    digits (a mobile number's 4th to 7th of its last eleven, whatever else the text
    holds; a ``*`` counts as a digit; none of a text with fewer than seven); none of a
    text that short."""
    n = len(value)
    if mask == "phone_middle":
        digits = [i for i, ch in enumerate(value) if ch.isnumeric() or ch == "*"]
        if len(digits) < 7:
            return set()
        start = len(digits) - 8 if len(digits) >= 11 else (len(digits) - 4) // 2
        return set(range(n)) - set(digits[start:start + 4])
    if n <= (1 if mask == "keep_first_char" else 4):
        return set()
    if mask == "keep_last_4":
        return set(range(n - 4, n))
    return {0}


MASKS = {"keep_last_4": keep_last_4, "keep_first_char": keep_first_char,
         "phone_middle": phone_middle}


# numbers as department systems spell them: a country code, spaces, dashes, brackets,
# full-width and Chinese numerals, a mask already applied
PHONE_LIKE = st.text(alphabet="0123456789 +-()*０９一〇", max_size=24)


@pytest.mark.parametrize("mask", sorted(MASKS))
@BOUNDED
@given(value=st.one_of(ANY_TEXT, PHONE_LIKE))
def test_a_mask_shows_its_kept_part_only_and_is_idempotent(mask: str, value: str) -> None:
    masked = MASKS[mask](value)
    assert len(masked) == len(value)
    kept = shown(mask, value)
    for i, ch in enumerate(value):
        assert masked[i] == (ch if i in kept else "*"), (i, value, masked)
    assert MASKS[mask](masked) == masked


@BOUNDED
@given(value=st.one_of(ANY_TEXT, st.integers(), st.floats(allow_nan=False),
                       st.lists(st.integers(), max_size=5),
                       st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)),
       mask=st.sampled_from(["keep_last_4", "keep_first_char", "phone_middle", "redact",
                             "pseudonym"]))
def test_a_value_of_any_type_is_masked_as_its_text(value: Any, mask: str) -> None:
    """A number is masked as its JSON text (whose properties are the ones above), a list
    element by element, an object hidden whole; ``redact`` and ``pseudonym`` keep
    nothing of any value."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    masked = apply_mask(mask, value, item="x", mac=lambda d: hmac.new(
        b"k", d, hashlib.sha256).digest())
    if mask == "redact":
        assert masked == "***"
    elif mask == "pseudonym":
        assert re.fullmatch(r"p:[0-9a-f]{32}", masked)
    elif isinstance(value, list):
        assert masked == [MASKS[mask](json.dumps(v)) for v in value]
    elif isinstance(value, dict):
        assert masked == "***"
    else:
        assert masked == MASKS[mask](text)


# -- 4. CSV cells -------------------------------------------------------------------------

@BOUNDED
@given(value=st.text(alphabet=st.one_of(st.sampled_from(list("=+-@'\t\r\n \u3000＝＋－＠﹦")),
                                        st.characters(exclude_categories=("Cs",))),
                     max_size=12))
def test_a_csv_cell_is_never_a_formula_and_reads_back_as_written(value: str) -> None:
    cell = neutralise(value)
    assert restore(cell) == value
    assert cell.startswith("'") or not spreadsheet_runs(cell), repr(cell)
