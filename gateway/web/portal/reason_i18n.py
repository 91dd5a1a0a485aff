# ruff: noqa: E501
"""A Chinese reading of an audit record's ``reason`` where it is one of the gateway's
own templates (the audit console and the admins' activity view).

Records are evidence and stay as written (English, the gateway's words): the pages
show this reading beside them, the stored text a hover or a click away. A reason
that matches no template (free text written by a person, a library's message) has
no reading and is shown as stored. Values inside a template (a department code, a
purpose typed in Chinese, a grant's description) are data and keep their letters; a
value that is itself a template (the grant a catalogue decision names, the list of
why no grant fits) is read in turn.

``REASONS``: (English template, Chinese template), ``{name}`` a value. An
administrative change's reason is its change key (``user_password_changed``):
``CHANGE_MESSAGES`` names each (``aud_ch_<key>``, both languages)."""

from __future__ import annotations

import re
from collections.abc import Callable

from markupsafe import Markup, escape

REASONS: tuple[tuple[str, str], ...] = (
    # sign-in, second factor, sign-out (the portal, the identity provider)
    ("password accepted", "口令正确"),
    ("password accepted; next step {stage}", "口令正确；下一步：{stage}"),
    ("passkey accepted (no password)", "安全密钥通过（免口令）"),
    ("forced change at login", "登录时按要求修改密码"),
    ("at enrolment", "绑定身份验证器时生成"),
    ("at sign-in (required)", "登录时（按要求）"),
    ("an authenticator code instead of a key", "改用身份验证器动态口令，未用安全密钥"),
    ("account locked", "账号已锁定"),
    ("wrong password", "口令错误"),
    ("unknown user", "未知用户"),
    ("unknown user; name locked", "未知用户；该用户名已锁定"),
    ("user {status}", "用户状态：{status}"),
    ("the stored authenticator secret does not open (altered, or sealed under another key)", "保存的身份验证器密钥无法打开（已被改动，或以另一密钥封存）"),
    ("account not active", "账号未启用"),
    ("wrong or reused code", "动态口令错误或已使用"),
    ("too many wrong codes", "动态口令错误次数过多"),
    ("too many failed key assertions", "安全密钥验证失败次数过多"),
    ("{count} failures within {seconds} s", "{seconds} 秒内失败 {count} 次"),
    ("attempt from this address within its delay ({wait} s left)", "该地址在等待期内再次尝试（还剩 {wait} 秒）"),
    ("signed in with a recovery code; {left} left", "使用恢复码登录；还剩 {left} 个"),
    ("portal sign-out", "门户退出登录"),
    ("rp-initiated logout", "应用发起的退出登录"),
    ("cas logout", "中央认证服务退出登录"),
    ("saml logout", "安全断言退出登录"),
    ("SP-initiated logout", "服务提供方发起的退出登录"),
    ("assertion issued", "已签发断言"),
    ("service ticket issued", "已签发服务票据"),
    ("service ticket validated", "服务票据校验通过"),
    ("token revoked", "令牌已撤销"),
    ("malformed: {error}", "令牌格式错误：{error}"),
    ("{method}: wrong client secret", "{method}：应用密钥错误"),
    ("{method}: unknown client", "{method}：未知应用"),
    ("{error}: client authentication failed", "{error}：应用认证失败"),
    ("unknown token", "未知令牌"),
    # the account page
    ("password changed on the account page", "在账号页修改密码"),
    ("signed out from the account page", "在账号页退出登录"),
    ("grant revoked from the account page", "在账号页撤销授权"),
    # the consoles' own reads and refusals
    ("audit records queried (portal)", "查询审计记录（门户）"),
    ("audit record read (portal)", "查看审计记录（门户）"),
    ("audit checkpoints listed (portal)", "查看签名检查点（门户）"),
    ("audit log verified (portal)", "校验审计日志（门户）"),
    ("audit console: the auditor role is required", "审计控制台：须为审计管理员"),
    ("admin activity queried", "查询管理员操作"),
    ("department summary read (portal)", "查看部门实绩汇总（门户）"),
    ("real-use overview read (portal)", "查看实绩总览（门户）"),
    ("real-use figures are for auditors, admins and data stewards", "实绩仅供审计管理员、管理员和数据管理员查看"),
    ("compliance checked (api)", "合规检查（接口）"),
    ("the admin consoles are the three administrators' (三员分立)", "管理控制台仅供三位管理员使用（三员分立）"),
    # policy decisions (policies/engine.py)
    ("allow by default rule: the system belongs to department {department}", "按默认规则放行：该系统属于部门 {department}"),
    ("deny by default rule: no policy line allows it and the system belongs to department {owner}, not {department}", "按默认规则拒绝：没有允许它的策略，且该系统属于部门 {owner}，不属于 {department}"),
    ("allow by policy line {id}: {line}", "按第 {id} 条策略放行"),
    ("deny by policy line {id}: {line}", "按第 {id} 条策略拒绝"),
    # catalogue decisions (catalogue/decision.py, catalogue/model.py)
    ("provider department {department} of {resource}", "{resource} 的提供部门 {department}"),
    ("{resource} is shared unconditionally (无条件共享)", "{resource} 无条件共享"),
    ("{resource} is not shared (不予共享): provider department {department} only", "{resource} 不予共享：仅提供部门 {department} 可用"),
    ("{resource} is conditional (有条件共享): {why}", "{resource} 有条件共享：{why}"),
    ("resource {resource} is {status}", "资源 {resource} 的状态为 {status}"),
    ("no grant for department {department}", "部门 {department} 没有授权"),
    ("grant {id} ({resource} to {consumer}, purpose {purpose})", "授权 {id}（{resource} 授予 {consumer}，用途：{purpose}）"),
    ("{grant} is for client {client}", "{grant} 仅限应用 {client}"),
    ("{grant} expired after {date}", "{grant} 已于 {date} 后到期"),
    ("{grant} was revoked", "{grant} 已撤销"),
    ("{grant} is valid from {date}", "{grant} 自 {date} 起生效"),
    # the proxy's refusals (gateway/proxy)
    ("no system {system}", "没有系统 {system}"),
    ("{resource}: query parameter {parameter} refused: {why}", "{resource}：查询参数 {parameter} 被拒绝：{why}"),
    ("it names item {item}, which this caller is not given in the clear: a request may not select, filter or sort by it", "它指向调用方不能明文获得的信息项 {item}：请求不得按该项选择、筛选或排序"),
    ("{method} is never forwarded", "{method} 请求从不转发"),
    ("delegator {user} disabled or gone", "委托人 {user} 已停用或不存在"),
)

