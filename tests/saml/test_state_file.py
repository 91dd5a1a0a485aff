"""``saml_sp`` in the state file: SP metadata read from a file, checked (an SP's
metadata is its registration), applied, listed by ``govgate saml list``, exported
inline and re-applied as nothing to change; the IdP's metadata from ``govgate saml
metadata`` as at /saml/metadata."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gateway.cli.main import cli
from gateway.idp.saml import sps
from gateway.services import Services
from gateway.settings import Settings
from gateway.tables import systems
from tests.oauth2.helpers import close_services, make_services
from tests.saml.conftest import seed_signing_key
from tests.saml.sp import _pems

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SOAP = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"


def metadata(entity: str = "https://archives.example/shibboleth",
             acs: tuple[tuple[str, str], ...] = ((POST, "https://archives.example/acs"),),
             signs: bool = False, cert: bool = True,
             slo: tuple[tuple[str, str], ...] = ((SOAP, "https://archives.example/slo"),),
             encryption: str | tuple[str, ...] = ()) -> str:
    """SP metadata as Shibboleth's and Spring's look: one SPSSODescriptor;
    ``encryption``: certificates (base64 DER), each in a KeyDescriptor use="encryption"."""
    der = base64.b64encode(base64.b64decode(
        b"".join(_pems("state")[0].splitlines()[1:-1]))).decode()
    key = ('<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
           f"{der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
           if cert else "")
    for enc in (encryption,) if isinstance(encryption, str) else encryption:
        key += ('<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data>'
                f"<ds:X509Certificate>{enc}</ds:X509Certificate></ds:X509Data>"
                "</ds:KeyInfo></md:KeyDescriptor>")
    services = "".join(f'<md:SingleLogoutService Binding="{b}" Location="{u}"/>' for b, u in slo)
    services += "".join(f'<md:AssertionConsumerService Binding="{b}" Location="{u}" index="{i}"/>'
                        for i, (b, u) in enumerate(acs, 1))
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">'
            f'<md:SPSSODescriptor AuthnRequestsSigned="{str(signs).lower()}" '
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f"{key}{services}</md:SPSSODescriptor></md:EntityDescriptor>")


@functools.cache
def encryption_cert(kind: str) -> str:
    """A certificate (base64 DER) an SP might list for encryption: ``expired``,
    ``rsa1024``, ``ec`` (P-256), ``soon`` (expires in ten days), ``good``."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "rsa1024":
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    elif kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        loaded = serialization.load_pem_private_key(_pems("state")[1], password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        key = loaded
    now = datetime.now(UTC)
    start, end = ((now - timedelta(days=400), now - timedelta(days=35)) if kind == "expired"
                  else (now - timedelta(days=1), now + timedelta(days=10)) if kind == "soon"
                  else (now - timedelta(days=1), now + timedelta(days=365)))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sp-{kind}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end).sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize(("entry", "why"), [
    ({"metadata": metadata(encryption=encryption_cert("expired"))},
     "the encryption certificate expired"),
    ({"metadata": metadata(encryption=encryption_cert("rsa1024"))},
     "the encryption key is RSA 1024, under 2048 bits"),
    ({"metadata": metadata(encryption=encryption_cert("ec"))}, "the encryption key is not RSA"),
    ({"metadata": metadata(encryption="AAAA")}, "not an X.509 certificate"),
    ({"metadata": metadata(cert=False), "encrypt_assertions": True},
     "encrypt_assertions is true but the metadata has no KeyDescriptor for encryption"),
    ({"metadata": metadata(), "encrypt_assertions": "yes"},
     "encrypt_assertions must be true or false"),
    ("nope", "must be a mapping"),
    ({"metadata": metadata(), "colour": "red"}, "unknown key 'colour'"),
    ({}, "metadata_file or metadata, exactly one"),
    ({"metadata": metadata(), "metadata_file": "/x"}, "exactly one"),
    ({"metadata_file": "/no/such/file.xml"}, "metadata_file:"),
    ({"metadata": metadata(), "name_id": "email"}, "persistent or transient"),
    ({"metadata": metadata(), "release_username": "yes"}, "true or false"),
    ({"metadata": metadata(), "launch_url": "http://archives.example/login"}, "must be https"),
    ({"metadata": "<md:EntityDescriptor"}, "not SAML 2.0 metadata"),
    ({"metadata": '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'}, "not SAML 2.0 metadata"),
    ({"metadata": metadata(acs=((SOAP, "https://archives.example/acs"),))},
     "no AssertionConsumerService with the HTTP-POST binding"),
    ({"metadata": metadata(acs=((POST, "http://archives.example/acs"),))}, "must be https"),
    ({"metadata": metadata(slo=((SOAP, "https://u:p@archives.example/slo"),))},
     "user information"),
    ({"metadata": metadata(signs=True, cert=False)}, "no signing certificate"),
    ({"metadata": metadata(entity="")}, "entityID"),
])
def test_refused_entries(entry: object, why: str) -> None:
    problems = sps.problems(entry)
    assert problems and why in problems[0], problems


