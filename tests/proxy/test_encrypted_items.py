"""Items the catalogue encrypts or masks for the consumer (the demo's JG-0001:
``driver_phone`` encrypted, ``driver_name`` masked, granted to czt; JG-T001: a phone
masked) through the gateway on a real socket from an upstream on a real socket: the
JWE names the item, the resource and the client it is for in its protected header,
which the key derivation binds, and ``govgate_upstream.open_item`` refuses one moved
to another item or consumer; a client key not meant for key agreement is never
encrypted to; a masked phone hides the same digits in any spelling; the audit record
says which items went encrypted (to which key) and masked (with which mask), never a
value."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from joserfc import jwe, jws
from joserfc.jwk import ECKey, OKPKey

import govgate_upstream
from audit import AuditLog
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.proxy.endpoint import ProxyConfig
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.web.http_server import HeadLimits
from keys.tables import sealed_secrets
from tests.catalogue.conftest import MONDAY, _demo_state, audit_rows, finance_private_key
from tests.conftest import seeded
from tests.hostile.conftest import cheap_hashes, module_settings  # noqa: F401 (fixtures)
from tests.proxy.conftest import Served, free_socket
from tests.tokens import access_token
from tests.wiring import apply_state, parts

PHONE, SECRET = "13907710021", "450102198305120031"
ROWS = [{"plate_number": "桂A·G1024", "brand": "红旗 H5", "driver_name": "李建国",
         "driver_id_number": SECRET, "driver_phone": PHONE},
        {"plate_number": "桂A·G2048", "brand": "比亚迪 汉", "driver_name": "王五",
         "driver_id_number": "450102199001010012", "driver_phone": "13800138000"}]
BODY = json.dumps({"items": ROWS, "total": 2}, ensure_ascii=False).encode()
# one number as department systems spell it, under a phone_middle item
SPELLINGS = {"13907710021": "139****0021", "139-0771-0021": "139-****-0021",
             "+86 139 0771 0021": "+86 139 **** 0021", "0086 13907710021": "0086 139****0021",
             "+8613907710021": "+86139****0021", "1 3 9 0 7 7 1 0 0 2 1": "1 3 9 * * * * 0 0 2 1",
             "１３９０７７１００２１": "１３９****００２１",
             "一三九〇七七一〇〇二一": "一三九****〇〇二一",
             "见备注": "***"}
# the first driver's numbers as a list and as an object (keys the upstream's to fill)
PHONES = {"phones": ["13907710021", "13800138000", 13912345678],
          "contacts": {"13907710021": "家", "work": "13800138000"}}
DRIVERS = json.dumps({"items": [{"name": "李建国", "phone": p, **(PHONES if k == 0 else {})}
                                for k, p in enumerate(SPELLINGS)]},
                     ensure_ascii=False).encode()
# a resource of the same system whose phone is masked, not encrypted, open to everyone
DRIVERS_RESOURCE = {
    "code": "JG-T001", "name": "驾驶员联系方式", "provider": "jgswj", "system": "vehicles",
    "share_type": "unconditional", "update_cycle": "daily",
    "route": {"method": "GET", "path": "/api/drivers", "records": "items"},
    "items": [{"name": "name", "title": "姓名", "level": 2, "mask": "keep_first_char"},
              {"name": "phone", "title": "手机号", "level": 3, "mask": "phone_middle"},
              {"name": "phones", "title": "其他号码", "type": "array", "level": 3,
               "mask": "phone_middle"},
              {"name": "contacts", "title": "联系方式", "type": "object", "level": 3,
               "mask": "keep_last_4"}]}

# a pseudonymised reference, used by one test only (the first pseudonym reads the key
# ring's MAC root, which that test makes unreadable)
REFS_RESOURCE = {
    "code": "JG-T002", "name": "驾驶员编号", "provider": "jgswj", "system": "vehicles",
    "share_type": "unconditional", "update_cycle": "daily",
    "route": {"method": "GET", "path": "/api/refs", "records": "items"},
    "items": [{"name": "ref", "title": "编号", "level": 3, "mask": "pseudonym"}]}


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        body = (DRIVERS if head.startswith(b"GET /api/drivers ")
                else b'{"items":[{"ref":"450102198305120031"}]}'
                if head.startswith(b"GET /api/refs ") else BODY)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                     b"Connection: close\r\n\r\n" + body)
        await writer.drain()
    finally:
        writer.close()


def _public(key: Any) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


# czt's clients beside finance-system, each registering one key that is not for key
# agreement (or cannot agree one): a signing key as JOSE, Web Crypto and a private_key_jwt
# client mark it, and an X25519 point of order one (every shared secret zero)
ZERO_X25519 = {"kty": "OKP", "crv": "X25519",
               "x": base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()}
ODD_KEYS = {
    "czt-es256": _public(ECKey.generate_key("P-256", parameters={"alg": "ES256",
                                                                   "kid": "sig-1"})),
    "czt-verify": _public(ECKey.generate_key("P-256", parameters={"key_ops": ["verify"],
                                                                    "kid": "sig-2"})),
    "czt-sig": _public(ECKey.generate_key("P-256", parameters={"use": "sig",
                                                                 "kid": "sig-3"})),
    "czt-zero": ZERO_X25519,
}
X25519 = OKPKey.generate_key("X25519", parameters={"kid": "x-1"})
# a client still on the helper of before the signature (``catalogue_unsigned_item_clients``)
OLD_HELPER = OKPKey.generate_key("X25519", parameters={"kid": "old-1"})
# an ECDH public key as Web Crypto (browsers, Node's crypto.subtle) exports it
WEB_CRYPTO = ECKey.generate_key("P-256")

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Gate:
    services: Services
    port: int
    http: httpx.AsyncClient

    async def get(self, client_id: str, department: str = "czt",
                  path: str = "/api/vehicles") -> httpx.Response:
        token = access_token(self.services, sub=None, department=department,
                             roles=("staff",), client_id=client_id)
        return await self.http.get(f"http://127.0.0.1:{self.port}/s/vehicles{path}",
                                   headers={"Authorization": f"Bearer {token}"})

    async def verifier(self, client_id: str = "finance-system"
                       ) -> govgate_upstream.AssertionVerifier:
        """The consumer's check of the gateway's signature: the assertion key set
        fetched from the gateway's socket (as ``open_item`` fetches it by default; off
        this loop, which serves the gateway)."""
        found = govgate_upstream.AssertionVerifier(
            issuer=self.services.settings.issuer, audience=client_id,
            jwks_url=f"http://127.0.0.1:{self.port}{govgate_upstream.ASSERTION_JWKS_PATH}")
        await asyncio.to_thread(found.refresh)
        return found

    def record(self, r: httpx.Response) -> dict[str, Any]:
        found = [rec for rec in audit_rows(self.services, "proxy_request")
                 if rec["request_id"] == r.headers["x-request-id"]]
        assert len(found) == 1
        return found[0]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gate(module_settings: Settings,  # noqa: F811
               cheap_hashes: None) -> AsyncIterator[Gate]:  # noqa: F811
    """The demo's organisation and catalogue (tests/catalogue/conftest.py's seed), the
    clients above, JG-T001, the upstream and the gateway: once for the module."""
    seeded(module_settings, "catalogue-demo", _demo_state)
    clock = FrozenClock(MONDAY)
    services = open_services(dataclasses.replace(
        module_settings, catalogue_unsigned_item_clients=("czt-old",)), clock=clock)
    services.audit = AuditLog(services.engine, keys=services.keys,
                              writer_id="encrypted-items", clock=lambda: clock().timestamp())
    sock = free_socket()
    server = await asyncio.start_server(_answer, sock=sock)
    apply_state(services, {
        "systems": [{"code": "vehicles", "name": "公务用车", "department": "jgswj",
                     "upstream": f"http://127.0.0.1:{sock.getsockname()[1]}"}],
        "clients": [{"client_id": cid, "name": cid, "department": "czt",
                     "grant_types": ["client_credentials"], "scope": "proxy",
                     "jwks": {"keys": [jwk]}}
                    for cid, jwk in {**ODD_KEYS, "czt-x25519": _public(X25519),
                                     "czt-old": _public(OLD_HELPER),
                                     "czt-webcrypto": {**_public(WEB_CRYPTO), "key_ops": [],
                                                       "ext": True}}.items()],
        "catalogue": [DRIVERS_RESOURCE, REFS_RESOURCE]})
    built = parts(services, proxy_config=ProxyConfig(rate=10_000, burst=10_000,
                                                     read_timeout=2, connect_timeout=2))
    async with Served(create_app(built), limits=HeadLimits.from_settings(services.settings)
                      ) as gw, httpx.AsyncClient(timeout=10) as http:
        yield Gate(services, gw.port, http)
    await built.aclose()
    server.close()
    await services.audit.close()
    services.close()


async def test_an_encrypted_item_names_its_item_resource_and_consumer(gate: Gate) -> None:
    """The JWE's protected header (the AAD, and ``apu``/``apv`` enter the ECDH-ES key
    derivation) says what it holds and for whom: moved to another item, record's item
    or consumer, ``open_item`` refuses it; in place it opens to the value. Before, the
    header named only the recipient key, and a ciphertext moved from ``driver_phone`` to
    any other field opened as that field's value."""
    r = await gate.get("finance-system")
    assert r.status_code == 200, r.text
    key = ECKey.import_key(finance_private_key())
    first, second = (rec["driver_phone"] for rec in r.json()["items"])
    header = jwe.decrypt_compact(first, key).protected
    assert header["typ"] == govgate_upstream.ITEM_TYP
    assert json.loads(base64.urlsafe_b64decode(header["apu"] + "==")) == {
        "iss": gate.services.settings.issuer, "resource": "JG-0001", "item": "driver_phone"}
    assert base64.urlsafe_b64decode(header["apv"] + "==") == b"finance-system"
    where = {"resource": "JG-0001", "client_id": "finance-system",
             "issuer": gate.services.settings.issuer, "verifier": await gate.verifier()}
    assert govgate_upstream.open_item(first, key, item="driver_phone", **where) == PHONE
    assert govgate_upstream.open_item(second, key, item="driver_phone",
                                      **where) == "13800138000"
    for moved in ({"item": "driver_name"}, {"item": "driver_phone", "resource": "JG-0002"},
                  {"item": "driver_phone", "client_id": "czt-x25519"},
                  {"item": "driver_phone", "issuer": "https://other.example"}):
        with pytest.raises(govgate_upstream.InvalidItem):
            govgate_upstream.open_item(first, key, **{**where, **moved})
    # ECDH-ES has no sender: anyone with the public key makes a JWE naming any item (TLS
    # says who sent the answer); one that asks to be inflated is refused unread
    header = {k: v for k, v in jwe.decrypt_compact(first, key).protected.items()
              if k != "epk"}
    forged = jwe.encrypt_compact({**header, "zip": "DEF"}, b'"' + b"1" * 100_000 + b'"',
                                 ECKey.import_key(_public(key)))
    with pytest.raises(govgate_upstream.InvalidItem) as refused:
        govgate_upstream.open_item(forged, key, item="driver_phone", **where)
    assert refused.value.reason == "header parameters the gateway never sets: zip"
    # the X25519 key of another czt client: its own JWE, which finance-system's key
    # cannot open, nor its own open as finance-system's
    other = (await gate.get("czt-x25519")).json()["items"][0]["driver_phone"]
    assert govgate_upstream.open_item(other, X25519, item="driver_phone", **{
        **where, "client_id": "czt-x25519",
        "verifier": await gate.verifier("czt-x25519")}) == PHONE
    with pytest.raises(govgate_upstream.InvalidItem):
        govgate_upstream.open_item(other, key, item="driver_phone", **where)
    # a key exported by Web Crypto says key_ops [] (the operation is the private key's):
    # encrypted to, where joserfc alone refused it (502 before)
    r = await gate.get("czt-webcrypto")
    assert r.status_code == 200, r.text
    assert govgate_upstream.open_item(r.json()["items"][0]["driver_phone"], WEB_CRYPTO, **{
        **where, "item": "driver_phone", "client_id": "czt-webcrypto",
        "verifier": await gate.verifier("czt-webcrypto")}) == PHONE


