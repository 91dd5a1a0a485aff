"""``govgate audit verify --archive`` against a trust anchor the auditor holds
(``audit.archive_trust``), on a real export, under both crypto profiles.

An archive carries its own public keys: before this, whoever rewrote an exported
archive re-signed it with a key of their own (under the gateway's kid even), shipped
that key in ``keys.json``, and ``verify --archive`` said intact (exit 0). Now: 0 only
when every signature is by a key a ``--trust`` file, a ``--key-fingerprint`` or, on
the gateway, ``--gateway-keys`` vouches for; 3 "consistent but unanchored" without
one; 1 for tampering or a key the anchor does not hold; 2 for unusable input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audit import AuditLog
from audit.chain import hash_function, record_payload
from audit.checkpoints import b64u
from audit.record import canonical_json
from gateway.cli.audit_cmd import audit
from gateway.services import key_service, master_key
from gateway.settings import load_settings
from gateway.storage import create_engine
from keys import FileMasterKey, _primitives
from tests.audit.conftest import rec
from tests.conftest import fresh_database


class Exported:
    """A gateway's database with a log of 12 records, its real export, its trust file."""

    def __init__(self, env: dict[str, str], arc: Path, trust: Path, kid: str) -> None:
        self.env, self.arc, self.trust, self.kid = env, arc, trust, kid

    def run(self, *args: str) -> Any:
        return CliRunner().invoke(audit, list(args), env=self.env, catch_exceptions=False)


