"""The referral webhook: an HTTP POST of a JSON body to ``referral_webhook_url``,
signed so the receiver knows it comes from this gateway and is not replayed.

    X-Govgate-Event: application_referred
    X-Govgate-Delivery: <notice id>           (the same on every retry: deduplicate on it)
    X-Govgate-Signature: t=<unix seconds>,sha256=<hex>     (sm3=<hex> under the gm profile)

The signature is the HMAC (the crypto profile's hash) of ``<t>.<body>`` under the
webhook secret, itself the key service's keyed hash of a fixed label: it never leaves
the gateway but through ``govgate catalogue webhook-secret``, which the operator
gives to the receiver. A receiver recomputes the HMAC, compares in constant time and
refuses a ``t`` more than five minutes off.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx

PURPOSE = "catalogue_referral_webhook"
LABEL = b"govgate referral webhook secret v1"
EVENT = "application_referred"
TIMEOUT = 10.0


class _Keys(Protocol):
    profile: Any

    def mac(self, purpose: str, data: bytes) -> bytes: ...


class DeliveryFailed(Exception):
    """The receiver did not take the notice (the reason is for the log and audit)."""


def secret(keys: _Keys) -> bytes:
    """The webhook secret the receiver verifies with."""
    return keys.mac(PURPOSE, LABEL)


def signature(keys: _Keys, body: bytes, timestamp: int) -> str:
    tag = keys.profile.hmac(secret(keys), str(timestamp).encode("ascii") + b"." + body)
    return f"t={timestamp},{keys.profile.hash_name}={tag.hex()}"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True).encode("utf-8")


def post(url: str, body: bytes, *, keys: _Keys, timestamp: int, delivery: int,
         timeout: float = TIMEOUT) -> int:
    """POST ``body``; the receiver's status when it is 2xx, DeliveryFailed otherwise.
    Redirects are not followed: a notice goes where the operator configured it."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "govgate-referrals/1",
        "X-Govgate-Event": EVENT,
        "X-Govgate-Delivery": str(delivery),
        "X-Govgate-Signature": signature(keys, body, timestamp),
    }
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:500]) from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}")
    return response.status_code
