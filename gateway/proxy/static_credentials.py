"""A fixed credential at ``/s/`` for an old system that cannot fetch a token: HTTP
Basic (its client id and secret, form-decoded as the token endpoint reads them, RFC 6749
section 2.3.1) or ``X-Api-Key: <client_id>.<key>`` (a key of its own, made and shown
once, kept as a keyed hash). Opt-in per client (``clients.static_credential``), for
clients of the ``client_credentials`` grant alone; the request is then admitted as if
that client had presented a client-credentials token with its registered scope.

Fail closed, and cheap on the hot path:

- A client not opted in for the kind presented is none of this module's business:
  the request goes on to the authenticator and is refused as before (Basic names the
  token endpoint, its secret never checked: no oracle for guessing it).
- Over plain HTTP from off the loopback (``scope["scheme"]``, which is ``https`` when
  TLS ends here or at one of the ``trusted_proxies`` that says so) it is refused before
  the secret is looked at: the secret would cross the network on every call.
- A credential naming a client not opted in costs no database read: the ids of the
  opted-in clients are re-read at most every second (a flood of Basic headers with
  random ids reads nothing).
- A secret verified once is remembered per process as its SHA-256 beside the stored
  hash it verified against (a constant-time compare, no HMAC key derivation); a
  rotated secret or key (another stored hash) or a disabled client (the registry
  answers none) ends the entry as soon as the client registry's cache does (1 s).
- Failed attempts are counted per client: past :data:`FAILURES` in
  :data:`FAILURE_WINDOW` seconds every attempt that does not match the remembered
  secret is refused 429 without being checked, while the system holding the right
  one goes on (its secret matches the remembered hash).

The audit record says ``authenticated_by: basic|api_key``, never the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from starlette.types import Scope

from gateway.errors import Unauthorized
from gateway.idp.authenticator import Principal
from gateway.idp.oauth2.rfc6749 import MalformedBasic, parse_basic
from gateway.tables import clients
from texts import Text

BASIC, API_KEY = "basic", "api_key"
HEADER = "x-api-key"
FAILURES = 10  # failed attempts per client ...
FAILURE_WINDOW = 60.0  # ... in this many seconds, then 429 until the window ends
MAX_KEY = 512
OPTED_SECONDS = 1.0  # as the client registry's cache


class TooManyFailures(Exception):
    """Past the failed attempts allowed: the proxy answers 429."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed attempts")
        self.retry_after = retry_after


def presented(headers: Mapping[str, str]) -> str | None:
    """The kind of fixed credential the request carries, or None: ``Authorization:
    Basic``, or ``X-Api-Key`` on a request without ``Authorization`` (beside a token
    the key is the upstream's business, forwarded as before)."""
    auth = headers.get("authorization")
    if auth is not None:
        return BASIC if auth[:6].lower() == "basic " else None
    return API_KEY if HEADER in headers else None


