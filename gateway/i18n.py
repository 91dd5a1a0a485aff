"""Messages in Simplified Chinese (default for zh_CN) and English."""

from __future__ import annotations

import os
from collections.abc import Mapping

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "init.done": ("已初始化：{home}（数据库 {db}）", "initialised {home} (database {db})"),
    "init.admins": (
        "已创建三员账号（首次登录须修改密码）：",
        "created the three admin accounts (password change required at first login):",
    ),
    "apply.nothing": ("无需变更。", "nothing to change."),
    "apply.dry_run": ("试运行：未写入任何内容。", "dry run: nothing written."),
    "apply.summary": ("已应用 {n} 项变更。", "applied {n} change(s)."),
    "apply.rejected": (
        "状态文件未通过校验，未写入任何内容：",
        "state file rejected, nothing written:",
    ),
    "user.added": ("已添加用户 {username}。", "added user {username}."),
    "user.disabled": ("已停用用户 {username}。", "disabled user {username}."),
    "user.unlocked": ("已解锁用户 {username}。", "unlocked user {username}."),
    "user.reset": (
        "已重置 {username} 的密码（下次登录须修改）。",
        "reset the password of {username} (must change at next login).",
    ),
    "user.temp_password": (
        "临时密码（仅显示一次）：{password}",
        "temporary password (shown once): {password}",
    ),
    "dept.added": ("已添加部门 {code}。", "added department {code}."),
    "error": ("错误：{message}", "error: {message}"),
    "audit.archive_missing": ("审计归档目录不存在：{path}", "{path}: no such audit archive"),
    "audit.archive_unreadable": (
        "无法读取审计归档 {path}：{reason}",
        "{path}: cannot read the audit archive: {reason}",
    ),
    "audit.not_an_archive": (
        "{path} 不是审计归档（其中没有 {files}）",
        "{path}: not an audit archive (it holds none of {files})",
    ),
    "keys.new_file_is_current": (
        "{path} 就是当前的主密钥文件；请指定一个新文件，或省略 --new-file 以原地替换",
        "{path} is the current master key file; name a new file, or leave out --new-file "
        "to replace it in place",
    ),
    "keys.new_file_exists": (
        "{path} 已存在，拒绝覆盖；请指定一个尚不存在的文件",
        "{path} already exists; refusing to overwrite it (name a file that does not exist)",
    ),
    "keys.new_file_no_dir": (
        "目录 {dir} 不存在；请先创建（新主密钥须存放在持久且受保护的位置）",
        "{dir}: no such directory; create it first (the new master key must be kept "
        "somewhere lasting and protected)",
    ),
    "demo.ready": ("govgate 演示环境已启动", "govgate demo is running"),
    "demo.stop": ("按 Ctrl-C 停止。", "press Ctrl-C to stop."),
    "demo.stopped": ("演示环境已停止。", "demo stopped."),
    "serve.listening": ("正在监听 http://{host}:{port}", "listening on http://{host}:{port}"),
    "serve.sqlite_workers": (
        "注意：SQLite 同一时刻只允许一个写入者，多个工作进程的审计写入会相互等待，"
        "吞吐不会增加、尾延迟会变长；多进程请使用 PostgreSQL。",
        "note: SQLite allows one writer at a time, so the workers' audit commits wait for "
        "each other: more workers add no throughput and lengthen tail latency; use "
        "PostgreSQL for several workers."),
}


def cli_lang(environ: Mapping[str, str] | None = None) -> str:
    """zh when the locale asks for Chinese, else en."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def t(key: str, lang: str, **kwargs: object) -> str:
    zh, en = MESSAGES[key]
    return (zh if lang == "zh" else en).format(**kwargs)
