"""``govgate compliance`` on the demo's state: every item passes or is not applicable
(exit 0, the JSON shape, both languages); weakening one setting or one piece of state
makes exactly that item fail (exit 1), and each is restored for the next."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
from click.testing import CliRunner
from starlette.testclient import TestClient

from audit.tables import records
from gateway import passwords
from gateway.app import create_app
from gateway.cli.demo_settings import write_demo_settings
from gateway.cli.main import cli
from gateway.compliance import FAIL, NOT_APPLICABLE, PASS, State, run_checks
from gateway.demo import DEMO_STATE
from gateway.idp.saml import signing as saml_signing
from gateway.root import state_applier
from gateway.services import Services, open_services
from gateway.settings import Settings, load_settings
from gateway.setup import initialise
from gateway.statefile import load_file
from gateway.tables import clients, systems, user_roles, users
from policies.tables import policy_lines
from tests.conftest import fresh_database
from tests.tokens import access_token
from tests.wiring import parts

IDS = [
    "ia.unique_identity", "ia.password_complexity", "ia.login_failure", "ia.session_timeout",
    "ia.admin_two_factor", "ia.client_authentication", "ac.least_privilege",
    "ac.separation_of_duties", "ac.forward_auth_peers", "au.coverage",
    "au.record_content", "au.protection", "au.retention", "au.central_collection",
    "tc.transport_tls", "tc.upstream_tls", "st.encryption_at_rest", "crypto.gm_profile",
]


@dataclasses.dataclass
class Demo:
    env: dict[str, str]
    settings: Settings
    engine: sa.Engine
    services: Services


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """What ``govgate demo`` sets up before it serves: its settings file, the first run,
    the demo state (one database for the module)."""
    home = tmp_path_factory.mktemp("demo")
    with fresh_database(home) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
        env.update({"GOVGATE_HOME": str(home), "GOVGATE_DATABASE_URL": url})
        write_demo_settings(home, 8080)
        settings = load_settings(env)
        initialise(settings, password_factory=passwords.generate_password)
        services = open_services(settings, writer="gateway")
        state_applier(services).apply(load_file(DEMO_STATE))
        try:
            yield Demo(env, settings, services.engine, services)
        finally:
            services.close()


def run(demo: Demo, monkeypatch: pytest.MonkeyPatch, *args: str, lang: str = "C.UTF-8",
        **env: str) -> Any:
    for key in [k for k in os.environ if k.startswith("GOVGATE_")]:
        monkeypatch.delenv(key)
    for key, value in {**demo.env, "LANG": lang, **env}.items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(cli, ["compliance", *args])


def statuses(result: Any) -> dict[str, str]:
    return {i["id"]: i["status"] for i in json.loads(result.output)["items"]}


def test_the_demo_passes_and_the_run_is_audited(demo: Demo,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(demo, monkeypatch, "--format", "json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    assert [i["id"] for i in items] == IDS
    assert all(set(i) == {"id", "title", "status", "evidence"} for i in items)
    assert all(i["title"] and i["evidence"] for i in items)
    # the demo serves 127.0.0.1 and its systems too: nothing crosses a network
    assert statuses(result) == {**dict.fromkeys(IDS, PASS), "tc.transport_tls": NOT_APPLICABLE,
                                "tc.upstream_tls": NOT_APPLICABLE}
    evidence = {i["id"]: i["evidence"] for i in items}
    assert "0 of 3 active admins have an authenticator; 3 have not signed in yet" in \
        evidence["ia.admin_two_factor"]
    assert "crypto profile gm: SM4-GCM for data at rest, SM3" in evidence["crypto.gm_profile"]
    # the demo's driver_phone: what goes to the consumer is not 国密, and the item says
    # which values, and how an agency sends none
    assert ("values that leave under NIST algorithms whatever the profile: the items "
            "encrypted for consumers (1: JG-0001.driver_phone), each value a JWE ECDH-ES+A256KW "
            "with A256GCM (P-256 or X25519 and AES, not SM2/SM4: JOSE registers no 国密 "
            "algorithm) around the value signed by the assertion key (SM2SM3)"
            in evidence["crypto.gm_profile"])
    assert ("to send none, give these items a mask instead of encrypt: true, or make them "
            "not shareable" in evidence["crypto.gm_profile"])
    assert "listens on 127.0.0.1:8080 only" in evidence["tc.transport_tls"]
    with demo.engine.connect() as conn:
        extra = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "compliance_check").order_by(records.c.id.desc())).first()
    assert extra is not None and json.loads(extra[0])["failed"] == []


def test_text_in_chinese_and_in_english(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    # the SAML identity provider's key, as its first sign-in or metadata makes it: under
    # gm the item names its RSA-SHA256 signatures (before, it said SM2 signatures only)
    saml_signing.active_key(demo.engine, demo.services.keys, demo.services.clock,
                            demo.settings.issuer)
    zh = run(demo, monkeypatch, lang="zh_CN.UTF-8")
    assert zh.exit_code == 0, zh.output
    assert "SAML 断言与元数据：RSA-SHA256" in zh.output
    assert "[通过] ia.unique_identity  身份标识唯一性（GB/T 22239-2019 8.1.4.1 a）" in zh.output
    assert "[不适用] tc.transport_tls  传输保密性和完整性：客户端" in zh.output
    assert "    - 审计哈希链：SM3" in zh.output
    assert zh.output.rstrip().endswith("16 项通过，0 项不通过，2 项不适用")
    en = run(demo, monkeypatch)
    assert "[pass] ia.unique_identity  Unique user identification (GB/T 22239-2019 8.1.4.1 a)" \
        in en.output
    assert "[n/a] tc.transport_tls" in en.output and "身份标识" not in en.output
    assert "SAML assertions and metadata: RSA-SHA256" in en.output
    assert en.output.rstrip().endswith("16 passed, 0 failed, 2 not applicable")


# -- one weakening per item ----------------------------------------------------------------

Flip = Callable[[Demo, pytest.MonkeyPatch], Iterator[dict[str, str]]]


def _update(demo: Demo, table: sa.Table, where: Any, before: dict[str, Any],
            after: dict[str, Any]) -> Iterator[dict[str, str]]:
    with demo.engine.begin() as conn:
        conn.execute(table.update().where(where).values(**after))
    try:
        yield {}
    finally:
        with demo.engine.begin() as conn:
            conn.execute(table.update().where(where).values(**before))


def _user_id(demo: Demo, username: str) -> int:
    with demo.engine.connect() as conn:
        return int(conn.execute(sa.select(users.c.id).where(users.c.username == username))
                   .scalar_one())


def _role(demo: Demo, username: str, role: str) -> Iterator[dict[str, str]]:
    row = {"user_id": _user_id(demo, username), "role_code": role}
    with demo.engine.begin() as conn:
        conn.execute(user_roles.insert().values(**row))
    try:
        yield {}
    finally:
        with demo.engine.begin() as conn:
            conn.execute(user_roles.delete().where(user_roles.c.user_id == row["user_id"],
                                                   user_roles.c.role_code == role))


def odd_username(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An account written past the gateway's checks, in a form no sign-in reaches."""
    now = dt.datetime.now(dt.UTC)
    with demo.engine.begin() as conn:
        conn.execute(users.insert().values(username="Zhang.San", name="张三", status="active",
                                           department_code="jgswj", must_change=False,
                                           failed_logins=0, created_at=now, updated_at=now))
    try:
        yield {}
    finally:
        with demo.engine.begin() as conn:
            conn.execute(users.delete().where(users.c.username == "Zhang.San"))


