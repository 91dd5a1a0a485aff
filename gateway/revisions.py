"""The migration scripts' revisions, read from their source without alembic.

Every server checks at start that the database's schema is at this release's heads
(``gateway.storage.check_schema``). Asking alembic would import it (with mako: about
10 MiB of a server's resident memory, for one comparison) and execute every script;
the scripts declare ``revision`` and ``down_revision`` as literals, which is all the
check needs. ``tests/gateway/test_revisions.py`` holds this reading equal to
alembic's own; alembic itself is imported only to change a schema
(``gateway.storage.upgrade``).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"


def _literals(path: Path) -> dict[str, object]:
    """The module-level ``name = <literal>`` assignments of one script."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # not a literal: nothing the revision graph is made of
    return found


def _names(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"not a revision or a sequence of revisions: {value!r}")


@functools.cache
def graph(directory: Path = VERSIONS_DIR) -> dict[str, tuple[str, ...]]:
    """Revision → the revisions it follows (its ``down_revision``), for every script in
    ``directory``. A ``depends_on`` is not followed: alembic's heads (``get_heads``)
    and the version table it leaves after ``upgrade heads`` keep a revision another
    only depends on."""
    out: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.py")):
        declared = _literals(path)
        revision = declared.get("revision")
        if not isinstance(revision, str):
            raise ValueError(f"{path.name}: no literal revision")
        out[revision] = _names(declared.get("down_revision"))
    return out


def known(directory: Path = VERSIONS_DIR) -> frozenset[str]:
    """Every revision this release has a script for."""
    return frozenset(graph(directory))


def heads(directory: Path = VERSIONS_DIR) -> frozenset[str]:
    """The revisions no other follows: the branch heads a current schema is at."""
    revisions = graph(directory)
    followed = {down for downs in revisions.values() for down in downs}
    return frozenset(revisions) - followed
