"""Archive and retention: export to a directory that verifies offline, purge behind it.

An archive directory holds::

    manifest.json      format, until, per-chain start (anchor) and end, file digests
    manifest.sig       {"kid", "sig"}: the manifest signed with the ``audit`` key
    records.jsonl      the exported records, by chain and seq, exactly as stored
    checkpoints.jsonl  every checkpoint
    keys.json          the public keys (JWK Set) of every kid that signed them

``verify_archive`` needs nothing else: no database, no key ring; but only a trust
anchor held apart from the archive (``audit.archive_trust``: a trust file, a key
fingerprint, or on the gateway its key ring) tells whose keys signed it: without one
an archive is at best "consistent but unanchored". ``purge`` drops
only what a verified archive holds, never a record younger than the retention
period, and first appends a sealing record (``audit_purge``) that names, for each
chain, the last purged record (the anchor) so the remaining chain verifies. On
PostgreSQL a month partition all of whose records it deletes is dropped whole
(``audit.partitions.drop_covered``); a month it deletes only part of goes row by row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature as _CryptoInvalid
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto.asymciphers import ec as sm_ec
from tongsuopy.crypto.exceptions import InternalError as _SmInternal
from tongsuopy.crypto.exceptions import InvalidSignature as _SmInvalid

from audit.archive_trust import KeyTrust, RingTrust, refusal
from audit.chain import RECORD_COLUMNS, Problem, row_tuple
from audit.checkpoints import KEY_USE, b64u, unb64u
from audit.errors import ArchiveError, ArchiveUnreadable, PurgeRefused
from audit.key_trust import UntrustedKey
from audit.partitions import drop_covered
from audit.record import AuditRecord, canonical_json
from audit.tables import anchors, chains, checkpoints, records
from audit.verify import SEAL_EVENT, Sources, VerifyReport, seal_payload, verify_sources
from audit.writer import AuditLog
from texts import Text, message_of, os_reason, where

FORMAT = "govgate-audit-archive/1"
FILES = ("records.jsonl", "checkpoints.jsonl", "keys.json")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    archive_id: str  # SHA-256 of manifest.json
    records: int
    checkpoints: int
    chains: int


@dataclass(frozen=True)
class PurgeResult:
    records: int
    chains: dict[str, int]  # chain id -> new anchor seq
    seal: tuple[str, int] | None  # (chain, seq) of the sealing record
    partitions: tuple[str, ...] = ()  # PostgreSQL: month partitions dropped whole


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _problem(problem: Problem | None) -> str:
    return str(problem) if problem is None else where(problem.where, problem.detail)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- offline signature checks from a JWK Set ----------------------------------------


class JwksSigCheck:
    """Checks raw JWS-encoded signatures (ES256 r||s, RS256, EdDSA, SM2SM3 r||s) against
    a JWK Set; with ``trust``, a signature by a key it does not trust raises
    :class:`UntrustedKey`. ``signers``: the kids whose signatures verified."""

    def __init__(self, jwks: dict[str, Any], trust: KeyTrust | None = None) -> None:
        self.keys = {k["kid"]: k for k in jwks.get("keys", []) if "kid" in k}
        self.trust = trust
        self.signers: set[str] = set()
        self._trusted: dict[str, bool] = {}

    def __call__(self, kid: str, payload: bytes, sig: bytes) -> None:
        jwk = self.keys.get(kid)
        if jwk is None:
            raise ArchiveError(Text("audit.no_public_key", "no public key {kid!r} in the archive",
                                    kid=kid))
        try:
            _verify_jwk(jwk, payload, sig)
        except (_CryptoInvalid, _SmInvalid, _SmInternal, ValueError, KeyError,
                TypeError) as exc:
            raise ArchiveError(Text("audit.signature", "signature does not verify ({detail})",
                                    detail=type(exc).__name__)) from None
        self.signers.add(kid)
        if self.trust is None:
            return
        trusted = self._trusted.get(kid)
        if trusted is None:
            trusted = self._trusted[kid] = self.trust(kid, jwk)
        if not trusted:
            raise UntrustedKey(kid, refusal(self.trust, kid))


def _int(b64: str) -> int:
    return int.from_bytes(unb64u(b64), "big")


def _verify_jwk(jwk: dict[str, Any], payload: bytes, sig: bytes) -> None:
    kty = jwk.get("kty")
    if kty == "EC" and jwk.get("crv") == "SM2":
        _verify_sm2(jwk, payload, sig)
    elif kty == "EC":
        if jwk.get("crv") != "P-256" or len(sig) != 64:
            raise ValueError("unsupported EC key or signature")
        pub = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]),
                                            ec.SECP256R1()).public_key()
        pub.verify(_der(sig), payload, ec.ECDSA(hashes.SHA256()))
    elif kty == "RSA":
        rpub = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        rpub.verify(sig, payload, padding.PKCS1v15(), hashes.SHA256())
    elif kty == "OKP" and jwk.get("crv") == "Ed25519":
        ed25519.Ed25519PublicKey.from_public_bytes(unb64u(jwk["x"])).verify(sig, payload)
    else:
        raise ValueError(f"unsupported key type {kty!r}")


def _verify_sm2(jwk: dict[str, Any], payload: bytes, sig: bytes) -> None:
    """SM2 with SM3 (GM/T 0003.2, default ID 1234567812345678), the key ring's SM2SM3
    under the gm profile: tongsuopy computes it; the JWK and r||s forms are those of
    docs/keys.md, "SM2"."""
    if jwk.get("alg", "SM2SM3") != "SM2SM3" or len(sig) != 64:
        raise ValueError("unsupported SM2 key or signature")
    pub = sm_ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]),
                                           sm_ec.SM2()).public_key()
    pub.verify(_der(sig), payload, sm_ec.ECDSA(sm_hashes.SM3()))


def _der(sig: bytes) -> bytes:
    """A JWS ``r || s`` (ES256, SM2SM3: 32 bytes each) as the DER the libraries verify."""
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


# -- export -----------------------------------------------------------------------


def export_archive(engine: sa.Engine, keys: Any, *, until: int, to: str | os.PathLike[str],
                   now: int | None = None) -> ExportResult:
    """Write every record older than ``until`` (UTC ms) that is still in the database.

    Each chain is exported as one contiguous run, from its anchor (or seq 1) up to its
    newest record older than ``until``. The written archive is verified before return.
    """
    out = Path(to)
    if out.exists() and any(out.iterdir()):
        raise ArchiveError(where(str(out), Text("audit.not_empty", "not empty")))
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _export(engine, keys, until, out, now)
    except BaseException:
        discard_archive(out, created)  # nothing half-written or unverified is left
        raise


def discard_archive(directory: str | os.PathLike[str], remove_dir: bool) -> None:
    """Remove the files an export writes (and ``directory``, if it made it): an export
    that failed, or whose ``audit_export`` record could not be written, leaves no
    archive behind (no audit, no export)."""
    d = Path(directory)
    for name in ("manifest.json", "manifest.sig", *FILES):
        with contextlib.suppress(OSError):
            (d / name).unlink()
    if remove_dir:
        with contextlib.suppress(OSError):
            d.rmdir()


def _export(engine: sa.Engine, keys: Any, until: int, out: Path, now: int | None
            ) -> ExportResult:
    now = now if now is not None else int(datetime.now(UTC).timestamp() * 1000)
    manifest_chains: dict[str, dict[str, Any]] = {}
    n_records = n_checkpoints = 0
    kids: set[str] = set()
    with engine.connect() as conn:
        anchor_rows = {r.chain_id: r for r in conn.execute(sa.select(anchors))}
        chain_rows = conn.execute(sa.select(chains.c.chain_id, chains.c.hash_name)
                                  .order_by(chains.c.chain_id)).fetchall()
        with (out / "records.jsonl").open("w", encoding="utf-8") as f:
            for ch in chain_rows:
                end = conn.execute(sa.select(sa.func.max(records.c.seq)).where(
                    records.c.chain_id == ch.chain_id, records.c.ts < until)).scalar_one()
                a = anchor_rows.get(ch.chain_id)
                start_seq, start_hash = (a.seq, a.hash) if a is not None else (0, "")
                if end is None or end <= start_seq:
                    continue
                cols = [records.c[c] for c in RECORD_COLUMNS]
                result = conn.execution_options(stream_results=True, yield_per=5000).execute(
                    sa.select(*cols).where(records.c.chain_id == ch.chain_id,
                                           records.c.seq > start_seq, records.c.seq <= end)
                    .order_by(records.c.seq))
                count, last_hash, first_ts, last_ts = 0, start_hash, None, None
                for tup in result:
                    row = dict(zip(RECORD_COLUMNS, tup, strict=True))
                    f.write(canonical_json(row) + "\n")
                    count += 1
                    last_hash = row["hash"]
                    first_ts = row["ts"] if first_ts is None else first_ts
                    last_ts = row["ts"]
                manifest_chains[ch.chain_id] = {
                    "alg": ch.hash_name, "start_seq": start_seq, "start_hash": start_hash,
                    "end_seq": end, "end_hash": last_hash, "records": count,
                    "first_ts": first_ts, "last_ts": last_ts,
                }
                n_records += count
        with (out / "checkpoints.jsonl").open("w", encoding="utf-8") as f:
            for cp in conn.execute(sa.select(checkpoints).order_by(checkpoints.c.seq)):
                f.write(canonical_json(dict(cp._mapping)) + "\n")
                kids.add(cp.kid)
                n_checkpoints += 1
    manifest: dict[str, Any] = {"format": FORMAT, "created_at": now, "created": _iso(now),
                                "until": until, "until_time": _iso(until),
                                "records": n_records, "checkpoints": n_checkpoints,
                                "chains": manifest_chains}
    # sign the manifest first, so its key is exported with the others
    jwks: dict[str, Any] = {"keys": []}
    manifest_files: dict[str, str] = {}
    sig_kid = ""
    sig = b""
    for attempt in range(2):
        if attempt == 1:
            kids.add(sig_kid)
        jwks = {"keys": [{**keys.public_jwk(k, include_destroyed=True), "kid": k}
                         for k in sorted(kids) if k]}
        (out / "keys.json").write_text(json.dumps(jwks, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
        manifest_files = {name: _sha256_file(out / name) for name in FILES}
        body = (json.dumps({**manifest, "files": manifest_files}, indent=1, sort_keys=True,
                           ensure_ascii=False) + "\n").encode("utf-8")
        sig_kid, sig = keys.sign(KEY_USE, body)
        if sig_kid in kids:
            break
    (out / "manifest.json").write_bytes(body)
    (out / "manifest.sig").write_text(json.dumps({"kid": sig_kid, "sig": b64u(sig)}) + "\n",
                                      encoding="utf-8")
    # checked against the ring, not the keys just written: a checkpoint an insider
    # re-signed with a key planted in the ring's table must not leave in an archive
    rep = verify_archive(out, RingTrust(keys))
    if not rep.ok:
        raise ArchiveError(Text("audit.written_unverified",
                                "the written archive does not verify: {detail}",
                                detail=_problem(rep.first_problem)))
    return ExportResult(out, hashlib.sha256(body).hexdigest(), n_records, n_checkpoints,
                        len(manifest_chains))


# -- offline verification -------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            # not an object: damage to report, never a crash (an unanchored archive's
            # files are whatever its signer wrote)
            yield row if isinstance(row, dict) else {"chain_id": "?", "seq": f"line {n}",
                                                     "damaged": True}


def read_manifest(directory: str | os.PathLike[str], trust: KeyTrust | None = None
                  ) -> tuple[dict[str, Any], str, str]:
    """The manifest (after checking its signature, by a key ``trust`` trusts, and the
    file digests), the archive id and the kid that signed it."""
    d = Path(directory)
    try:
        body = (d / "manifest.json").read_bytes()
        manifest = json.loads(body)
        sigdoc = json.loads((d / "manifest.sig").read_text(encoding="utf-8"))
        jwks = json.loads((d / "keys.json").read_text(encoding="utf-8"))
        if not all(isinstance(doc, dict) for doc in (manifest, sigdoc, jwks)):
            raise ValueError("manifest.json, manifest.sig and keys.json must be JSON objects")
    except (FileNotFoundError, ValueError) as exc:
        raise ArchiveError(Text("audit.not_readable_archive",
                                "{path}: not a readable audit archive ({detail})",
                                path=d, detail=str(exc))) from None
    except OSError as exc:  # there, but not readable: nothing checked, nothing proven
        raise ArchiveUnreadable(where(str(exc.filename or d), os_reason(exc))) from None
    if manifest.get("format") != FORMAT:
        raise ArchiveError(where(str(d), Text("audit.archive_format",
                                             "unknown archive format {format!r}",
                                             format=manifest.get("format"))))
    try:
        JwksSigCheck(jwks, trust)(sigdoc["kid"], body, unb64u(sigdoc["sig"]))
    except UntrustedKey as exc:
        raise ArchiveError(where(f"{d}/manifest.json", exc.why or str(exc))) from None
    except (ArchiveError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ArchiveError(where(f"{d}/manifest.json", Text(
            "audit.signature", "signature does not verify ({detail})",
            detail=message_of(exc)))) from None
    for name, digest in manifest.get("files", {}).items():
        if name not in FILES:
            raise ArchiveError(where(f"{d}/manifest.json", Text(
                "audit.unexpected_file", "unexpected file {name!r}", name=name)))
        path = d / name
        try:
            changed = _sha256_file(path) != digest
        except FileNotFoundError:
            changed = True
        except OSError as exc:
            raise ArchiveUnreadable(where(str(path), os_reason(exc))) from None
        if changed:
            raise ArchiveError(where(f"{d}/{name}", Text(
                "audit.file_changed", "changed or missing since the archive was written")))
    return manifest, hashlib.sha256(body).hexdigest(), str(sigdoc["kid"])


def verify_archive(directory: str | os.PathLike[str], trust: KeyTrust | None = None
                   ) -> VerifyReport:
    """Verify an archive offline: manifest signature, file digests, chains, checkpoints.

    Every signature must be by a key ``trust`` trusts; without ``trust`` the report is
    at best ``unanchored`` (consistent, signed by the keys that came with it). A
    missing, changed or damaged file is a problem in the report; a file that is there
    but cannot be read raises :class:`ArchiveUnreadable` (nothing could be checked).
    """
    d = Path(directory)
    try:
        manifest, _, manifest_kid = read_manifest(d, trust)
    except ArchiveUnreadable:
        raise
    except ArchiveError as exc:
        rep = VerifyReport()
        rep.add(Problem("archive", str(d), exc.description))
        return rep
    jwks = json.loads((d / "keys.json").read_text(encoding="utf-8"))
    mchains = manifest.get("chains", {})
    try:
        src = Sources(
            chain_algs={str(c): str(v["alg"]) for c, v in mchains.items()},
            records=(row_tuple(r) for r in _jsonl(d / "records.jsonl")),
            checkpoints=_jsonl(d / "checkpoints.jsonl"),
            anchors={c: {"seq": int(v["start_seq"]), "hash": str(v["start_hash"]),
                         "seal_chain": "", "seal_seq": 0}
                     for c, v in mchains.items() if v["start_seq"]},
            expected_tails={c: (int(v["end_seq"]), str(v["end_hash"]))
                            for c, v in mchains.items()},
            anchors_trusted=True, check_truncation=False,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        rep = VerifyReport()
        rep.add(Problem("archive", f"{d}/manifest.json", Text(
            "audit.unreadable", "unreadable ({detail})", detail=f"chains: {exc!r}")))
        return rep
    sigcheck = JwksSigCheck(jwks, trust)
    rep = verify_sources(src, sigcheck)
    rep.anchored = trust is not None
    rep.signers = tuple(sorted(sigcheck.signers | {manifest_kid}))
    for chain_id in sorted(set(mchains) - _seen_chains(rep, mchains, d)):
        rep.add(Problem("truncated", Text("audit.at_chain", "chain {chain}", chain=chain_id),
                        Text("audit.listed_no_records", "listed in the manifest, no records")))
    if rep.ok and rep.records != manifest.get("records"):
        rep.add(Problem("truncated", str(d), Text(
            "audit.manifest_count", "manifest lists {n} records, the archive holds {count}",
            n=manifest.get("records"), count=rep.records)))
    return rep


def _seen_chains(rep: VerifyReport, mchains: dict[str, Any], d: Path) -> set[str]:
    seen: set[str] = set()
    for row in _jsonl(d / "records.jsonl"):
        seen.add(str(row.get("chain_id")))
    return seen


# -- purge ----------------------------------------------------------------------------


def purge(engine: sa.Engine, log: AuditLog, *, until: int, archive: str | os.PathLike[str],
          retention_days: int, now: int | None = None) -> PurgeResult:
    """Delete records older than ``until`` that the verified ``archive`` holds.

    Raises :class:`PurgeRefused` for records inside the retention period, an archive
    that does not verify, or records older than ``until`` that the archive lacks.
    """
    now = now if now is not None else int(datetime.now(UTC).timestamp() * 1000)
    oldest_allowed = now - max(retention_days, 180) * DAY_MS
    if until > oldest_allowed:
        raise PurgeRefused(Text(
            "audit.retention", "records younger than the retention period ({days} days) "
            "cannot be purged: --until must be on or before {date}",
            days=max(retention_days, 180), date=_iso(oldest_allowed)))
    # only an archive this gateway's audit keys signed: one re-signed elsewhere is not
    # evidence that the records it holds were kept
    if log.keys is None:
        raise PurgeRefused(Text("audit.seal_unsigned", "the audit log has no signing key: "
                                "the sealing record cannot be signed"))
    rep = verify_archive(archive, RingTrust(log.keys))
    if not rep.ok:
        raise PurgeRefused(Text("audit.archive_unverified", "the archive does not verify: {detail}",
                                detail=_problem(rep.first_problem)))
    manifest, archive_id, _ = read_manifest(archive, RingTrust(log.keys))
    mchains = manifest.get("chains", {})
    plan: dict[str, tuple[int, str]] = {}
    with engine.connect() as conn:
        current = {r.chain_id: (r.seq, r.hash) for r in conn.execute(sa.select(anchors))}
        for (chain_id,) in conn.execute(sa.select(chains.c.chain_id)):
            end = conn.execute(sa.select(sa.func.max(records.c.seq)).where(
                records.c.chain_id == chain_id, records.c.ts < until)).scalar_one()
            start = current.get(chain_id, (0, ""))[0]
            if end is None or end <= start:
                continue
            m = mchains.get(chain_id)
            if m is None or m["start_seq"] > start or m["end_seq"] < end:
                chain = Text("audit.at_chain", "chain {chain}", chain=chain_id)
                raise PurgeRefused(where(chain, Text(
                    "audit.not_archived", "records up to seq {seq} are older than --until but "
                    "not in the archive", seq=end)))
            stored = conn.execute(sa.select(records.c.hash).where(
                records.c.chain_id == chain_id, records.c.seq == end)).scalar_one()
            plan[chain_id] = (end, stored)
    hashes = _archive_hashes(Path(archive), {(c, end) for c, (end, _) in plan.items()})
    for chain_id, (end, stored) in plan.items():
        if hashes.get((chain_id, end)) != stored:
            raise PurgeRefused(where(Text("audit.at_chain", "chain {chain}", chain=chain_id), Text(
                "audit.differs", "record seq {seq} differs from the archive", seq=end)))
    if not plan:
        return PurgeResult(0, {}, None)
    sealed = {c: {"seq": s, "hash": h} for c, (s, h) in current.items()}
    sealed.update({c: {"seq": s, "hash": h} for c, (s, h) in plan.items()})
    # the seal is signed: any record can be hashed and appended without a key, and a
    # later checkpoint signs every chain's head, so only the audit key's signature
    # tells a purge from a deletion with an anchor of one's own (audit.verify)
    body: dict[str, Any] = {"anchors": sealed, "archive": archive_id, "until": until}
    kid, sig = log.keys.sign(KEY_USE, seal_payload(body))
    seal = log.append_sync(AuditRecord(
        event_type=SEAL_EVENT, outcome="success",
        reason=f"purged records before {_iso(until)} held by archive {archive_id[:16]}",
        extra={**body, "seal_kid": kid, "seal_sig": b64u(sig)},
    ))
    log.checkpoint_sync()  # and covered by a checkpoint at once
    # may read an anchor before its first write: "govgate_write" begins the transaction
    # as a writer (BEGIN IMMEDIATE on SQLite, see gateway.storage.write_transaction), or a
    # commit by a running gateway's audit log in between would fail it
    with engine.execution_options(govgate_write=True).begin() as conn:
        for chain_id, a in sealed.items():
            values = {"seq": a["seq"], "hash": a["hash"], "seal_chain": seal.chain_id,
                      "seal_seq": seal.seq, "archive": archive_id if chain_id in plan else
                      conn.execute(sa.select(anchors.c.archive).where(
                          anchors.c.chain_id == chain_id)).scalar_one(),
                      "created_at": now}
            if chain_id in current:
                conn.execute(sa.update(anchors).where(anchors.c.chain_id == chain_id)
                             .values(**values))
            else:
                conn.execute(sa.insert(anchors).values(chain_id=chain_id, **values))
        # PostgreSQL: whole months first (a DROP, not a scan), the rest row by row
        dropped = drop_covered(conn, until, {c: end for c, (end, _) in plan.items()})
        deleted = dropped.records
        for chain_id, (end, _) in plan.items():
            deleted += conn.execute(sa.delete(records).where(
                records.c.chain_id == chain_id, records.c.seq <= end)).rowcount
    return PurgeResult(deleted, {c: s for c, (s, _) in plan.items()}, (seal.chain_id, seal.seq),
                       tuple(dropped.partitions))


def _archive_hashes(d: Path, ends: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The archived hashes of the records ``ends`` names."""
    out: dict[tuple[str, int], str] = {}
    for row in _jsonl(d / "records.jsonl"):
        key = (row.get("chain_id"), row.get("seq"))
        if key in ends:
            out[(str(key[0]), int(key[1]))] = str(row.get("hash"))
    return out
