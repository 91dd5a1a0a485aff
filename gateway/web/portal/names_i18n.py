"""Names, in the page's language, for the codes the admin pages show: a client's
scopes (``gateway.idp.scopes``), grant types and token-endpoint authentication
(``gateway.statefile``), and a policy line's subject (``role:staff``, ``user:li.si``,
``dept:czt``, ``client:finance-system``: ``policies.engine.subjects_for``). The code
stays on the page (it is what the state file and the API take); the name goes
beside it. A user's, a department's or a client's name is data, shown as stored."""

from __future__ import annotations

from collections.abc import Callable, Mapping

NAMES_MESSAGES: dict[str, tuple[str, str]] = {
    "nm_scope_openid": ("登录身份", "sign-in identity"),
    "nm_scope_profile": ("姓名等基本资料", "name and profile"),
    "nm_scope_email": ("电子邮箱", "e-mail address"),
    "nm_scope_phone": ("手机号码", "phone number"),
    "nm_scope_offline_access": ("离线访问（刷新令牌）", "offline access (refresh tokens)"),
    "nm_scope_proxy": ("通过网关访问各业务系统", "every system through the gateway"),
    "nm_scope_proxy_system": ("通过网关访问系统 {system}", "system {system} through the gateway"),
    "nm_scope_catalogue:read": ("查阅共享目录", "read the catalogue"),
    "nm_scope_catalogue:write": ("维护共享目录", "maintain the catalogue"),
    "nm_scope_audit:read": ("查阅审计日志", "read the audit log"),
    "nm_scope_account": ("本人账号", "the user's own account"),
    "nm_scope_stats:read": ("查阅实绩", "read real use"),
    "nm_scope_admin": ("管理接口", "the admin API"),
    "nm_scope_scim": ("用户同步开通", "user provisioning (SCIM)"),
    "nm_gt_authorization_code": ("授权码", "authorization code"),
    "nm_gt_refresh_token": ("刷新令牌", "refresh token"),
    "nm_gt_client_credentials": ("应用自身凭证", "client credentials"),
    "nm_auth_client_secret_basic": ("应用密钥（请求头）", "client secret (header)"),
    "nm_auth_client_secret_post": ("应用密钥（表单）", "client secret (form)"),
    "nm_auth_private_key_jwt": ("私钥签名断言", "signed with a private key"),
    "nm_auth_none": ("无密钥（公开应用）", "none (public client)"),
    "nm_scopes_now": ("该应用的范围：", "This client's scopes: "),
    "nm_subject_role": ("角色", "role"),
    "nm_subject_user": ("用户", "user"),
    "nm_subject_dept": ("部门", "department"),
    "nm_subject_client": ("接入应用", "client"),
}

Translate = Callable[..., str]


def scope_names(scope: str, t: Translate, knows: Callable[[str], bool]
                ) -> list[tuple[str, str | None]]:
    """Each scope of a space-separated ``scope`` with its name (None: not the
    gateway's, a relying party's own scope, shown as its code)."""
    out: list[tuple[str, str | None]] = []
    for code in scope.split():
        if code.startswith("proxy:"):
            out.append((code, t("nm_scope_proxy_system", system=code[len("proxy:"):])))
        else:
            out.append((code, t("nm_scope_" + code) if knows("nm_scope_" + code) else None))
    return out


def code_name(prefix: str, code: str, t: Translate, knows: Callable[[str], bool]) -> str | None:
    """A grant type's (``nm_gt_``) or an authentication method's (``nm_auth_``) name."""
    return t(prefix + code) if knows(prefix + code) else None


def subject_name(subject: str, names: Mapping[str, str], t: Translate,
                 knows: Callable[[str], bool]) -> str | None:
    """``role:staff`` → 角色 工作人员; ``user:li.si`` → 用户 李四 (``names``: the stored
    names by subject); None for what is not a subject."""
    kind, sep, code = subject.partition(":")
    if not sep or not knows("nm_subject_" + kind):
        return None
    if kind == "role":
        name = t("role_" + code) if knows("role_" + code) else None
    else:
        name = names.get(subject)
    return t("nm_subject_" + kind) + (" " + name if name else "")