def secure(scope: Scope) -> bool:
    """Whether the credential did not cross a network in the clear: https as this
    server (or a trusted front proxy) saw it, or a peer on the loopback."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def _as_sent(credentials: str) -> str | None:
    """The secret of a Basic ``credentials`` part as sent, without form-decoding."""
    try:
        text = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _, colon, secret = text.partition(":")
    return secret if colon and ("%" in secret or "+" in secret) else None


def _unauthorized(reason: str) -> Unauthorized:
    return Unauthorized(Text("auth.invalid_credentials", "invalid or missing credentials"),
                        reason=reason)


class StaticCredentials:
    """The clients' fixed credentials, verified and remembered (module docstring)."""

    def __init__(self, clients_: Any, *, verify_secret: Callable[[str, str], bool],
                 verify_api_key: Callable[[str, str], bool],
                 engine: sa.Engine,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = clients_  # gateway.idp.oauth2.clients.ClientRegistry (cached 1 s)
        self.engine = engine
        # the ids of the clients opted in, re-read at most every OPTED_SECONDS: a Basic
        # header naming any other id (random ones, a flood) costs no database read
        self._opted: frozenset[str] = frozenset()
        self._opted_at = -1e9
        self.verify = {BASIC: verify_secret, API_KEY: verify_api_key}
        self.clock = clock
        # (client_id, kind) → (the stored hash verified against, SHA-256 of the secret)
        self._verified: dict[tuple[str, str], tuple[str, bytes]] = {}
        # client_id → (window start, failures in it)
        self._failures: dict[str, tuple[float, int]] = {}

    def principal(self, kind: str, headers: Mapping[str, str], scope: Scope,
                  audit: Any) -> Principal | None:
        """The principal of an opted-in client's credential of ``kind``; None when the
        request is not such a client's (the authenticator decides it as before);
        Unauthorized (wrong secret, plain HTTP) or :class:`TooManyFailures`."""
        unencoded = None
        if kind == BASIC:
            try:
                client_id, secret = parse_basic(headers["authorization"][6:])
            except MalformedBasic:
                return None
            unencoded = _as_sent(headers["authorization"][6:])
        else:
            value = headers.get(HEADER, "").strip()
            client_id, dot, rest = value.rpartition(".")
            if not dot or not client_id or not rest or len(value) > MAX_KEY:
                return None
            secret = value  # the whole key is what was hashed
        if client_id not in self._opted_now():
            self._verified.pop((client_id, kind), None)
            return None
        client = self.clients.get(client_id)  # active only: a disabled one is None
        # the grant checked here too: a row written past the state file's check never
        # lets a client that signs people in be called with a fixed credential
        if client is None or client.static_credential != kind or \
                client.grant_types != ("client_credentials",):
            self._verified.pop((client_id, kind), None)
            return None
        audit.actor_client = client.client_id
        audit.department = client.department
        audit.extra["authenticated_by"] = kind
        if not secure(scope):
            raise _unauthorized(f"static credential ({kind}) over plain HTTP from off the "
                                "loopback")
        stored = client.secret_hash if kind == BASIC else client.api_key_hash
        if not stored:
            raise _unauthorized(f"static credential ({kind}): the client has none")
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        known = self._verified.get((client_id, kind))
        if known is None or known[0] != stored or not hmac.compare_digest(known[1], digest):
            self._check(client_id, stored, secret, kind, unencoded)
            self._verified[(client_id, kind)] = (stored, digest)
        return Principal(
            subject=f"client:{client.client_id}", username=None,
            department=client.department, region=client.region, roles=frozenset(),
            client_id=client.client_id,
            scope=frozenset(client.default_scope("client_credentials").split()),
            session_id=None, token_id=None, via="bearer",
            client_department=client.department)

    def _opted_now(self) -> frozenset[str]:
        now = self.clock()
        if now - self._opted_at > OPTED_SECONDS:
            with self.engine.connect() as conn:
                self._opted = frozenset(conn.execute(
                    sa.select(clients.c.client_id).where(
                        clients.c.static_credential != "off",
                        clients.c.status == "active")).scalars())
            self._opted_at = now
        return self._opted

    def _check(self, client_id: str, stored: str, secret: str, kind: str,
               unencoded: str | None) -> None:
        now = self.clock()
        start, count = self._failures.get(client_id, (now, 0))
        if now - start >= FAILURE_WINDOW:
            start, count = now, 0
        if count >= FAILURES:
            raise TooManyFailures(start + FAILURE_WINDOW - now)
        if self.verify[kind](secret, stored):
            return
        if unencoded is not None and unencoded != secret and self.verify[kind](unencoded, stored):
            # curl -u sends a "+" or "%" as it is; read form-encoded (as the token endpoint
            # reads it) it is another secret. Whoever sent it holds the right one: not a
            # failed guess
            raise _unauthorized("static credential (basic): the secret was sent without "
                                "form-encoding (send + as %2B and % as %25)")
        if len(self._failures) > 10_000:
            self._failures.clear()
        self._failures[client_id] = (start, count + 1)
        what = "secret" if kind == BASIC else "API key"
        raise _unauthorized(f"static credential ({kind}): wrong {what}")
