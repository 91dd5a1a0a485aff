import hashlib
import hmac

import pytest
import sqlalchemy as sa

from gateway.demo import DEMO_STATE
from gateway.errors import StateFileError
from gateway.passwords import verify_password
from gateway.statefile import (
    MAX_BYTES,
    SECTIONS,
    StateApplier,
    dump_yaml,
    export_state,
    load_file,
    load_text,
    validate,
)
from gateway.tables import clients, departments, users

KEY = b"test-mac-key"


def demo_doc() -> dict:
    """The demo file's built-in sections (other packages test their own sections)."""
    return {k: v for k, v in load_file(DEMO_STATE).items() if k in SECTIONS}


def _hash(secret: str) -> str:
    return hmac.new(KEY, secret.encode(), hashlib.sha256).hexdigest()


def _verify(secret: str, stored: str) -> bool:
    return hmac.compare_digest(_hash(secret), stored)


@pytest.fixture
def applier(engine: sa.Engine) -> StateApplier:
    return StateApplier(engine, hash_secret=_hash, verify_secret=_verify)


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_demo_file_applies_then_second_apply_changes_nothing(
    applier: StateApplier, engine: sa.Engine
) -> None:
    doc = demo_doc()
    first = applier.apply(doc)
    assert {c.kind for c in first} == {"region", "department", "user", "system", "client"}
    assert all(c.action == "create" for c in first)
    assert applier.apply(demo_doc()) == []


def test_passwords_are_hashed_and_client_secrets_keyed(
    applier: StateApplier, engine: sa.Engine
) -> None:
    applier.apply(demo_doc())
    with engine.connect() as conn:
        pw = conn.execute(
            sa.select(users.c.password_hash).where(users.c.username == "zhang.san")
        ).scalar_one()
        secret = conn.execute(
            sa.select(clients.c.secret_hash).where(clients.c.client_id == "finance-system")
        ).scalar_one()
    assert verify_password(pw, "Demo-Passw0rd-2026") and "Demo-Passw0rd" not in pw
    assert secret == _hash("demo-finance-secret-0123456789abcdef")


def test_update_is_planned_and_applied(applier: StateApplier, engine: sa.Engine) -> None:
    doc = demo_doc()
    applier.apply(doc)
    doc["systems"][0]["upstream"] = "http://127.0.0.1:9999"
    doc["users"][1]["roles"] = ["staff", "data_steward"]
    doc["clients"][0]["secret"] = "a-brand-new-secret-0123456789abcdef"
    changes = [str(c) for c in applier.apply(doc)]
    assert "~ system vehicles (upstream)" in changes
    assert "~ user li.si (roles)" in changes
    assert "~ client finance-system (secret)" in changes
    assert applier.apply(doc) == []


def test_dry_run_writes_nothing(applier: StateApplier, engine: sa.Engine) -> None:
    changes = applier.apply(demo_doc(), dry_run=True)
    assert changes
    assert _count(engine, departments) == 0 and _count(engine, users) == 0


BAD = """\
regions:
  - {code: gx, name: 某省}
departments:
  - {code: jgswj, name: 机关事务管理局, region: gx}
  - {code: jgswj, name: 重复, region: gx}
  - {code: czt, name: 财政厅, region: nowhere, colour: red}
users:
  - {username: a.b, name: 甲, department: ghost, password: "Long-Enough-Passw0rd"}
  - {username: c.d, name: 乙, department: jgswj, roles: [sysadmin, auditor],
     password: "Long-Enough-Passw0rd"}
  - {username: e.f, name: 丙, department: jgswj, password: "weak"}
systems:
  - {code: vehicles, name: 车, department: jgswj, upstream: "ftp://files.example"}
  - {code: assets, name: 资产, department: jgswj, upstream: "not a url"}
clients:
  - {client_id: web, name: 网站, department: jgswj, grant_types: [authorization_code],
     secret: "short"}
"""


def test_every_problem_is_reported_with_its_place_and_nothing_written(
    applier: StateApplier, engine: sa.Engine
) -> None:
    with pytest.raises(StateFileError) as info:
        applier.apply(load_text(BAD))
    problems = "\n".join(info.value.problems)
    expected = [
        "departments[1] (line 5): duplicate code 'jgswj'",
        "departments[2] (line 6): unknown key 'colour'",
        "departments[2] (line 6): unknown region 'nowhere'",
        "users[0] (line 8): unknown department 'ghost'",
        "users[1] (line 9): roles auditor and sysadmin cannot be held by one account",
        "users[2] (line 11): password too short",
        "systems[0] (line 13): upstream: bad URL 'ftp://files.example'",
        "systems[1] (line 14): upstream: bad URL 'not a url'",
        "clients[0] (line 16): secret too weak",
        "clients[0] (line 16): authorization_code needs redirect_uris",
    ]
    for line in expected:
        assert line in problems, line
    assert _count(engine, departments) == 0
    assert _count(engine, users) == 0


def test_unknown_section_and_missing_key() -> None:
    problems = validate(load_text("regoins: []\nregions:\n  - {name: x}\n"))
    assert any("unknown section 'regoins'" in p for p in problems)
    assert any("regions[0] (line 3): missing key 'code'" in p for p in problems)


