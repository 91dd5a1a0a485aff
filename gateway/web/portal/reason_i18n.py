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
    ("its value names item {item}, which this caller is not given in the clear: a request may not select, filter or sort by it", "参数值指向调用方不能明文获得的信息项 {item}：请求不得按该项选择、筛选或排序"),
    ("{method} is never forwarded", "{method} 请求从不转发"),
    # why a credential was not accepted (gateway/idp/authenticator.py, rfc9068.py)
    ("no credential", "没有凭据"),
    ("not a bearer credential", "不是持有者令牌（`Bearer`）凭据"),
    ("user disabled or gone", "用户已停用或不存在"),
    ("client disabled or gone", "接入应用已停用或不存在"),
    ("client disabled", "接入应用已停用"),
    ("user disabled", "用户已停用"),
    ("session revoked", "会话已撤销"),
    ("session user gone", "会话的用户已不存在"),
    ("password change pending", "尚待修改密码"),
    ("no live session (unknown, revoked, timed out or incomplete)", "没有有效会话（未知、已撤销、已超时或未完成登录）"),
    ("audience mismatch", "令牌的受众（`aud`）不符"),
    ("typ is not at+jwt", "令牌类型（`typ`）不是 `at+jwt`"),
    ("signature: {error}", "签名无效：{error}"),
    ("issuer {issuer} is not ours", "签发方 {issuer} 不是本网关"),
    ("expired", "已过期"),
    ("not yet valid", "尚未生效"),
    ("claim {claim} missing", "缺少声明 {claim}"),
    ("acting client disabled or gone", "代为调用的应用已停用或不存在"),
    ("acting client no longer allowed to exchange tokens", "代为调用的应用已不允许换取令牌"),
    ("a token acted for by a delegate serves only userinfo", "受托人代理所得的令牌只能用于读取用户信息"),
    ("a token acted for by a delegate serves only its client", "受托人代理所得的令牌只能由其应用使用"),
    ("malformed act or delegation claim", "`act` 或 `delegation` 声明格式错误"),
    ("a delegated token serves only the proxy", "代为调用的令牌只能用于代理访问"),
    ("act claim is not the token's own client", "`act` 声明不是令牌自己的应用"),
    ("a delegated token is a user's", "代为调用的令牌须是用户的令牌"),
    ("delegator {user} disabled or gone", "委托人 {user} 已停用或不存在"),
    # 委托: a person acting for a colleague (gateway/proxy/acting.py, gateway/idp/oauth2/acting.py)
    ("delegation {id} is not one to {user}", "第 {id} 号委托不是给 {user} 的"),
    ("delegation {id} is {state}", "第 {id} 号委托{state}"),
    ("delegation {id} starts at {at}", "第 {id} 号委托自 {at} 起生效"),
    ("delegation {id} is gone", "第 {id} 号委托已不存在"),
    ("delegation {id} does not name the system {system}", "第 {id} 号委托不含系统 {system}"),
    ("delegation {id} names neither the system {system} nor a role {user} still holds", "第 {id} 号委托既不含系统 {system}，也不含 {user} 仍有的角色"),
    ("{user} is no longer in {department}, where delegation {id} was approved", "{user} 已不在部门 {department}（第 {id} 号委托在该部门批准）"),
    ("ticket issued under a delegation no longer in force: {why}", "票据签发时依据的委托已失效：{why}"),
    ("issued under a delegation no longer in force: {why}", "签发时依据的委托已失效：{why}"),
    ("delegation no longer in force: {why}", "委托已失效：{why}"),
    ("inactive: {why}", "已失效：{why}"),
    ("invalid_token: the user or the delegation is no longer active", "令牌无效：用户或委托已失效"),
    # a system acting for a user (RFC 8693 token exchange, gateway/proxy/delegation.py, rfc8693.py)
    ("user {user}: {why}", "用户 {user}：{why}"),
    ("user {user} of {department}: {why}", "部门 {department} 的用户 {user}：{why}"),
    ("client {client} of {department}: {why}", "部门 {department} 的接入应用 {client}：{why}"),
    ("acting client {client}: {why}", "代为调用的应用 {client}：{why}"),
    ("the delegated token is for {audiences}, not {wanted}", "代为调用的令牌用于 {audiences}，不是 {wanted}"),
    ("subject_token is not valid ({error})", "用户令牌（`subject_token`）无效：{error}"),
    ("subject_token was itself exchanged (act: {act}): delegation is one level only", "用户令牌（`subject_token`）本身是换来的（`act`：{act}）：代为调用只允许一层"),
    ("subject_token is not a user's token", "用户令牌（`subject_token`）不是用户的令牌"),
    ("subject_token was issued to another client", "用户令牌（`subject_token`）签发给了另一应用"),
    ("subject_token was revoked", "用户令牌（`subject_token`）已撤销"),
    ("the subject_token's user is disabled or gone", "用户令牌（`subject_token`）的用户已停用或不存在"),
    ("subject_token expires now", "用户令牌（`subject_token`）即将到期"),
    ("{target} is not a registered system", "{target} 不是已登记的系统"),
    ("an exchanged token carries {target} only, not {scopes}", "换得的令牌只含 {target}，不含 {scopes}"),
    ("the user's token does not hold {target}", "用户令牌不含 {target}"),
    ("the client is not registered for {target}", "该应用未登记 {target}"),
    ("{oauth}: {why}", "{oauth}：{why}"),
    # CAS (gateway/web/cas.py, gateway/idp/cas/store.py)
    ("service URL registered for no system; not redirected", "服务地址不属于任何已登记系统；未跳转"),
    ("gateway=true and no single sign-on session: no ticket", "应用要求不询问用户（`gateway=true`），且没有单点登录会话：未签发票据"),
    ("ticket or service missing", "缺少票据或服务地址"),
    ("not a service ticket (no ST- prefix)", "不是服务票据（没有 `ST-` 前缀）"),
    ("ticket longer than any issued", "票据比签发过的任何票据都长"),
    ("unknown ticket", "未知票据"),
    ("ticket replayed (first used {at})", "票据重复使用（首次使用于 {at}）"),
    ("ticket expired at {at}", "票据已于 {at} 过期"),
    ("ticket issued for {service}, presented for {presented} (ticket used up)", "票据签发给 {service}，却由 {presented} 出示（票据已作废）"),
    ("renew=true and the ticket was issued from single sign-on", "应用要求重新登录（`renew=true`），而票据来自单点登录"),
    ("ticket of {user}: its portal session ended", "{user} 的票据：其门户会话已结束"),
    ("ticket of {user}: account not active", "{user} 的票据：账号未启用"),
    ("proxy tickets are not supported", "不支持代理票据"),
    ("{cas}: {why}", "{cas}：{why}"),
    # SAML (gateway/web/saml.py, gateway/idp/saml/): "{class}: {why}" for a refused message
    ("{saml}: {why}", "{saml}：{why}"),
    ("no SAMLRequest", "没有 `SAMLRequest`"),
    ("the message names no issuer", "报文没有写明发送方（`Issuer`）"),
    ("issuer {sp} is no registered SP", "发送方 {sp} 不是已登记的服务提供方"),
    ("not the SAML message expected here", "不是此处应收到的安全断言报文"),
    ("enveloped signature: {error}", "报文内签名无效：{error}"),
    ("not a valid message: {error}", "报文无效：{error}"),
    ("IssueInstant {value} is not a time", "签发时间（`IssueInstant`）{value} 不是时间"),
    ("IssueInstant {at} outside {seconds} s of {now}", "签发时间（`IssueInstant`）{at} 与当前时间 {now} 相差超过 {seconds} 秒"),
    ("ProtocolBinding {binding}: responses go by HTTP-POST only", "应答方式（`ProtocolBinding`）{binding}：应答只以 `HTTP-POST` 发送"),
    ("ACS {acs} is not in the SP's metadata", "断言接收地址 {acs} 不在服务提供方的元数据中"),
    ("ACS {acs} left the SP's metadata while the user signed in", "用户登录期间，断言接收地址 {acs} 已从服务提供方的元数据中删除"),
    ("the LogoutRequest names no NameID", "退出请求（`LogoutRequest`）没有写明用户标识（`NameID`）"),
    ("a LogoutResponse: govgate sends no front-channel LogoutRequest", "收到退出应答（`LogoutResponse`）：网关不经浏览器发送退出请求"),
    ("encoded message over {n} characters", "编码后的报文超过 {n} 个字符"),
    ("the message is not base64", "报文不是 `Base64` 编码"),
    ("the message is not UTF-8", "报文不是 `UTF-8` 编码"),
    ("the message is not DEFLATE-compressed", "报文不是 `DEFLATE` 压缩"),
    ("the message inflates past {n} bytes", "报文解压后超过 {n} 字节"),
    ("the message is over {n} bytes", "报文超过 {n} 字节"),
    ("query string over {n} bytes", "查询字符串超过 {n} 字节"),
    ("form over {n} bytes", "表单超过 {n} 字节"),
    ("a POST binding message must be a url-encoded form, not {kind}", "以 `POST` 方式发送的报文须为 `URL` 编码的表单，不能是 {kind}"),
    ("too many parameters", "参数过多"),
    ("RelayState over {n} characters", "`RelayState` 超过 {n} 个字符"),
    ("unsigned (no SigAlg and Signature) where a signature is required", "未签名（没有 `SigAlg` 和 `Signature`），而此处要求签名"),
    ("signature algorithm not accepted: {algorithm}", "不接受的签名算法：{algorithm}"),
    ("the query signature does not verify with the SP's certificates", "查询字符串的签名用服务提供方的证书验证不通过"),
    ("request {request} of {sp} was answered already", "{sp} 的请求 {request} 已应答过"),
    ("request {request} was answered already", "请求 {request} 已应答过"),
    ("logout request {request} of {sp} was answered already", "{sp} 的退出请求 {request} 已应答过"),
    ("the request was answered meanwhile", "该请求在此期间已应答"),
    ("no waiting request under this handle (unknown, answered or expired)", "没有与此编号对应的待应答请求（未知、已应答或已过期）"),
    ("the SP was unregistered while the user signed in", "用户登录期间，该服务提供方已被注销登记"),
    ("{saml_status}: {why}", "{saml_status}：{why}"),
    ("IsPassive and no usable single sign-on session", "应用要求不询问用户（`IsPassive`），且没有可用的单点登录会话"),
    ("NameID format {format} not offered to this SP", "不向该服务提供方提供用户标识格式 {format}"),
    ("a Subject in the AuthnRequest is not supported", "不支持在登录请求（`AuthnRequest`）中指定用户（`Subject`）"),
    ("RequestedAuthnContext {comparison} {classes}: the sign-in is {have}", "要求的认证方式（`RequestedAuthnContext`）{comparison} {classes}：本次登录为 {have}"),
    ("SP-initiated logout: no live session", "服务提供方发起的退出登录：没有有效会话"),
    # single logout notices (gateway/idp/cas/slo.py, gateway/idp/saml/slo.py)
    ("the SP is no longer registered", "该服务提供方已不再登记"),
    ("no SOAP SingleLogoutService in the SP's metadata", "服务提供方的元数据中没有 `SOAP` 单点退出地址"),
    ("the SP's LogoutResponse is not Success", "服务提供方的退出应答不是成功（`Success`）"),
    ("HTTP {http_status}", "对方应答 `HTTP` {http_status}"),
    ("{http_error}", "无法送达（{http_error}）"),
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
    "aud_ch_client_api_key": ("更换接入应用的 API 密钥", "client API key replaced"),
    "aud_ch_client_static_credential": ("修改接入应用的固定凭据（/s/）",
                                        "client's fixed credential at /s/ changed"),
    "aud_ch_login_delay_cleared": ("清除登录等待", "sign-in delay cleared"),
    "aud_ch_sessions_revoked": ("结束会话", "sessions ended"),
    "aud_ch_system_created": ("创建系统", "system created"),
    "aud_ch_system_changed": ("修改系统", "system changed"),
    "aud_ch_system_release_changed": ("修改系统的属性发布", "system's attribute release changed"),
    "aud_ch_system_sign_on_changed": ("修改系统的登录方式", "system's sign-on changed"),
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

