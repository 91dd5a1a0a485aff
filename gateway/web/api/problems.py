"""The one answer of every ``/api/v1`` refusal: RFC 9457 problem details, with the
``WWW-Authenticate`` challenge RFC 6750 asks for on 401 and on a token that lacks a
scope (section 3.1).

Every ``/api/v1`` group (admin, catalogue, account, audit, break-glass, stats,
delegations, steward) answers ``title`` and ``detail`` (and each of
``errors``) in the caller's language, Chinese or English by ``Accept-Language``,
with ``Content-Language`` saying which. A request that names neither gets the
gateway's ``lang`` setting (Chinese by default), as the proxy's and forward-auth's
refusals and the portal already do: the people reading a refusal of the admin API
are an agency's operators, and one gateway answering them in two default languages
by which door they came through would be a surprise. Programs do not read the
words: ``type`` (``urn:govgate:error:CODE``) and ``status`` stay the same in both
languages, as do the other members (``field``, ``request_id``). Keycloak's admin
API does the opposite (its ``errorMessage`` is English, or a message key its own
console translates); govgate's console renders its own messages, so a key alone
would serve no client we know of, and the ``lang`` setting is what an operator who
wants English everywhere already sets.

The groups' handlers answer a refusal with ``problem_json(exc)`` at some fifty places,
many in helpers that never see the request; rather than thread the request through
each, the declared route (``ApiRoute.handle``) sets the caller's language for the
request (``ANSWER_LANG``) and ``problem_json`` without a ``lang`` takes it. Outside an
``/api/v1`` route (the token endpoint, the unavailable answer) it stays unset and the
answer is as before, English without ``Content-Language``. The proxy and forward-auth
answer their titles in the caller's language with ``title_in``."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from starlette.responses import JSONResponse

from gateway.errors import GovgateError, problem_body
from gateway.i18n import render
from gateway.idp.dpop import DPoPRefused
from gateway.idp.scopes import InsufficientScope
from texts import Text, message_of

PROBLEM_JSON = "application/problem+json"
LANGUAGE_TAGS = {"zh": "zh-CN", "en": "en"}

#: the caller's language while an ``/api/v1`` route answers (set by ``ApiRoute``)
ANSWER_LANG: ContextVar[str | None] = ContextVar("govgate_answer_lang", default=None)

#: the Chinese title of each problem ``code`` (its English is the error class's own
#: ``title``, which the English answer keeps word for word); a code missing here is
#: answered with its English title, and tests/admin/test_problem_languages.py fails
TITLES_ZH: dict[str, str] = {
    "error": "内部错误",
    "internal": "内部错误",
    "settings": "配置有误",
    "storage": "存储不可用",
    "master_key_missing": "主密钥缺失",
    "validation": "输入无效",
    "state_file": "状态文件被拒绝",
    "not_found": "未找到",
    "conflict": "冲突",
    "role_conflict": "管理员角色互斥（三员分立）",
    "audit_unavailable": "审计日志不可用",
    "unauthorized": "需要身份认证",
    "forbidden": "无权操作",
    "insufficient_scope": "令牌未获此授权范围",
    "content_too_large": "请求体过大",
    "unsupported_media_type": "不支持的媒体类型",
    "nul_character": "请求中含有 NUL 字符",
    "request_timeout": "请求体传输过慢",
    "body_cut_short": "请求体不完整",
    "directory_unavailable": "目录服务不可用",
    "directory_conflict": "目录同步冲突",
    "saml_unavailable": "SAML 身份提供者不可用",
    "keys_error": "密钥管理错误",
    "invalid_blob": "无法解开加密数据",
    "invalid_signature": "签名校验失败",
    "master_key": "主密钥不可用",
    "key_state": "密钥环状态冲突",
    "unknown_algorithm": "未知算法",
    "unknown_use": "未知的密钥用途",
    "unknown_profile": "未知的密码配置",
    "unknown_key": "未知密钥",
    "corrupt_key": "存储的密钥已损坏",
    "audit_error": "审计错误",
    "audit_record": "审计记录无效",
    "audit_chain_lost": "审计哈希链丢失",
    "audit_archive": "审计归档错误",
    "audit_archive_unreadable": "无法读取审计归档",
    "audit_purge_refused": "拒绝清理",
    "audit_ship": "审计外送错误",
    "catalogue": "共享目录错误",
    "unshapeable_response": "无法裁剪响应",
    # the proxy's and forward-auth's
    "access_denied": "拒绝访问",
    "ambiguous_path": "受管路由的写法有歧义",
    "bad_gateway": "上游系统不可用",
    "bad_path": "路径有歧义或格式错误",
    "forward_auth_peer": "只有前置代理可以请求转发认证",
    "gateway_timeout": "上游系统超时",
    "headers_too_large": "请求头过大",
    "insecure_upstream": "未经验证的 TLS 无法连接上游系统",
    "not_delegated": "未获委托",
    "payload_too_large": "请求体过大",
    "proxy": "代理错误",
    "query_refused": "受管路由不允许此查询参数",
    "rate_limited": "请求过多",
    "shaping_refused": "响应被拒绝",
    "shaping_required": "请通过网关代理调用此资源",
    "unknown_system": "没有这个系统",
    "wrong_audience": "令牌属于另一个系统",
}


def title_in(code: str, english: str, lang: str) -> str:
    """A problem's title in ``lang`` (``english`` under ``en`` or for an unknown code)."""
    return TITLES_ZH.get(code, english) if lang == "zh" else english


def localise(body: dict[str, Any], exc: Exception, lang: str) -> None:
    """``body`` (``problem_body(exc)``) with its words in ``lang``; nothing else changes."""
    code = body["type"].rsplit(":", 1)[-1]
    english_title = body["title"]
    body["title"] = title_in(code, english_title, lang)
    said = message_of(exc) if isinstance(exc, GovgateError) or body["detail"] == str(exc) \
        else body["detail"]
    if isinstance(exc, GovgateError) and not isinstance(said, Text) \
            and exc.description == english_title:
        body["detail"] = body["title"]  # raised without words of its own: its title
    else:
        body["detail"] = render(said, lang)
    if isinstance(body.get("errors"), list):
        body["errors"] = [render(p, lang) if isinstance(p, str) else p
                          for p in body["errors"]]


def problem_json(exc: Exception, lang: str | None = None) -> JSONResponse:
    """``exc`` as problem details; with ``lang`` (or the ``/api/v1`` route's
    ``ANSWER_LANG``), its words in that language."""
    if lang is None:
        lang = ANSWER_LANG.get()
    status, body = problem_body(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="govgate"'} if status == 401 else {}
    if isinstance(exc, DPoPRefused):  # RFC 9449 section 7.1: the DPoP scheme's challenge
        headers["WWW-Authenticate"] = exc.www_authenticate
    if isinstance(exc, InsufficientScope):
        headers["WWW-Authenticate"] = exc.www_authenticate
    if lang is not None:
        localise(body, exc, lang)
        headers["Content-Language"] = LANGUAGE_TAGS[lang]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