def _reseal(value: str, to: Any, plaintext: bytes, **header: Any) -> str:
    """``value``'s JWE made again by someone holding only the consumer's public key:
    the same protected header (``epk`` aside, ``header`` over it), ``plaintext`` in."""
    opened = {k: v for k, v in jwe.decrypt_compact(value, to).protected.items() if k != "epk"}
    return jwe.encrypt_compact({**opened, **header}, plaintext, ECKey.import_key(_public(to)))


async def test_a_value_is_signed_by_the_gateway_and_an_unsigned_one_is_refused(
        gate: Gate) -> None:
    """Inside the JWE the value is a JWS (``typ`` govgate-item+jwt, the JWE's ``cty``
    JWT) by the gateway's assertion key, which ``open_item`` checks against the key set
    the gateway publishes: a JWE made by anyone else holding the consumer's public key,
    unsigned as every value was before or signed by another key under the gateway's
    ``kid``, is refused. Before, the JWE carried the bare value, and a forged one naming
    the item opened as the gateway's. A client the gateway lists as still on the old
    helper gets the bare value (``cty`` json), which the new helper opens only when told
    to, and the record says so."""
    r = await gate.get("finance-system")
    assert r.status_code == 200, r.text
    key = ECKey.import_key(finance_private_key())
    first = r.json()["items"][0]["driver_phone"]
    opened = jwe.decrypt_compact(first, key)
    assert opened.protected["cty"] == "JWT"
    inner = (opened.plaintext or b"").decode()
    jwks = (await gate.http.get(f"http://127.0.0.1:{gate.port}"
                                f"{govgate_upstream.ASSERTION_JWKS_PATH}")).json()
    signer = jws.extract_compact(inner.encode()).protected
    assert signer["typ"] == govgate_upstream.ITEM_JWT_TYP
    assert signer["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = json.loads(jws.extract_compact(inner.encode()).payload)
    assert claims == {"iss": gate.services.settings.issuer, "aud": "finance-system",
                      "resource": "JG-0001", "item": "driver_phone",
                      "rid": r.headers["x-request-id"], "rec": 0, "n": 2,
                      "row": claims["row"], "v": PHONE}
    where = {"item": "driver_phone", "resource": "JG-0001", "client_id": "finance-system",
             "issuer": gate.services.settings.issuer, "verifier": await gate.verifier()}
    assert govgate_upstream.open_item(first, key, **where) == PHONE
    # made by whoever holds the public key: the bare value, as before; the gateway's
    # claims signed by a key of their own under the gateway's kid; the gateway's JWS
    # with another value put in its payload
    bare = _reseal(first, key, b'"13800000000"', cty="json")
    mallory = ECKey.generate_key("P-256")
    other_key = jws.serialize_compact(
        dict(signer), json.dumps({**claims, "v": "13800000000"}).encode(), mallory)
    head, _, sig = inner.split(".")
    swapped = ".".join([head, base64.urlsafe_b64encode(json.dumps(
        {**claims, "v": "13800000000"}).encode()).rstrip(b"=").decode(), sig])
    for forged, why in ((bare, "not signed by the gateway"),
                        (_reseal(first, key, other_key.encode()), "signature"),
                        (_reseal(first, key, swapped.encode()), "signature")):
        with pytest.raises(govgate_upstream.InvalidItem) as refused:
            govgate_upstream.open_item(forged, key, **where)
        assert why in refused.value.reason
    # an assertion by the same key is no item, nor an item an assertion
    with pytest.raises(govgate_upstream.InvalidAssertion):
        where["verifier"].verify(inner)
    # the old helper's client: the bare value, opened by the new helper only when asked
    r = await gate.get("czt-old")
    old = r.json()["items"][0]["driver_phone"]
    assert jwe.decrypt_compact(old, OLD_HELPER).protected["cty"] == "json"
    assert gate.record(r)["extra"]["encrypted"] == {"items": ["driver_phone"],
                                                    "key": "old-1", "signed": False}
    mine = {**where, "client_id": "czt-old", "verifier": await gate.verifier("czt-old")}
    with pytest.raises(govgate_upstream.InvalidItem):
        govgate_upstream.open_item(old, OLD_HELPER, **mine)
    assert govgate_upstream.open_item(old, OLD_HELPER, **mine, allow_unsigned=True) == PHONE


async def test_values_swapped_within_an_answer_are_refused_at_their_place(gate: Gate) -> None:
    """Each signed value names its answer (the request id), its record's index and the
    record's other values as sent: two records' phones exchanged, a record's clear
    values exchanged with another's, or a phone carried over from another answer are
    refused where the consumer says where it found them; in place each opens. Before,
    swapped values opened, each as the other's."""
    r = await gate.get("finance-system")
    assert r.status_code == 200, r.text
    key = ECKey.import_key(finance_private_key())
    records = r.json()["items"]
    rid = r.headers["x-request-id"]
    where = {"item": "driver_phone", "resource": "JG-0001", "client_id": "finance-system",
             "issuer": gate.services.settings.issuer, "verifier": await gate.verifier()}
    for k, (rec, phone) in enumerate(zip(records, (PHONE, "13800138000"), strict=True)):
        assert govgate_upstream.open_item(rec["driver_phone"], key, **where, request_id=rid,
                                          index=k, record=rec) == phone
    one, two = records
    exchanged = [{**one, "driver_phone": two["driver_phone"]},
                 {**two, "driver_phone": one["driver_phone"]}]
    for k, rec in enumerate(exchanged):
        with pytest.raises(govgate_upstream.InvalidItem) as refused:
            govgate_upstream.open_item(rec["driver_phone"], key, **where, index=k)
        assert "another record of the answer" in refused.value.reason
        with pytest.raises(govgate_upstream.InvalidItem) as refused:
            govgate_upstream.open_item(rec["driver_phone"], key, **where, record=rec)
        assert "another record" in refused.value.reason
    # the clear values moved instead (the phone stays at index 0, beside B's plate)
    moved = {**two, "driver_phone": one["driver_phone"]}
    with pytest.raises(govgate_upstream.InvalidItem):
        govgate_upstream.open_item(moved["driver_phone"], key, **where, index=0, record=moved)
    # a clear value replaced by a JWE (left out of the digest as an encrypted one)
    disguised = {**one, "plate_number": two["driver_phone"]}
    with pytest.raises(govgate_upstream.InvalidItem):
        govgate_upstream.open_item(one["driver_phone"], key, **where, record=disguised)
    # the first record's phone of another answer
    later = (await gate.get("finance-system")).json()["items"][0]["driver_phone"]
    with pytest.raises(govgate_upstream.InvalidItem) as refused:
        govgate_upstream.open_item(later, key, **where, request_id=rid, index=0, record=one)
    assert "another answer" in refused.value.reason


async def test_an_answer_cut_short_is_refused_by_its_signed_count(gate: Gate) -> None:
    """Each signed value names how many records its answer has (``n``): the last record
    dropped, the first one's phone is refused where the consumer gives the count it
    received. Before, every remaining value opened in place. A value signed before the
    count was (no ``n``, by the same key) still opens with a count given."""
    r = await gate.get("finance-system")
    key = ECKey.import_key(finance_private_key())
    records = r.json()["items"]
    assert len(records) == 2
    where = {"item": "driver_phone", "resource": "JG-0001", "client_id": "finance-system",
             "issuer": gate.services.settings.issuer, "verifier": await gate.verifier(),
             "request_id": r.headers["x-request-id"], "index": 0, "record": records[0]}
    assert govgate_upstream.open_item(records[0]["driver_phone"], key, **where,
                                      count=len(records)) == PHONE
    for received in (records[:1], [*records, records[1]]):
        with pytest.raises(govgate_upstream.InvalidItem) as refused:
            govgate_upstream.open_item(records[0]["driver_phone"], key, **where,
                                       count=len(received))
        assert "the answer had 2 records" in refused.value.reason
    # an older gateway's value: the same claims without n, signed by the same key
    inner = (jwe.decrypt_compact(records[0]["driver_phone"], key).plaintext or b"")
    claims = json.loads(jws.extract_compact(inner).payload)
    del claims["n"]
    older = _reseal(records[0]["driver_phone"], key, gate.services.keys.sign_jwt(
        "assertion", claims, headers={"typ": govgate_upstream.ITEM_JWT_TYP}).encode())
    assert govgate_upstream.open_item(older, key, **where, count=1) == PHONE


async def test_a_key_not_for_key_agreement_is_never_encrypted_to(gate: Gate) -> None:
    """A client key marked for signatures (``alg`` ES256, ``key_ops`` verify, ``use``
    sig) is not used for ECDH-ES, and a key no secret can be agreed with is no key: the
    phone is withheld and the record says why, the rest of the grant is answered. Before,
    the ES256 key was encrypted to (one key both signing and agreeing keys), the
    ``verify`` key and the zero point answered 502 with no reason in the record."""
    for client_id in ODD_KEYS:
        r = await gate.get(client_id)
        assert r.status_code == 200, (client_id, r.text)
        records = r.json()["items"]
        assert [set(rec) for rec in records] == [
            {"plate_number", "brand", "driver_name"}] * 2, client_id
        assert PHONE not in r.text and SECRET not in r.text
        record = gate.record(r)
        assert "no encryption key" in record["extra"]["withheld"]["driver_phone"], client_id
        assert "driver_phone" not in record["items"]


async def test_the_record_says_what_went_encrypted_to_which_key_and_masked(
        gate: Gate) -> None:
    """The record of a shaped answer names the items encrypted and the key they went to
    (its ``kid``, or its thumbprint when it has none) and the items masked with their
    masks; no value of any item, clear, masked or encrypted, is in it."""
    r = await gate.get("finance-system")
    record = gate.record(r)
    assert record["extra"]["encrypted"] == {"items": ["driver_phone"],
                                            "key": "finance-system-enc-1", "signed": True}
    assert record["extra"]["masked"] == {"driver_name": "keep_first_char"}
    r = await gate.get("czt-x25519")
    assert gate.record(r)["extra"]["encrypted"] == {
        "items": ["driver_phone"], "key": "x-1", "signed": True}
    text = json.dumps(gate.record(r), ensure_ascii=False)
    for value in (PHONE, SECRET, "李建国", "李**", r.json()["items"][0]["driver_phone"]):
        assert value not in text


async def test_a_masked_phone_hides_the_same_four_digits_in_any_spelling(gate: Gate) -> None:
    """``phone_middle`` hides the 4th to 7th digit of the national number whatever the
    upstream puts around it. Before, it hid four characters: ``+86 139 0771 0021`` went
    out as ``+86 13****71 0021`` (three digits hidden), ``0086 13907710021`` as ``0086
    1****710021`` (with ``139****0021`` of another record, all but two digits),
    ``1 3 9 0 7 7 1 0 0 2 1`` with two hidden; a text with no number kept all but four
    characters."""
    r = await gate.get("finance-system", path="/api/drivers")
    assert r.status_code == 200, r.text
    assert [rec["phone"] for rec in r.json()["items"]] == list(SPELLINGS.values())
    assert "0771" not in r.text and "０７７１" not in r.text and "〇七七一" not in r.text
    record = gate.record(r)
    assert record["extra"]["masked"] == {"name": "keep_first_char", "phone": "phone_middle",
                                         "phones": "phone_middle", "contacts": "keep_last_4"}
    assert "0771" not in json.dumps(record, ensure_ascii=False)


async def test_an_array_under_a_mask_is_masked_element_by_element(gate: Gate) -> None:
    """An array item under ``phone_middle`` has each number masked; an object item under
    a mask that keeps part of a text is hidden whole. Before, each was masked as one
    JSON text: ``["13907710021","13800138000",13912345678]`` went out with four of its
    characters hidden, the first and the third number whole; the object as
    ``*****…00"}``, its keys (the upstream's to fill: a number here) no safer."""
    r = await gate.get("finance-system", path="/api/drivers")
    first = r.json()["items"][0]
    assert first["phones"] == ["139****0021", "138****8000", "139****5678"]
    assert first["contacts"] == "***"
    for number in ("0771", "0013", "1234"):
        assert number not in r.text


async def test_allowed_says_which_encrypted_items_the_proxy_would_withhold(gate: Gate) -> None:
    """``GET /api/v1/catalogue/allowed`` marks an encrypted item the proxy leaves out for
    this client (no usable key), with the reason its records give; a client with a key
    gets no mark. Before, it promised the phone to a client that would never get it."""
    async def phone(client_id: str) -> dict[str, Any]:
        token = access_token(gate.services, sub=None, department="czt", roles=("staff",),
                             client_id=client_id)
        r = await gate.http.get(f"http://127.0.0.1:{gate.port}/api/v1/catalogue/allowed",
                                headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        entry = {a["resource"]: a for a in r.json()["allowed"]}["JG-0001"]
        return {i["name"]: i for i in entry["items"]}["driver_phone"]

    assert await phone("finance-system") == {"name": "driver_phone", "title": "驾驶员手机号",
                                             "mask": None, "encrypt": True}
    marked = await phone("czt-verify")
    assert marked["encrypt"] is True
    assert "no encryption key" in marked["withheld"]


async def test_a_shaper_that_fails_otherwise_is_refused_with_its_reason_recorded(
        gate: Gate) -> None:
    """The key ring's MAC root no longer opens (a database restored beside another
    master key): a pseudonym cannot be made, the answer is 502 ``shaping_refused`` as
    before, and now its record says why (the exception's class, never its message) and
    releases no item. Before, the record had no reason at all."""
    with gate.services.engine.begin() as conn:
        stored = conn.execute(sa.select(sealed_secrets.c.blob).where(
            sealed_secrets.c.name == "mac-root")).scalar_one()
        conn.execute(sealed_secrets.update().where(sealed_secrets.c.name == "mac-root")
                     .values(blob=bytes(stored)[:-1] + bytes([stored[-1] ^ 1])))
    try:
        r = await gate.get("finance-system", path="/api/refs")
        assert r.status_code == 502, r.text
        assert r.json()["type"] == "urn:govgate:error:shaping_refused"
        record = gate.record(r)
        assert record["extra"]["refused"] == "the shaper failed: MasterKeyError"
        assert record["items"] == [] and "450102198305120031" not in json.dumps(record)
    finally:
        with gate.services.engine.begin() as conn:
            conn.execute(sealed_secrets.update().where(sealed_secrets.c.name == "mac-root")
                         .values(blob=bytes(stored)))


async def test_query_values_of_governed_items_stay_out_of_the_record(gate: Gate) -> None:
    """A request on a catalogue resource's route keeps in its record's ``extra.path``
    the names of its query parameters and only the values that are no item's the caller
    may not see: a granted clear item's (``plate_number``), a page count, an ordering
    by names. A guessed phone (encrypted ``driver_phone``, as a search box's word, or
    bare), a withheld ID number and an unknown name's value are ``[redacted]``, whether
    the answer went (200), was refused for the query (400), to another department (403)
    or to the provider's own user, and in forward-auth's record. Before, the record
    kept every value as sent."""
    query = ("driver_phone=13800001234&plate_number=%E6%A1%82A1024&page=2&sort=brand,desc"
             "&driver_id_number=450102199001010012&mobile=13800001234&13800001234")
    redacted = ("driver_phone=[redacted]&plate_number=%E6%A1%82A1024&page=2&sort=brand,desc"
                "&driver_id_number=[redacted]&mobile=[redacted]&[redacted]")
    path = f"/api/vehicles?{query}"
    answers = [await gate.get("finance-system", path="/api/vehicles?driver_phone=13800001234"
                              "&plate_number=%E6%A1%82A1024&page=2"),
               await gate.get("finance-system", path=path),
               await gate.get("finance-system", path="/api/vehicles?q=13800001234&page=1"),
               await gate.get("nn-app", department="nn-jgsw", path=path)]
    provider = access_token(gate.services, sub="zhangsan", department="jgswj")
    answers.append(await gate.http.get(f"http://127.0.0.1:{gate.port}/s/vehicles{path}",
                                       headers={"Authorization": f"Bearer {provider}"}))
    # nginx's forward-auth for the same request (refused: the answer must be shaped)
    token = access_token(gate.services, sub=None, department="czt", roles=("staff",),
                         client_id="finance-system")
    nginx = await gate.http.get(f"http://127.0.0.1:{gate.port}/auth/verify", headers={
        "X-Original-URI": f"/s/vehicles{path}", "X-Original-Method": "GET",
        "Authorization": f"Bearer {token}"})
    assert nginx.status_code == 403, nginx.text
    found = [rec for rec in audit_rows(gate.services, "forward_auth")
             if rec["request_id"] == nginx.headers["x-request-id"]]
    assert [rec["extra"]["path"] for rec in found] == [f"/s/vehicles/api/vehicles?{redacted}"]
    records = [gate.record(r) for r in answers]
    assert [r.status_code for r in answers] == [200, 400, 400, 403, 200]
    assert {rec["resource"] for rec in records} == {"JG-0001"}
    at = "/s/vehicles/api/vehicles?"
    assert [rec["extra"]["path"].removeprefix(at) for rec in records] == [
        "driver_phone=[redacted]&plate_number=%E6%A1%82A1024&page=2",
        redacted, "q=[redacted]&page=1",
        # another department is given no item: its plate number too
        redacted.replace("%E6%A1%82A1024", "[redacted]"),
        # the provider's own user: the phone is governed (encrypted for consumers)
        redacted]
    for rec in records:
        text = json.dumps(rec, ensure_ascii=False)
        assert "13800001234" not in text and "450102199001010012" not in text
