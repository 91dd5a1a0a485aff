"""What the server publishes about itself (RFC 7643 sections 5-7): the User schema
trimmed to what govgate keeps, the enterprise extension's ``department``, the Group
schema, the two resource types and the service provider configuration.

Only attributes govgate stores are published, so a client (and a compliance checker
that fills every published attribute) never sends a value that would be dropped.
``userName`` is ``immutable``: an account is never renamed (sessions, grants and the
audit log name it). ``department`` lists, as ``canonicalValues``, the department codes
the client may use."""

from __future__ import annotations

from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
MAX_RESULTS = 200


def _attr(name: str, *, type_: str = "string", multi: bool = False, required: bool = False,
          mutability: str = "readWrite", returned: str = "default", unique: str = "none",
          description: str = "", sub: list[dict[str, Any]] | None = None,
          canonical: list[str] | None = None, case_exact: bool = False,
          refs: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name, "type": type_, "multiValued": multi, "description": description,
        "required": required, "mutability": mutability, "returned": returned,
    }
    if type_ in ("string", "reference"):
        out["caseExact"] = case_exact
        out["uniqueness"] = unique
    if sub is not None:
        out["subAttributes"] = sub
    if canonical is not None:
        out["canonicalValues"] = canonical
    if refs is not None:
        out["referenceTypes"] = refs
    return out


def _contact(name: str, description: str) -> dict[str, Any]:
    """emails / phoneNumbers: govgate keeps one work value."""
    return _attr(name, type_="complex", multi=True, description=description, sub=[
        _attr("value", description="the value"),
        _attr("type", description="govgate keeps the work value only", canonical=["work"]),
    ])


def _meta(schema_id: str, name: str, description: str, attributes: list[dict[str, Any]],
          base: str) -> dict[str, Any]:
    return {"schemas": [SCHEMA_SCHEMA], "id": schema_id, "name": name,
            "description": description, "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{schema_id}"}}


def schemas(base: str, departments: list[str]) -> list[dict[str, Any]]:
    """The three schemas; ``departments``: the codes this client may use."""
    user = [
        _attr("userName", required=True, mutability="immutable", unique="server",
              description="the sign-in name: 2-64 of lower-case letters, digits, ._-"),
        _attr("displayName", required=True,
              description="the full name (姓名); on input name.formatted, or the family "
                          "and given names, stand in for it"),
        _attr("active", type_="boolean", required=True,
              description="false: the account is disabled (govgate never deletes one)"),
        _attr("password", mutability="writeOnly", returned="never",
              description="must pass the password rule; never returned"),
        _contact("emails", "the work e-mail address"),
        _contact("phoneNumbers", "the work phone number"),
        _attr("groups", type_="complex", multi=True, mutability="readOnly",
              description="the roles the user holds (change them through /Groups)", sub=[
                  _attr("value", mutability="readOnly", description="the role code"),
                  _attr("$ref", type_="reference", mutability="readOnly", refs=["Group"],
                        description="the role's URI"),
                  _attr("display", mutability="readOnly", description="the role's name"),
              ]),
    ]
    enterprise = [
        _attr("department", required=True, description="the department code (部门)",
              canonical=departments),
    ]
    group = [
        _attr("displayName", required=True, mutability="readOnly",
              description="the role's name (roles are a fixed set)"),
        _attr("members", type_="complex", multi=True, description="the users holding the role",
              sub=[
                  _attr("value", mutability="immutable", description="the user's id"),
                  _attr("$ref", type_="reference", mutability="immutable", refs=["User"],
                        description="the user's URI"),
                  _attr("display", mutability="readOnly", description="the user's name"),
              ]),
    ]
    return [
        _meta(USER_SCHEMA, "User", "a govgate user account", user, base),
        _meta(ENTERPRISE_SCHEMA, "EnterpriseUser", "the user's department", enterprise, base),
        _meta(GROUP_SCHEMA, "Group", "a govgate role", group, base),
    ]


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {"schemas": [RESOURCE_TYPE_SCHEMA], "id": "User", "name": "User",
         "endpoint": "/Users", "description": "govgate user accounts",
         "schema": USER_SCHEMA,
         "schemaExtensions": [{"schema": ENTERPRISE_SCHEMA, "required": True}],
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"}},
        {"schemas": [RESOURCE_TYPE_SCHEMA], "id": "Group", "name": "Group",
         "endpoint": "/Groups", "description": "govgate roles (a fixed set)",
         "schema": GROUP_SCHEMA, "schemaExtensions": [],
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"}},
    ]


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "OAuth 2.0 bearer token",
            "description": "an access token of the client_credentials grant with the scope "
                           "scim, from the gateway's token endpoint",
            "specUri": "https://www.rfc-editor.org/info/rfc6750", "primary": True}],
        "meta": {"resourceType": "ServiceProviderConfig",
                 "location": f"{base}/ServiceProviderConfig"},
    }
