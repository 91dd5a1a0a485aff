"""Shape an upstream JSON response to what a consumer may receive (最小必要).

Pure: the response body, the resource's rules and the decision's items go in;
the shaped body, the items actually released and the items withheld (with
why) come out. The keyed hash for pseudonyms and the consumer's public keys
are handed in, so nothing here touches a database or a key store.

    records     the route names where they sit (``items``, ``data.rows``; empty: the
                body itself). A list of objects, or one object. Anything else: ShapeError.
    cutting     a record keeps only the allowed items; the envelope around the records
                keeps what the route's ``envelope:`` lists (any JSON scalar; dotted paths
                reach into envelope objects), without a list only counts under the names
                of pagination (``total``, ``page``, ``has_more``: ``catalogue.pagination``):
                never a string (``"note": "王五 138..."``), never another number,
                never other nested data (``catalogue.envelope``), and never a key naming
                an item of the resource in any spelling (``driver_name``, ``DriverName``,
                ``driver-name``): a value outside the records would pass uncut,
                unmasked, unencrypted. Every key dropped is named (``outside`` for an
                item's name, ``dropped`` for the rest)
    masks       keep_last_4       450102198305120031 → **************0031
                keep_first_char   李建国 → 李**
                phone_middle      13907710021 → 139****0021 (the digits of any spelling)
                pseudonym         keyed HMAC (profile's hash) → ``p:`` + 32 hex digits;
                                  the same value gives the same pseudonym, so joins still work
                redact            → ``***``
                an array under one of the first three: each element masked; an
                object under one of them: ``***``
    types       an item the catalogue types as a scalar (string, number, date, ...)
                holding a JSON object or array: ShapeError
    encrypt     the (masked) value, signed by the gateway with its place in the answer
                (a JWS, :class:`Binding`), in a compact JWE (ECDH-ES+A256KW, A256GCM)
                to the consumer's registered public key, its protected header naming what
                it holds and for whom (:class:`Binding`: ``typ``, ``apu``, ``apv``); a
                key marked for anything but key agreement (``use`` sig, an ``alg`` of
                another family, ``key_ops`` without deriveKey) or one no secret can be
                agreed with is no key; without a usable key the item is withheld and
                ``withheld`` says why

The body is read as its header fields say: a ``gzip`` or ``deflate`` content coding
is undone (stacked ones too, up to ``max_bytes`` decoded), a ``charset`` of UTF-8,
GBK, GB2312 or GB18030 is honoured, a UTF-8 byte order mark is skipped; the shaped
body is always UTF-8 JSON. A body that is not strict JSON (``NaN``, ``Infinity``, a
number beyond a double, nesting deeper than the parser's stack, a lone surrogate in
a released value), another content coding or charset, or records that are not where
the route says, raise :class:`ShapeError` (the proxy answers 502 and audits the
detail): fail closed.

Numbers leave as the upstream wrote them: an integer is Python's exact int
(``12345678901234567890`` stays so), and a number with a fraction or exponent is a
:class:`Number` keeping its text (``0.10``, ``1E2``, a decimal of 30 digits), written
back unchanged (:func:`dumps_exact`) where a float would have become its nearest
double's shortest text. A consumer's parser is its own: a JavaScript one still rounds
what it reads past 2^53. Two places take the double instead, as before: the ``row``
digest (the consumer's ``govgate_upstream`` computes it from the number it parsed) and
a pseudonym's input (the same number, the same pseudonym, however it was written).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
import secrets
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x448 import X448PrivateKey, X448PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, import_key

from catalogue.errors import ShapeError
from catalogue.item_names import item_key
from catalogue.media import media_type
from catalogue.model import Item
from catalogue.pagination import is_count, is_pagination

JWE_ALG = "ECDH-ES+A256KW"
JWE_ENC = "A256GCM"
ITEM_TYP = "govgate-item"  # the JWE's typ (govgate_upstream.ITEM_TYP checks it)
# the signed value inside the JWE (RFC 7519 5.2 nested JWT: the JWE's ``cty`` is JWT);
# its own typ, so neither it nor an assertion by the same key passes for the other
ITEM_JWT_TYP = "govgate-item+jwt"
# what a recipient key may say of itself and still be one to agree a key with
_AGREEMENT_ALGS = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW")
_AGREEMENT_OPS = ("deriveKey", "deriveBits")
REDACTED = "***"
PSEUDONYM_PREFIX = "p:"
_CONTAINERS = ("object", "array")  # the item types whose value may hold nested JSON
_EC_CURVES = ("P-256", "P-384", "P-521")
_OKP_CURVES = ("X25519", "X448")

Mac = Callable[[bytes], bytes]


# ---------------------------------------------------------------------------
# masks


def keep_last_4(value: str) -> str:
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def keep_first_char(value: str) -> str:
    if len(value) <= 1:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 1)


def phone_middle(value: str) -> str:
    """Hide the middle four digits: 139****0021 for an 11-digit mobile number, in any
    spelling (``+86 139 **** 0021``, ``0086 139****0021``, ``139-****-0021``).

    The digits (any numeral, full-width and 一二三 too; a ``*`` counts as a digit
    already hidden, so masking twice changes nothing) are what is hidden: of eleven or
    more, the 4th to 7th of the last eleven (a country code in front, as the national
    number's own); of seven to ten, the middle four. Counting characters instead showed
    more of the number the more separators or prefix it carried (``+86 139 0771 0021``
    hid three digits, ``1 3 9 0 7 7 1 0 0 2 1`` two). A value with fewer than seven
    digits is no number the rule can keep part of: every character is hidden."""
    slots = [i for i, ch in enumerate(value) if ch.isnumeric() or ch == "*"]
    n = len(slots)
    if n < 7:
        return "*" * len(value)
    start = n - 8 if n >= 11 else (n - 4) // 2
    hidden = set(slots[start:start + 4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def pseudonym(value: str, mac: Mac, item: str = "") -> str:
    digest = mac(item.encode("utf-8") + b"\x00" + value.encode("utf-8"))
    return PSEUDONYM_PREFIX + digest[:16].hex()


# the masks that keep part of the text (``model.MASKS`` names every mask once; these,
# ``redact`` and ``pseudonym`` are all of them: tests/catalogue/test_shaping.py)
TEXT_MASKS: dict[str, Callable[[str], str]] = {
    "keep_last_4": keep_last_4,
    "keep_first_char": keep_first_char,
    "phone_middle": phone_middle,
}


def apply_mask(mask: str | None, value: Any, *, item: str = "", mac: Mac | None = None) -> Any:
    """``value`` under ``mask``; None stays None; a number or boolean is masked as its
    text. Under a mask that keeps part of a text (``TEXT_MASKS``) an array is masked
    element by element and an object is hidden whole: masked as one JSON text, an array
    of phone numbers showed all but four of its characters (every number but one in
    the clear), and an object's keys are the upstream's to fill. ``redact`` and
    ``pseudonym`` take any value whole."""
    if mask is None or value is None:
        return value
    if mask == "redact":
        return REDACTED
    keep = TEXT_MASKS.get(mask)
    if keep is not None:
        if isinstance(value, list):
            return [apply_mask(mask, v, item=item, mac=mac) for v in value]
        if isinstance(value, dict):
            return REDACTED
        return keep(value if isinstance(value, str) else value.text
                    if isinstance(value, Number) else dumps_exact(value, ensure_ascii=False))
    text = value if isinstance(value, str) else dumps_plain(value, ensure_ascii=False)
    if mask == "pseudonym":
        if mac is None:
            raise ShapeError(f"item {item}: pseudonym mask needs a keyed hash")
        return pseudonym(text, mac, item)
    raise ShapeError(f"item {item}: unknown mask {mask!r}")


# ---------------------------------------------------------------------------
# numbers as written


class Number:
    """A JSON number with a fraction or exponent, as the upstream wrote it (``text``,
    strict JSON's grammar: the parser read it) and as a double (``value``, finite)."""

    __slots__ = ("text", "value")

    def __init__(self, text: str, value: float) -> None:
        self.text = text
        self.value = value

    def __float__(self) -> float:
        return self.value

    def __eq__(self, other: object) -> bool:
        return self.value == (other.value if isinstance(other, Number) else other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Number({self.text!r})"


def _double(value: Any) -> float:
    if isinstance(value, Number):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps_plain(value: Any, **kw: Any) -> str:
    """``json.dumps`` with each :class:`Number` as its double (what a parser of the
    shaped body holds: the ``row`` digest's and a pseudonym's input)."""
    return json.dumps(value, default=_double, **kw)


def plain(value: Any) -> Any:
    """``value`` with each :class:`Number` its double (a signed item's ``v``)."""
    if isinstance(value, Number):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def dumps_exact(value: Any, **kw: Any) -> str:
    """``json.dumps`` with each :class:`Number` in the text it came in. The encoder
    writes a float subclass by ``float.__repr__`` whatever it is, so each Number goes in
    as a string naming its place under a fresh random prefix, and that string (quotes
    and all) is replaced by the text: no upstream string can hold the prefix."""
    texts: list[str] = []
    tag = "n" + secrets.token_hex(12) + "_"

    def stand_in(value: Any) -> str:
        if isinstance(value, Number):
            texts.append(value.text)
            return f"{tag}{len(texts) - 1}"
        raise TypeError(f"{type(value).__name__} is not JSON")

    out = json.dumps(value, default=stand_in, **kw)
    if not texts:
        return out
    return re.sub(f'"{tag}([0-9]+)"', lambda m: texts[int(m.group(1))], out)


# ---------------------------------------------------------------------------
# encryption


def _for_agreement(jwk: Mapping[str, Any]) -> bool:
    """Whether ``jwk`` says nothing against ECDH-ES: a key marked for signatures
    (``use`` sig, ``alg`` ES256, Web Crypto's ``key_ops`` verify) is the client's
    signing key (private_key_jwt), which must not also agree keys (key separation)."""
    if jwk.get("use", "enc") != "enc":
        return False
    if "alg" in jwk and jwk["alg"] not in _AGREEMENT_ALGS:
        return False
    ops = jwk.get("key_ops")
    # [] is how Web Crypto exports an ECDH public key (the operation is the private key's)
    return ops is None or ops == [] or (
        isinstance(ops, list) and any(o in ops for o in _AGREEMENT_OPS))


@functools.lru_cache(maxsize=256)
def _agrees(crv: str, x: str) -> bool:
    """Whether an X25519/X448 point agrees a secret at all: a point of small order (the
    zero point among them) makes every shared secret zero, which ``cryptography``
    refuses; known once per point."""
    try:
        if crv == "X25519":
            X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(_b64(x)))
        else:
            X448PrivateKey.generate().exchange(X448PublicKey.from_public_bytes(_b64(x)))
    except ValueError:
        return False
    return True


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encryption_key(jwks: Mapping[str, Any] | None) -> Any | None:
    """The first public key in ``jwks`` usable for ECDH-ES (EC P-256/384/521 or X25519/X448,
    ``use`` enc or unset, no ``alg`` or ``key_ops`` of another purpose, a point a secret
    can be agreed with); None when there is none."""
    if not jwks or not isinstance(jwks.get("keys"), list):
        return None
    for jwk in jwks["keys"]:
        if not isinstance(jwk, Mapping) or not _for_agreement(jwk):
            continue
        kty, crv = jwk.get("kty"), jwk.get("crv")
        if not ((kty == "EC" and crv in _EC_CURVES) or (kty == "OKP" and crv in _OKP_CURVES)):
            continue
        public = {k: v for k, v in jwk.items()
                  if k != "d" and not (k == "key_ops" and v == [])}
        try:
            key = import_key(public)
        except (JoseError, ValueError, TypeError):
            continue
        if isinstance(key, OKPKey) and not _agrees(str(crv), str(jwk.get("x"))):
            continue
        if isinstance(key, ECKey | OKPKey):
            return key
    return None


def key_name(key: Any) -> str:
    """How the audit record names a recipient key: its ``kid``, else its RFC 7638
    thumbprint (public: the record never holds a value, nor anything secret)."""
    kid = getattr(key, "kid", None)
    return str(kid) if kid else f"thumbprint:{key.thumbprint()}"


#: signs an item's claims with the gateway's key: (claims, header) -> compact JWS
Signer = Callable[[dict[str, Any], dict[str, Any]], str]


@dataclass(frozen=True)
class Binding:
    """What an encrypted item is, whom it is for and where it sits. In its JWE's
    protected header: the gateway (``iss``), the resource and the item in ``apu``
    (base64url of their JSON), the consuming client in ``apv``. Both enter ECDH-ES's
    key derivation (RFC 7518 4.6.2) and the header is the AAD. ECDH-ES has no sender,
    so with ``sign`` the plaintext is a JWS by the gateway's key (a nested JWT, ``cty``
    JWT) whose claims say the same and the place: the answer's request id (``rid``),
    the record's index (``rec``), a digest of the record's other values as sent
    (``row``, :func:`record_digest`) and how many records the answer has (``n``: 1 for
    an answer of one record). The consumer checks them against where it found the
    value (``govgate_upstream.open_item``): a ciphertext moved to another item,
    resource, consumer, record or answer, one of an answer cut short (records dropped
    from its end), or one not made by the gateway, is refused there. Without ``sign``
    (a client listed in ``catalogue_unsigned_item_clients``, still on the old helper)
    the plaintext is the bare value, ``cty`` json."""

    issuer: str
    resource: str
    client_id: str
    request_id: str = ""
    sign: Signer | None = field(default=None, compare=False, repr=False)

    def header(self, item: str) -> dict[str, str]:
        producer = json.dumps({"iss": self.issuer, "resource": self.resource, "item": item},
                              ensure_ascii=False, separators=(",", ":"))
        return {"typ": ITEM_TYP, "apu": _b64url(producer.encode("utf-8")),
                "apv": _b64url(self.client_id.encode("utf-8"))}

    def signed(self, item: str, index: int, row: str, value: Any,
               count: int = 1) -> str | None:
        """The JWS of ``value`` at its place (record ``index`` of ``count``), or None
        when values go unsigned."""
        if self.sign is None:
            return None
        claims = {"iss": self.issuer, "aud": self.client_id, "resource": self.resource,
                  "item": item, "rid": self.request_id, "rec": index, "n": count,
                  "row": row, "v": plain(value)}
        return self.sign(claims, {"typ": ITEM_JWT_TYP})


def record_digest(record: Mapping[str, Any], encrypted: Iterable[str]) -> str:
    """base64url SHA-256 of the record's values other than the ``encrypted`` items, as
    the consumer receives them (JSON, keys sorted, no spaces, UTF-8):
    ``govgate_upstream.record_digest`` computes the same from the parsed record."""
    skip = frozenset(encrypted)
    clear = {k: v for k, v in record.items() if k not in skip}
    text = dumps_plain(clear, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(text.encode("utf-8")).digest())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encrypt_value(value: Any, key: Any, bound: Mapping[str, str] | None = None,
                  signed: str | None = None) -> str:
    """A compact JWE of ``value`` (as JSON) to ``key``, ``bound`` (:meth:`Binding.header`)
    in its protected header; of ``signed`` instead (the value's JWS,
    :meth:`Binding.signed`) when given, ``cty`` JWT. ShapeError when the key cannot be
    encrypted to."""
    header: dict[str, Any] = {"alg": JWE_ALG, "enc": JWE_ENC,
                              "cty": "json" if signed is None else "JWT", **(bound or {})}
    kid = key.kid if hasattr(key, "kid") else None
    if kid:
        header["kid"] = kid
    plaintext = (dumps_exact(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                 if signed is None else signed.encode("ascii"))
    try:
        return jwe.encrypt_compact(header, plaintext, key)
    except (JoseError, ValueError) as exc:
        # encryption_key admits only keys that agree: never met, and never sent raw
        raise ShapeError(f"the consumer's key {key_name(key)} cannot be encrypted to: "
                         f"{type(exc).__name__}") from None


# ---------------------------------------------------------------------------
# shaping


@dataclass(frozen=True)
class Shaped:
    body: bytes
    released: tuple[str, ...]  # items present in the output (clear, masked or encrypted)
    withheld: dict[str, str] = field(default_factory=dict)  # item -> why
    records: int = 0
    outside: tuple[str, ...] = ()  # envelope keys dropped as naming an item
    dropped: tuple[str, ...] = ()  # other envelope keys dropped (dotted paths)
    encrypted: tuple[str, ...] = ()  # released items that went encrypted ...
    key: str | None = None  # ... to this key (key_name)
    masked: dict[str, str] = field(default_factory=dict)  # released item -> its mask
    signed: bool = False  # the encrypted values are JWS by the gateway (Binding.sign)


# the charsets a department system's JSON comes in; GBK and GB2312 read as their
# superset GB18030 (a GBK byte sequence means the same there)
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gb18030", "gb2312": "gb18030",
             "gb18030": "gb18030", "cp936": "gb18030"}


def decode_content(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """``body`` with its content codings undone (the last applied first): ``gzip``
    (``x-gzip``) and ``deflate`` (zlib, or raw as some servers send it), at most
    ``max_bytes`` decoded; ShapeError for any other coding or a broken one."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            wbits = 16 + zlib.MAX_WBITS
        elif coding == "deflate":
            zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (
                (body[0] << 8) | body[1]) % 31 == 0
            wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
        else:
            raise ShapeError(f"response content coding {coding!r} cannot be read")
        inflate = zlib.decompressobj(wbits)
        try:
            out = inflate.decompress(body, max_bytes + 1)
        except zlib.error:
            raise ShapeError(f"response body is not valid {coding}") from None
        if len(out) > max_bytes or inflate.unconsumed_tail:
            raise ShapeError(f"response body decodes to over {max_bytes} bytes")
        if not inflate.eof or inflate.unused_data:
            # cut short, or a second gzip member after the first: not read whole
            raise ShapeError(f"response body is not one whole {coding} stream")
        body = out
    return body


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> Number:
    value = float(text)
    if math.isinf(value):
        # as written it would pass, but a consumer's parser makes it Infinity or fails
        raise ValueError(f"{text[:20]} is beyond a double")
    return Number(text, value)


def parse_json(body: bytes, content_type: str | None = None) -> Any:
    """The JSON value of ``body`` (in the ``charset`` of ``content_type``); ShapeError
    when it is not strict JSON: a reader downstream must not take it another way."""
    charset = None
    if content_type is not None:
        media, charset = media_type(content_type)
        if not (media == "application/json" or media.endswith("+json")):
            raise ShapeError(f"response is {media or 'untyped'}, not JSON")
    codec = _CHARSETS.get(charset or "utf-8")
    if codec is None:
        raise ShapeError(f"response charset {charset!r} cannot be read")
    if body.startswith(b"\xef\xbb\xbf") and codec == "utf-8":
        body = body[3:]  # RFC 8259 section 8.1: a parser may ignore it
    try:
        return json.loads(body.decode(codec), parse_constant=_not_json, parse_float=_finite)
    except (UnicodeDecodeError, ValueError):
        raise ShapeError("response body is not valid JSON") from None
    except RecursionError:
        raise ShapeError("response body is nested too deeply") from None


def _locate(doc: Any, records: str) -> tuple[Any, list[str]]:
    """The records value and the keys leading to it."""
    if not records:
        return doc, []
    node = doc
    keys = records.split(".")
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            raise ShapeError(f"records are not at {records!r}")
        node = node[k]
    return node, keys


def shape(
    body: bytes,
    *,
    records: str,
    items: Iterable[Item],
    allowed: Iterable[str],
    content_type: str | None = None,
    content_encoding: str | None = None,
    max_bytes: int = 64 * 1024 * 1024,
    recipient_jwks: Mapping[str, Any] | None = None,
    no_key_reason: str = "the consuming client registered no encryption key",
    mac: Mac | None = None,
    envelope: Iterable[str] | None = None,
    binding: Binding | None = None,
) -> Shaped:
    """Cut, mask and encrypt the records of ``body``.

    ``items`` are the resource's item rules; ``allowed`` the item names the decision
    allows; ``envelope`` the route's envelope keys (None: not listed); ``binding`` what
    each encrypted item's header names. Raises ShapeError when the body or its records
    cannot be checked.
    """
    doc = parse_json(decode_content(body, content_encoding, max_bytes), content_type)
    rules = {i.name: i for i in items}
    allowed_set = [n for n in dict.fromkeys(allowed) if n in rules]
    withheld: dict[str, str] = {}
    key = None
    if any(rules[n].encrypt for n in allowed_set):
        key = encryption_key(recipient_jwks)
        if key is None:
            for n in allowed_set:
                if rules[n].encrypt:
                    withheld[n] = no_key_reason
    out_items = [n for n in allowed_set if n not in withheld]
    bound = {n: binding.header(n) for n in out_items
             if rules[n].encrypt and binding is not None}
    seen: set[str] = set()
    signing = binding is not None and binding.sign is not None

    def one(record: Any, index: int) -> dict[str, Any]:
        where = f"#{index}"
        if not isinstance(record, dict):
            raise ShapeError(f"record {where} is not a JSON object")
        out: dict[str, Any] = {}
        for n in out_items:
            if n not in record:
                continue
            rule = rules[n]
            value = record[n]
            if isinstance(value, dict | list) and rule.type not in _CONTAINERS:
                # data the catalogue does not describe (other items, nested) under a
                # scalar item's name: masked as text or encrypted whole, it would go out
                raise ShapeError(
                    f"item {n} is a {rule.type} in the catalogue; record {where} holds a "
                    f"JSON {'object' if isinstance(value, dict) else 'array'}")
            try:
                value = apply_mask(rule.mask, value, item=n, mac=mac)
            except RecursionError:
                raise ShapeError(f"item {n} of record {where} is nested too deeply to "
                                 "mask") from None
            out[n] = value
            seen.add(n)
        # encrypted last: each signed value names the record's other values as sent
        sealed = [n for n in out if rules[n].encrypt]
        row = record_digest(out, sealed) if sealed and signing else ""
        for n in sealed:
            out[n] = encrypt_value(out[n], key, bound.get(n), None if binding is None
                                   else binding.signed(n, index, row, out[n], count))
        return out

    target, path = _locate(doc, records)
    count = len(target) if isinstance(target, list) else 1
    try:
        if isinstance(target, list):
            shaped_records: Any = [one(r, k) for k, r in enumerate(target)]
        elif isinstance(target, dict):
            shaped_records = one(target, 0)
        else:
            raise ShapeError(
                f"records at {records or 'the body'!r} are neither a list nor an object")
        keep = _Keep(frozenset(item_key(n) for n in rules), envelope)
        result = shaped_records if not path else _envelope(doc, path, shaped_records, keep)
        data = dumps_exact(result, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # JSON's \ud800 escape parses to a lone surrogate, which UTF-8 cannot carry
        raise ShapeError("a released value holds a lone surrogate (not Unicode text)") from None
    released = tuple(n for n in out_items if n in seen)
    encrypted = tuple(n for n in released if rules[n].encrypt)
    return Shaped(data, released, withheld, count, tuple(keep.outside), tuple(keep.dropped),
                  encrypted, key_name(key) if encrypted else None,
                  {n: str(rules[n].mask) for n in released if rules[n].mask},
                  bool(encrypted) and signing)


class _Keep:
    """What the envelope keeps (module docstring), and the keys it dropped."""

    def __init__(self, items: frozenset[str], listed: Iterable[str] | None) -> None:
        self.items = items
        self.listed = None if listed is None else frozenset(listed)
        # the envelope objects a listed dotted path leads into ("page" for "page.next")
        self.within = frozenset(
            ".".join(parts[:k]) for parts in (n.split(".") for n in self.listed or ())
            for k in range(1, len(parts)))
        self.outside: list[str] = []
        self.dropped: list[str] = []

    def kept(self, full: str, key: str, value: Any) -> bool:
        if self.listed is None:
            return is_pagination(key) and is_count(value)
        return full in self.listed and (value is None or isinstance(
            value, str | bool | int | float | Number))


def _envelope(doc: dict[str, Any], path: list[str], records: Any, keep: _Keep,
              prefix: str = "") -> dict[str, Any]:
    """The envelope object ``doc`` (at the dotted ``prefix``) as the consumer gets it:
    the records in place at ``path`` (empty: none below), the keys ``keep`` keeps, and
    every other key named in ``keep``."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        full = prefix + k
        if path and k == path[0]:
            out[k] = (records if len(path) == 1
                      else _envelope(v, path[1:], records, keep, f"{full}."))
        elif item_key(k) in keep.items:
            keep.outside.append(full)
        elif isinstance(v, dict) and full in keep.within:
            out[k] = _envelope(v, [], None, keep, f"{full}.")
        elif keep.kept(full, k, v):
            out[k] = v
        else:
            keep.dropped.append(full)
    return out