# a refused SAML message's class (gateway/idp/saml/errors.py) and a delegation's state
# (gateway/delegations.py), as the reasons name them
SAML_REFUSALS: dict[str, str] = {
    "Refused": "报文被拒绝",
    "UnknownSp": "未登记的服务提供方",
    "BadAcs": "断言接收地址不符",
    "BadSignature": "签名无效",
    "Stale": "报文签发时间不符",
    "Replayed": "请求重复提交",
    "Expired": "请求已失效",
}
DELEGATION_STATES: dict[str, str] = {
    "requested": "待审批",
    "approved": "已批准",
    "rejected": "已拒绝",
    "revoked": "已撤销",
    "expired": "已到期",
}
# the protocol errors a reason starts with (RFC 6749 5.2, RFC 8693 2.2.2, CAS 3.0 2.5.3)
_OAUTH_ERRORS = ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                 "unsupported_grant_type", "invalid_scope", "invalid_target", "invalid_token",
                 "access_denied", "server_error")
_CAS_ERRORS = ("INVALID_REQUEST", "INVALID_TICKET_SPEC", "UNAUTHORIZED_SERVICE_PROXY",
               "INVALID_PROXY_CALLBACK", "INVALID_TICKET", "INVALID_SERVICE", "INTERNAL_ERROR")
