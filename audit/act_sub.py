"""``extra.act.sub`` of a record: the one acting for the record's user (a 委托 delegate
B acting for A, whose record has ``actor_user`` A; or ``client:...``, a system acting for
the user, RFC 8693), read in the database's own JSON function. Shared by real use
(``audit.use``) and the auditors' user filter (``audit.query``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from audit.tables import records

#: the text every record with an ``act`` holds (the chain's compact JSON encoding): the
#: cheap test first, so only such records pay for reading the JSON
HAS_ACT = '%"act":{"sub":"%'


class act_sub(FunctionElement[str]):  # named as the SQL function it is
    """``extra.act.sub`` of a record's ``extra`` (its JSON text), or NULL."""

    type = sa.String()
    inherit_cache = True
    name = "act_sub"


@compiles(act_sub)
def _act_sub_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.act.sub')"


@compiles(act_sub, "postgresql")
def _act_sub_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(CAST({compiler.process(element.clauses, **kw)} AS jsonb) #>> '{{act,sub}}')"


def acted_by(name: str) -> Any:
    """The records ``name`` made acting for their user (``extra.act.sub`` is ``name``).
    The expression is the one the index ``ix_audit_records_act_sub`` (migration
    ``0032_edges_act_sub_index``: partial, where it is not NULL) is made on, so SQLite
    reads that index; the ``LIKE`` in front stays for a plan that reads the records
    along ``ts`` instead (PostgreSQL's, which expects the page's rows early): only
    records naming an ``act`` pay for their JSON there."""
    return sa.and_(records.c.extra.like(HAS_ACT), act_sub(records.c.extra) == name)
