"""A DPoP client's key and the proofs it signs (RFC 9449 section 4), for the tests of
gateway.idp.dpop: signed by joserfc, as a client library would."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc import jwk, jws

from gateway.idp.dpop import ath_of


class Holder:
    """A client's DPoP key and the proofs it signs."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: Any = {"ES256": lambda: jwk.ECKey.generate_key("P-256"),
                         "EdDSA": lambda: jwk.OKPKey.generate_key("Ed25519"),
                         "PS256": lambda: jwk.RSAKey.generate_key(2048)}[alg]()
        self.jkt = self.key.thumbprint()

    def proof(self, method: str, url: str, *, token: str | None = None,
              iat: int | None = None, **claims: Any) -> str:
        body = {"jti": secrets.token_urlsafe(12), "htm": method, "htu": url,
                "iat": int(time.time()) if iat is None else iat, **claims}
        if token is not None:
            body["ath"] = ath_of(token)
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        with warnings.catch_warnings():  # joserfc: "EdDSA" is deprecated by RFC 9864
            warnings.simplefilter("ignore")
            return jws.serialize_compact(header, json.dumps(body).encode(), self.key,
                                         algorithms=[self.alg])


Send = Callable[[list[tuple[str, str]]], Awaitable[Any]]


def asks_for_nonce(r: Any) -> bool:
    """Whether ``r`` (status, lower-case headers, ``json()``) asks for a server nonce:
    the token endpoint's 400 ``use_dpop_nonce`` (RFC 9449 section 8), a resource's 401
    with ``error="use_dpop_nonce"`` (section 9)."""
    if "dpop-nonce" not in r.headers:
        return False
    if r.status == 401:
        return 'error="use_dpop_nonce"' in r.headers.get("www-authenticate", "")
    return r.status == 400 and r.json().get("error") == "use_dpop_nonce"


class NonceClient:
    """A DPoP client as sections 8 and 9 describe one: every proof carries the last
    nonce the server gave in ``DPoP-Nonce`` (remembered, as oauth4webapi's DPoP handle
    keeps one per origin), and an answer asking for a nonce is retried once with a new
    proof carrying the one given."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        self.nonce: str | None = None
        self.retried = 0

    async def call(self, send: Send, method: str, url: str, *, token: str | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Any:
        """``send`` the request (its header fields given) with a proof for ``method``
        ``url``; the answer, after at most one retry."""
        for attempt in (1, 2):
            claims = {} if self.nonce is None else {"nonce": self.nonce}
            proof = self.holder.proof(method, url, token=token, **claims)
            r = await send([*(headers or []), ("DPoP", proof)])
            if "dpop-nonce" in r.headers:
                self.nonce = r.headers["dpop-nonce"]
            if attempt == 1 and asks_for_nonce(r):
                self.retried += 1
                continue
            return r
        raise AssertionError("unreachable")
