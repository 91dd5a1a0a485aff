"""gateway.revisions reads the migration scripts as alembic does (the start-up schema
check relies on it without importing alembic)."""

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import Revision, RevisionMap

from gateway import revisions
from gateway.storage import MIGRATIONS_DIR


def _alembic() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg)


def test_heads_and_revisions_are_alembics() -> None:
    script = _alembic()
    assert revisions.heads() == frozenset(script.get_heads())
    assert revisions.known() == {s.revision for s in script.walk_revisions()}
    assert len(revisions.heads()) > 1  # one branch per package: a real graph, not a line
    # alembic_version.version_num is VARCHAR(32): a longer id passes on SQLite, which
    # does not hold a VARCHAR to its length, and fails every upgrade on PostgreSQL
    assert [r for r in revisions.known() if len(r) > 32] == []


def test_a_merge_and_a_dependency_read_as_alembic_reads_them(tmp_path: Path) -> None:
    scripts = {"a": ("a", None, None), "b": ("b", "a", None), "c": ("c", "a", None),
               "m": ("m", ("b", "c"), None), "x": ("x", None, "m")}
    for name, (rev, down, depends) in scripts.items():
        (tmp_path / f"{name}.py").write_text(
            f"revision = {rev!r}\ndown_revision = {down!r}\ndepends_on = {depends!r}\n"
            "branch_labels = None\n")
    alembic = RevisionMap(lambda: [Revision(rev, down, dependencies=depends)
                                   for rev, down, depends in scripts.values()])
    assert revisions.heads(tmp_path) == set(alembic.heads) == {"m", "x"}
    assert revisions.known(tmp_path) == set(scripts)


def test_a_script_without_a_literal_revision_is_refused(tmp_path: Path) -> None:
    (tmp_path / "odd.py").write_text("revision = make_one()\n")
    with pytest.raises(ValueError, match=r"odd\.py: no literal revision"):
        revisions.graph(tmp_path)
