"""Audit checkpoints under the 国密 profile: SM3 chains, SM2-signed checkpoints;
``govgate audit verify`` checks them in the database, and ``verify --archive``
offline with the published keys (keys.json) only; the ``openssl`` command agrees."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from audit import AuditLog
from gateway.cli.audit_cmd import audit
from gateway.services import key_service, master_key
from gateway.settings import Settings
from keys import FileMasterKey
from tests.audit.conftest import rec
from tests.guomi.sm2_tools import openssl_verifies, unb64


def _run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(audit, list(args), env=env, catch_exceptions=False)


def test_checkpoints_are_sm2_signed_and_verify_online_and_offline(
        settings: Settings, engine: sa.Engine, env: dict[str, str], openssl: str,
        tmp_path: Path) -> None:
    env = {**env, "GOVGATE_CRYPTO_PROFILE": "gm"}
    FileMasterKey.create(settings.master_key_path)
    keys = key_service(settings, engine, master_key(settings, env))
    keys.bootstrap()
    log = AuditLog(engine, keys=keys, profile=keys.profile, writer_id="gw-sm2",
                   checkpoint_every=3)
    for batch in range(3):
        log.append_many_sync([rec(3 * batch + i) for i in range(3)])
    log.close_sync()
    with engine.connect() as conn:
        cps = conn.execute(sa.text("SELECT seq, hash_name, kid, payload, signature "
                                   "FROM audit_checkpoints ORDER BY seq")).all()
    assert cps and {c.hash_name for c in cps} == {"sm3"}
    assert {keys.public_jwk(c.kid)["alg"] for c in cps} == {"SM2SM3"}

    r = _run(env, "verify")
    assert r.exit_code == 0 and "intact: 9 records" in r.output, r.output

    arc = tmp_path / "arc"
    assert _run(env, "export", "--until", "2999-01-01", "--to", str(arc)).exit_code == 0
    r = _run(env, "verify", "--archive", str(arc), "--gateway-keys")
    assert r.exit_code == 0 and "intact: 9 records" in r.output, r.output
    # the archive's published key and checkpoint, checked by openssl alone
    published = {k["kid"]: k for k in json.loads((arc / "keys.json").read_text())["keys"]}
    first = json.loads((arc / "checkpoints.jsonl").read_text().splitlines()[0])
    assert openssl_verifies(openssl, tmp_path, published[first["kid"]],
                            first["payload"].encode(), unb64(first["signature"]))

    # a checkpoint signature changed in the archive, its digest in the manifest made to
    # match: the SM2-signed manifest no longer verifies
    sig = first["signature"]
    forged = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    cp_file = arc / "checkpoints.jsonl"
    cp_file.write_text(cp_file.read_text().replace(sig, forged, 1))
    manifest = json.loads((arc / "manifest.json").read_text())
    manifest["files"]["checkpoints.jsonl"] = hashlib.sha256(cp_file.read_bytes()).hexdigest()
    (arc / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    r = _run(env, "verify", "--archive", str(arc))
    assert r.exit_code == 1 and "manifest.json: signature does not verify" in r.output

    # the same change in the database: govgate audit verify names the checkpoint
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_checkpoints SET signature = :s WHERE seq = :n"),
                     {"s": forged, "n": first["seq"]})
    r = _run(env, "verify")
    assert r.exit_code == 1, r.output
    assert f"checkpoint {first['seq']}: signature does not verify" in r.output