@pytest.fixture(scope="module", params=["standard", "gm"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Exported]:
    home = tmp_path_factory.mktemp("home")
    with fresh_database(home) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
        env.update({"GOVGATE_HOME": str(home), "GOVGATE_DATABASE_URL": url,
                    "LANG": "C.UTF-8", "GOVGATE_CRYPTO_PROFILE": request.param})
        settings = load_settings(env)
        engine = create_engine(url)
        try:
            FileMasterKey.create(settings.master_key_path)
            ks = key_service(settings, engine, master_key(settings, env))
            ks.bootstrap()
            log = AuditLog(engine, keys=ks, profile=ks.profile, writer_id="gw-1",
                           checkpoint_every=5)
            log.append_many_sync([rec(i) for i in range(12)])
            log.close_sync()
            out = home / "out"
            out.mkdir()
            arc, trust = out / "arc", out / "trust.json"
            done = Exported(env, arc, trust, "")
            r = done.run("export", "--until", "2999-01-01", "--to", str(arc))
            assert r.exit_code == 0, r.output
            r = done.run("keys", "--to", str(trust))
            assert r.exit_code == 0 and r.output == f"wrote 1 audit public keys to {trust}\n"
            done.kid = json.loads(trust.read_text())["keys"][0]["kid"]
            yield done
        finally:
            engine.dispose()


def forge(src: Path, dst: Path, *, kid: str, alg: str = "ES256", change: bool = True,
          sign_manifest: Callable[[bytes], tuple[str, bytes]] | None = None) -> None:
    """The insider's rewrite of an exported archive: one record's outcome changed, the
    chain re-hashed, every checkpoint and the manifest re-signed with a key of their own
    shipped in keys.json (under the gateway's kid, if ``kid`` is it). Consistent in
    every hash and link. ``change=False``: the records left as they are;
    ``sign_manifest``: the manifest signed by someone else."""
    shutil.copytree(src, dst)
    private = _primitives.generate_private_key(alg)
    jwk = {**_primitives.public_jwk(private), "kid": kid, "alg": alg, "use": "sig"}
    manifest = json.loads((dst / "manifest.json").read_text())
    rows = [json.loads(line) for line in (dst / "records.jsonl").read_text().splitlines()]
    if change:
        rows[3]["outcome"] = "deny" if rows[3]["outcome"] != "deny" else "allow"
    heads: dict[tuple[str, int], str] = {}
    prev = {c: m["start_hash"] for c, m in manifest["chains"].items()}
    for row in rows:
        h = hash_function(manifest["chains"][row["chain_id"]]["alg"])
        row["prev_hash"] = prev[row["chain_id"]]
        row["hash"] = prev[row["chain_id"]] = h(record_payload(row)).hex()
        heads[(row["chain_id"], row["seq"])] = row["hash"]
        manifest["chains"][row["chain_id"]]["end_hash"] = row["hash"]
    (dst / "records.jsonl").write_text("".join(canonical_json(r) + "\n" for r in rows))
    cps = [json.loads(line) for line in (dst / "checkpoints.jsonl").read_text().splitlines()]
    cp_prev = ""
    for cp in cps:
        doc = json.loads(cp["payload"])
        for chain_id, head in doc["heads"].items():
            head["hash"] = heads.get((chain_id, head["seq"]), head["hash"])
        doc["prev"] = cp["prev_hash"] = cp_prev
        cp["payload"] = canonical_json(doc)
        cp["hash"] = cp_prev = hash_function(cp["hash_name"])(cp["payload"].encode()).hex()
        cp["kid"] = kid
        cp["signature"] = b64u(_primitives.sign_raw(alg, private, cp["payload"].encode()))
    (dst / "checkpoints.jsonl").write_text("".join(canonical_json(c) + "\n" for c in cps))
    published = json.loads((dst / "keys.json").read_text())["keys"] if sign_manifest else []
    (dst / "keys.json").write_text(json.dumps({"keys": [*published, jwk]}, indent=1,
                                              sort_keys=True) + "\n")
    resign(dst, manifest, sign_manifest or (
        lambda body: (kid, _primitives.sign_raw(alg, private, body))))


def resign(dst: Path, manifest: dict[str, Any],
           sign: Callable[[bytes], tuple[str, bytes]]) -> None:
    """The manifest's file digests made to match, and the manifest signed by ``sign``."""
    manifest["files"] = {n: hashlib.sha256((dst / n).read_bytes()).hexdigest()
                         for n in manifest["files"]}
    body = (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    (dst / "manifest.json").write_bytes(body)
    signer, sig = sign(body)
    (dst / "manifest.sig").write_text(json.dumps({"kid": signer, "sig": b64u(sig)}) + "\n")


def test_an_archive_without_a_trust_anchor_is_not_called_intact(exported: Exported) -> None:
    r = exported.run("verify", "--archive", str(exported.arc))
    assert r.exit_code == 3, r.output
    assert r.output.startswith("audit archive consistent but UNANCHORED: 12 records, 1 chains")
    assert f"signed by {exported.kid}, keys that came with the archive" in r.output
    assert "intact" not in r.output and r.output.count("\n") == 1


def test_a_trust_file_a_fingerprint_or_the_gateways_ring_anchor_it(exported: Exported) -> None:
    arc = str(exported.arc)
    r = exported.run("verify", "--archive", arc, "--trust", str(exported.trust))
    assert r.exit_code == 0 and r.output.startswith("audit log intact: 12 records"), r.output
    r = exported.run("verify", "--archive", arc, "--gateway-keys")
    assert r.exit_code == 0 and "intact: 12 records" in r.output, r.output
    r = exported.run("keys", "--fingerprints")
    assert r.exit_code == 0, r.output
    kid, sha256, sm3 = r.output.rstrip("\n").split("\t")
    assert kid == exported.kid and kid.endswith("-" + sha256.removeprefix("SHA-256:"))
    assert sm3.startswith("SM3:") and sm3 != "SM3:" + sha256.removeprefix("SHA-256:")
    for fp in (sha256, sm3, "sha256:" + bytes(_unb64(sha256)).hex()):
        r = exported.run("verify", "--archive", arc, "--key-fingerprint", fp)
        assert r.exit_code == 0 and "intact: 12 records" in r.output, (fp, r.output)
    other = "SHA-256:" + b64u(hashlib.sha256(b"another key").digest())
    r = exported.run("verify", "--archive", arc, "--key-fingerprint", other)
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"first bad: {arc}: {arc}/manifest.json: signed by key "
                               f"{exported.kid}, which the trust anchor does not hold")


def test_an_archive_re_signed_by_another_key_is_refused_by_every_anchor(
        exported: Exported, tmp_path: Path) -> None:
    """Finding: verify --archive said intact (exit 0) for this forgery."""
    forged = tmp_path / "forged"
    forge(exported.arc, forged, kid=exported.kid,
          alg="SM2SM3" if exported.env["GOVGATE_CRYPTO_PROFILE"] == "gm" else "ES256")
    r = exported.run("verify", "--archive", str(forged))
    assert r.exit_code == 3 and "UNANCHORED" in r.output, r.output
    for anchor in (("--trust", str(exported.trust)), ("--gateway-keys",)):
        r = exported.run("verify", "--archive", str(forged), *anchor)
        assert r.exit_code == 1, (anchor, r.output)
        assert "manifest.json: signed by key" in r.output.splitlines()[0]
        assert "TAMPERED" in r.output


def test_checkpoints_signed_by_a_key_the_anchor_lacks_are_named(exported: Exported,
                                                                tmp_path: Path) -> None:
    """The manifest signed by the gateway's own audit key, the records and checkpoints
    under it rewritten and re-signed by another key shipped beside it (what an export
    of a log an insider re-signed would hold, were the export not refusing it now)."""
    settings = load_settings(exported.env)
    engine = create_engine(settings.db_url)
    try:
        ks = key_service(settings, engine, master_key(settings, exported.env))
        forged = tmp_path / "forged"
        forge(exported.arc, forged, kid="audit-20260101-other",
              sign_manifest=lambda body: ks.sign("audit", body))
    finally:
        engine.dispose()
    r = exported.run("verify", "--archive", str(forged))
    assert r.exit_code == 3, r.output
    assert f"signed by audit-20260101-other, {exported.kid}, keys that came" in r.output
    r = exported.run("verify", "--archive", str(forged), "--trust", str(exported.trust))
    assert r.exit_code == 1, r.output
    assert r.output.startswith("first bad: checkpoint 1: signed by key audit-20260101-other, "
                               "which the trust anchor does not hold"), r.output


def test_unusable_anchors_are_input_errors(exported: Exported, tmp_path: Path) -> None:
    arc = str(exported.arc)
    not_json = tmp_path / "keys.txt"
    not_json.write_text("SHA-256:abc\n")
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b",
                                             "d": "c"}]}))
    cases = [
        (("--trust", str(tmp_path / "nowhere.json")), "No such file or directory"),
        (("--trust", str(not_json)), "not a trust file"),
        (("--trust", str(private)), "not a trust file"),
        (("--key-fingerprint", "SHA-256:abc"), "'SHA-256:abc' is not a key fingerprint"),
        (("--key-fingerprint", "MD5:" + "0" * 32), "is not a key fingerprint"),
    ]
    for args, why in cases:
        r = exported.run("verify", "--archive", arc, *args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: trust anchor unusable: ") and why in r.stderr, args
        assert r.stderr.count("\n") == 1 and r.stdout == ""
    r = exported.run("verify", "--trust", str(exported.trust))
    assert r.exit_code == 2 and "apply to --archive only" in r.stderr


def _unb64(fp: str) -> bytes:
    import base64
    value = fp.partition(":")[2]
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def test_verify_speaks_chinese_about_an_unanchored_archive(exported: Exported) -> None:
    r = CliRunner().invoke(audit, ["verify", "--archive", str(exported.arc)],
                           env={**exported.env, "LANG": "zh_CN.UTF-8"})
    assert r.exit_code == 3
    assert r.output.startswith("审计归档内容一致但未锚定：12 条记录")


def test_writing_the_trust_file_is_audited(exported: Exported) -> None:
    engine = sa.create_engine(exported.env["GOVGATE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT extra FROM audit_records WHERE event_type = "
                                        "'audit_keys_exported'")).scalars().all()
    finally:
        engine.dispose()
    assert rows and json.loads(rows[0])["kids"] == [exported.kid]


def test_a_malformed_archive_is_reported_never_a_crash(exported: Exported,
                                                       tmp_path: Path) -> None:
    """Finding: a manifest.json that is JSON but not an object, or (signed by whoever
    made the archive: nothing vouches for its signer without an anchor) a record line
    that is not an object or a manifest whose chains are not objects, made
    ``verify --archive`` end in a traceback instead of "TAMPERED"."""
    damaged = tmp_path / "damaged"
    shutil.copytree(exported.arc, damaged)
    (damaged / "manifest.json").write_text("[]\n")
    r = exported.run("verify", "--archive", str(damaged))
    assert r.exit_code == 1 and "not a readable audit archive" in r.output, r.output
    private = _primitives.generate_private_key("ES256")
    jwk = {**_primitives.public_jwk(private), "kid": "k", "alg": "ES256"}
    for name, edit in (("records.jsonl", lambda m: "1\n"), ("manifest", None)):
        made = tmp_path / name
        shutil.copytree(exported.arc, made)
        manifest = json.loads((made / "manifest.json").read_text())
        if edit is None:
            manifest["chains"] = {c: 1 for c in manifest["chains"]}
        else:
            (made / name).write_text(edit(manifest))
        (made / "keys.json").write_text(json.dumps({"keys": [jwk]}))
        resign(made, manifest, lambda body: ("k", _primitives.sign_raw("ES256", private, body)))
        r = exported.run("verify", "--archive", str(made))
        assert r.exit_code == 1 and "TAMPERED" in r.output, (name, r.output)
