"""The proxy's caches stay as small as the tokens and callers in use.

Under the load run (bench/bench_load.py) a server's memory climbed a few KiB with
every token it had ever seen: each refresh and client-credentials token added an
entry to the cache of verified tokens that nothing removed until 50,000 had piled
up, and one to the assertion signer's cache of claims (keyed by the token's
principal) until 10,000 had. Expired tokens are now swept as that cache grows, and
the signer keeps one entry per caller and system.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.proxy.assertion import AssertionSigner
from gateway.proxy.credentials import SWEEP_FROM, CachingAuthenticator


@dataclass
class _Principal:
    via: str = "bearer"
    token_id: str = "jti"
    session_id: str | None = None


class _Inner:
    class deny:  # the attribute the cache looks for
        @staticmethod
        def denied(kind: str, value: str | None) -> bool:
            return False

    async def authenticate(self, request: Any, *, audience: str | None = None) -> Any:
        return _Principal()


class _RingKeys:  # the signing key of every token below still verifies
    @staticmethod
    def still_verifies(use: str, kid: str) -> bool:
        return True


@dataclass
class _Request:
    headers: dict[str, str]


def _token(n: int, exp: float) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"iat": 0, "exp": exp, "n": n}).encode())
    head = base64.urlsafe_b64encode(b'{"kid":"k1"}').decode().rstrip("=")
    return f"{head}.{claims.decode().rstrip('=')}.sig"


async def test_expired_entries_do_not_pile_up() -> None:
    now = [1000.0]
    cache = CachingAuthenticator(_Inner(), keys=_RingKeys(), clock=lambda: now[0], ttl=60.0)
    cache.monotonic = lambda: now[0]
    for n in range(20 * SWEEP_FROM):  # a token a second, each used once
        now[0] += 1
        await cache.authenticate(_Request({"authorization": f"Bearer {_token(n, now[0] + 600)}"}))
        assert len(cache._cache) <= 2 * SWEEP_FROM
    # the last minute's tokens are still answered from the cache
    latest = f"Bearer {_token(20 * SWEEP_FROM - 1, now[0] + 600)}"
    assert cache.cached(latest) is not None


@dataclass(frozen=True)
class _Caller:
    subject: str = "zhang.san"
    username: str | None = "zhang.san"
    department: str = "jgswj"
    region: str = "gx"
    roles: frozenset[str] = frozenset({"staff"})
    client_id: str | None = "web"
    via: str = "bearer"
    token_id: str = ""


class _Keys:
    @staticmethod
    def sign(use: str, payload: bytes) -> tuple[str, bytes]:
        return "k1", b"signature"

    @staticmethod
    def public_jwk(kid: str) -> dict[str, Any]:
        return {"kid": kid, "alg": "ES256"}


def _claims(assertion: str) -> dict[str, Any]:
    body = assertion.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def test_the_assertion_signer_keeps_one_entry_per_caller() -> None:
    signer = AssertionSigner(_Keys())
    now = datetime.now(UTC)
    for n in range(500):  # one caller, a new token every time
        signer.mint(_Caller(token_id=f"jti-{n}"), issuer="https://gw", system="api",
                    request_id=f"r{n}", now=now)
    assert len(signer._fixed) == 1
    # what the claims say still follows the caller: roles changed, a new entry
    steward = _Caller(roles=frozenset({"staff", "data_steward"}))
    claims = _claims(signer.mint(steward, issuer="https://gw", system="api",
                                 request_id="r", now=now))
    assert claims["roles"] == ["data_steward", "staff"] and len(signer._fixed) == 2
