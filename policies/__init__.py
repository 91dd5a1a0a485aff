"""policies: the casbin model (RBAC with departments as domains, allow and deny,
deny wins), policy lines in the database, decisions with their reason from an
index (not a scan), and hot reload across processes.

    model.conf     the model, casbin syntax: the reference semantics
    engine.py      PolicyLine, Query, Decision, PolicyIndex, PolicyEngine (pure); deny
                   lines match every spelling of their path (catalogue.routes' reading)
    adapter.py     lines and the version counter in the database; casbin adapter
    reload.py      PolicyWatcher: polls the version, swaps the index (< 1 s)
    service.py     Policies: one database's lines, index, reload and audited changes
    statefile.py   the state file's ``policies:`` section
    tables.py      policy_lines, policy_version
"""

from policies.engine import (
    ALLOW,
    DENY,
    Decision,
    PolicyEngine,
    PolicyIndex,
    PolicyLine,
    Query,
    line_problems,
    make_line,
    subjects_for,
)
from policies.service import Policies

__all__ = [
    "ALLOW",
    "DENY",
    "Decision",
    "Policies",
    "PolicyEngine",
    "PolicyIndex",
    "PolicyLine",
    "Query",
    "line_problems",
    "make_line",
    "subjects_for",
]
