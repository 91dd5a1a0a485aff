"""Signed checkpoints: every chain's head, signed with the ``audit`` key, chained.

A checkpoint's payload is canonical JSON::

    {"v": 1, "seq": n, "ts": ms, "prev": <hash of checkpoint n-1 or "">,
     "writer": <chain id of the writer>, "hash": "sha256"|"sm3",
     "heads": {chain_id: {"seq": s, "hash": h, "alg": "sha256"|"sm3"}, ...}}

``hash = H(payload)`` and the signature is ``KeyService.sign("audit", payload)``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from audit.chain import hash_function
from audit.key_trust import KEY_USE, TrustedKids
from audit.record import canonical_json
from audit.tables import chains, checkpoints


class Signer(Protocol):
    def sign(self, use: str, payload: bytes) -> tuple[str, bytes]: ...


class SignatureVerifier(Protocol):
    def verify(self, use: str, kid: str, payload: bytes, sig: bytes) -> Any: ...


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    ts: int
    prev_hash: str
    hash: str
    hash_name: str
    payload: str
    kid: str
    signature: str
    writer: str

    @property
    def heads(self) -> dict[str, dict[str, Any]]:
        return dict(json.loads(self.payload).get("heads", {}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "ts": self.ts, "prev_hash": self.prev_hash, "hash": self.hash,
            "hash_name": self.hash_name, "payload": self.payload, "kid": self.kid,
            "signature": self.signature, "writer": self.writer,
        }


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def checkpoint_payload(*, seq: int, ts: int, prev_hash: str, writer: str, hash_name: str,
                       heads: dict[str, dict[str, Any]]) -> str:
    return canonical_json({"v": 1, "seq": seq, "ts": ts, "prev": prev_hash, "writer": writer,
                           "hash": hash_name, "heads": heads})


def write_checkpoint(conn: sa.Connection, signer: Signer, *, ts: int, writer: str,
                     hash_name: str) -> Checkpoint:
    """Insert the next checkpoint over every chain's current head (in ``conn``'s transaction).

    Raises ``sqlalchemy.exc.IntegrityError`` if another writer took the same number;
    the caller retries.
    """
    last = conn.execute(
        sa.select(checkpoints.c.seq, checkpoints.c.hash).order_by(checkpoints.c.seq.desc())
        .limit(1)
    ).first()
    seq = (last.seq if last else 0) + 1
    prev = last.hash if last else ""
    heads = {
        r.chain_id: {"seq": r.head_seq, "hash": r.head_hash, "alg": r.hash_name}
        for r in conn.execute(
            sa.select(chains.c.chain_id, chains.c.head_seq, chains.c.head_hash,
                      chains.c.hash_name).where(chains.c.head_seq > 0)
        )
    }
    payload = checkpoint_payload(seq=seq, ts=ts, prev_hash=prev, writer=writer,
                                 hash_name=hash_name, heads=heads)
    data = payload.encode("utf-8")
    kid, sig = signer.sign(KEY_USE, data)
    cp = Checkpoint(seq=seq, ts=ts, prev_hash=prev, hash=hash_function(hash_name)(data).hex(),
                    hash_name=hash_name, payload=payload, kid=kid, signature=b64u(sig),
                    writer=writer)
    conn.execute(sa.insert(checkpoints).values(**cp.to_dict()))
    return cp


def list_checkpoints(engine: sa.Engine, *, before: int | None = None, limit: int = 50
                     ) -> list[Checkpoint]:
    """The newest ``limit`` checkpoints (below number ``before`` when given), newest first."""
    stmt = sa.select(checkpoints).order_by(checkpoints.c.seq.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(checkpoints.c.seq < before)
    with engine.connect() as conn:
        return [Checkpoint(**dict(r._mapping)) for r in conn.execute(stmt)]


def signature_ok(cp: Checkpoint, verifier: SignatureVerifier,
                 trusted: Callable[[str], bool] | None = None) -> bool:
    """True when ``cp``'s payload hashes to its hash and its signature verifies with the
    ``audit`` key it names, a key the ring made (``trusted``: a ``TrustedKids`` shared
    by a page's checkpoints; the links between checkpoints: ``audit.verify``)."""
    data = cp.payload.encode("utf-8")
    try:
        if hash_function(cp.hash_name)(data).hex() != cp.hash:
            return False
        verifier.verify(KEY_USE, cp.kid, data, unb64u(cp.signature))
    except Exception:  # any failure to check is a signature that does not verify
        return False
    return (trusted or TrustedKids(verifier))(cp.kid)
