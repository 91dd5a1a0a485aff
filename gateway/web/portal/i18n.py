# ruff: noqa: E501
"""Portal texts in Simplified Chinese (default) and English, in the table format of
all the gateway's texts (``key: (zh, en)``, see :mod:`gateway.messages`).

The language comes from ``?lang=`` (remembered in a cookie), then the cookie,
then the ``lang`` setting (Chinese). The browser's ``Accept-Language`` is not
consulted: office PCs often run English-locale browsers, and the agency's
working language is Chinese; English is one click away."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from gateway.web.portal.account_i18n import ACCOUNT_MESSAGES
from gateway.web.portal.admin_i18n import ADMIN_MESSAGES
from gateway.web.portal.audit_i18n import AUDIT_MESSAGES
from gateway.web.portal.break_glass_i18n import BREAK_GLASS_MESSAGES
from gateway.web.portal.catalogue_i18n import CATALOGUE_MESSAGES
from gateway.web.portal.delegation_i18n import DELEGATION_MESSAGES
from gateway.web.portal.front_refused_i18n import FRONT_REFUSED_MESSAGES
from gateway.web.portal.names_i18n import NAMES_MESSAGES, code_name, scope_names, subject_name
from gateway.web.portal.passkey_i18n import PASSKEY_MESSAGES
from gateway.web.portal.reason_i18n import REASON_MESSAGES, reading
from gateway.web.portal.saml_i18n import SAML_MESSAGES
from gateway.web.portal.stats_i18n import STATS_MESSAGES
from gateway.web.portal.steward_i18n import STEWARD_MESSAGES

LANG_COOKIE = "gg_lang"

MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("统一身份认证平台", "Unified Sign-On"),
    "login": ("登录", "Sign in"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "submit_login": ("登录", "Sign in"),
    "bad_credentials": ("用户名或密码错误。", "Wrong username or password."),
    "locked": ("账号已锁定，请在 {minutes} 分钟后重试，或请系统管理员解锁。", "The account is locked; try again in {minutes} minutes, or ask a system administrator to unlock it."),
    "csrf": ("页面已过期，请重新提交。", "The page expired; please submit again."),
    "change_title": ("修改密码", "Change password"),
    "change_intro": ("首次登录或密码已重置，请设置新密码。", "This is your first sign-in or your password was reset: choose a new one."),
    "new_password": ("新密码", "New password"),
    "confirm_password": ("确认新密码", "Confirm new password"),
    "mismatch": ("两次输入的密码不一致。", "The two passwords differ."),
    "policy_hint": ("至少 12 位，不得是常见或已泄露的密码，也不得只由单词、姓名、日期、连续或重复的字符组成（几个不相关的词连成的短语最好记）；不得与用户名相同，不得与最近 5 次密码相同。", "At least 12 characters; not a common or breached password, nor only words, names, dates, sequences or repeats (a phrase of a few unrelated words is easiest to remember); not the username; not one of the last 5 passwords."),
    "pw_too_short": ("密码太短：至少 {n} 位。", "The password is too short: at least {n} characters."),
    "pw_blank": ("密码不得全为空白字符。", "The password must not be only spaces."),
    "pw_guessable": ("密码太容易猜到：属于常见或已泄露的密码，或由单词、姓名、日期、连续或重复的字符组成。请使用更长的短语。", "The password is too easy to guess: a common or breached password, or words, names, dates, sequences or repeats. Use a longer phrase."),
    "pw_username": ("密码不得与用户名相同。", "The password must not be the username."),
    "pw_recent": ("该密码近期用过（不得与最近 {n} 次的密码相同）。", "The password was used recently (not one of the last {n})."),
    "throttled": ("登录尝试过于频繁，请在 {seconds} 秒后重试。", "Too many sign-in attempts; try again in {seconds} seconds."),
    "submit_change": ("保存新密码", "Save new password"),
    "totp_title": ("动态口令验证", "One-time code"),
    "totp_intro": ("请输入身份验证器应用中显示的 6 位动态口令。", "Enter the 6-digit code your authenticator app shows."),
    "totp_code": ("动态口令", "Code"),
    "bad_totp": ("动态口令错误或已使用。", "Wrong or already used code."),
    "mfa_locked": ("连续输错动态口令或恢复码的次数过多，验证码已被锁定，不再接受。请联系系统管理员解锁账号；已登记安全密钥的，仍可用安全密钥登录。", "Too many wrong codes in a row: codes and recovery codes are locked and no longer accepted. Ask a system administrator to unlock your account; a registered security key still signs you in."),
    "totp_unreadable": ("您绑定的身份验证器无法校验（保存的密钥已损坏或被更改），请联系系统管理员重新绑定。",
                        "Your authenticator cannot be checked (its stored secret is damaged or was "
                        "altered); ask the system administrator to reset it."),
    "submit_verify": ("验证", "Verify"),
    "enrol_title": ("绑定身份验证器", "Set up an authenticator"),
    "enrol_intro_required": ("管理员账号必须启用双因素认证。请用身份验证器应用（如 FreeOTP、Google Authenticator）扫描二维码，然后输入显示的动态口令。", "Administrator accounts must use two-factor authentication. Scan the QR code with an authenticator app (FreeOTP, Google Authenticator, ...) and enter the code it shows."),
    "enrol_intro": ("用身份验证器应用扫描二维码，然后输入显示的动态口令。", "Scan the QR code with an authenticator app and enter the code it shows."),
    "enrol_secret": ("无法扫码时手动输入密钥：", "Cannot scan? Enter this key by hand:"),
    "submit_enrol": ("绑定", "Set up"),
    "home_title": ("我的应用", "My systems"),
    "welcome": ("{name}，您好", "Hello, {name}"),
    "department": ("所属部门", "Department"),
    # a label's colon and a list's semicolon, as each language writes them
    "colon": ("：", ": "),
    "semicolon": ("；", "; "),
    "roles": ("角色", "Roles"),
    "no_systems": ("暂无可用的系统。", "No systems available."),
    "admin_no_systems": ("管理员账号不使用业务系统（三员分立）；请在管理控制台中工作。", "Admin accounts do not use business systems (separation of duties); work in the admin console."),
    "logout": ("退出登录", "Sign out"),
    "enable_totp": ("启用双因素认证", "Turn on two-factor authentication"),
    "totp_on": ("已启用双因素认证", "Two-factor authentication is on"),
    "signed_out": ("您已安全退出", "You are signed out"),
    "signed_out_detail": ("所有已连接系统的会话均已结束。", "Your sessions in every connected system have ended."),
    "logout_confirm": ("确认退出登录？", "Sign out?"),
    "logout_confirm_detail": ("退出后，所有已连接系统的会话都将结束。", "Signing out ends your sessions in every connected system."),
    "consent_title": ("授权确认", "Consent"),
    "consent_detail": ("{department}的“{client}”请求以您（{person}）的身份登录。", "“{client}” of {department} asks to sign you ({person}) in."),
    "consent_scopes": ("它将获得：", "It will receive:"),
    "consent_remembered": ("同意后本系统记住您的选择，下次不再询问；可在“我的账号”中撤销。", "Your answer is remembered and not asked again; you can withdraw it on your account page."),
    "consent_yes": ("同意", "Allow"),
    "consent_no": ("拒绝", "Deny"),
    "consent_expired": ("授权确认已失效，请从该系统重新登录。", "The consent request has expired; sign in from the system again."),
    "authorize_error": ("无法完成登录请求", "The sign-in request cannot be completed"),
    "logout_error": ("无法完成退出请求", "The sign-out request cannot be completed"),
    "logout_client_mismatch": ("请求中的 client_id 与 id_token_hint 所签发给的客户端不一致，未退出登录，也不会跳转。", "The client_id is not the client the id_token_hint was issued to: you are still signed in, and not redirected."),
    "cas_error": ("无法完成 CAS 登录请求", "The CAS sign-in request cannot be completed"),
    "cas_unknown_service": ("该服务地址未在任何系统登记，不会跳转。请联系该系统的管理员登记其 CAS 服务地址。", "This service URL is registered for no system: you are not redirected. Ask the system's administrator to register its CAS service URL."),
    "error": ("出错了", "Something went wrong"),
    "back_to_login": ("返回登录", "Back to sign-in"),
    "lang_switch": ("English", "中文"),
    "session_expired": ("会话已过期，请重新登录。", "Your session expired; please sign in again."),
    "err_title_403": ("无权访问", "Access denied"),
    "err_detail_403": ("您没有访问该地址的权限。", "You may not open this address."),
    "err_title_404": ("页面不存在", "Not found"),
    "err_detail_404": ("没有找到该地址对应的页面或系统。", "No page or system answers at this address."),
    "err_governed": ("该数据属于共享目录中的资源 {resource}，可以为本部门申请使用。", "This data is the catalogue resource {resource}; your department may apply for it."),
    "err_apply": ("申请使用", "Apply for access"),
    "err_not_delegated": ("您正在代理同事办理（委托），这项委托不允许在这个系统代理（不包括这个系统，或已撤销、已到期），因此拒绝了访问。停止代理后，即以您本人的身份打开。", "You are acting for a colleague (a delegation), and the delegation does not let you act on this system (it does not cover it, or was revoked or has ended), so it refused. Stop acting to open it as yourself."),
    "err_stop_acting": ("查看委托或停止代理", "See the delegation, or stop acting"),
    "err_request_id": ("请求编号（联系管理员时请提供）：", "Request id (quote it when you contact an administrator):"),
    "err_home": ("返回首页", "Home"),
    "role_staff": ("工作人员", "staff"),
    "role_data_steward": ("数据管理员", "data steward"),
    "role_sysadmin": ("系统管理员", "system administrator"),
    "role_secadmin": ("安全管理员", "security administrator"),
    "role_auditor": ("审计管理员", "auditor"),
    # -- directory sign-in (gateway.directory) --
    "directory_password_change": ("目录（Active Directory）要求先更改您的口令（已过期，或须在下次登录时更改）：请先在 Windows 上更改（Ctrl+Alt+Del → 更改密码），再登录。", "The directory (Active Directory) requires you to change your password first (it expired, or must be changed at next sign-in): change it at Windows (Ctrl+Alt+Del, Change a password), then sign in."),
    "directory_ad_disabled": ("您在目录（Active Directory）中的账号已停用，无法登录；请联系本单位的 Windows 账号管理员。", "Your account is disabled in the directory (Active Directory), so you cannot sign in; contact your agency's Windows account administrator."),
    "directory_ad_expired": ("您在目录（Active Directory）中的账号已过期，无法登录；请联系本单位的 Windows 账号管理员延长有效期。", "Your account has expired in the directory (Active Directory), so you cannot sign in; ask your agency's Windows account administrator to extend it."),
    "directory_ad_locked": ("您在目录（Active Directory）中的账号已被锁定（多次输错口令）；请等待锁定结束或联系本单位的 Windows 账号管理员解锁，再登录。", "Your account is locked out in the directory (Active Directory: too many wrong passwords); wait for the lockout to end or ask your agency's Windows account administrator to unlock it, then sign in."),
    "directory_refused": ("目录（Active Directory）拒绝了您的账号；请联系本单位的 Windows 账号管理员。", "The directory (Active Directory) refused your account; contact your agency's Windows account administrator."),
    "directory_down": ("目录服务暂不可用，无法验证口令；请稍后重试。", "The directory is unavailable, so the password cannot be checked; please try again later."),
}


LANGS = ("zh", "en")

# the portal's one table: the sign-in pages' texts, the catalogue pages', the steward's,
# the account page's, the auditor console's, the real-use pages', the admin consoles'
# and the SAML pages'
TABLE: dict[str, tuple[str, str]] = {**MESSAGES, **CATALOGUE_MESSAGES, **STEWARD_MESSAGES,
                                     **ACCOUNT_MESSAGES, **AUDIT_MESSAGES, **STATS_MESSAGES,
                                     **ADMIN_MESSAGES, **SAML_MESSAGES,
                                     **BREAK_GLASS_MESSAGES, **DELEGATION_MESSAGES,
                                     **PASSKEY_MESSAGES, **REASON_MESSAGES, **NAMES_MESSAGES,
                                     **FRONT_REFUSED_MESSAGES}


def pick_lang(query_lang: str | None, cookie_lang: str | None, default: str = "zh") -> str:
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGS:
            return str(candidate)
    return default if default in LANGS else "zh"


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **kwargs: Any) -> str:
        entry = TABLE.get(key)
        if entry is None:
            return key
        text = entry[1] if self.lang == "en" else entry[0]
        return text.format(**kwargs) if kwargs else text

    def knows(self, key: str) -> bool:
        return key in TABLE

    def value(self, prefix: str, value: str, default: str | None = None) -> str:
        """An enumerated value in the page's language (``prefix + value`` is its key);
        one the table does not know is data, shown as it is (or as ``default``)."""
        key = prefix + value
        return self(key) if self.knows(key) else (value if default is None else default)

    def reason(self, reason: str | None, event_type: str | None = None) -> str | Markup | None:
        """An audit record's stored reason read in the page's language, or None where
        the page shows it as stored (``gateway.web.portal.reason_i18n``)."""
        return reading(reason, event_type, self.lang, self, self.knows)

    def scopes(self, scope: str | None) -> list[tuple[str, str | None]]:
        """Each scope of ``scope`` with its name in the page's language."""
        return scope_names(scope or "", self, self.knows)

    def code_name(self, prefix: str, code: str) -> str | None:
        """A grant type's (``nm_gt_``) or an authentication method's (``nm_auth_``)
        name in the page's language, None when the table does not know it."""
        return code_name(prefix, code, self, self.knows)

    def subject(self, subject: str, names: Mapping[str, str] | None = None) -> str | None:
        """A policy subject's kind and name (``role:staff`` → 角色 工作人员)."""
        return subject_name(subject, names or {}, self, self.knows)
