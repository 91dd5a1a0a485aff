# ruff: noqa: E501
"""Portal texts of security keys and passkeys (WebAuthn): the sign-in's key step, the
passkey sign-in, the required registration and the account page's list, in
Simplified Chinese and English. Keys start with ``pk_``; format ``key: (zh, en)``."""

from __future__ import annotations

PASSKEY_MESSAGES: dict[str, tuple[str, str]] = {
    "pk_title": ("安全密钥和通行密钥", "Security keys and passkeys"),
    "pk_intro": ("安全密钥（如插在电脑上的硬件密钥）或通行密钥（手机、电脑内置的验证器）可在输入密码后代替动态口令完成第二步验证；可发现的通行密钥还可以不输入密码直接登录。", "A security key (such as a USB key) or a passkey (your phone's or computer's built-in authenticator) can take the place of the authenticator code after your password; a discoverable passkey can also sign you in without a password."),
    "pk_unusable": ("此网关目前以数字地址（而不是域名）访问，浏览器不能在这样的地址上登记安全密钥或通行密钥。请继续用身份验证器应用中的动态口令完成第二步验证；如需使用安全密钥，请联系系统管理员。", "This gateway is reached by a numeric address, not a host name, and browsers cannot register a security key or passkey there. Keep using the code from your authenticator app for the second step; if you want to use a security key, ask your system administrator."),
    "pk_unusable_admin": ("安全密钥和通行密钥目前无法登记：网关以数字地址访问，浏览器不接受。请运维人员把以下两项配置设为大家访问网关所用的主机名并重启网关（详见说明文档）：", "Security keys and passkeys cannot be registered now: the gateway is reached by a numeric address, which browsers refuse. The operator sets these two settings to the host name people reach the gateway by and restarts it (see the documentation):"),
    "pk_none": ("尚未登记安全密钥。", "No security key is registered."),
    "pk_caption": ("已登记的安全密钥", "Registered security keys"),
    "pk_name": ("名称", "Name"),
    "pk_created": ("登记时间", "Registered"),
    "pk_last_used": ("最近使用", "Last used"),
    "pk_name_hint": ("给密钥起个名字，便于以后辨认，例如“办公室的硬件密钥”。", "Name the key so you can tell it apart later, for example \u201coffice USB key\u201d."),
    "pk_add": ("登记安全密钥或通行密钥", "Register a security key or passkey"),
    "pk_remove": ("删除", "Remove"),
    "pk_remove_hint": ("删除密钥需要输入当前密码或动态口令。", "Removing a key needs your current password or a current code."),
    "pk_key": ("密钥", "Key"),
    "pk_no_script": ("登记和使用安全密钥需要浏览器运行脚本。", "Security keys need scripts to run in this browser."),
    "pk_unsupported": ("此浏览器不支持安全密钥（WebAuthn）。", "This browser does not support security keys (WebAuthn)."),
    "pk_cancelled": ("未完成：操作被取消或超时，请重试。", "Not done: the key was not used in time or the request was cancelled. Try again."),
    "pk_failed": ("未能验证该密钥，请重试。", "The key could not be verified. Try again."),
    "pk_clone": ("该密钥的签名计数器倒退了，可能已被复制；已拒绝并记录。请联系安全管理员。", "This key's signature counter went back, so it may have been copied; it was refused and recorded. Contact your security administrator."),
    "pk_bad_name": ("名称须为 1 到 64 个字符。", "The name must be 1 to 64 characters."),
    "pk_too_many": ("最多登记 {n} 个密钥。", "At most {n} keys can be registered."),
    "pk_expired": ("页面已过期，请重新登录。", "The page has expired; sign in again."),
    "pk_locked": ("账号已锁定，请稍后再试。", "The account is locked; try again later."),
    "pk_off": ("未启用通行密钥登录。", "Signing in with a passkey is turned off."),
    "pk_bad_request": ("请求格式不正确。", "The request is malformed."),
    # the sign-in
    "pk_verify_title": ("使用安全密钥验证", "Verify with your security key"),
    "pk_verify_intro": ("请插入或触碰您登记的安全密钥，或使用通行密钥。", "Insert or touch your registered security key, or use your passkey."),
    "pk_verify_button": ("使用安全密钥", "Use my security key"),
    "pk_use_totp": ("改用动态口令", "Use an authenticator code instead"),
    "pk_login_button": ("使用通行密钥登录", "Sign in with a passkey"),
    "pk_login_or": ("或", "or"),
    "pk_enrol_title": ("登记安全密钥", "Register a security key"),
    "pk_enrol_intro": ("管理员账号须使用安全密钥或通行密钥登录。请现在登记一个，然后继续。", "Administrator accounts must sign in with a security key or passkey. Register one now to continue."),
    "pk_working": ("请按浏览器提示操作密钥…", "Follow your browser's prompt to use the key…"),
    # the account page's recent sign-ins
    "acct_how_webauthn_verify": ("安全密钥", "Security key"),
    "acct_how_webauthn_login": ("通行密钥", "Passkey"),
    "acct_done_passkey_added": ("安全密钥已登记。", "The security key is registered."),
    "acct_done_passkey_removed": ("安全密钥已删除。", "The security key is removed."),
    # -- hardening (h-harden) --------------------------------------------------------
    "pk_reauth": ("登录已超过 {minutes} 分钟：请退出并重新登录后再登记密钥。", "You signed in more than {minutes} minutes ago: sign out and in again to register a key."),
    # -- the attack of 2026-12-05 on the second factors (h-passkey) -----------------
    "pk_totp_reauth": ("登录已超过 {minutes} 分钟：请退出并重新登录后再设置动态口令。", "You signed in more than {minutes} minutes ago: sign out and in again to set up an authenticator."),
}
