"""Drop-in verifier of ``X-Govgate-Assertion`` for upstream systems (ASGI or WSGI).

An upstream behind govgate trusts one thing: the assertion the gateway signs
for each request (``gateway.proxy.assertion``). This module checks it against the
gateway's assertion keys (``{gateway}/.well-known/govgate-assertion-jwks.json``,
cached, refetched at most every ``min_refetch`` seconds when an unknown key id shows
up) and hands the identity to the application. The OpenID Provider's
``/.well-known/jwks.json`` holds no assertion key (key separation, since 2026-12): a
``jwks_url`` naming it is refused at once. It depends only on the standard library and
``joserfc``, so it can be copied into a project that does not install govgate.
A gateway under the 国密 profile signs with SM2 (``alg`` ``SM2SM3``, docs/keys.md):
those assertions also need ``tongsuopy`` (``pip install tongsuopy``), imported when
the first one arrives.

Checked: compact JWS; ``alg`` one of ES256, RS256, EdDSA, SM2SM3 and equal to the
key's; ``kid`` in the assertion key set with ``use`` sig; header ``typ``
``govgate-assertion+jwt``; signature; ``iss`` the gateway; ``aud`` this
system; ``exp``/``nbf`` with ``leeway`` seconds; a lifetime of at most 60 s;
and, when the assertion is bound to a request (``htm``, ``htu``), that this is
that request: the same method, and the same raw path (or that path below the
``/s/{system}`` prefix a front proxy stripped). Any failure raises
:class:`InvalidAssertion` (one opaque error; ``reason`` says why, for logs).

ASGI::

    from govgate_upstream import AssertionMiddleware
    app = AssertionMiddleware(app, gateway="https://gw.example", audience="vehicles")
    # in a handler: request.scope["govgate"] -> {"username": ..., "department": ...}

WSGI (Flask, Django)::

    from govgate_upstream import WSGIAssertionMiddleware
    app.wsgi_app = WSGIAssertionMiddleware(app.wsgi_app, gateway=..., audience="vehicles")
    # environ["govgate"] -> claims

The same system as a consumer of another department's data opens the items the
catalogue encrypted for it with :func:`open_item`, which also checks that the JWE
is that item's, of that resource, for this client, from this gateway, and that the
value inside is signed by the gateway (its assertion key set, fetched from
``{issuer}/.well-known/govgate-assertion-jwks.json`` and cached; give ``verifier=``
an :class:`AssertionVerifier` of your own to choose where, and call it off the event
loop in async code, as its first fetch blocks). Give the value's place to have it
checked too: the answer's ``X-Request-ID``, the record's index, the record::

    for k, record in enumerate(answer.json()["items"]):
        phone = open_item(record["driver_phone"], private_key, item="driver_phone",
                          resource="JG-0001", client_id="finance-system", issuer=gateway,
                          request_id=answer.headers["x-request-id"], index=k, record=record)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

HEADER = "x-govgate-assertion"
log = logging.getLogger("govgate_upstream")
TYP = "govgate-assertion+jwt"
SM2 = "SM2SM3"  # SM2 with SM3, GM/T 0003.2; JWK {"kty": "EC", "crv": "SM2", "x", "y"}
ALGORITHMS = ("ES256", "RS256", "EdDSA", SM2)
MAX_LIFETIME = 60

_quiet_eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
_quiet_eddsa.security_warning = None


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _quiet_eddsa}  # noqa: RUF012


_REGISTRIES = {alg: _Registry(algorithms=[alg]) for alg in ALGORITHMS if alg != SM2}


class InvalidAssertion(Exception):
    """The assertion is missing or not valid for this system."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid govgate assertion")
        self.reason = reason


#: key ids of the gateway's other keys (``<use>-<date>-<thumbprint>``), which never sign
#: an assertion (and are not in the assertion key set; skipped should one appear there)
OTHER_USES = ("token-", "token_rs256-", "audit-")
#: where the gateway publishes the assertion keys, below its base URL
ASSERTION_JWKS_PATH = "/.well-known/govgate-assertion-jwks.json"
#: the OpenID Provider's key set: token keys only, never an assertion key
OP_JWKS_PATH = "/.well-known/jwks.json"