# the sign-in's stages a "next step" names (gateway/web/portal/routes.py next_stage)
STAGES: dict[str, tuple[str, str]] = {
    "change": ("修改密码", "change the password"),
    "mfa": ("动态口令验证", "one-time code"),
    "enrol": ("绑定身份验证器", "set up an authenticator"),
    "webauthn": ("安全密钥验证", "security key"),
    "passkey_enrol": ("注册安全密钥", "register a security key"),
}

# an administrative change's reason is its key (Services.record_admin_change)
CHANGE_MESSAGES: dict[str, tuple[str, str]] = {
    "aud_ch_state_applied": ("应用状态文件", "state file applied"),
    "aud_ch_directory_synced": ("同步目录", "directory synchronised"),
    "aud_ch_directory_sync_failed": ("目录同步失败", "directory synchronisation failed"),
    "aud_ch_region_added": ("添加地区", "region added"),
    "aud_ch_department_added": ("添加部门", "department added"),
    "aud_ch_department_created": ("创建部门", "department created"),
    "aud_ch_department_moved": ("调整部门上级", "department moved"),
    "aud_ch_department_renamed": ("部门改名", "department renamed"),
    "aud_ch_user_added": ("添加用户", "user added"),
    "aud_ch_user_created": ("创建用户", "user created"),
    "aud_ch_user_updated": ("修改用户", "user updated"),
    "aud_ch_user_disabled": ("停用用户", "user disabled"),
    "aud_ch_user_enabled": ("启用用户", "user enabled"),
    "aud_ch_user_unlocked": ("解锁用户", "user unlocked"),
    "aud_ch_user_roles_changed": ("修改用户角色", "user's roles changed"),
    "aud_ch_user_password_changed": ("修改密码", "password changed"),
    "aud_ch_user_password_reset": ("重置密码", "password reset"),
    "aud_ch_user_password_change_required": ("要求修改密码", "password change required"),
    "aud_ch_user_totp_enrolled": ("绑定身份验证器", "authenticator set up"),
    "aud_ch_user_totp_reset": ("重置身份验证器", "authenticator reset"),
    "aud_ch_user_webauthn_removed": ("移除安全密钥", "security key removed"),
    # the system admin's actions on an account or a client (gateway/admin/sysadmin.py)
    "aud_ch_user_disable": ("停用用户", "user disabled"),
    "aud_ch_user_enable": ("启用用户", "user enabled"),
    "aud_ch_user_unlock": ("解锁用户", "user unlocked"),
    "aud_ch_user_reset_password": ("重置密码", "password reset"),
    "aud_ch_user_reset_totp": ("重置身份验证器", "authenticator reset"),
    "aud_ch_client_disable": ("停用接入应用", "client disabled"),
    "aud_ch_client_enable": ("启用接入应用", "client enabled"),
    "aud_ch_client_rotate_secret": ("轮换应用密钥", "client secret rotated"),
    "aud_ch_login_delay_cleared": ("清除登录等待", "sign-in delay cleared"),
    "aud_ch_sessions_revoked": ("结束会话", "sessions ended"),
    "aud_ch_system_created": ("创建系统", "system created"),
    "aud_ch_system_changed": ("修改系统", "system changed"),
    "aud_ch_client_created": ("创建接入应用", "client created"),
    "aud_ch_client_changed": ("修改接入应用", "client changed"),
    "aud_ch_client_disabled": ("停用接入应用", "client disabled"),
    "aud_ch_client_enabled": ("启用接入应用", "client enabled"),
    "aud_ch_client_secret_rotated": ("轮换应用密钥", "client secret rotated"),
    "aud_ch_client_tokens_revoked": ("撤销应用令牌", "client's tokens revoked"),
    "aud_ch_policy_add": ("添加策略", "policy line added"),
    "aud_ch_policy_remove": ("删除策略", "policy line removed"),
    "aud_ch_policy_line_added": ("添加策略", "policy line added"),
    "aud_ch_policy_line_removed": ("删除策略", "policy line removed"),
    "aud_ch_grant_revoked": ("撤销授权", "grant revoked"),
    "aud_ch_key_rotated": ("轮换密钥", "key rotated"),
    "aud_ch_keys_rotated": ("轮换密钥", "keys rotated"),
    "aud_ch_key_state_changed": ("密钥状态变更", "key state changed"),
    "aud_ch_key_destroyed": ("销毁密钥", "key destroyed"),
    "aud_ch_data_key_rotated": ("轮换数据密钥", "data key rotated"),
    "aud_ch_master_key_rotated": ("轮换主密钥", "master key rotated"),
    "aud_ch_delegation_requested": ("申请委托", "delegation requested"),
    "aud_ch_delegation_approved": ("批准委托", "delegation approved"),
    "aud_ch_delegation_refused": ("拒绝委托", "delegation refused"),
    "aud_ch_delegation_tokens_ended": ("结束委托令牌", "delegation's tokens ended"),
    "aud_ch_referral_webhook_secret_shown": ("显示提请通知密钥", "referral webhook secret shown"),
    "aud_ch_scim_user_created": ("开通用户（SCIM）", "user provisioned (SCIM)"),
    "aud_ch_scim_user_updated": ("更新用户（SCIM）", "user updated (SCIM)"),
    "aud_ch_scim_user_deleted": ("注销用户（SCIM）", "user deprovisioned (SCIM)"),
    "aud_ch_scim_group_updated": ("更新角色组（SCIM）", "group updated (SCIM)"),
    "aud_ch_delegation_revoked": ("撤销委托", "delegation revoked"),
    "aud_ch_delegation_expired": ("委托到期", "delegation expired"),
    "aud_ch_delegation_moved": ("委托随人员调动结束", "delegation ended by a move"),
    "aud_ch_delegation_acting": ("代理使用", "acting for the delegator"),
    # a break-glass record's reason is its step (gateway/break_glass/desk.py)
    "aud_ch_break_glass_requested": ("申请紧急授权", "break-glass requested"),
    "aud_ch_break_glass_approved": ("批准紧急授权", "break-glass approved"),
    "aud_ch_break_glass_ended": ("结束紧急授权", "break-glass ended"),
    "aud_ch_break_glass_reviewed": ("复核紧急授权", "break-glass reviewed"),
    "aud_ch_break_glass_queue": ("查看紧急授权待办", "break-glass queue read"),
}

