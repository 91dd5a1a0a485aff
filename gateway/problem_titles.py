"""The problems' titles in Chinese, by code: the API (``gateway.web.api.problems``), the
proxy's and forward-auth's refusals answer in the caller's language with them. Kept
below the proxy and the web layer, which both read it."""

from __future__ import annotations

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
    "directory_password_change": "须先在目录中更改口令",
    "directory_refused": "目录拒绝了该账号",
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
