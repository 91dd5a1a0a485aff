"""Pure shaping: cutting, each mask, JWE only the consumer opens, fail closed."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

from catalogue.errors import ShapeError
from catalogue.model import Item
from catalogue.shaping import (
    Binding,
    apply_mask,
    encryption_key,
    keep_first_char,
    keep_last_4,
    phone_middle,
    shape,
)
from tests.catalogue.conftest import finance_private_key

ITEMS = (
    Item("plate_number", "车牌号", authoritative=True),
    Item("brand", "品牌"),
    Item("driver_name", "驾驶员姓名", mask="keep_first_char"),
    Item("driver_id_number", "身份证号", level=3, mask="keep_last_4"),
    Item("driver_phone", "手机号", level=3, encrypt=True),
    Item("note", "备注", mask="redact"),
    Item("driver_ref", "驾驶员标识", mask="pseudonym"),
    Item("mobile", "手机号(脱敏)", mask="phone_middle"),
)
RECORD = {
    "plate_number": "桂A·G1024", "brand": "红旗 H5", "driver_name": "李建国",
    "driver_id_number": "450102198305120031", "driver_phone": "13907710021",
    "note": "secret note", "driver_ref": "450102198305120031", "mobile": "13907710021",
    "fuel": "汽油", "mileage_km": 48210,
}
BODY = json.dumps({"items": [RECORD, {**RECORD, "driver_name": "王"}], "total": 2,
                   "debug": {"sql": "select *"}}, ensure_ascii=False).encode()
KEY = b"k" * 32


def mac(data: bytes) -> bytes:
    return hmac.new(KEY, data, hashlib.sha256).digest()


def test_masks() -> None:
    assert keep_last_4("450102198305120031") == "*" * 14 + "0031"
    assert keep_last_4("123") == "***"
    assert keep_first_char("李建国") == "李**"
    assert keep_first_char("王") == "*"
    assert phone_middle("13907710021") == "139****0021"
    # the digits are hidden, whatever separates them (before 2026-12-05 the characters:
    # "0771****1234" hid three digits and the dash)
    assert phone_middle("0771-5551234") == "077*-***1234"
    assert apply_mask("redact", "x") == "***"
    assert apply_mask("keep_last_4", None) is None
    assert apply_mask("keep_last_4", 12345678) == "****5678"
    p1 = apply_mask("pseudonym", "450102198305120031", item="driver_ref", mac=mac)
    p2 = apply_mask("pseudonym", "450102198305120031", item="driver_ref", mac=mac)
    p3 = apply_mask("pseudonym", "450102198305120032", item="driver_ref", mac=mac)
    assert p1 == p2 != p3 and p1.startswith("p:") and len(p1) == 34
    other = apply_mask("pseudonym", "450102198305120031", item="driver_ref",
                       mac=lambda d: hmac.new(b"other", d, hashlib.sha256).digest())
    assert other != p1  # another key (another consumer) gives another pseudonym
    with pytest.raises(ShapeError):
        apply_mask("pseudonym", "x")


def test_cut_to_allowed_items_and_envelope_scalars_only() -> None:
    out = shape(BODY, records="items", items=ITEMS, allowed=["plate_number", "brand"],
                content_type="application/json")
    doc = json.loads(out.body)
    assert doc == {"items": [{"plate_number": "桂A·G1024", "brand": "红旗 H5"}] * 2, "total": 2}
    assert out.released == ("plate_number", "brand") and out.records == 2


def test_masks_applied_in_shape() -> None:
    allowed = ["driver_name", "driver_id_number", "note", "driver_ref", "mobile"]
    out = shape(BODY, records="items", items=ITEMS, allowed=allowed, mac=mac)
    first, second = json.loads(out.body)["items"]
    assert first["driver_name"] == "李**" and second["driver_name"] == "*"
    assert first["driver_id_number"] == "**************0031"
    assert first["note"] == "***"
    assert first["mobile"] == "139****0021"
    assert first["driver_ref"].startswith("p:") and "4501" not in first["driver_ref"]
    assert "fuel" not in first and "driver_phone" not in first


def test_items_not_in_the_catalogue_are_never_released() -> None:
    out = shape(BODY, records="items", items=ITEMS, allowed=["fuel", "plate_number"])
    assert json.loads(out.body)["items"][0] == {"plate_number": "桂A·G1024"}
    assert out.released == ("plate_number",)


def test_encrypted_item_opens_only_with_the_consumers_private_key() -> None:
    private = finance_private_key()
    public = {k: v for k, v in private.items() if k != "d"}
    out = shape(BODY, records="items", items=ITEMS, allowed=["plate_number", "driver_phone"],
                recipient_jwks={"keys": [public]})
    token = json.loads(out.body)["items"][0]["driver_phone"]
    assert token.count(".") == 4 and "13907710021" not in out.body.decode()
    opened = jwe.decrypt_compact(token, ECKey.import_key(private))
    assert opened.protected["alg"] == "ECDH-ES+A256KW"
    assert opened.protected["enc"] == "A256GCM"
    assert opened.protected["kid"] == "finance-system-enc-1"
    assert json.loads(opened.plaintext) == "13907710021"
    with pytest.raises(JoseError):
        jwe.decrypt_compact(token, ECKey.generate_key("P-256"))
    assert out.released == ("plate_number", "driver_phone") and out.withheld == {}


def test_a_value_signed_under_gm_opens_with_the_helper_at_its_place_only() -> None:
    """Under the 国密 profile the assertion key signs with SM2SM3: each value's JWS
    (inside the NIST JWE) is checked by ``govgate_upstream`` with tongsuopy, and names
    its record: the second record's phone at the first's place is refused."""
    import govgate_upstream
    from keys import _primitives

    signing = _primitives.generate_private_key("SM2SM3")
    jwk = {**_primitives.public_jwk(signing), "kid": "assertion-x", "alg": "SM2SM3",
           "use": "sig"}

    def sign(claims: dict[str, Any], header: dict[str, Any]) -> str:
        return _primitives.jwt_encode("SM2SM3", signing,
                                      {**header, "alg": "SM2SM3", "kid": "assertion-x"}, claims)

    key = OKPKey.generate_key("X25519")
    body = json.dumps({"items": [{"plate_number": "桂A·G1024", "driver_phone": "13907710021"},
                                 {"plate_number": "桂A·G2048", "driver_phone": "13800138000"}]},
                      ensure_ascii=False).encode()
    out = shape(body, records="items", items=ITEMS, allowed=["plate_number", "driver_phone"],
                recipient_jwks={"keys": [key.as_dict(private=False)]},
                binding=Binding("https://gw.example", "JG-0001", "fin", "rid-1", sign))
    assert out.signed
    records = json.loads(out.body)["items"]
    where = {"item": "driver_phone", "resource": "JG-0001", "client_id": "fin",
             "issuer": "https://gw.example", "request_id": "rid-1",
             "verifier": govgate_upstream.AssertionVerifier(
                 issuer="https://gw.example", audience="fin", jwks={"keys": [jwk]})}
    assert [govgate_upstream.open_item(r["driver_phone"], key, **where, index=k, record=r)
            for k, r in enumerate(records)] == ["13907710021", "13800138000"]
    with pytest.raises(govgate_upstream.InvalidItem):
        govgate_upstream.open_item(records[1]["driver_phone"], key, **where, index=0,
                                   record=records[0])


def test_encrypt_to_x25519_and_masked_then_encrypted() -> None:
    key = OKPKey.generate_key("X25519")
    items = (Item("driver_phone", "手机号", mask="phone_middle", encrypt=True),)
    out = shape(BODY, records="items", items=items, allowed=["driver_phone"],
                recipient_jwks={"keys": [key.as_dict(private=False)]})
    token = json.loads(out.body)["items"][0]["driver_phone"]
    assert json.loads(jwe.decrypt_compact(token, key).plaintext) == "139****0021"


def test_encrypted_item_withheld_without_a_key() -> None:
    signing_only = {"keys": [{**ECKey.generate_key("P-256").as_dict(private=False),
                              "use": "sig"}]}
    for jwks in (None, {"keys": []}, signing_only):
        out = shape(BODY, records="items", items=ITEMS,
                    allowed=["plate_number", "driver_phone"], recipient_jwks=jwks)
        assert "driver_phone" not in json.loads(out.body)["items"][0]
        assert out.released == ("plate_number",)
        assert "no encryption key" in out.withheld["driver_phone"]
    assert encryption_key(signing_only) is None


def test_single_record_and_nested_records() -> None:
    one = shape(json.dumps(RECORD).encode(), records="", items=ITEMS, allowed=["brand"])
    assert json.loads(one.body) == {"brand": "红旗 H5"}
    nested = json.dumps({"data": {"rows": [RECORD], "page": 1}, "ok": True,
                         "remark": True}).encode()
    out = shape(nested, records="data.rows", items=ITEMS, allowed=["brand"])
    # "page" is pagination, "ok" a wrapper's outcome; "remark" neither
    # (catalogue.pagination): dropped, and said
    assert json.loads(out.body) == {"data": {"rows": [{"brand": "红旗 H5"}], "page": 1},
                                    "ok": True}
    assert out.dropped == ("remark",)


@pytest.mark.parametrize(
    ("body", "records", "content_type", "why"),
    [
        (b"<html>nope</html>", "items", "text/html", "not JSON"),
        (b"<html>nope</html>", "items", None, "not valid JSON"),
        (b"\xff\xfe", "items", "application/json", "not valid JSON"),
        (b'{"rows": []}', "items", "application/json", "not at 'items'"),
        (b'{"items": "x"}', "items", "application/json", "neither"),
        (b'{"items": [1, 2]}', "items", "application/json", "not a JSON object"),
        (b'[{"a": 1}, "x"]', "", "application/json", "not a JSON object"),
    ],
)
def test_unshapeable_responses_are_refused(body: bytes, records: str, content_type: str | None,
                                           why: str) -> None:
    with pytest.raises(ShapeError) as info:
        shape(body, records=records, items=ITEMS, allowed=["brand"], content_type=content_type)
    assert why in str(info.value) and info.value.status == 502


def test_every_mask_the_model_accepts_is_applied() -> None:
    """``catalogue.model.MASKS`` is the one list: each name masks something, and no
    mask is applied that the model would refuse."""
    from catalogue.model import MASKS
    from catalogue.shaping import TEXT_MASKS, apply_mask

    assert set(MASKS) == {*TEXT_MASKS, "redact", "pseudonym"}
    for mask in MASKS:
        masked = apply_mask(mask, "13812345678", item="phone", mac=lambda b: b"\x01" * 32)
        assert masked != "13812345678", mask
