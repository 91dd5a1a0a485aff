"""catalogue: the data-sharing catalogue (政务信息资源目录), applications and grants,
and the shaping of responses to the granted data items (最小必要).

Uses keys and audit only through what the gateway hands in (a keyed-hash
function, a ``record(event, detail)`` callable); imports nothing of ``gateway``.

    model.py      resources, items, share types, grants, applications; validation
    decision.py   PURE: may this caller read this resource, which items, until when
    shaping.py    PURE: cut, mask and encrypt JSON records
    routes.py     route templates (/api/vehicles/{plate}) and matching
    workflow.py   申请 → 审核 → 授权 → 使用 → 到期/撤销
    service.py    the catalogue over a database; the snapshot the proxy decides from
    duplicates.py 一数一源: items another department already provides
    search.py, io.py (YAML/CSV), statefile.py (catalogue: and grants:), store.py, tables.py
"""

from catalogue.decision import Caller, CatalogueDecision, decide
from catalogue.errors import (
    CatalogueError,
    InvalidInput,
    NotAllowed,
    ShapeError,
    UnknownObject,
    WorkflowConflict,
)
from catalogue.model import Application, Grant, Item, Resource, Route
from catalogue.service import Catalogue, Snapshot
from catalogue.shaping import Shaped, shape
from catalogue.workflow import Actor, Workflow

__all__ = [
    "Actor",
    "Application",
    "Caller",
    "Catalogue",
    "CatalogueDecision",
    "CatalogueError",
    "Grant",
    "InvalidInput",
    "Item",
    "NotAllowed",
    "Resource",
    "Route",
    "ShapeError",
    "Shaped",
    "Snapshot",
    "UnknownObject",
    "Workflow",
    "WorkflowConflict",
    "decide",
    "shape",
]