def test_usable_encryption_keys() -> None:
    """An SP whose encryption key is unusable is accepted when encryption is turned
    off for it, and so is one that lists a good key after an expired one (a rollover);
    a KeyDescriptor with no ``use`` serves encryption when the setting asks for it."""
    expired = metadata(encryption=encryption_cert("expired"))
    assert sps.problems({"metadata": expired, "encrypt_assertions": False}) == []
    rollover = metadata(encryption=(encryption_cert("expired"), encryption_cert("good")))
    assert sps.problems({"metadata": rollover}) == []
    assert len(sps.parse_metadata(rollover).encryption_keys) == 2
    both = metadata().replace('<md:KeyDescriptor use="signing">', "<md:KeyDescriptor>")
    assert sps.problems({"metadata": both, "encrypt_assertions": True}) == []
    assert sps.parse_metadata(both).encryption_keys[0].explicit is False
    # the setting is stored, exported and read back as given (absent: the metadata's say)
    for given in (True, False):
        column = sps.stored({"metadata": both, "encrypt_assertions": given})
        assert sps.exported(column)["encrypt_assertions"] is given
        assert sps.from_column("s", column).encrypt_assertions is given
    assert "encrypt_assertions" not in sps.exported(sps.stored({"metadata": both}))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    found = make_services(settings)
    seed_signing_key(found)
    yield found
    close_services(found)


