"""Reading SCIM bodies with scim2-models: a resource for a given request context, a
PatchOp applied to a resource; their errors as SCIM errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError as PydanticError
from scim2_models import Context, EnterpriseUser, Group, PatchOp, SCIMException, User

from gateway.admin.scim.errors import ScimError

UserModel = User[EnterpriseUser]
Resource = TypeVar("Resource", UserModel, Group)


def _error(exc: PydanticError) -> ScimError:
    first = exc.errors()[0]
    kind = str(first.get("type", ""))
    scim_type = kind[len("scim_"):] if kind.startswith("scim_") else "invalidValue"
    where = ".".join(str(p) for p in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
    return ScimError(400, detail, scim_type)


def read(model: type[Resource], body: Any, ctx: Context) -> Resource:
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    try:
        return model.model_validate(body, scim_ctx=ctx)
    except PydanticError as exc:
        raise _error(exc) from None
    except SCIMException as exc:
        raise ScimError(exc.status, str(exc), exc.scim_type or None) from None


def patched(model: type[Resource], current: dict[str, Any], body: Any) -> dict[str, Any]:
    """``current`` (a resource as served) with the PatchOp ``body`` applied, as a
    replacement request would carry it."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    state = {k: v for k, v in current.items() if k not in ("meta", "groups")}
    try:
        resource = model.model_validate(state)
        operation = PatchOp[model].model_validate(  # type: ignore[valid-type]
            body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        operation.patch(resource)
        return resource.model_dump(scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
    except PydanticError as exc:
        raise _error(exc) from None
    except SCIMException as exc:
        raise ScimError(exc.status, str(exc), exc.scim_type or None) from None