def office_web_without_pkce(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    return _update(demo, clients, clients.c.client_id == "office-web",
                   {"require_pkce": True}, {"require_pkce": False})


def weak_rule(_demo: Demo, mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    mp.setattr(passwords, "MIN_LENGTH", 4)
    mp.setattr(passwords, "MIN_SCORE", 0)
    yield {}


def setting(**env: str) -> Flip:
    def flip(_demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
        yield env
    return flip


def admin_without_one_time_password(demo: Demo, _mp: pytest.MonkeyPatch
                                    ) -> Iterator[dict[str, str]]:
    """As after ``govgate user reset-totp`` of an admin who had changed the password."""
    yield from _update(demo, users, users.c.username == "secadmin", {"must_change": True},
                       {"must_change": False})


def admin_with_business_role(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    yield from _role(demo, "secadmin", "staff")


def two_admin_roles(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Written past gateway.org's check, straight into the database."""
    yield from _role(demo, "sysadmin", "secadmin")


def plain_identity_headers(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    yield from _update(demo, systems, systems.c.code == "vehicles",
                       {"identity_headers": "assertion"}, {"identity_headers": "plain"})


def tampered_record(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with demo.engine.connect() as conn:
        first = conn.execute(sa.select(records.c.id, records.c.reason)
                             .order_by(records.c.id).limit(1)).one()
    yield from _update(demo, records, records.c.id == first.id, {"reason": first.reason},
                       {"reason": "rewritten"})


def plain_upstream(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    with demo.engine.connect() as conn:
        upstream = conn.execute(sa.select(systems.c.upstream)
                                .where(systems.c.code == "vehicles")).scalar_one()
    yield from _update(demo, systems, systems.c.code == "vehicles", {"upstream": upstream},
                       {"upstream": "http://10.1.2.3:8080"})


def plaintext_secret(demo: Demo, _mp: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    yield from _update(demo, users, users.c.username == "zhang.san", {"totp_secret": None},
                       {"totp_secret": b"JBSWY3DPEHPK3PXP"})


def test_a_client_secret_in_clear_is_found(demo: Demo) -> None:
    with demo.engine.connect() as conn:
        stored = conn.execute(sa.select(clients.c.secret_hash)
                              .where(clients.c.client_id == "office-web")).scalar_one()
    assert stored.startswith("mac1$")
    flip = _update(demo, clients, clients.c.client_id == "office-web",
                   {"secret_hash": stored}, {"secret_hash": "demo-office-secret-0123456789abcdef"})
    next(flip)
    try:
        status, evidence = _item(demo, "st.encryption_at_rest")
    finally:
        next(flip, None)
    assert status == FAIL
    assert evidence.startswith("client secrets not stored as keyed hashes: office-web")


FLIPS: dict[str, Flip] = {
    "ia.unique_identity": odd_username,
    "ia.password_complexity": weak_rule,
    "ia.login_failure": setting(GOVGATE_LOCKOUT_THRESHOLD="50"),
    "ia.session_timeout": setting(GOVGATE_SESSION_IDLE_TIMEOUT="7200"),
    "ia.admin_two_factor": admin_without_one_time_password,
    "ia.client_authentication": office_web_without_pkce,
    "ac.least_privilege": admin_with_business_role,
    "ac.separation_of_duties": two_admin_roles,
    "au.coverage": plain_identity_headers,
    # forward-auth's peers named: else they are the trusted_proxies, as wide
    "au.record_content": setting(GOVGATE_TRUSTED_PROXIES="0.0.0.0/0",
                                 GOVGATE_FORWARD_AUTH_FROM="127.0.0.1"),
    "ac.forward_auth_peers": setting(GOVGATE_FORWARD_AUTH_FROM="10.1.0.0/16"),
    "au.protection": tampered_record,
    "au.central_collection": setting(GOVGATE_AUDIT_SHIP_FILE=""),
    "tc.transport_tls": setting(GOVGATE_HOST="0.0.0.0"),
    "tc.upstream_tls": plain_upstream,
    "st.encryption_at_rest": plaintext_secret,
    "crypto.gm_profile": setting(GOVGATE_CRYPTO_PROFILE="standard"),
}
FAILS_WITH = {
    "ia.unique_identity": "not in the one sign-in form (lower-case letters, digits, . _ -): "
                          "Zhang.San",
    "ia.password_complexity": "the rule accepts weak passwords: 8 characters, a common password",
    "ia.login_failure": "an account locks only after 50 failures (at most 10)",
    "ia.session_timeout": "an idle session ends after 7200 s (at most 1800 s)",
    "ia.admin_two_factor": "sets up an authenticator with the password alone: secadmin",
    "ia.client_authentication": "clients whose authorization requests may leave PKCE out "
                                "(govgate client pkce CLIENT --require): office-web",
    "ac.least_privilege": "admins who also hold business roles: secadmin (staff)",
    "ac.separation_of_duties": "sysadmin holds secadmin + sysadmin",
    "ac.forward_auth_peers": "/auth/verify answers 10.1.0.0/16: any host there may read",
    "au.coverage": "are not recorded: vehicles",
    "au.record_content": "trusted_proxies 0.0.0.0/0: peers in so wide a network",
    "au.protection": "the audit log does not verify: record chain=",
    "au.central_collection": "no audit shipping configured (audit_ship_file)",
    "tc.transport_tls": "plain HTTP on 0.0.0.0:8080 with issuer http://127.0.0.1:8080",
    "tc.upstream_tls": "over plain HTTP across the network: vehicles (http://10.1.2.3:8080)",
    "st.encryption_at_rest": "not sealed or do not open: users.totp_secret (zhang.san)",
    "crypto.gm_profile": "this profile is standard: set crypto_profile = \"gm\"",
}


@pytest.mark.parametrize("item", list(FLIPS))
def test_weakening_one_setting_fails_exactly_its_item(
        item: str, demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    flip = FLIPS[item](demo, monkeypatch)
    env = next(flip)
    try:
        result = run(demo, monkeypatch, "--format", "json", **env)
    finally:
        next(flip, None)
    assert result.exit_code == 1, result.output
    failed = {i["id"]: i["evidence"] for i in json.loads(result.output)["items"]
              if i["status"] == FAIL}
    assert list(failed) == [item]
    assert FAILS_WITH[item] in failed[item]


def test_a_failure_in_text_and_a_retention_below_the_law(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The text names the failed item and why; a retention under 180 days never runs:
    the settings refuse it, so the check itself is shown on the settings object."""
    result = run(demo, monkeypatch, lang="zh_CN.UTF-8", GOVGATE_AUDIT_SHIP_FILE="")
    assert result.exit_code == 1
    assert "[不通过] au.central_collection  审计数据集中收集" in result.output
    assert "    - 未配置审计输送（audit_ship_file）" in result.output
    assert "17 项" not in result.output and "15 项通过，1 项不通过，2 项不适用" in result.output

    refused = run(demo, monkeypatch, GOVGATE_AUDIT_RETENTION_DAYS="90")
    assert refused.exit_code == 1
    assert "setting 'audit_retention_days': must be at least 180" in refused.output
    short = dataclasses.replace(demo.settings, audit_retention_days=90)
    items = run_checks(_state(demo, settings=short))
    assert [i.id for i in items if i.status == FAIL] == ["au.retention"]
    assert "records may be purged after 90 days (at least 180)" in \
        str(next(i.evidence for i in items if i.id == "au.retention"))


# -- the branches the demo does not reach --------------------------------------------------

def _state(demo: Demo, **changes: Any) -> State:
    return State(**{"settings": demo.settings, "engine": demo.engine,
                    "keys": demo.services.keys, "now": dt.datetime.now(dt.UTC), **changes})


def _item(demo: Demo, item: str, **changes: Any) -> tuple[str, str]:
    found = next(i for i in run_checks(_state(demo, **changes)) if i.id == item)
    return found.status, str(found.evidence)


def _certificate(tmp_path: Path, days: int) -> tuple[str, str]:
    """A server certificate (trustme) valid until ``days`` from now."""
    now = dt.datetime.now(dt.UTC)
    leaf = trustme.CA().issue_cert("gw.example.gov.cn", common_name="gw.example.gov.cn",
                                   not_before=now - dt.timedelta(days=400),
                                   not_after=now + dt.timedelta(days=days))
    cert_file, key_file = tmp_path / f"cert{days}.pem", tmp_path / f"key{days}.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    return str(cert_file), str(key_file)


def test_transport_with_a_certificate_or_a_front_end(demo: Demo, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path, days=30)
    served = dataclasses.replace(demo.settings, host="0.0.0.0", tls_cert=cert,
                                 tls_key=key, issuer="https://gw.example.gov.cn")
    status, evidence = _item(demo, "tc.transport_tls", settings=served)
    assert status == PASS and "serves HTTPS itself on 0.0.0.0:8080" in evidence
    assert "CN=gw.example.gov.cn" in evidence

    cert, key = _certificate(tmp_path, days=-1)
    expired = dataclasses.replace(served, tls_cert=cert, tls_key=key)
    status, evidence = _item(demo, "tc.transport_tls", settings=expired)
    assert status == FAIL and "the certificate expired on" in evidence

    behind = dataclasses.replace(demo.settings, host="0.0.0.0",
                                 trusted_proxies=("10.0.0.2",), issuer="https://gw.example.gov.cn")
    status, evidence = _item(demo, "tc.transport_tls", settings=behind)
    assert status == NOT_APPLICABLE
    assert "TLS ends at the front end that serves https://gw.example.gov.cn (from 10.0.0.2)" \
        in evidence


def test_upstreams_over_tls_pass_and_a_stalled_shipping_fails(demo: Demo) -> None:
    with demo.engine.connect() as conn:
        upstream = conn.execute(sa.select(systems.c.upstream)
                                .where(systems.c.code == "assets")).scalar_one()
    flip = _update(demo, systems, systems.c.code == "assets", {"upstream": upstream},
                   {"upstream": "https://assets.example.gov.cn"})
    next(flip)
    try:
        status, evidence = _item(demo, "tc.upstream_tls")
    finally:
        next(flip, None)
    assert status == PASS and evidence.startswith("1 systems over TLS")
    assert "2 on this host" in evidence

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    status, evidence = _item(demo, "au.central_collection", now=later)
    assert status == FAIL and "records wait since" in evidence


def test_a_line_that_opens_every_system_is_not_least_privilege(demo: Demo) -> None:
    now = dt.datetime.now(dt.UTC)
    with demo.engine.begin() as conn:
        conn.execute(policy_lines.insert().values(
            subject="role:staff", department="*", object="/s/*", action="*",
            effect="allow", source="cli", created_at=now))
    try:
        status, evidence = _item(demo, "ac.least_privilege")
    finally:
        with demo.engine.begin() as conn:
            conn.execute(policy_lines.delete())
    assert status == FAIL
    assert "policy lines that open every system: " in evidence
    assert "(p, role:staff, *, /s/*, *, allow)" in evidence


# -- the security administrator's API ----------------------------------------------------

def test_the_security_administrator_reads_it_over_the_api(demo: Demo) -> None:
    def bearer(username: str, roles: list[str]) -> dict[str, str]:
        return {"Authorization": "Bearer " + access_token(
            demo.services, sub=username, department="platform", roles=roles,
            scope="openid admin")}

    with TestClient(create_app(parts(demo.services)),
                    base_url="http://127.0.0.1:8080") as client:
        r = client.get("/api/v1/admin/compliance?lang=en", headers=bearer("secadmin",
                                                                         ["secadmin"]))
        assert r.status_code == 200, r.text
        assert [i["id"] for i in r.json()["items"]] == IDS
        assert r.json()["items"][0]["title"].startswith("Unique user identification")
        zh = client.get("/api/v1/admin/compliance", headers=bearer("secadmin", ["secadmin"]))
        assert zh.json()["items"][0]["title"].startswith("身份标识唯一性")  # the lang setting
        bad = client.get("/api/v1/admin/compliance?lang=fr", headers={
            **bearer("secadmin", ["secadmin"]), "Accept-Language": "en"})
        assert bad.status_code == 400 and bad.json()["detail"] == "lang: must be one of zh, en"
        refused = client.get("/api/v1/admin/compliance", headers=bearer("auditor", ["auditor"]))
        assert refused.status_code == 403 and "三员分立" in refused.json()["detail"]
    with demo.engine.connect() as conn:
        seen = conn.execute(sa.select(records.c.actor_user, records.c.extra).where(
            records.c.event_type == "compliance_check",
            records.c.actor_user == "secadmin")).fetchall()
    assert [json.loads(extra)["via"] for _, extra in seen] == ["api", "api"]


def test_under_gm_a_key_that_does_not_sign_with_sm2_fails_the_profile(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment switched to gm keeps its ES256 keys until they are rotated: the
    item names each one and the command that replaces it."""
    ring = demo.services.keys.ring
    es = ring.rotate("assertion", alg="ES256")
    ring.promote_now("assertion")
    try:
        result = run(demo, monkeypatch, "--format", "json")
        assert result.exit_code == 1, result.output
        failed = {i["id"]: i["evidence"] for i in json.loads(result.output)["items"]
                  if i["status"] == FAIL}
        assert list(failed) == ["crypto.gm_profile"]
        assert (f"the active assertion key {es.kid} signs with ES256, not SM2"
                in failed["crypto.gm_profile"])
        assert "govgate keys rotate --use assertion --now" in failed["crypto.gm_profile"]
    finally:
        ring.rotate("assertion", alg="SM2SM3")
        ring.promote_now("assertion")
    assert statuses(run(demo, monkeypatch, "--format", "json"))["crypto.gm_profile"] == "pass"


def test_forward_auth_open_to_a_wide_network_fails(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """``/auth/verify`` tells its caller the user's roles, department, assertion and
    cookies: a load balancer's /16 in ``trusted_proxies`` (wide enough for
    ``au.record_content``) is who may ask while ``forward_auth_from`` is unset."""
    result = run(demo, monkeypatch, "--format", "json", GOVGATE_TRUSTED_PROXIES="10.0.0.0/16")
    assert result.exit_code == 1 and statuses(result)["ac.forward_auth_peers"] == FAIL
    assert statuses(result)["au.record_content"] == PASS
    zh = run(demo, monkeypatch, lang="zh_CN.UTF-8", GOVGATE_TRUSTED_PROXIES="10.0.0.0/16")
    assert "[不通过] ac.forward_auth_peers  前置认证的调用方限制" in zh.output
    assert "（未设置 forward_auth_from：本机回环地址和 trusted_proxies）" in zh.output
    for entries, status in [("0.0.0.0/0", FAIL), ("2001:db8::/48", FAIL),
                            ("10.1.0.0/24", PASS), ("10.1.0.7,2001:db8::/64", PASS)]:
        got, evidence = _item(demo, "ac.forward_auth_peers", settings=dataclasses.replace(
            demo.settings, forward_auth_from=tuple(entries.split(","))))
        assert got == status, (entries, evidence)
    assert "answers 10.1.0.7, 2001:db8::/64 only" in evidence


def test_a_client_and_a_user_of_one_name_and_a_lenient_assertion_audience(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client and a user sharing a name, made before registration refused it (docs/
    seams.md, "what RFC 9700 left"), were reported nowhere; nor a gateway letting client
    assertions name the token endpoint (draft-ietf-oauth-rfc7523bis). Rows written past
    the checks, as those pairs were."""
    now = dt.datetime.now(dt.UTC)
    made = [{"client_id": "Zhang.San", "name": "冒名", "department_code": "jgswj",
             "grant_types": ["client_credentials"], "redirect_uris": [],
             "token_endpoint_auth_method": "private_key_jwt",
             "jwks": {"keys": [{"kty": "EC"}]}, "status": "active", "created_at": now}]
    with demo.engine.begin() as conn:
        conn.execute(clients.insert(), made)
    try:
        result = run(demo, monkeypatch, "--format", "json")
        lenient = run(demo, monkeypatch, "--format", "json",
                      GOVGATE_CLIENT_ASSERTION_AUDIENCE="issuer_or_token_endpoint")
    finally:
        with demo.engine.begin() as conn:
            conn.execute(clients.delete().where(clients.c.client_id == "Zhang.San"))
    assert result.exit_code == 1, result.output
    failed = {i["id"]: i["evidence"] for i in json.loads(result.output)["items"]
              if i["status"] == FAIL}
    assert list(failed) == ["ia.unique_identity"]
    assert "clients whose client_id is also a username (a resource server reading sub " \
        "alone takes the client for the person; rename the client): Zhang.San" \
        in failed["ia.unique_identity"]
    evidence = {i["id"]: i["evidence"] for i in json.loads(result.output)["items"]}
    assert "1 clients authenticate by private_key_jwt; an assertion must name the issuer " \
        "alone" in evidence["ia.client_authentication"]
    failed = {i["id"]: i["evidence"] for i in json.loads(lenient.output)["items"]
              if i["status"] == FAIL}
    assert list(failed) == ["ia.unique_identity", "ia.client_authentication"]
    assert "client assertions may name the token endpoint or several audiences " \
        "(client_assertion_audience = issuer_or_token_endpoint): Zhang.San" \
        in failed["ia.client_authentication"]


def test_a_client_with_a_fixed_credential_at_the_proxy_is_named(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old system's Basic or API key at /s/ (gateway.proxy.static_credentials) is sent
    on every call and never expires: weaker than a token, each such client named."""
    now = dt.datetime.now(dt.UTC)
    with demo.engine.begin() as conn:
        conn.execute(clients.insert(), [{
            "client_id": "energy-system", "name": "能耗", "department_code": "jgswj",
            "grant_types": ["client_credentials"], "redirect_uris": [], "scope": "proxy",
            "token_endpoint_auth_method": "client_secret_basic", "secret_hash": "mac1$00",
            "static_credential": "basic", "status": "active", "created_at": now}])
    try:
        result = run(demo, monkeypatch, "--format", "json")
    finally:
        with demo.engine.begin() as conn:
            conn.execute(clients.delete().where(clients.c.client_id == "energy-system"))
    failed = {i["id"]: i["evidence"] for i in json.loads(result.output)["items"]
              if i["status"] == FAIL}
    assert list(failed) == ["ia.client_authentication"], result.output
    assert "clients that call /s/ with a fixed credential, weaker than a token (govgate " \
        "client static-credential CLIENT off): energy-system (basic)" \
        in failed["ia.client_authentication"]