def _b64json(part: str) -> Any:
    import base64

    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _sm2_claims(token: str, jwk: dict[str, Any]) -> dict[str, Any]:
    """The claims of an ``SM2SM3`` compact JWS after checking its signature (``r || s``
    over ``header.payload``) with tongsuopy, the Tongsuo project's binding: SM2 with
    SM3 and the default ID 1234567812345678, as the gateway signs."""
    try:
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        from tongsuopy.crypto import hashes
        from tongsuopy.crypto.asymciphers import ec
    except ImportError:
        raise InvalidAssertion("SM2 assertion: install tongsuopy to verify it") from None
    import base64

    def unb64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    head, payload, sig_part = token.split(".")
    try:
        sig = unb64(sig_part)
        public = ec.EllipticCurvePublicNumbers(
            int.from_bytes(unb64(jwk["x"]), "big"), int.from_bytes(unb64(jwk["y"]), "big"),
            ec.SM2()).public_key()
        if len(sig) != 64:
            raise ValueError("signature length")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        public.verify(der, f"{head}.{payload}".encode("ascii"), ec.ECDSA(hashes.SM3()))
        claims = json.loads(unb64(payload))
    except Exception as exc:  # bad key, bad encoding, bad signature: all one answer
        raise InvalidAssertion(f"signature: {type(exc).__name__}") from None
    if not isinstance(claims, dict):
        raise InvalidAssertion("claims are not an object")
    return claims


def fetch_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    if not url.startswith(("https://", "http://")):
        raise ValueError("JWKS URL must be http(s)")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked
        return dict(json.loads(resp.read(1024 * 1024)))