# a notice that could not be delivered names the transport's exception (httpx)
_HTTP_ERRORS = ("ConnectError", "ConnectTimeout", "ReadError", "ReadTimeout", "WriteError",
                "WriteTimeout", "PoolTimeout", "RemoteProtocolError", "LocalProtocolError",
                "ProxyError", "UnsupportedProtocol", "TooManyRedirects")

_FIELD = re.compile(r"\{([a-z_]+)\}")
_TERM = re.compile(r"`([^`]+)`")  # a protocol's own word inside a Chinese template
_NESTED = ("why", "grant")  # values that may themselves be templates
# templates that are a protocol's code and a nested reason: a reading only when the
# reason is read (else the reading would be the stored text again); a ``{grant}`` is
# always one of the gateway's templates, and a text that is not (``invalid_grant:
# subject_token was revoked``) is no grant
_BARE = frozenset({"{oauth}: {why}", "{cas}: {why}", "{saml_status}: {why}",
                   "inactive: {why}"})
_DEPTH = 5
_LONGEST = 120  # a value typed by a person (a purpose) shown at most this long


# what a value may hold, where the gateway writes it as a number or a code: the open
# ``.+?`` of several values backtracks polynomially on a reason a person typed (an
# application's, up to 2000 characters) that repeats the template's words
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_CODE = r"\S+?"
_VALUE = {"id": _NUMBER, "count": _NUMBER, "seconds": _NUMBER, "wait": _NUMBER,
          "left": _NUMBER, "n": _NUMBER, "http_status": _NUMBER, "status": r"[a-z_]+",
          "resource": _CODE, "department": _CODE, "owner": _CODE,
          "consumer": _CODE, "system": _CODE, "client": _CODE, "date": _CODE,
          "user": _CODE, "target": _CODE,
          "state": "|".join(DELEGATION_STATES), "saml": "|".join(SAML_REFUSALS),
          "oauth": "|".join(_OAUTH_ERRORS), "cas": "|".join(_CAS_ERRORS),
          "http_error": "|".join(_HTTP_ERRORS),
          "saml_status": r"urn:oasis:names:tc:SAML:2\.0:status:[A-Za-z]+"}


