from __future__ import annotations

import struct

import pytest
import sqlalchemy as sa

from keys import GM, STANDARD, InvalidBlob, KeyService
from keys.envelope import HEADER_SIZE, parse_header
from keys.tables import data_keys


@pytest.mark.parametrize("profile", [STANDARD, GM], ids=["standard", "gm"])
def test_round_trip_both_profiles(make_service, profile) -> None:
    svc: KeyService = make_service(profile=profile)
    svc.bootstrap()
    for plaintext in (b"", b"x", "张三 身份证".encode() * 100, bytes(range(256)) * 8):
        blob = svc.seal(plaintext, "clients.secret:42")
        assert svc.open(blob, "clients.secret:42") == plaintext
    head = parse_header(blob)
    assert head.version == 1 and head.profile_id == profile.profile_id
    assert svc.seal(b"same", "c") != svc.seal(b"same", "c")  # random nonces


def test_tampering_any_byte_fails(service: KeyService) -> None:
    blob = service.seal(b"the payload", "users.totp_secret:7")
    for i in range(len(blob)):
        for flip in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= flip
            with pytest.raises(InvalidBlob):
                service.open(bytes(bad), "users.totp_secret:7")


def test_context_is_bound(service: KeyService) -> None:
    blob = service.seal(b"secret", "users.totp_secret:7")
    for ctx in ("users.totp_secret:8", "users.totp_secret:7 ", "clients.secret:7", "x"):
        with pytest.raises(InvalidBlob):
            service.open(blob, ctx)
    with pytest.raises(InvalidBlob):
        service.open(blob, "")
    with pytest.raises(ValueError):
        service.seal(b"x", "")
    with pytest.raises(TypeError):
        service.seal("text", "c")  # type: ignore[arg-type]


def test_key_id_swap_fails(service: KeyService) -> None:
    blob = service.seal(b"secret", "c")
    service.rotate_data_key()
    blob2 = service.seal(b"other", "c")
    assert parse_header(blob2).data_key_id != parse_header(blob).data_key_id
    # point each blob at the other's data key
    swapped = blob[:2] + blob2[2:HEADER_SIZE] + blob[HEADER_SIZE:]
    with pytest.raises(InvalidBlob):
        service.open(swapped, "c")
    unknown = blob[:2] + struct.pack(">I", 999) + blob[HEADER_SIZE:]
    with pytest.raises(InvalidBlob, match="unknown data key"):
        service.open(unknown, "c")


@pytest.mark.parametrize("cut", [0, 1, 5, 6, 17, 18, 33])
def test_truncated_blob(service: KeyService, cut: int) -> None:
    blob = service.seal(b"", "c")  # 34 bytes
    with pytest.raises(InvalidBlob):
        service.open(blob[:cut], "c")


@pytest.mark.parametrize("junk", [b"", b"\x00" * 64, b"\x02" + b"\x00" * 60, "str", None, 12])
def test_garbage(service: KeyService, junk) -> None:
    with pytest.raises(InvalidBlob):
        service.open(junk, "c")


def test_data_key_rotation_old_versions_open(service: KeyService, engine: sa.Engine) -> None:
    blobs = []
    for i in range(3):
        blobs.append(service.seal(f"v{i}".encode(), "c"))
        service.rotate_data_key()
    for i, blob in enumerate(blobs):
        assert service.open(blob, "c") == f"v{i}".encode()
    with engine.connect() as conn:
        states = conn.execute(sa.select(data_keys.c.state)).scalars().all()
    assert states.count("active") == 1 and states.count("retired") == 3


def test_profile_switch_keeps_old_blobs(make_service, engine: sa.Engine) -> None:
    std: KeyService = make_service(profile=STANDARD)
    std.bootstrap()
    old = std.seal(b"sealed under AES", "c")
    old_mac = std.mac("client_secret", b"s3cret")
    gm: KeyService = make_service(profile=GM)  # the setting changed; process restarted
    gm.check()
    assert gm.open(old, "c") == b"sealed under AES"
    new = gm.seal(b"sealed under SM4", "c")
    assert parse_header(new).profile_id == GM.profile_id
    gm.check_mac("client_secret", b"s3cret", old_mac)  # old MACs still check
    assert gm.mac("client_secret", b"s3cret") != old_mac  # new ones use HMAC-SM3
    # and back again
    back: KeyService = make_service(profile=STANDARD)
    assert back.open(new, "c") == b"sealed under SM4"
    with engine.connect() as conn:
        profiles = sorted(conn.execute(sa.select(data_keys.c.profile)).scalars())
    assert profiles == ["gm", "standard"]


def test_profile_byte_swap_fails(make_service) -> None:
    svc: KeyService = make_service(profile=STANDARD)
    svc.bootstrap()
    blob = svc.seal(b"x", "c")
    forged = blob[:1] + bytes([GM.profile_id]) + blob[2:]
    with pytest.raises(InvalidBlob):
        svc.open(forged, "c")


def test_mac(service: KeyService) -> None:
    a = service.mac("client_secret", b"data")
    assert a == service.mac("client_secret", b"data") and len(a) == 32
    assert a != service.mac("pseudonym", b"data")
    service.check_mac("client_secret", b"data", a)
    from keys import InvalidSignature

    with pytest.raises(InvalidSignature):
        service.check_mac("client_secret", b"datb", a)
    with pytest.raises(InvalidSignature):
        service.check_mac("pseudonym", b"data", a)
    with pytest.raises(ValueError):
        service.mac("", b"data")


def test_corrupt_data_key_row(service: KeyService, engine: sa.Engine, make_service) -> None:
    from keys import MasterKeyError

    blob = service.seal(b"x", "c")
    with engine.begin() as conn:
        conn.execute(data_keys.update().values(wrapped=b"\x01" + b"\x00" * 40))
    fresh: KeyService = make_service()
    with pytest.raises(MasterKeyError, match=r"data key 1"):
        fresh.check()
    with pytest.raises(InvalidBlob):
        fresh.open(blob, "c")


def test_tables_match_the_migration(engine: sa.Engine) -> None:
    from keys.tables import metadata

    insp = sa.inspect(engine)
    for table in metadata.sorted_tables:
        migrated = {c["name"]: c for c in insp.get_columns(table.name)}
        assert set(migrated) == {c.name for c in table.columns}, table.name
        for col in table.columns:
            assert migrated[col.name]["nullable"] == col.nullable, (table.name, col.name)
        indexes = {i["name"]: i for i in insp.get_indexes(table.name)}
        for index in table.indexes:
            assert indexes[index.name]["unique"], index.name