class AssertionVerifier:
    """Verifies assertions for one system (``audience``) from one gateway."""

    def __init__(
        self,
        *,
        gateway: str | None = None,
        audience: str,
        issuer: str | None = None,
        jwks_url: str | None = None,
        jwks: dict[str, Any] | None = None,
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
        ttl: float = 300.0,
        min_refetch: float = 10.0,
        leeway: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if gateway is None and issuer is None:
            raise ValueError("give gateway= (its base URL) or issuer=")
        self.issuer = issuer or str(gateway).rstrip("/")
        self.audience = audience
        if jwks_url is not None and jwks_url.partition("?")[0].rstrip("/").endswith(
                OP_JWKS_PATH):
            raise ValueError(f"jwks_url {jwks_url!r} is the OpenID Provider's key set, which "
                             "holds no assertion key: use the gateway's "
                             f"{ASSERTION_JWKS_PATH} (or give gateway= alone)")
        self.jwks_url = jwks_url or (f"{str(gateway).rstrip('/')}{ASSERTION_JWKS_PATH}"
                                     if gateway else None)
        self.fetch = fetch
        self.ttl = ttl
        self.min_refetch = min_refetch
        self.leeway = leeway
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, key)
        self._fetched_at = float("-inf")
        if jwks is not None:
            self._load(jwks)
            self._fetched_at = float("inf")  # static keys: never refetch

    def _load(self, jwks: dict[str, Any]) -> None:
        keys: dict[str, tuple[str, Any]] = {}
        for jwk in jwks.get("keys", []):
            kid, alg = jwk.get("kid"), jwk.get("alg")
            if not isinstance(kid, str) or alg not in ALGORITHMS or jwk.get("use", "sig") != "sig":
                continue
            if kid.startswith(OTHER_USES):  # the gateway's token and audit keys
                continue
            if alg == SM2:  # no joserfc key type for SM2: checked by _sm2_claims
                if jwk.get("kty") == "EC" and jwk.get("crv") == "SM2":
                    keys[kid] = (alg, dict(jwk))
                continue
            keys[kid] = (alg, KeySet.import_key_set({"keys": [jwk]}))
        self._keys = keys

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            age = now - self._fetched_at
            if self.jwks_url is None or age < (self.min_refetch if force else self.ttl):
                return
            self._fetched_at = now
        self._load(self.fetch(self.jwks_url))
        if not self._keys:  # every assertion is refused: say why where an operator looks
            log.warning("%s holds no assertion key; the gateway publishes them at %s",
                        self.jwks_url, ASSERTION_JWKS_PATH)

    def needs_fetch(self, token: str) -> bool:
        try:
            kid = _b64json(token.split(".", 1)[0]).get("kid")
        except (ValueError, UnicodeError, AttributeError):
            return False
        return kid not in self._keys or time.monotonic() - self._fetched_at > self.ttl

    def signed_claims(self, token: str | None, typ: str, *,
                      limit: int | None = 16384) -> dict[str, Any]:
        """The claims of a compact JWS of header ``typ`` signed by one of the gateway's
        assertion keys (an assertion, or an encrypted item's inner JWS: ``limit`` None,
        as long as the value), or InvalidAssertion; nothing but the signature is
        checked here."""
        if not token or (limit is not None and len(token) > limit) or token.count(".") != 2:
            raise InvalidAssertion("missing or not a compact JWS")
        try:
            header = _b64json(token.split(".", 1)[0])
        except (ValueError, UnicodeError):
            raise InvalidAssertion("bad header") from None
        if not isinstance(header, dict) or header.get("typ") != typ:
            raise InvalidAssertion(f"not a {typ} (typ)")
        kid, alg = header.get("kid"), header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidAssertion(f"algorithm {alg!r} not accepted")
        if kid not in self._keys or time.monotonic() - self._fetched_at > self.ttl:
            try:
                self.refresh(force=kid not in self._keys)
            except Exception as exc:  # the gateway is unreachable: keep the cached keys
                if kid not in self._keys:
                    raise InvalidAssertion(f"JWKS unavailable: {exc}") from None
        entry = self._keys.get(kid) if isinstance(kid, str) else None
        if entry is None:
            raise InvalidAssertion("unknown key id" if self._keys else
                                   f"no assertion key in the key set (the gateway publishes "
                                   f"them at {ASSERTION_JWKS_PATH})")
        key_alg, key = entry
        if key_alg != alg:
            raise InvalidAssertion("algorithm does not match the key")
        if alg == SM2:
            return _sm2_claims(token, key)
        try:
            return dict(jwt.decode(token, key, algorithms=[alg],
                                   registry=_REGISTRIES[alg]).claims)
        except Exception as exc:
            raise InvalidAssertion(f"signature: {type(exc).__name__}") from None

    def verify(self, token: str | None, *, method: str | None = None,
               path: str | None = None) -> dict[str, Any]:
        """The assertion's claims, or InvalidAssertion. ``method`` and ``path`` (the raw
        path, still percent-encoded) are the request's: a bound assertion must be for
        it."""
        claims = self.signed_claims(token, TYP)
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise InvalidAssertion("issuer")
        aud = claims.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            raise InvalidAssertion("audience")
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if not (isinstance(exp, int | float) and isinstance(nbf, int | float)
                and isinstance(iat, int | float)):
            raise InvalidAssertion("exp, nbf and iat are required")
        if now > exp + self.leeway:
            raise InvalidAssertion("expired")
        if now + self.leeway < nbf:
            raise InvalidAssertion("not yet valid")
        if exp - iat > MAX_LIFETIME:
            raise InvalidAssertion("lifetime over 60 s")
        htm, htu = claims.get("htm"), claims.get("htu")
        if htm is not None and htm != method:
            raise InvalidAssertion("made for another method")
        if htu is not None and path != htu and htu != f"/s/{self.audience}{path}":
            raise InvalidAssertion("made for another path")
        return claims


def _problem(_reason: str) -> bytes:
    return json.dumps({"type": "urn:govgate:error:invalid_assertion",
                       "title": "Not called through govgate", "status": 401}).encode()


class AssertionMiddleware:
    """ASGI middleware: 401 unless the request carries a valid assertion; the
    claims go to ``scope["govgate"]``. ``exempt`` paths (e.g. /healthz) pass."""

    def __init__(self, app: Any, *, verifier: AssertionVerifier | None = None,
                 exempt: Iterable[str] = ("/healthz",), **kwargs: Any) -> None:
        self.app = app
        self.verifier = verifier or AssertionVerifier(**kwargs)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        token = None
        for k, v in scope["headers"]:
            if k.lower() == HEADER.encode():
                token = v.decode("latin-1")
                break
        if token and self.verifier.needs_fetch(token):
            with contextlib.suppress(Exception):  # unreachable: decide on the cached keys
                await asyncio.to_thread(self.verifier.refresh, force=True)
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        try:
            claims = self.verifier.verify(token, method=scope.get("method"),
                                          path=raw.partition(b"?")[0].decode("latin-1"))
        except InvalidAssertion as exc:
            body = _problem(exc.reason)
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        scope["govgate"] = claims
        await self.app(scope, receive, send)


