"""Sender-constrained access tokens: OAuth 2.0 Demonstrating Proof of Possession
(DPoP, RFC 9449, https://www.rfc-editor.org/rfc/rfc9449).

A client that sends a ``DPoP`` proof (a JWT signed by a key of its own, the public
half in the proof's header) to the token endpoint gets an access token bound to that
key: ``cnf.jkt`` is the key's RFC 7638 thumbprint and ``token_type`` is ``DPoP``
(section 5). A refresh token issued to a public client with a proof is bound to the
same key (section 5.0: a confidential client's is bound to its own authentication);
a client registered ``dpop_bound`` must send a proof (Keycloak's "Require DPoP bound
tokens").

The resource side (the proxy, forward-auth, userinfo, the API: everything
``gateway.idp.authenticator`` authenticates) takes ``Authorization: DPoP <token>``
with a proof whose ``ath`` is the token's hash, ``htm``/``htu`` the request as the
client sent it, signed by the key the token names (section 7). A bound token sent as
``Bearer`` is refused: a stolen one is worth nothing without the key.

Checks on every proof (section 4.3): ``typ`` ``dpop+jwt``; ``alg`` one of
:data:`ALGS` (no ``none``, no MAC); ``jwk`` a public key only; the signature by that
key (joserfc); ``htm`` and ``htu`` (scheme and host case-insensitive, the default
port dropped, no query or fragment); ``iat`` no older than :data:`MAX_AGE` seconds
and no further ahead than the clock skew; ``jti`` never seen before for that key
while the proof could still be accepted: a row in ``idp_dpop_jtis`` (the table every
gateway process shares, so a proof replayed to another process is refused too), with a
per-process memory of the pairs seen in front of it (a replay to the same process costs
no write).

The ``htu`` a resource request's proof may name (:func:`request_target`): the issuer's
origin with the request's path (the URL clients are given), or the URL the request
really came in on: its scheme (``X-Forwarded-Proto`` only from a trusted front proxy,
``gateway.app``) and its ``Host``, or ``X-Forwarded-Host`` when the peer is one of the
``trusted_proxies`` (:data:`FORWARDED_HOST_KEY`); forward-auth's, the front proxy's
request line. A host that is not a host name or address with an optional port names
nothing (a ``#`` or ``?`` in it would move the path out of the comparison).

Server nonces (``DPoP-Nonce``, sections 8 and 9), by the setting ``dpop_nonce``: "off"
(the default, as Keycloak and Authlete ship), "token" (the token endpoint asks for one)
or "all" (the resources too). A nonce is stateless, so every process takes every
other's: the time slot of :data:`NONCE_SLOT` seconds and an HMAC of it under a key of
the key ring (:class:`Nonces`); the current and the previous slot are accepted.

Every refusal is :class:`InvalidProof` with a ``reason`` for the audit record; no
reason ever holds the token or the proof.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import OAuth2Error
from joserfc import jwk, jws
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry

from gateway.errors import Unauthorized
from gateway.idp.oauth2.tables import dpop_jtis, dpop_refresh
from texts import Text

PROOF_TYP = "dpop+jwt"
#: the proof algorithms taken (RFC 9449 section 5.1 ``dpop_signing_alg_values_supported``)
ALGS = ("ES256", "EdDSA", "RS256", "PS256")
#: how old a proof's ``iat`` may be, in seconds (section 11.1: a short window)
MAX_AGE = 60
MAX_PROOF = 8192  # characters: a proof carries one public key, an RSA-4096 one fits
MAX_JTI = 128
MIN_RSA_BITS = 2048
#: the private members of a JWK (RFC 7518 section 6): a proof's ``jwk`` holds none
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KTY = {"ES256": "EC", "EdDSA": "OKP", "RS256": "RSA", "PS256": "RSA"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: encoded proof headers whose key is remembered (past this many the cache starts again)
KEY_CACHE = 4096
_KEYS: dict[str, tuple[str, Any, str]] = {}
#: how often a process deletes the expired rows of the replay and refresh tables
PURGE_EVERY = 60.0
#: (jkt, jti) pairs a process remembers in front of the replay table (then swept)
SEEN_ENTRIES = 65536

# joserfc warns on every use of "EdDSA" (RFC 9864 prefers "Ed25519"); clients still
# sign DPoP proofs with "EdDSA" (RFC 9449's own examples): a registry without the
# warning, as keys._primitives keeps one
_quiet_eddsa = copy.copy(JWSRegistry.algorithms["EdDSA"])
_quiet_eddsa.security_warning = None


class _Registry(JWSRegistry):
    algorithms = {**JWSRegistry.algorithms, "EdDSA": _quiet_eddsa}  # noqa: RUF012
    # the header carries the public key: an RSA-4096 one is about 1 KiB encoded (the
    # whole proof is bounded by MAX_PROOF first)
    max_header_length = MAX_PROOF
    max_payload_length = MAX_PROOF


_REGISTRIES = {alg: _Registry(algorithms=[alg]) for alg in ALGS}


USE_NONCE = "use_dpop_nonce"
NONCE_MODES = ("off", "token", "all")
#: seconds a server nonce's time slot lasts; the current and the previous one are taken
NONCE_SLOT = 60
NONCE_PURPOSE = "idp.dpop_nonce"  # the key ring's keyed hash for nonces
_NONCE_TAG = 16  # bytes of the HMAC kept: 128 bits, guessed by nobody within a slot


class InvalidProof(Exception):
    """A DPoP proof refused; ``reason`` says why (for the audit record and the
    ``error_description``: never the proof or the token); ``error`` the OAuth error
    (``use_dpop_nonce`` when a server nonce is missing or stale, with ``nonce`` the
    one to use)."""

    def __init__(self, reason: str, *, error: str = "invalid_dpop_proof",
                 nonce: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.nonce = nonce


class InvalidDPoPProofError(OAuth2Error):
    """The token endpoint's answer to a bad or missing proof (RFC 9449 section 5), or
    to one without the server's nonce (section 8: ``use_dpop_nonce`` and the nonce in
    ``DPoP-Nonce``)."""

    error = "invalid_dpop_proof"

    def __init__(self, description: str | None = None, *, error: str | None = None,
                 nonce: str | None = None) -> None:
        super().__init__(description)
        if error is not None:
            self.error = error
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        headers = list(super().get_headers())
        if self.nonce is not None:
            headers.append(("DPoP-Nonce", self.nonce))
        return headers

    @classmethod
    def of(cls, exc: InvalidProof) -> InvalidDPoPProofError:
        return cls(exc.reason, error=exc.error, nonce=exc.nonce)


def challenge(error: str) -> str:
    """The ``WWW-Authenticate`` value of a DPoP refusal (RFC 9449 section 7.1)."""
    return f'DPoP realm="govgate", error="{error}", algs="{" ".join(ALGS)}"'


class DPoPRefused(Unauthorized):
    """A resource request refused for its DPoP binding: 401 with a DPoP challenge
    (``www_authenticate``) where a bearer refusal has the Bearer one, and with
    ``use_dpop_nonce`` the nonce to use (``nonce``, sent as ``DPoP-Nonce``)."""

    def __init__(self, reason: str, *, error: str = "invalid_dpop_proof",
                 nonce: str | None = None) -> None:
        # the words every other 401 has, so the admin API says them in the caller's language
        super().__init__(Text("auth.invalid_credentials", "invalid or missing credentials"),
                         reason=reason)
        self.www_authenticate = challenge(error)
        self.error = error
        self.nonce = nonce


def www_authenticate(exc: Unauthorized) -> bytes:
    """The ``WWW-Authenticate`` field value answering ``exc``: the DPoP challenge of a
    DPoP refusal, else the Bearer one every other 401 has."""
    found = getattr(exc, "www_authenticate", None)
    return (found if isinstance(found, str) else 'Bearer realm="govgate"').encode("latin-1")


def refusal_fields(exc: Unauthorized) -> list[tuple[bytes, bytes]]:
    """The header fields of the 401 answering ``exc``: ``WWW-Authenticate`` and, for a
    refusal asking for a server nonce (section 9), ``DPoP-Nonce``."""
    fields = [(b"www-authenticate", www_authenticate(exc))]
    nonce = getattr(exc, "nonce", None)
    if isinstance(nonce, str):
        fields.append((b"dpop-nonce", nonce.encode("ascii")))
    return fields


def refusal_headers(exc: Unauthorized) -> dict[str, str]:
    """:func:`refusal_fields` as a dict (Starlette's responses), spelt as the others'."""
    names = {b"www-authenticate": "WWW-Authenticate", b"dpop-nonce": "DPoP-Nonce"}
    return {names[k]: v.decode("latin-1") for k, v in refusal_fields(exc)}


class Nonces:
    """Server nonces (RFC 9449 section 8) no process has to remember: the time slot
    (``NONCE_SLOT`` seconds) and an HMAC of it (``mac``: the key ring's keyed hash for
    this purpose, the same key in every process sharing the database), base64url."""

    def __init__(self, mac: Callable[[bytes], bytes], clock: Callable[[], float]) -> None:
        self.mac = mac
        self.clock = clock

    def _of(self, slot: int) -> bytes:
        data = slot.to_bytes(8, "big")
        return data + self.mac(b"govgate dpop nonce\x00" + data)[:_NONCE_TAG]

    def current(self) -> str:
        slot = int(self.clock()) // NONCE_SLOT
        return base64.urlsafe_b64encode(self._of(slot)).rstrip(b"=").decode("ascii")

    def valid(self, nonce: object) -> bool:
        """Whether ``nonce`` is this slot's or the previous one's (constant-time)."""
        if not isinstance(nonce, str) or len(nonce) != 32 or not nonce.isascii():
            return False
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return False
        if len(raw) != 8 + _NONCE_TAG:
            return False
        slot = int.from_bytes(raw[:8], "big")
        now = int(self.clock()) // NONCE_SLOT
        return slot in (now, now - 1) and hmac.compare_digest(self._of(slot), raw)


@dataclass(frozen=True)
class Proof:
    jkt: str  # RFC 7638 thumbprint (SHA-256) of the proof's key
    jti: str
    iat: int
    nonce: object = None  # the proof's ``nonce`` claim, as sent


# a host name (with "_", which internal names carry and Go's servers accept), an IPv4
# address or an IPv6 literal, and an optional port: nothing that ends the authority
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}"
                   r"[A-Za-z0-9_])?)(?::[0-9]{1,5})?")


def origin_url(scheme: str, host: str | None) -> str | None:
    """``scheme://host`` for a request that came in on ``host`` (a ``Host`` or
    ``X-Forwarded-Host`` value), or None when ``host`` is no host name or address with
    an optional port: a ``/``, ``?``, ``#`` or ``@`` in it would move the request's
    path out of what the proof's ``htu`` is compared with."""
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host or not _HOST.fullmatch(host):
        return None
    return f"{scheme}://{host}"


