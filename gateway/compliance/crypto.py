"""Confidentiality and integrity in transit and at rest (数据完整性、数据保密性, GB/T
22239-2019 8.1.4.1 c, 8.1.4.7, 8.1.4.8) and the 国密 algorithms that 密评 asks of a
level-3 system (GB/T 39786-2021 8.3, 8.4)."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography import x509

from audit.tables import chains
from catalogue.model import PUBLISHED
from catalogue.tables import items as cat_items
from catalogue.tables import resources
from gateway.compliance.model import FAIL, NOT_APPLICABLE, Check, State, names, verdict
from gateway.idp import totp
from gateway.idp.saml import signing as saml_signing
from gateway.idp.saml import sps as saml_sps
from gateway.idp.saml.tables import signing_keys as saml_keys
from gateway.proxy import upstream_tls
from gateway.tables import clients, systems, users
from keys import KeysError, get_profile
from keys.tables import data_keys
from texts import Text, message_of, os_reason, where

ARGON2ID = "$argon2id$"
KEYED_HASH = "mac1$"  # gateway.services.Services.hash_client_secret


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_tls(state: State) -> tuple[str, list[str]]:
    """What reaches the gateway: HTTPS it serves itself, or a front end that does."""
    s = state.settings
    issuer = urlsplit(s.issuer)
    address = f"{s.host}:{s.port}"
    if s.tls_cert:
        try:
            cert = x509.load_pem_x509_certificate(Path(s.tls_cert).read_bytes())
        except OSError as exc:
            return verdict([where(s.tls_cert, os_reason(exc))], [])
        except ValueError:
            return verdict([Text("compliance.tls_not_pem", "{path}: not a PEM certificate",
                                 path=s.tls_cert)], [])
        until = cert.not_valid_after_utc
        problems: list[str] = []
        if until <= state.now.astimezone(UTC):
            problems.append(Text("compliance.tls_expired", "the certificate expired on "
                                 "{date}", date=until.date().isoformat()))
        if issuer.scheme != "https":
            problems.append(Text("compliance.issuer_http",
                                 "the issuer {issuer} sends browsers and clients to plain "
                                 "HTTP", issuer=s.issuer))
        return verdict(problems, [Text(
            "compliance.tls_self", "serves HTTPS itself on {where} (tls_cert {path}: "
            "{subject}, valid until {date})", where=address, path=s.tls_cert,
            subject=cert.subject.rfc4514_string(), date=until.date().isoformat())])
    if _loopback(s.host) and _loopback(issuer.hostname):
        return NOT_APPLICABLE, [Text(
            "compliance.tls_loopback", "listens on {where} only and the issuer is {issuer}: "
            "no traffic crosses a network", where=address, issuer=s.issuer)]
    if issuer.scheme == "https" and (s.trusted_proxies or _loopback(s.host)):
        return NOT_APPLICABLE, [Text(
            "compliance.tls_front", "TLS ends at the front end that serves {issuer} (from "
            "{proxies}); the gateway serves it plain HTTP on {where}", issuer=s.issuer,
            proxies=", ".join(s.trusted_proxies) or s.host, where=address)]
    return FAIL, [Text(
        "compliance.plain_http", "plain HTTP on {where} with issuer {issuer}: no tls_cert and "
        "tls_key, and no front end serving https declared (trusted_proxies)", where=address,
        issuer=s.issuer)]


def upstream_transport(state: State) -> tuple[str, list[str]]:
    """What leaves the gateway for the department systems: over the proxy, and the SAML
    assertions encrypted for an SP, whose key may expire while it is registered."""
    with state.engine.connect() as conn:
        rows = conn.execute(sa.select(systems.c.code, systems.c.upstream, systems.c.tls,
                                      systems.c.identity_tls_only, systems.c.saml_sp)
                            .order_by(systems.c.code)).fetchall()
    if not rows:
        return NOT_APPLICABLE, [Text("compliance.no_systems", "no system is registered")]
    status, said = _upstream_transport(rows)
    sps = [sp for r in rows if isinstance(r.saml_sp, dict)
           and (sp := saml_sps.from_column(r.code, r.saml_sp)) is not None]
    unusable, soon = saml_sps.expiring_keys(sps, state.now.astimezone(UTC))
    problems: list[str] = [Text(
        "compliance.saml_key_unusable", "SAML service providers whose assertions are to be "
        "encrypted and none of whose encryption keys is usable (their sign-ins are refused "
        "until their new metadata is registered): {sps}", sps=names(unusable))] if unusable \
        else []
    if soon:
        said.append(Text(
            "compliance.saml_key_expiring", "SAML service providers whose last usable "
            "encryption key expires within {days} days (register their new metadata "
            "before): {sps}", days=saml_sps.EXPIRY_NOTICE.days, sps=names(soon)))
    if problems:
        return FAIL, [*problems, *said]
    return status, said


def _upstream_transport(rows: Sequence[Any]) -> tuple[str, list[str]]:
    secure, local, held, plain = [], [], [], []
    for r in rows:
        url = urlsplit(r.upstream)
        if url.scheme == "https":
            secure.append(r.code)
        elif _loopback(url.hostname):
            local.append(r.code)
        elif r.identity_tls_only:
            held.append(r.code)  # the proxy refuses it until it has verified TLS
        else:
            plain.append(f"{r.code} ({r.upstream})")
    fact = Text("compliance.upstreams",
                "{secure} systems over TLS that verifies the certificate and host name (1.2 "
                "or later; mTLS where configured), {local} on this host, {held} refused until "
                "they have TLS (identity_over_tls_only)", secure=len(secure), local=len(local),
                held=len(held))
    if plain:
        return verdict([Text("compliance.upstream_plain",
                             "systems reached over plain HTTP across the network: {systems}",
                             systems=names(plain))], [fact])
    if not secure and not held:
        return NOT_APPLICABLE, [Text("compliance.upstreams_local",
                                     "every system is on this host ({systems}): nothing "
                                     "crosses a network", systems=names(local))]
    return verdict([], [fact])


def _sealed(state: State) -> tuple[dict[str, int], list[str]]:
    """Every secret the gateway stores sealed, opened now: how many of each kind, and
    those that are not sealed or do not open."""
    counts = {"totp": 0, "saml": 0, "mtls": 0}
    bad: list[str] = []

    def opens(blob: Any, context: str, what: str) -> None:
        try:
            state.keys.open(bytes(blob), context)
        except KeysError:
            bad.append(what)

    with state.engine.connect() as conn:
        for r in conn.execute(sa.select(users.c.id, users.c.username, users.c.totp_secret)
                              .where(users.c.totp_secret.is_not(None))):
            counts["totp"] += 1
            opens(r.totp_secret, totp.secret_context(r.id), f"users.totp_secret ({r.username})")
        for key in conn.execute(sa.select(saml_keys.c.kid, saml_keys.c.key_sealed)):
            counts["saml"] += 1
            opens(key.key_sealed, saml_signing.seal_context(key.kid),
                  f"saml_signing_keys ({key.kid})")
        for system in conn.execute(sa.select(systems.c.code, systems.c.tls)):
            sealed = (system.tls or {}).get("key_sealed")
            if sealed:
                counts["mtls"] += 1
                try:
                    blob = base64.b64decode(sealed)
                except ValueError:  # binascii.Error: then it does not open either
                    blob = b""
                opens(blob, upstream_tls.seal_context(system.code), f"systems.tls ({system.code})")
    return counts, bad


def encryption_at_rest(state: State) -> tuple[str, list[str]]:
    problems: list[str] = []
    try:
        state.keys.check()  # the master key opens every data key; every active key opens
    except KeysError as exc:
        problems.append(message_of(exc))
    counts, bad = _sealed(state)
    if bad:
        problems.append(Text("compliance.not_sealed",
                             "stored secrets that are not sealed or do not open: {what}",
                             what=names(bad)))
    with state.engine.connect() as conn:
        weak = [r.username for r in conn.execute(
            sa.select(users.c.username, users.c.password_hash)
            .where(users.c.password_hash.is_not(None))) if not r.password_hash.startswith(
                ARGON2ID)]
        bare = [r.client_id for r in conn.execute(
            sa.select(clients.c.client_id, clients.c.secret_hash)
            .where(clients.c.secret_hash.is_not(None))) if not r.secret_hash.startswith(
                KEYED_HASH)]
    if weak:
        problems.append(Text("compliance.password_hashes",
                             "passwords not stored as argon2id hashes: {names}",
                             names=names(weak)))
    if bare:
        problems.append(Text("compliance.client_secret_hashes",
                             "client secrets not stored as keyed hashes: {names}",
                             names=names(bare)))
    signing = sum(1 for k in state.keys.list_keys() if k.state in ("pending", "active", "retired"))
    master = state.keys.master
    return verdict(problems, [
        Text("compliance.sealed_counts",
             "sealed with data keys under the master key ({cipher}), opened now: {signing} "
             "signing keys, {totp} authenticator seeds, {saml} SAML keys, {mtls} upstream "
             "client keys; passwords as argon2id hashes, client secrets as keyed hashes",
             cipher=get_profile(state.settings.crypto_profile).cipher, signing=signing,
             **counts),
        Text("compliance.master_key", "master key outside the database: {provider} "
             "({where})", provider=master.name, where=getattr(master, "where", "-")),
    ])


def gm_profile(state: State) -> tuple[str, list[str]]:
    s = state.settings
    profile = get_profile(s.crypto_profile)
    with state.engine.connect() as conn:
        by_hash: dict[str, int] = {r[0]: r[1] for r in conn.execute(
            sa.select(chains.c.hash_name, sa.func.count()).group_by(chains.c.hash_name))}
        by_profile: dict[str, int] = {r[0]: r[1] for r in conn.execute(
            sa.select(data_keys.c.profile, sa.func.count())
            .where(data_keys.c.state == "active").group_by(data_keys.c.profile))}
        # the items the proxy encrypts for a consumer (catalogue.shaping): JOSE, whose
        # algorithms are NIST's whatever the profile; an assessor must see which
        encrypted = sorted(f"{r[0]}.{r[1]}" for r in conn.execute(
            sa.select(resources.c.code, cat_items.c.name)
            .select_from(cat_items.join(resources, resources.c.id == cat_items.c.resource_id))
            .where(cat_items.c.encrypt.is_(True), resources.c.status == PUBLISHED)))
        saml_rsa = conn.execute(sa.select(sa.func.count()).select_from(saml_keys).where(
            saml_keys.c.status == "active")).scalar()
    algs = sorted({k.alg for k in state.keys.list_keys() if k.state == "active"})
    facts = [
        Text("compliance.profile",
             "crypto profile {profile}: {cipher} for data at rest, {hash} for digests, "
             "MACs and the audit chain", profile=profile.name, cipher=profile.cipher,
             hash=profile.hash_name.upper().replace("SHA256", "SHA-256")),
        Text("compliance.profile_counts",
             "audit chains: {sm3} SM3, {sha} SHA-256; active data keys: {gm} SM4, {std} AES",
             sm3=by_hash.get("sm3", 0), sha=by_hash.get("sha256", 0),
             gm=by_profile.get("gm", 0), std=by_profile.get("standard", 0)),
        Text("compliance.signatures", "signatures (tokens, assertions, checkpoints): {algs}; "
             "master key: {provider}", algs=", ".join(algs) or "-",
             provider=state.keys.master.name),
    ]
    if encrypted:
        assertion = [k.alg for k in state.keys.list_keys()
                     if k.use == "assertion" and k.state == "active"]
        facts.append(Text(
            "compliance.consumer_jwe",
            "values that leave under NIST algorithms whatever the profile: the items "
            "encrypted for consumers ({items}: {names}), each value a JWE ECDH-ES+A256KW with "
            "A256GCM (P-256 or X25519 and AES, not SM2/SM4: JOSE registers no 国密 "
            "algorithm) around the value signed by the assertion key ({alg}), inside the "
            "transport's TLS; to send none, give these items a mask instead of encrypt: "
            "true, or make them not shareable",
            items=len(encrypted), names=names(encrypted), alg=", ".join(assertion) or "-"))
    if saml_rsa:
        facts.append(Text(
            "compliance.saml_rsa", "SAML assertions and metadata: RSA-SHA256; assertions "
            "encrypted for an SP that asks: AES-GCM or AES-CBC with RSA-OAEP (XML "
            "Signature and XML Encryption have no SM2, SM3 or SM4 identifier service "
            "providers know, and xmlsec1 implements none)"))
    problems = [] if profile.name == "gm" else [Text(
        "compliance.not_gm",
        "密评 level 3 asks for SM4 and SM3 (GB/T 39786-2021 8.3, 8.4); this profile is "
        "{profile}: set crypto_profile = \"gm\"", profile=profile.name)]
    if profile.name == "gm":
        # under gm the signatures are SM2 too: an ES256 key left from before the
        # switch (or chosen with signing_alg) still signs until it is rotated
        problems += [Text(
            "compliance.not_sm2",
            "the active {use} key {kid} signs with {alg}, not SM2 (GB/T 39786-2021 8.3): "
            "run `govgate keys rotate --use {use} --now`", use=k.use, kid=k.kid, alg=k.alg)
            for k in state.keys.list_keys() if k.state == "active" and k.alg != "SM2SM3"]
    return verdict(problems, facts)


CHECKS = (
    Check("tc.transport_tls", Text(
        "compliance.title.transport_tls",
        "Confidentiality and integrity in transit: clients (GB/T 22239-2019 8.1.4.1 c, "
        "8.1.4.7 a, 8.1.4.8 a)"), transport_tls),
    Check("tc.upstream_tls", Text(
        "compliance.title.upstream_tls",
        "Confidentiality and integrity in transit: department systems (GB/T 22239-2019 "
        "8.1.4.7 a, 8.1.4.8 a)"), upstream_transport),
    Check("st.encryption_at_rest", Text(
        "compliance.title.encryption_at_rest",
        "Confidentiality of stored secrets (GB/T 22239-2019 8.1.4.8 b)"), encryption_at_rest),
    Check("crypto.gm_profile", Text(
        "compliance.title.gm_profile",
        "国密 algorithms SM2, SM3 and SM4 (GB/T 39786-2021 level 3, 8.3, 8.4)"), gm_profile),
)