class WSGIAssertionMiddleware:
    """WSGI middleware: 401 unless a valid assertion; claims in ``environ["govgate"]``."""

    def __init__(self, app: Any, *, verifier: AssertionVerifier | None = None,
                 exempt: Iterable[str] = ("/healthz",), **kwargs: Any) -> None:
        self.app = app
        self.verifier = verifier or AssertionVerifier(**kwargs)
        self.exempt = frozenset(exempt)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") in self.exempt:
            return self.app(environ, start_response)
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(
            (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1"),
            safe="/!$&'()*+,;=:@-._~")
        try:
            environ["govgate"] = self.verifier.verify(
                environ.get("HTTP_X_GOVGATE_ASSERTION"), method=environ.get("REQUEST_METHOD"),
                path=raw.partition("?")[0])
        except InvalidAssertion as exc:
            body = _problem(exc.reason)
            start_response("401 Unauthorized", [("Content-Type", "application/problem+json"),
                                                ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


# ---------------------------------------------------------------------------
# items the gateway encrypted for this system as a consumer (the catalogue's
# ``encrypt: true``, docs/catalogue.md "Encrypted items")

#: the ``typ`` of an encrypted item's JWE
ITEM_TYP = "govgate-item"
#: the ``typ`` of the signed value inside it (a nested JWT, the JWE's ``cty`` JWT)
ITEM_JWT_TYP = "govgate-item+jwt"
_ITEM_ALG, _ITEM_ENC = "ECDH-ES+A256KW", "A256GCM"
# what the gateway's header holds; anything else (``zip``: 500 bytes inflating to
# megabytes, ``crit``, ``jku``) is not the gateway's and is refused unread
_ITEM_HEADER = frozenset({"alg", "enc", "cty", "typ", "apu", "apv", "kid", "epk"})
_ITEM_VERIFIERS: dict[tuple[str, str], AssertionVerifier] = {}
_ITEM_VERIFIERS_LOCK = threading.Lock()


class InvalidItem(Exception):
    """The value is not an item the gateway encrypted for this place and this client."""

    def __init__(self, reason: str) -> None:
        super().__init__("not an encrypted item for this place")
        self.reason = reason


def record_digest(record: Any, encrypted: Iterable[str]) -> str:
    """base64url SHA-256 of ``record``'s values other than the ``encrypted`` items, as
    received (JSON, keys sorted, no spaces, UTF-8): what the gateway signed beside each
    encrypted value of the record (``row``)."""
    import base64
    import hashlib

    skip = frozenset(encrypted)
    clear = {k: v for k, v in record.items() if k not in skip}
    text = json.dumps(clear, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _item_verifier(issuer: str, client_id: str) -> AssertionVerifier:
    with _ITEM_VERIFIERS_LOCK:
        found = _ITEM_VERIFIERS.get((issuer, client_id))
        if found is None:
            found = _ITEM_VERIFIERS[(issuer, client_id)] = AssertionVerifier(
                gateway=issuer, audience=client_id)
        return found


def open_item(value: str, key: Any, *, item: str, resource: str, client_id: str,
              issuer: str, verifier: AssertionVerifier | None = None,
              request_id: str | None = None, index: int | None = None,
              record: Any = None, encrypted: Iterable[str] | None = None,
              count: int | None = None, allow_unsigned: bool = False) -> Any:
    """The clear value of the encrypted item ``item`` of catalogue resource ``resource``
    that the gateway ``issuer`` sent to client ``client_id``, opened with that client's
    private ``key`` (a joserfc key). The JWE's header names all four (``apu``, ``apv``,
    which enter the key derivation, and the header is authenticated); inside it the
    gateway signed the value (by an assertion key: ``verifier``, by default one fetching
    ``{issuer}/.well-known/govgate-assertion-jwks.json``) with the same four and its
    place: the answer's ``request_id`` (its ``X-Request-ID``), the record's ``index`` in
    the answer's records (0 for an answer of one record), and the ``record`` as received
    (its other values, the ``encrypted`` items of the record aside: by default those
    holding an item JWE), and ``count``, how many records the answer has as received
    (records dropped from its end leave every remaining value in place; the count the
    gateway signed tells); each checked when given. A value signed before the gateway
    signed the count (no ``n`` claim) opens without that check: the signature shows it
    was made so, and no one can take ``n`` out of a newer one. A ciphertext moved from
    another item, resource, record or answer, another consumer's answer, one of an
    answer cut short, a value the gateway did not sign, or anything not a JWE to
    ``key`` raises :class:`InvalidItem`. ``allow_unsigned``
    opens a value of before the signature (``cty`` json; the gateway sends them to the
    clients its ``catalogue_unsigned_item_clients`` lists), checked as before: its
    origin is then only TLS's word."""
    from joserfc import jwe
    from joserfc.errors import JoseError

    if not isinstance(value, str) or value.count(".") != 4:
        raise InvalidItem("not a compact JWE")
    try:
        header = _b64json(value.split(".", 1)[0])
    except ValueError:
        raise InvalidItem("header is not base64url JSON") from None
    if not isinstance(header, dict) or header.get("typ") != ITEM_TYP \
            or header.get("alg") != _ITEM_ALG or header.get("enc") != _ITEM_ENC:
        raise InvalidItem("not a govgate item JWE (typ, alg, enc)")
    if extra := sorted(set(header) - _ITEM_HEADER):
        raise InvalidItem(f"header parameters the gateway never sets: {', '.join(extra)}")
    signed = header.get("cty") == "JWT"
    if not signed and not (allow_unsigned and header.get("cty") == "json"):
        raise InvalidItem("the value is not signed by the gateway (cty is not JWT)")
    try:
        producer = _b64json(str(header.get("apu", "")))
        consumer = _unb64(str(header.get("apv", ""))).decode("utf-8")
    except ValueError:
        raise InvalidItem("apu or apv unreadable") from None
    if producer != {"iss": issuer, "resource": resource, "item": item}:
        raise InvalidItem("the JWE is for another gateway, resource or item")
    if consumer != client_id:
        raise InvalidItem("the JWE is for another client")
    try:
        opened = jwe.decrypt_compact(value, key, algorithms=[_ITEM_ALG, _ITEM_ENC])
        plaintext = opened.plaintext or b""
        if not signed:
            return json.loads(plaintext)
        inner = plaintext.decode("ascii")
    except (JoseError, ValueError) as exc:
        raise InvalidItem(f"does not open with this key: {type(exc).__name__}") from None
    check = verifier or _item_verifier(issuer, client_id)
    try:
        claims = check.signed_claims(inner, ITEM_JWT_TYP, limit=None)
    except InvalidAssertion as exc:
        raise InvalidItem(f"not signed by the gateway: {exc.reason}") from None
    if {k: claims.get(k) for k in ("iss", "aud", "resource", "item")} != {
            "iss": issuer, "aud": client_id, "resource": resource, "item": item}:
        raise InvalidItem("signed for another gateway, client, resource or item")
    if "v" not in claims:
        raise InvalidItem("the signed value is missing")
    if request_id is not None and claims.get("rid") != request_id:
        raise InvalidItem("the value is of another answer (request id)")
    if index is not None and claims.get("rec") != index:
        raise InvalidItem("the value is of another record of the answer (index)")
    if count is not None and "n" in claims and claims["n"] != count:
        raise InvalidItem(f"the answer had {claims['n']} records, not {count}: "
                          "cut short or added to")
    if record is not None and claims.get("row") != record_digest(
            record, _sealed(record) if encrypted is None else encrypted):
        raise InvalidItem("the value is of another record (its other values differ)")
    return claims["v"]


def _sealed(record: Any) -> list[str]:
    """The keys of ``record`` holding a govgate item JWE: the values the gateway's
    ``row`` digest leaves out. A clear value made to look like one, or an encrypted one
    replaced, changes the set of keys digested, so the digest no longer matches."""
    found = []
    for k, v in record.items():
        if isinstance(v, str) and v.count(".") == 4:
            try:
                header = _b64json(v.split(".", 1)[0])
            except ValueError:
                continue
            if isinstance(header, dict) and header.get("typ") == ITEM_TYP:
                found.append(k)
    return found


def _unb64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