def ath_of(token: str) -> str:
    """``ath``: base64url(SHA-256(the access token's ASCII)), section 4.2."""
    digest = hashlib.sha256(token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normal_htu(url: str) -> str | None:
    """``url`` as an ``htu`` is compared (section 4.3, RFC 3986 sections 6.2.2 and
    6.2.3): scheme and host in lower case, the scheme's default port dropped, no query
    or fragment; None when it is no http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def _segment(part: str) -> dict[str, Any]:
    """A proof's header or claims: a JSON object, or InvalidProof."""
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, UnicodeError) as exc:
        raise InvalidProof(f"the DPoP proof is malformed ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise InvalidProof("the DPoP proof is malformed (not JSON objects)")
    return value


def _header_key(head: str) -> tuple[str, Any, str]:
    """The algorithm, public key and thumbprint a proof's (encoded) header names, or
    InvalidProof. A client signs every proof with one key, so its header is the same
    string each time: what it names is remembered by that string (bounded), and the
    key is imported and its thumbprint hashed once, not on every request."""
    found = _KEYS.get(head)
    if found is not None:
        return found
    header = _segment(head)
    if header.get("typ") != PROOF_TYP:
        raise InvalidProof("the DPoP proof's typ is not dpop+jwt")
    alg = header.get("alg")
    if alg not in ALGS:
        raise InvalidProof("the DPoP proof's alg is not one of " + " ".join(ALGS))
    public = header.get("jwk")
    if not isinstance(public, dict) or public.get("kty") != _KTY[str(alg)]:
        raise InvalidProof("the DPoP proof's jwk is missing or not a key for its alg")
    if _PRIVATE & public.keys():
        raise InvalidProof("the DPoP proof's jwk holds private key material")
    try:
        key = jwk.import_key(public)
        if public["kty"] == "RSA" and key.public_key.key_size < MIN_RSA_BITS:  # type: ignore[union-attr]
            raise InvalidProof(f"the DPoP proof's RSA key is under {MIN_RSA_BITS} bits")
        jkt = key.thumbprint()
    except InvalidProof:
        raise
    except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidProof(f"the DPoP proof's key is bad ({type(exc).__name__})") from None
    if len(_KEYS) >= KEY_CACHE:
        _KEYS.clear()
    found = _KEYS[head] = (str(alg), key, jkt)
    return found


def verify_proof(proof: str, *, method: str, url: str | Sequence[str], now: float, skew: int,
                 access_token: str | None = None) -> Proof:
    """The key and ``jti`` of ``proof`` for a ``method`` request to ``url`` (or to any
    of several spellings of the one request's URL; with ``access_token``: its ``ath``
    too), or InvalidProof. The replay check is :meth:`DPoP.first_use`'s."""
    if not proof or len(proof) > MAX_PROOF or proof.count(".") != 2:
        raise InvalidProof("the DPoP proof is not a compact JWS")
    head, body, _sig = proof.split(".")
    alg, key, jkt = _header_key(head)
    claims = _segment(body)
    try:
        jws.deserialize_compact(proof, key, algorithms=[alg], registry=_REGISTRIES[alg])
    except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidProof(f"the DPoP proof's signature is bad ({type(exc).__name__})"
                           ) from None
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise InvalidProof(f"the DPoP proof's jti is missing or over {MAX_JTI} characters")
    if claims.get("htm") != method:
        raise InvalidProof("the DPoP proof's htm is not the request's method")
    htu = claims.get("htu")
    named = normal_htu(htu) if isinstance(htu, str) else None
    urls = (url,) if isinstance(url, str) else url
    if named is None or not any(named == normal_htu(u) for u in urls):
        raise InvalidProof("the DPoP proof's htu is not the request's URL")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidProof("the DPoP proof has no integer iat")
    if iat > now + skew:
        raise InvalidProof("the DPoP proof's iat is in the future")
    if iat < now - MAX_AGE - skew:
        raise InvalidProof(f"the DPoP proof is older than {MAX_AGE} s")
    if access_token is not None and claims.get("ath") != ath_of(access_token):
        raise InvalidProof("the DPoP proof's ath is not the access token's hash")
    return Proof(jkt=jkt, jti=jti, iat=iat, nonce=claims.get("nonce"))


# -- the key a token request's proof names, for the token generator ----------------------

_BOUND: contextvars.ContextVar[str | None] = contextvars.ContextVar("dpop_jkt", default=None)
T = TypeVar("T")


def bound_key() -> str | None:
    """The thumbprint of the proof of the token request being answered, or None."""
    return _BOUND.get()


@contextmanager
def binding(jkt: str | None) -> Iterator[None]:
    mark = _BOUND.set(jkt)
    try:
        yield
    finally:
        _BOUND.reset(mark)


def bound_call(jkt: str | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with ``jkt`` as :func:`bound_key` (in a thread pool's thread)."""
    with binding(jkt):
        return fn(*args)


def require_bound(client: Any) -> None:
    """``invalid_dpop_proof`` when ``client`` is registered ``dpop_bound`` and the
    token request carries no proof (the authenticated client's first check)."""
    if getattr(client, "dpop_bound", False) and bound_key() is None:
        raise InvalidDPoPProofError("this client must present a DPoP proof")


def token_claims(claims: dict[str, Any]) -> bool:
    """Bind ``claims`` (an access token's) to the request's proof key, if there is one;
    True when bound (the token's ``token_type`` is then ``DPoP``)."""
    jkt = bound_key()
    if jkt is None:
        return False
    claims["cnf"] = {"jkt": jkt}
    return True


def jkt_of(claims: dict[str, Any]) -> str | None:
    """The thumbprint a verified access token is bound to, None for a bearer token;
    InvalidProof for a ``cnf`` that says nothing usable (fail closed)."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise InvalidProof("the token's cnf claim names no jkt")
    return jkt


class DPoP:
    """Proof checks with the shared replay table, server nonces, and refresh-token
    bindings (one per identity server)."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime], *, skew: int,
                 mac: Callable[[str], str], nonces: Nonces | None = None,
                 nonce_mode: str = "off") -> None:
        self.engine = engine
        self.clock = clock
        self.skew = skew
        self.mac = mac  # Store.hash("refresh", token): the refresh table's own key
        self.nonces = nonces
        # "token": the token endpoint asks for a nonce; "all": the resources too
        self.nonce_mode = nonce_mode if nonces is not None else "off"
        self._purged = 0.0
        self._lock = threading.Lock()
        # the (jkt, jti) this process has seen, until their rows' expiry: a replay to
        # this process is refused without a write (the table stays the truth across
        # processes; a pair missing here is only ever inserted)
        self._seen: dict[tuple[str, str], float] = {}
        # built once: ``insert().values(...)`` per proof coerces every value anew (a
        # third of the insert's CPU besides the commit)
        self._remember = dpop_jtis.insert()

    def current_nonce(self) -> str | None:
        """The nonce a client is to put in its next proofs, None when none is asked."""
        return None if self.nonce_mode == "off" or self.nonces is None \
            else self.nonces.current()

    def verified(self, proofs: Sequence[str], *, method: str, url: str | Sequence[str],
                 access_token: str | None = None, key: str | None = None,
                 resource: bool = True) -> Proof:
        """The one proof of a request (``proofs``: its ``DPoP`` header fields), checked
        (``key``: signed by the key of that thumbprint, the token's) and, where the
        setting asks, carrying a current server nonce (``resource``: at a resource,
        else at the token endpoint), its ``jti`` not yet used up (:meth:`use`); no
        database work. InvalidProof otherwise."""
        if len(proofs) != 1:
            raise InvalidProof("no DPoP proof" if not proofs
                               else "more than one DPoP header field")
        found = verify_proof(proofs[0].strip(), method=method, url=url,
                             now=self.clock().timestamp(), skew=self.skew,
                             access_token=access_token)
        if key is not None and found.jkt != key:
            raise InvalidProof("the DPoP proof is signed by another key than the token's")
        if self.nonces is not None and self.nonce_mode in (("all",) if resource
                                                           else ("token", "all")) \
                and not self.nonces.valid(found.nonce):
            # section 8 and 9: not a bad proof, the client is told the nonce to use
            raise InvalidProof("the DPoP proof has no current server nonce"
                               if found.nonce is None
                               else "the DPoP proof's nonce is not a current one",
                               error=USE_NONCE, nonce=self.nonces.current())
        return found

    def use(self, proof: Proof) -> None:
        """Use ``proof``'s ``jti`` up, or InvalidProof for a replay (touches the
        database: call it in a thread from async code)."""
        if not self.first_use(proof):
            raise InvalidProof("the DPoP proof was used before (replay)")

    def check(self, proofs: Sequence[str], *, method: str, url: str | Sequence[str],
              access_token: str | None = None, key: str | None = None,
              resource: bool = True) -> Proof:
        """:meth:`verified`, then :meth:`use` (touches the database: call it in a thread
        from async code)."""
        found = self.verified(proofs, method=method, url=url, access_token=access_token,
                              key=key, resource=resource)
        self.use(found)
        return found

    def first_use(self, proof: Proof) -> bool:
        """False when a proof with this key and ``jti`` was seen while it could still
        be accepted (by any process sharing the database)."""
        now = self.clock()
        # past this, its iat is too old for verify_proof whatever the clock skew
        until = datetime.fromtimestamp(proof.iat, now.tzinfo) + timedelta(
            seconds=MAX_AGE + 2 * self.skew)
        pair = (proof.jkt, proof.jti)
        tick = time.monotonic()
        with self._lock:
            seen = self._seen.get(pair)
        if seen is not None and seen > tick:
            return False
        self._purge(now)
        try:
            with self.engine.begin() as conn:
                conn.execute(self._remember, {"jkt": proof.jkt, "jti": proof.jti,
                                              "expires_at": max(until, now)})
        except sa.exc.IntegrityError:
            first = False
        else:
            first = True
        kept = tick + max((until - now).total_seconds(), 0.0)
        with self._lock:
            if len(self._seen) >= SEEN_ENTRIES:
                self._seen = {k: v for k, v in self._seen.items() if v > tick}
                if len(self._seen) >= SEEN_ENTRIES // 2:
                    self._seen.clear()
            self._seen[pair] = kept
        return first

    def bind_refresh(self, refresh_token: str, jkt: str, lifetime: int) -> None:
        """Bind a public client's new refresh token to the key of its proof."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(dpop_refresh.insert().values(
                token_hash=self.mac(refresh_token), jkt=jkt,
                expires_at=now + timedelta(seconds=lifetime)))

    def refresh_key(self, refresh_token: str) -> str | None:
        """The key a refresh token is bound to, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(dpop_refresh.c.jkt).where(
                dpop_refresh.c.token_hash == self.mac(refresh_token))).first()
        return None if row is None else str(row.jkt)

    def token_request(self, proofs: Sequence[str], form: dict[str, str],
                      url: str | Sequence[str]) -> str | None:
        """The thumbprint a token request's tokens are to be bound to (None: no proof
        and nothing bound asks for one); InvalidDPoPProofError for a bad proof (or one
        without the server's nonce: ``use_dpop_nonce``), or a refresh token bound to a
        key the request does not prove."""
        jkt = None
        if proofs:
            try:
                jkt = self.check(proofs, method="POST", url=url, resource=False).jkt
            except InvalidProof as exc:
                raise InvalidDPoPProofError.of(exc) from None
        refresh = form.get("refresh_token")
        if form.get("grant_type") == "refresh_token" and refresh:
            # before the grant uses the token up: a thief without the key burns nothing
            wanted = self.refresh_key(refresh)
            if wanted is not None and jkt != wanted:
                raise InvalidDPoPProofError(
                    "the refresh token is bound to a DPoP key this request does not prove")
        return jkt

    def _purge(self, now: datetime) -> None:
        tick = time.monotonic()
        with self._lock:
            if tick - self._purged < PURGE_EVERY:
                return
            self._purged = tick
        with self.engine.begin() as conn:
            conn.execute(dpop_jtis.delete().where(dpop_jtis.c.expires_at < now))
            conn.execute(dpop_refresh.delete().where(dpop_refresh.c.expires_at < now))


#: the request as the client sent it, ``(method, url)``, where the gateway is not its
#: target (forward-auth: the front proxy's request line, set by gateway.proxy.forward_auth;
#: url None when the front proxy named no usable host)
TARGET_KEY = "govgate.dpop_target"
#: the host a trusted front proxy says the client addressed (its ``X-Forwarded-Host``,
#: kept by ``gateway.app`` only when the peer is one of the ``trusted_proxies``)
FORWARDED_HOST_KEY = "govgate.forwarded_host"


def request_target(scope: Mapping[str, Any], issuer: str) -> tuple[str, tuple[str, ...]]:
    """The method and the URLs a proof for the request in ``scope`` may name:
    forward-auth's original request; else this request's path at the issuer's
    address (the URL clients are given) or at the address it came in on (scheme, and
    the trusted front proxy's ``X-Forwarded-Host`` or else the ``Host``)."""
    found = scope.get(TARGET_KEY)
    if found is not None:
        method, url = found
        return method, (() if url is None else (url,))
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = raw.partition(b"?")[0].decode("latin-1")
    host = scope.get(FORWARDED_HOST_KEY)
    if host is None:
        host = next((v.decode("latin-1") for k, v in scope.get("headers") or ()
                     if k == b"host"), None)
    own = origin_url(scope.get("scheme") or "http", host)
    urls = (issuer + path,) if own is None else (issuer + path, own + path)
    return scope["method"], urls


def presented(scheme: str, key: str | None) -> None:
    """Refuse a token presented in the scheme its binding forbids: a DPoP-bound token
    as ``Bearer`` (a thief's downgrade, RFC 9449 section 7.2), a bearer token as
    ``DPoP``."""
    if scheme == "bearer" and key is not None:
        raise DPoPRefused("a DPoP-bound token presented as Bearer", error="invalid_token")
    if scheme == "dpop" and key is None:
        raise DPoPRefused("a token not bound to a DPoP key presented as DPoP",
                          error="invalid_token")


def refused(exc: InvalidProof) -> DPoPRefused:
    return DPoPRefused(exc.reason, error=exc.error, nonce=exc.nonce)


def verified_proof(server_dpop: DPoP, headers: Any, scope: Mapping[str, Any], issuer: str,
                   token: str, key: str) -> Proof:
    """The request's proof for ``token`` bound to ``key``, not yet used up
    (:func:`use_proof`), or DPoPRefused; no database work."""
    method, urls = request_target(scope, issuer)
    try:
        return server_dpop.verified(headers.getlist("dpop"), method=method, url=urls,
                                    access_token=token, key=key)
    except InvalidProof as exc:
        raise refused(exc) from None


def use_proof(server_dpop: DPoP, proof: Proof) -> None:
    """``proof``'s ``jti`` used up, or DPoPRefused for a replay (the database is
    touched: run in a thread)."""
    try:
        server_dpop.use(proof)
    except InvalidProof as exc:
        raise refused(exc) from None


def proven(server_dpop: DPoP, headers: Any, scope: Mapping[str, Any], issuer: str,
           token: str, key: str) -> Proof:
    """The request's proof for ``token`` bound to ``key``, checked and used up, or
    DPoPRefused (the database is touched: run in a thread)."""
    found = verified_proof(server_dpop, headers, scope, issuer, token, key)
    use_proof(server_dpop, found)
    return found
