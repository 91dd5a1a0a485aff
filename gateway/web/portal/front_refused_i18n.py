# ruff: noqa: E501
"""The texts of the page a front proxy shows a refused browser (``front_refused``):
``key: (zh, en)``, joined into ``i18n.TABLE``."""

from __future__ import annotations

FRONT_REFUSED_MESSAGES: dict[str, tuple[str, str]] = {
    "fr_title_401": ("需要登录", "Sign-in needed"),
    "fr_detail_401": ("访问该地址需要先登录统一身份认证平台。",
                      "This address needs you to sign in at the unified sign-on first."),
    "fr_sign_in": ("登录", "Sign in"),
    "fr_return_to": ("登录后请重新打开：{url}", "After signing in, open again: {url}"),
    "fr_title_403": ("无权访问", "Access denied"),
    "fr_who": ("您当前的身份：{name}（{user}，{department}）", "You are signed in as {name} ({user}, {department})"),
    "fr_nobody": ("您通过令牌访问，或登录已失效。", "You called with a token, or your sign-in has ended."),
    "fr_why_access_denied": ("访问策略不允许您以当前身份打开该地址。",
                             "No access policy lets you open this address as you are."),
    "fr_why_shaping_required": ("该地址提供的是共享目录中的数据，须经网关代理按您获准的数据项提供，不能在此直接打开。请通过网关的系统入口访问。",
                                "This address serves data of the sharing catalogue, which the gateway's proxy gives you cut to the items you were granted; it cannot be opened here. Open it through the gateway's entry for the system."),
    "fr_why_rate_limited": ("请求过于频繁，请稍后再试。", "Too many requests; try again later."),
    "fr_why_bad_path": ("该地址的写法不被接受（如 ../、//、编码的斜杠）。",
                        "This address is written in a way that is not accepted (../, //, encoded slashes)."),
    "fr_why_not_delegated": ("您正在代理同事办理（委托），这项委托不包括这个系统。",
                             "You are acting for a colleague (a delegation) that does not cover this system."),
    "fr_why_insufficient_scope": ("您的登录授权不包括这个系统。", "Your sign-in's grant does not include this system."),
    "fr_why_other": ("访问被拒绝。", "Access was refused."),
}