def _cli(services: Services, *args: str) -> tuple[int, str]:
    env = {"GOVGATE_HOME": str(services.settings.home), "LANG": "C.UTF-8",
           "GOVGATE_DATABASE_URL": services.settings.database_url}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_apply_list_export_reapply(services: Services, tmp_path: Path) -> None:
    assert _cli(services, "saml", "list") == (0, "no SAML service provider is registered.\n")
    (tmp_path / "sp.xml").write_text(metadata(signs=True))
    doc = {"systems": [{"code": "archives", "name": "档案管理系统", "department": "jgswj",
                        "upstream": "https://archives.example",
                        "saml_sp": {"metadata_file": str(tmp_path / "sp.xml"),
                                    "name_id": "transient", "release_username": True,
                                    "attributes": ["roles", "name"],
                                    "launch_url": "https://archives.example/Shibboleth.sso/Login"}}]}
    (tmp_path / "state.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    code, out = _cli(services, "apply", "-f", str(tmp_path / "state.yaml"))
    assert code == 0 and "+ system archives" in out, out

    code, out = _cli(services, "saml", "list")
    assert code == 0
    assert out.splitlines()[1] == ("archives\thttps://archives.example/shibboleth\ttransient\t"
                                   "uid name roles\ttrue\thttps://archives.example/acs\t"
                                   "https://archives.example/slo")
    code, out = _cli(services, "saml", "metadata")
    assert code == 0 and 'entityID="http://127.0.0.1:8080/saml/metadata"' in out
    assert "http://127.0.0.1:8080/saml/sso" in out and "X509Certificate" in out

    code, out = _cli(services, "export")
    exported = yaml.safe_load(out)
    archives = next(s for s in exported["systems"] if s["code"] == "archives")
    assert archives["saml_sp"] == {
        "metadata": metadata(signs=True), "name_id": "transient", "release_username": True,
        "attributes": ["name", "roles"],
        "launch_url": "https://archives.example/Shibboleth.sso/Login"}
    (tmp_path / "export.yaml").write_text(out)
    assert _cli(services, "apply", "-f", str(tmp_path / "export.yaml")) == (
        0, "nothing to change.\n")

    # the same entity ID for another system: refused, whether in the file or stored
    other = {"code": "archives-2", "name": "另一个", "department": "jgswj",
             "upstream": "https://other.example", "saml_sp": {"metadata": metadata()}}
    (tmp_path / "twice.yaml").write_text(yaml.safe_dump({"systems": [other]}))
    code, out = _cli(services, "apply", "-f", str(tmp_path / "twice.yaml"))
    assert code == 1 and "is registered by system 'archives' too" in out, out


def test_a_key_that_expired_while_registered_holds_up_no_apply(
        services: Services, tmp_path: Path) -> None:
    """An SP's encryption certificate that expired while it was registered: the state
    file that registers it unchanged applies (failed on the base: the whole file
    refused, "the encryption certificate expired"); new metadata with the expired key
    is refused as at registration; compliance names it, and the SP whose last key
    expires within 30 days."""
    good = metadata(entity="https://vault.example/sp", encryption=encryption_cert("good"))
    soon = metadata(entity="https://hall.example/sp", encryption=encryption_cert("soon"))
    doc = {"systems": [
        {"code": "vault", "name": "保密室", "department": "jgswj",
         "upstream": "https://vault.example", "saml_sp": {"metadata": good}},
        {"code": "hall", "name": "会议室", "department": "jgswj",
         "upstream": "https://hall.example", "saml_sp": {"metadata": soon}}]}
    (tmp_path / "state.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    code, out = _cli(services, "apply", "-f", str(tmp_path / "state.yaml"))
    assert code == 0, out
    # time passes: vault's certificate expires (its stored metadata, as registered then)
    expired = good.replace(encryption_cert("good"), encryption_cert("expired"))
    with services.engine.begin() as conn:
        column = conn.execute(sa.select(systems.c.saml_sp).where(
            systems.c.code == "vault")).scalar_one()
        conn.execute(systems.update().where(systems.c.code == "vault").values(
            saml_sp={**column, "metadata": expired}))

    # the file as exported, with an unrelated change: applied
    code, out = _cli(services, "export")
    exported = yaml.safe_load(out)
    next(s for s in exported["systems"] if s["code"] == "hall")["name"] = "大会议室"
    (tmp_path / "export.yaml").write_text(yaml.safe_dump(exported, allow_unicode=True))
    code, out = _cli(services, "apply", "-f", str(tmp_path / "export.yaml"))
    assert code == 0 and "system hall" in out, out
    # a changed entry whose key is expired is refused, as a new registration is
    vault = next(s for s in exported["systems"] if s["code"] == "vault")
    vault["saml_sp"]["name_id"] = "transient"
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(exported, allow_unicode=True))
    code, out = _cli(services, "apply", "-f", str(tmp_path / "changed.yaml"))
    assert code == 1 and "the encryption certificate expired" in out, out

    code, out = _cli(services, "compliance", "--format", "json")
    item = next(i for i in json.loads(out)["items"] if i["id"] == "tc.upstream_tls")
    evidence = str(item["evidence"])
    assert code == 1 and item["status"] == "fail", out
    assert "vault (https://vault.example/sp): the encryption certificate expired" in evidence
    assert "hall (https://hall.example/sp): the encryption certificate expires" in evidence