def test_names_and_scope_that_are_not_text_are_problems_not_crashes(
    applier: StateApplier, engine: sa.Engine
) -> None:
    """A list or mapping as a name passed validation and failed in the database
    (sqlite3.ProgrammingError: a traceback from govgate apply, --dry-run too)."""
    doc = load_text(
        "regions: [{code: gx, name: 5}]\n"
        "departments: [{code: d, name: [财政厅], region: gx}]\n"
        "users: [{username: li.si, name: {first: 四}, department: d}]\n"
        "systems: [{code: s, name: '  ', department: d, upstream: 'http://127.0.0.1:9'}]\n"
        "clients: [{client_id: c, name: 系统, department: d, grant_types: [client_credentials],\n"
        "  secret: 0123456789abcdefghijklmnopqrstuv, scope: [openid]}]\n"
    )
    for dry_run in (True, False):
        with pytest.raises(StateFileError) as info:
            applier.apply(doc, dry_run=dry_run)
        problems = "\n".join(info.value.problems)
        for where in ("regions[0] (line 1)", "departments[0] (line 2)", "users[0] (line 3)",
                      "systems[0] (line 4)"):
            assert f"{where}: name must be a non-empty string" in problems
        assert "clients[0] (line 5): scope must be text" in problems
    assert _count(engine, departments) == 0 and _count(engine, users) == 0


def test_private_key_material_in_client_jwks_is_refused() -> None:
    doc = load_text(
        "regions: [{code: gx, name: x}]\n"
        "departments: [{code: d, name: y, region: gx}]\n"
        "clients: [{client_id: c, name: z, department: d, grant_types: [client_credentials],\n"
        "  jwks: {keys: [{kty: EC, crv: P-256, x: a, y: b, d: secret}]}}]\n"
    )
    assert any("private key material" in p for p in validate(doc))


def test_safe_loader_and_size_limit() -> None:
    with pytest.raises(StateFileError, match="not valid YAML"):
        load_text("regions: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(StateFileError, match="larger than"):
        load_text("#" * (MAX_BYTES + 1))
    with pytest.raises(StateFileError, match="mapping"):
        load_text("- just\n- a list\n")
    with pytest.raises(StateFileError, match="duplicate key"):
        load_text("regions: []\nregions: []\n")


def test_export_has_no_secrets_and_reapplies_cleanly(
    applier: StateApplier, engine: sa.Engine
) -> None:
    applier.apply(demo_doc())
    text = dump_yaml(export_state(engine))
    assert "Demo-Passw0rd" not in text and "demo-finance-secret" not in text
    assert "password" not in text and "secret_hash" not in text
    assert applier.apply(load_text(text)) == []


def test_apply_survives_a_commit_by_another_process_between_validation_and_writes(
        applier: StateApplier, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A running gateway commits audit records all the time; on SQLite a transaction
    that read first could not write after such a commit."""
    import threading

    import gateway.statefile as statefile
    from gateway.storage import create_engine

    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL transactions do not go stale this way")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE elsewhere (n INTEGER)")
    other = create_engine(engine.url.render_as_string(hide_password=False))
    writers: list[threading.Thread] = []

    def commit_elsewhere() -> None:
        with other.begin() as conn:
            conn.exec_driver_sql("INSERT INTO elsewhere VALUES (1)")

    real_validate = statefile.validate

    def validate_then_someone_commits(*args, **kwargs):
        problems = real_validate(*args, **kwargs)
        writer = threading.Thread(target=commit_elsewhere)
        writer.start()
        writer.join(0.5)  # done at once, unless the apply holds the write lock
        writers.append(writer)
        return problems

    monkeypatch.setattr(statefile, "validate", validate_then_someone_commits)
    changes = applier.apply(demo_doc())
    assert changes
    for writer in writers:
        writer.join(15)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM elsewhere").scalar() == 1
    other.dispose()


def test_an_entry_silent_on_authentication_keeps_a_confidential_client_confidential(
    applier: StateApplier, engine: sa.Engine
) -> None:
    """An apply of an existing client's entry with neither ``secret`` nor
    ``token_endpoint_auth_method`` turned a confidential client into a public one
    (``none``: no secret asked at the token endpoint), silently."""
    doc = demo_doc()
    applier.apply(doc)
    entry = next(c for c in doc["clients"] if c["client_id"] == "finance-system")
    entry.pop("secret")
    entry.pop("token_endpoint_auth_method", None)
    entry["name"] = entry["name"] + "（新）"
    changes = [str(c) for c in applier.apply(doc)]
    assert changes == ["~ client finance-system (name)"]
    with engine.connect() as conn:
        method, secret = conn.execute(
            sa.select(clients.c.token_endpoint_auth_method, clients.c.secret_hash)
            .where(clients.c.client_id == "finance-system")).one()
    assert method == "client_secret_basic"
    assert secret == _hash("demo-finance-secret-0123456789abcdef")
    # said outright, a method still changes
    entry["token_endpoint_auth_method"] = "client_secret_post"
    assert [str(c) for c in applier.apply(doc)] == [
        "~ client finance-system (token_endpoint_auth_method)"]
