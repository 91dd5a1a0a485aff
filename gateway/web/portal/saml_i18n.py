# ruff: noqa: E501
"""Portal texts of the SAML identity provider's pages (``key: (zh, en)``, merged into
``gateway.web.portal.i18n.TABLE`` as the catalogue's are): the error page each
refused SAML message gets, and the page that posts a response to an SP."""

from __future__ import annotations

SAML_MESSAGES: dict[str, tuple[str, str]] = {
    "saml_error": ("无法完成 SAML 登录请求", "The SAML sign-in request cannot be completed"),
    "saml_logout_error": ("无法完成 SAML 退出请求", "The SAML sign-out request cannot be completed"),
    "saml_malformed": ("请求格式不正确（不是有效的 SAML 消息），不会跳转。", "The request is malformed (not a valid SAML message): you are not redirected."),
    "saml_unknown_sp": ("发出请求的服务提供者（SP）未在任何系统登记，不会跳转。请联系该系统的管理员登记其 SAML 元数据。", "The service provider (SP) that sent the request is registered for no system: you are not redirected. Ask the system's administrator to register its SAML metadata."),
    "saml_bad_acs": ("请求指定的接收地址（ACS）不在该服务提供者登记的元数据中，不会跳转。", "The assertion consumer service the request names is not in the service provider's registered metadata: you are not redirected."),
    "saml_bad_signature": ("请求的签名缺失或无法验证，不会跳转。", "The request's signature is missing or does not verify: you are not redirected."),
    "saml_stale": ("请求已过期或时间不正确，请回到原系统重新登录。", "The request is too old or its time is wrong: go back to the system and sign in again."),
    "saml_replayed": ("该请求已经处理过，不能重复使用。请回到原系统重新登录。", "This request was answered already and cannot be used again: go back to the system and sign in again."),
    "saml_expired": ("登录请求已失效（超时或已完成），请回到原系统重新登录。", "The sign-in request is no longer valid (it timed out or was completed): go back to the system and sign in again."),
    "saml_bad_encryption_key": ("该系统要求加密断言，但其元数据中的加密证书不可用（已过期、密钥过弱或不是 RSA），不会跳转。请联系该系统的管理员更新其 SAML 元数据。", "The system wants its assertions encrypted but the encryption certificate in its metadata is unusable (expired, a weak key, or not RSA): you are not redirected. Ask the system's administrator to update its SAML metadata."),
    "saml_account_inactive": ("账号已停用，无法登录该系统。", "The account is disabled: it cannot sign in to this system."),
    "saml_post_title": ("正在返回业务系统", "Returning to the system"),
    "saml_post_continue": ("继续", "Continue"),
    "saml_post_noscript": ("浏览器未运行脚本：请点击“继续”返回业务系统。", "Scripts are off in this browser: click Continue to return to the system."),
}