REASON_MESSAGES: dict[str, tuple[str, str]] = {
    **CHANGE_MESSAGES,
    "aud_reason_stored": ("记录原文：", "As recorded: "),
    "aud_reason_hint": ("原因按网关的模板译出；记录本身保存原文（悬停或打开记录可见）。", "Reasons are read from the gateway's templates; the record keeps the text as written (hover, or open the record)."),
}

_FIELD = re.compile(r"\{([a-z_]+)\}")
_NESTED = ("why", "grant")  # values that may themselves be templates
_DEPTH = 3
_LONGEST = 120  # a value typed by a person (a purpose) shown at most this long


# what a value may hold, where the gateway writes it as a number or a code: the open
# ``.+?`` of several values backtracks polynomially on a reason a person typed (an
# application's, up to 2000 characters) that repeats the template's words
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_CODE = r"\S+?"
_VALUE = {"id": _NUMBER, "count": _NUMBER, "seconds": _NUMBER, "wait": _NUMBER,
          "left": _NUMBER, "resource": _CODE, "department": _CODE, "owner": _CODE,
          "consumer": _CODE, "system": _CODE, "client": _CODE, "date": _CODE}


def _compile(template: str) -> re.Pattern[str]:
    out, at = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[at:m.start()]))
        out.append(f"(?P<{m.group(1)}>{_VALUE.get(m.group(1), '.+?')})")
        at = m.end()
    out.append(re.escape(template[at:]))
    return re.compile("".join(out), re.S)


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (_compile(en), zh) for en, zh in REASONS)


