"""Reading SCIM bodies with scim2-models: a resource for a given request context, a
PatchOp applied to a resource; their errors as SCIM errors.

scim2-models (with pydantic, its lark grammar and email-validator: 134 modules, about
14 MiB of a server's resident memory) is imported on the first SCIM request, not at
start: most gateways are never provisioned by SCIM. So callers name the resource
(``"User"``, ``"Group"``) and the request context (a member of scim2-models'
``Context``, e.g. ``"RESOURCE_REPLACEMENT_REQUEST"``) instead of holding its classes."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, overload

from gateway.admin.scim.errors import ScimError

if TYPE_CHECKING:
    from scim2_models import EnterpriseUser, Group, User

    UserModel = User[EnterpriseUser]

Kind = Literal["User", "Group"]
CREATION = "RESOURCE_CREATION_REQUEST"
REPLACEMENT = "RESOURCE_REPLACEMENT_REQUEST"


@functools.cache
def _lib() -> SimpleNamespace:
    from pydantic import ValidationError as PydanticError
    from scim2_models import Context, EnterpriseUser, Group, PatchOp, SCIMException, User

    return SimpleNamespace(PydanticError=PydanticError, SCIMException=SCIMException,
                           Context=Context, PatchOp=PatchOp, EnterpriseUser=EnterpriseUser,
                           models={"User": User[EnterpriseUser], "Group": Group})


def _error(exc: Any) -> ScimError:
    first = exc.errors()[0]
    kind = str(first.get("type", ""))
    scim_type = kind[len("scim_"):] if kind.startswith("scim_") else "invalidValue"
    where = ".".join(str(p) for p in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
    return ScimError(400, detail, scim_type)


@overload
def read(kind: Literal["User"], body: Any, context: str) -> UserModel: ...
@overload
def read(kind: Literal["Group"], body: Any, context: str) -> Group: ...
def read(kind: Kind, body: Any, context: str) -> Any:
    """``body`` as a ``kind`` resource read in the request context named ``context``."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    lib = _lib()
    try:
        return lib.models[kind].model_validate(body, scim_ctx=lib.Context[context])
    except lib.PydanticError as exc:
        raise _error(exc) from None
    except lib.SCIMException as exc:
        raise ScimError(exc.status, str(exc), exc.scim_type or None) from None


def patched(kind: Kind, current: dict[str, Any], body: Any) -> dict[str, Any]:
    """``current`` (a ``kind`` resource as served) with the PatchOp ``body`` applied, as
    a replacement request would carry it."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    lib = _lib()
    model = lib.models[kind]
    state = {k: v for k, v in current.items() if k not in ("meta", "groups")}
    try:
        resource = model.model_validate(state)
        operation = lib.PatchOp[model].model_validate(
            body, scim_ctx=lib.Context.RESOURCE_PATCH_REQUEST)
        operation.patch(resource)
        return resource.model_dump(  # type: ignore[no-any-return]
            scim_ctx=lib.Context.RESOURCE_REPLACEMENT_REQUEST)
    except lib.PydanticError as exc:
        raise _error(exc) from None
    except lib.SCIMException as exc:
        raise ScimError(exc.status, str(exc), exc.scim_type or None) from None


def enterprise(model: UserModel) -> EnterpriseUser | None:
    """The user's enterprise extension, None when the body had none."""
    try:
        return model[_lib().EnterpriseUser]  # type: ignore[no-any-return]
    except (KeyError, TypeError):
        return None