def _compile(template: str) -> re.Pattern[str]:
    out, at = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[at:m.start()]))
        out.append(f"(?P<{m.group(1)}>{_VALUE.get(m.group(1), '.+?')})")
        at = m.end()
    out.append(re.escape(template[at:]))
    return re.compile("".join(out), re.S)


_PATTERNS: tuple[tuple[re.Pattern[str], str, bool], ...] = tuple(
    (_compile(en), zh, en in _BARE) for en, zh in REASONS)


# the grants one catalogue decision used, ", "-joined (catalogue.decision): read one by
# one, else the first grant's purpose would swallow the rest, left in English
_GRANTS_APART = re.compile(r"(?<=\)), (?=grant \d+ \()")


def chinese_reading(reason: str, depth: int = _DEPTH) -> Markup | None:
    """The reason in Chinese when it is one of the gateway's templates, else None;
    HTML, each value as ``<code>`` (codes and people's words keep their letters)."""
    if depth <= 0 or not reason:
        return None
    grants = _GRANTS_APART.split(reason)
    if len(grants) > 1:
        read = [r for r in (chinese_reading(g, depth - 1) for g in grants) if r]
        if len(read) == len(grants):
            return Markup("；").join(read)
    for pattern, zh, bare in _PATTERNS:
        m = pattern.fullmatch(reason)
        if m is None:
            continue
        if any(not any(chinese_reading(p, depth - 1) for p in value.split("; "))
               for name, value in m.groupdict().items()
               if name == "grant" or (bare and name == "why")):
            continue
        values = {name: _value(name, value, depth) for name, value in m.groupdict().items()}
        text = _TERM.sub(r"<code>\1</code>", str(escape(zh)))
        return Markup(text).format(**values)  # noqa: S704 - escaped, values too
    return None


def _code(value: str) -> Markup:
    shown = value if len(value) <= _LONGEST else value[:_LONGEST] + "…"
    return Markup("<code>{}</code>").format(shown)


def _value(name: str, value: str, depth: int) -> Markup:
    if name == "stage":
        return escape(STAGES[value][0]) if value in STAGES else _code(value)
    if name == "state":
        return escape(DELEGATION_STATES[value])
    if name == "saml":
        return escape(SAML_REFUSALS[value])
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