def chinese_reading(reason: str, depth: int = _DEPTH) -> Markup | None:
    """The reason in Chinese when it is one of the gateway's templates, else None;
    HTML, each value as ``<code>`` (codes and people's words keep their letters)."""
    if depth <= 0 or not reason:
        return None
    for pattern, zh in _PATTERNS:
        m = pattern.fullmatch(reason)
        if m is None:
            continue
        values = {name: _value(name, value, depth) for name, value in m.groupdict().items()}
        return Markup(escape(zh).format(**values))  # noqa: S704 - escaped, values too
    return None


def _code(value: str) -> Markup:
    shown = value if len(value) <= _LONGEST else value[:_LONGEST] + "…"
    return Markup("<code>{}</code>").format(shown)


def _value(name: str, value: str, depth: int) -> Markup:
    if name == "stage":
        return escape(STAGES[value][0]) if value in STAGES else _code(value)
    if name not in _NESTED:
        return _code(value)
    parts = value.split("; ")
    read = [chinese_reading(p, depth - 1) for p in parts]
    if not any(read):
        return _code(value)
    return Markup("；").join(r or _code(p) for r, p in zip(read, parts, strict=True))


def reading(reason: str | None, event_type: str | None, lang: str,
            t: Callable[[str], str], knows: Callable[[str], bool]) -> str | Markup | None:
    """What the page shows for a stored reason, or None when it shows the reason as
    stored: a change key's name (both languages), a template's Chinese reading on the
    Chinese page (the English page reads the template as written)."""
    if not reason:
        return None
    if event_type in (None, "admin_change", "break_glass") and knows("aud_ch_" + reason):
        return t("aud_ch_" + reason)
    return chinese_reading(reason) if lang == "zh" else None
