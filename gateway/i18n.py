"""Messages in Simplified Chinese (default for zh_CN) and English.

Two kinds of entries share :data:`MESSAGES`:

* the CLI's own texts, rendered with :func:`t` (``t("user.added", lang, username=...)``);
* ``lib.*`` entries: the English texts the library layer (``keys``, ``audit``,
  ``catalogue``, ``policies``, ``gateway.org``, the state file, settings and storage)
  puts in its errors, which also reach the HTTP API and the logs in English. The CLI
  recognises them by their English form and shows the Chinese one under a Chinese
  locale (:func:`localize`); their English side must stay word for word what the
  library raises, placeholders standing for the parts that vary. A text no entry
  matches (a database driver's message, an error nobody has added here yet) is shown
  as it is.
"""

from __future__ import annotations

import os
import re
import string
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

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
    "user.delay_cleared": ("已解除来源地址 {address} 的登录延迟。",
                           "cleared the sign-in delay of address {address}."),
    "user.reset": (
        "已重置 {username} 的密码（下次登录须修改）。",
        "reset the password of {username} (must change at next login).",
    ),
    "user.temp_password": (
        "临时密码（仅显示一次）：{password}",
        "temporary password (shown once): {password}",
    ),
    "user.role_added": ("已为用户 {username} 添加角色 {role}。", "{username}: +{role}"),
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
    "audit.first_bad": ("首个异常：{where}：{detail}", "first bad: {where}: {detail}"),
    "audit.also": ("另有：    {where}：{detail}", "also:      {where}: {detail}"),
    "audit.more": ("……另有 {n} 处", "... and {n} more"),
    "audit.until_after_since": ("须晚于 --since", "must be after --since"),
    "audit.archive_no_window": ("--since/--until 不适用于 --archive",
                                "--since/--until do not apply to --archive"),
    "audit.unsigned": ("警告：未校验签名（{detail}）",
                       "warning: signatures not checked ({detail})"),
    "audit.verifying": ("正在校验", "verifying"),
    "audit.next_page": ("下一页：--cursor {cursor}", "next page: --cursor {cursor}"),
    "audit.exported": (
        "已将 {chains} 条哈希链的 {records} 条记录和 {checkpoints} 个检查点导出到 {directory}"
        "（归档 {archive}）",
        "exported {records} records of {chains} chains and {checkpoints} checkpoints to "
        "{directory} (archive {archive})"),
    "audit.nothing_to_purge": ("没有需要清理的记录。", "nothing to purge"),
    "audit.purged_sealed": ("已从 {chains} 条哈希链清理 {records} 条记录；封存记录 {seal}",
                            "purged {records} records from {chains} chains; sealing record "
                            "{seal}"),
    "audit.purged": ("已清理 {records} 条记录", "purged {records} records"),
    "catalogue.warning": ("警告：{detail}", "warning: {detail}"),
    "catalogue.not_utf8": ("{file}：不是 UTF-8 文本", "{file}: not UTF-8 text"),
    "catalogue.nothing": ("无需变更。", "nothing to change"),
    "catalogue.dry_run": ("（试运行：未写入任何内容）", "(dry run: nothing written)"),
    "catalogue.no_duplicates": ("没有发现重复采集。", "no duplicate collection found"),
    "catalogue.no_overdue": ("没有超期的申请。", "no overdue applications"),
    "policy.bad_line": ("策略行无效", "bad policy line"),
    "policy.remove_usage": ("请指定策略行编号，或 SUBJECT DEPARTMENT OBJECT ACTION",
                            "give a line id, or SUBJECT DEPARTMENT OBJECT ACTION"),
    "policy.no_such_line": ("没有这条策略行", "no such policy line"),
    "client.added": ("已添加客户端 {cid}。", "Client {cid} added."),
    "client.secret": ("客户端密钥（只显示这一次，请妥善保存）：{secret}",
                      "Client secret (shown once; store it safely): {secret}"),
    "client.rotated": ("已为 {cid} 生成新密钥；旧密钥立即失效。",
                       "New secret for {cid}; the old one no longer works."),
    "client.disabled": ("已停用客户端 {cid}。", "Client {cid} disabled."),
    "client.enabled": ("已启用客户端 {cid}；停用前签发的令牌仍然无效。",
                       "Client {cid} enabled; tokens issued before it was disabled stay "
                       "invalid."),
    "client.exists": ("客户端 {cid} 已存在", "client {cid} exists"),
    "client.unknown": ("客户端 {cid} 不存在", "unknown client {cid}"),
    "client.jwks_not_json": ("{file}：不是 JSON 文件（{detail}）",
                             "{file}: not a JSON file ({detail})"),
    "session.revoked": ("已结束 {username} 的 {sessions} 个会话和 {families} 组刷新令牌。",
                        "Ended {sessions} sessions and {families} refresh-token families of "
                        "{username}."),
    "keys.header": ("KID|用途|算法|状态|创建时间|启用时间|停用时间|移出 JWKS 时间",
                    "KID|USE|ALG|STATE|CREATED|ACTIVATED|RETIRED|LEAVES JWKS"),
    "keys.rotated_now": ("{use}: {kid} {alg} {state}（立即用于签名）",
                         "{use}: {kid} {alg} {state} (signs from now)"),
    "keys.rotated_at": ("{use}: {kid} {alg} {state}（自 {when} 起用于签名）",
                        "{use}: {kid} {alg} {state} (signs from {when})"),
    "keys.nothing_due": ("没有到期需要处理的密钥。", "nothing due"),
    "keys.confirm_destroy": ("销毁密钥 {kid}？由它签名的令牌将无法再通过验证",
                             "destroy key {kid}? tokens it signed stop verifying"),
    "keys.destroyed": ("{use}: {kid} 已销毁", "{use}: {kid} destroyed"),
    "keys.data_key_rotated": ("已轮换数据密钥。", "data key rotated"),
    "keys.master_one_option": (
        "--new-file、--new-env、--new-pkcs11-key-label 最多只能指定一个",
        "give at most one of --new-file, --new-env, --new-pkcs11-key-label"),
    "keys.master_name_new": (
        "使用 env 或 pkcs11 主密钥时，须指定新密钥：--new-env、--new-pkcs11-key-label "
        "或 --new-file",
        "with the env or pkcs11 provider, name the new key: --new-env, "
        "--new-pkcs11-key-label or --new-file"),
    "keys.master_advice_env": (
        "请随即将配置改为 master_key_provider=env、master_key_env={var}",
        "now set master_key_provider=env and master_key_env={var}"),
    "keys.master_advice_pkcs11": (
        "请随即将配置改为 master_key_provider=pkcs11、pkcs11_key_label={label}",
        "now set master_key_provider=pkcs11 and pkcs11_key_label={label}"),
    "keys.master_advice_file": (
        "请随即将配置改为 master_key_provider=file、master_key_file={path}",
        "now set master_key_provider=file and master_key_file={path}"),
    "keys.master_replaced": ("已替换 {path}；旧主密钥保留为 {old}",
                             "{path} replaced; the old key is kept as {old}"),
    "keys.master_rotated": ("已用新主密钥 {kid} 重新封装 {count} 个数据密钥；{advice}",
                            "re-wrapped {count} data keys under {kid}; {advice}"),
    "demo.ready": ("govgate 演示环境已启动", "govgate demo is running"),
    "demo.gateway": ("网关：", "gateway:"),
    "demo.accounts": ("账号（密码 {password}）：", "accounts (password {password}):"),
    "demo.admin": ("（管理员；首次登录须修改密码）", "(admin; change at first login)"),
    "demo.no_examples": ("演示需要 govgate 源代码中的 examples/ 目录",
                         "the demo needs the examples/ folder of a govgate source checkout"),
    "demo.not_a_demo_home": ("{home} 已存在且不是演示目录；请换一个 --home",
                             "{home} exists and is not a demo directory; choose another --home"),
    "demo.stop": ("按 Ctrl-C 停止。", "press Ctrl-C to stop."),
    "demo.stopped": ("演示环境已停止。", "demo stopped."),
    "serve.listening": ("正在监听 http://{host}:{port}", "listening on http://{host}:{port}"),
    "serve.sqlite_workers": (
        "注意：SQLite 同一时刻只允许一个写入者，多个工作进程的审计写入会相互等待，"
        "吞吐不会增加、尾延迟会变长；多进程请使用 PostgreSQL。",
        "note: SQLite allows one writer at a time, so the workers' audit commits wait for "
        "each other: more workers add no throughput and lengthen tail latency; use "
        "PostgreSQL for several workers."),
    # -- library texts every command may meet (see the module docstring) ---------------
    # a place and what is wrong there; a list of problems
    "lib.where": ("{where}：{problem}", "{where}: {problem}"),
    "lib.at_line": ("{where}（第 {line} 行）", "{where} (line {line})"),
    "lib.row": ("第 {n} 行", "row {n}"),
    # the operating system's reasons (strerror), as Python reports them
    "lib.os.enoent": ("没有这个文件或目录", "No such file or directory"),
    "lib.os.eacces": ("权限不足", "Permission denied"),
    "lib.os.enotdir": ("不是目录", "Not a directory"),
    "lib.os.eisdir": ("是一个目录", "Is a directory"),
    "lib.os.eexist": ("文件已存在", "File exists"),
    "lib.os.enospc": ("磁盘空间不足", "No space left on device"),
    "lib.os.erofs": ("文件系统只读", "Read-only file system"),
    "lib.os.eperm": ("不允许的操作", "Operation not permitted"),
    "lib.os.eio": ("输入/输出错误", "Input/output error"),
    # settings (govgate.toml, GOVGATE_* variables, command-line options)
    "lib.settings.bad_value": ("配置项 {name} 的值 {value} 无效（应为 {kind}）",
                               "setting {name}: bad value {value} (expected {kind})"),
    "lib.settings.not_one_of": ("配置项 {name} 的值 {value} 无效（可选值：{allowed}）",
                                "setting {name}: bad value {value} (one of {allowed})"),
    "lib.settings.port": ("配置项 'port'：{port} 不是有效的 TCP 端口（1-65535）",
                          "setting 'port': {port} is not a TCP port (1-65535)"),
    "lib.settings.retention": ("配置项 'audit_retention_days'：不得少于 180 天",
                               "setting 'audit_retention_days': must be at least 180"),
    "lib.settings.assertion_lifetime": (
        "配置项 'assertion_lifetime'：不得超过 60 秒",
        "setting 'assertion_lifetime': at most 60 seconds"),
    "lib.settings.maintenance_interval": (
        "配置项 'maintenance_interval_seconds'：须大于 0 且不超过 86400",
        "setting 'maintenance_interval_seconds': must be above 0 and at most 86400"),
    "lib.settings.positive": ("配置项 {name}：须大于 0", "setting {name}: must be above 0"),
    "lib.settings.trusted_proxies": (
        "配置项 'trusted_proxies'：{entry} 不是 IP 地址或网段",
        "setting 'trusted_proxies': {entry} is not an IP address or network"),
    "lib.settings.database_url": (
        "配置项 'database_url'：只支持 sqlite:/// 和 postgresql+psycopg:// 形式的地址",
        "setting 'database_url': only sqlite:/// and postgresql+psycopg:// URLs are supported"),
    "lib.settings.bad_toml": ("{path}：不是有效的 TOML 文件：{detail}",
                              "{path}: not valid TOML: {detail}"),
    "lib.settings.unknown_in_file": ("{path}：未知配置项 {key}",
                                     "{path}: unknown setting {key}"),
    "lib.settings.unknown_env": ("未知的环境变量配置项 {key}",
                                 "unknown environment setting {key}"),
    "lib.settings.unknown": ("未知配置项 {key}", "unknown setting {key}"),
    # storage and setup
    "lib.storage.unreachable": ("无法连接数据库：{detail}", "database unreachable: {detail}"),
    "lib.storage.no_schema": ("数据库中没有 govgate 的表结构：请先运行 `govgate init`",
                              "database has no govgate schema: run `govgate init`"),
    "lib.storage.newer": (
        "数据库表结构版本 {rev} 比本程序新（本程序最高支持到 {head}）",
        "database schema {rev} is newer than this govgate (knows up to {head})"),
    "lib.storage.newer_upgrade": (
        "数据库表结构版本 {rev} 比本程序新（本程序最高支持到 {head}）；请升级 govgate",
        "database schema {rev} is newer than this govgate (knows up to {head}); "
        "upgrade govgate instead"),
    "lib.storage.older": ("数据库表结构版本 {rev} 早于 {head}：请运行 `govgate init` 升级",
                          "database schema {rev} is older than {head}: run `govgate init`"),
    # keys: the signing-key ring
    "lib.keys.pending": ("已有一个待启用的 {use} 密钥；请先启用或销毁它",
                         "a {use} key is already pending; promote or destroy it first"),
    "lib.keys.rotating": ("{use} 密钥正在轮换中", "a {use} key rotation is already in progress"),
    "lib.keys.no_pending": ("没有可以启用的待启用 {use} 密钥", "no pending {use} key to promote"),
    "lib.keys.promoted_concurrently": ("待启用的 {use} 密钥已被另一进程启用",
                                       "the pending {use} key was promoted concurrently"),
    "lib.keys.unknown_kid": ("签名密钥 {kid} 不存在", "no signing key {kid}"),
    "lib.keys.only_active": (
        "密钥 {kid} 是唯一生效的 {use} 密钥；请先轮换并启用新密钥",
        "key {kid} is the only active {use} key; rotate and promote first"),
    "lib.keys.already_destroyed": ("密钥 {kid} 已经销毁", "key {kid} is already destroyed"),
    "lib.keys.no_active": ("没有生效的 {use} 密钥；请运行 `govgate init`",
                           "no active {use} key; run `govgate init`"),
    "lib.keys.no_active_after": ("启用后仍没有生效的 {use} 密钥",
                                 "no active {use} key after promotion"),
    "lib.keys.bad_row": ("签名密钥 {kid}：数据库记录中的用途、算法或状态无效",
                         "signing key {kid}: bad use, alg or state in its row"),
    "lib.keys.public_unreadable": ("签名密钥 {kid}：公钥无法读取：{detail}",
                                   "signing key {kid}: public key unreadable: {detail}"),
    "lib.keys.private_missing": ("签名密钥 {kid}：私钥缺失",
                                 "signing key {kid}: private key missing"),
    "lib.keys.private_unopenable": ("签名密钥 {kid}：私钥无法解密：{detail}",
                                    "signing key {kid}: private key cannot be opened: {detail}"),
    "lib.keys.unknown_use": ("未知的密钥用途 {use}（可选：{known}）",
                             "unknown key use {use} (one of {known})"),
    "lib.keys.unknown_alg": ("未知的算法 {alg}（可选：{known}）",
                             "unknown algorithm {alg} (one of {known})"),
    "lib.keys.unknown_profile": ("未知的密码算法配置 {name}（可选：{known}）",
                                 "unknown crypto profile {name} (one of {known})"),
    "lib.keys.unknown_profile_id": ("未知的密码算法配置编号 {id}",
                                    "unknown crypto profile id {id}"),
    # keys: data keys (envelope encryption)
    "lib.keys.data_key_row": ("{detail}（数据密钥 {id}，或其数据库记录已损坏）",
                              "{detail} (data key {id}; or its row is corrupt)"),
    "lib.keys.data_key_none": ("数据密钥：无法创建或找到当前的数据密钥",
                               "data key: could not create or find the active data key"),
    "lib.keys.data_key_unknown": ("未知的数据密钥 {id}", "unknown data key {id}"),
    "lib.keys.data_key_unwrap": ("数据密钥 {id} 无法解封：{detail}",
                                 "data key {id} cannot be unwrapped: {detail}"),
    "lib.keys.blob_truncated": ("密文不完整", "blob truncated"),
    "lib.keys.blob_unopenable": ("密文无法解密：{detail}", "blob does not open: {detail}"),
    "lib.keys.mac_root": ("MAC 根密钥无法解密：{detail}",
                          "MAC root key cannot be opened: {detail}"),
    # keys: the master key; {where} is "file PATH", "env VAR" or "pkcs11 TOKEN/KEY", or
    # the provider alone
    "lib.keys.where_file": ("文件 {path}", "file {path}"),
    "lib.keys.where_file_provider": ("文件", "file"),
    "lib.keys.where_env_provider": ("环境变量", "env"),
    "lib.keys.where_env": ("环境变量 {var}", "env {var}"),
    "lib.keys.where_pkcs11": ("PKCS#11 {label}", "pkcs11 {label}"),
    "lib.keys.master_not_base64": ("主密钥（{where}）：不是 base64 编码",
                                   "master key ({where}): not base64"),
    "lib.keys.master_size": ("主密钥（{where}）：长度应为 {size} 字节，实为 {got} 字节",
                             "master key ({where}): must be {size} bytes, got {got}"),
    "lib.keys.master_format": ("主密钥（{where}）：未知的密钥封装格式",
                               "master key ({where}): unknown wrapped-key format"),
    "lib.keys.master_wrong": ("主密钥（{where}）：无法解封数据密钥：主密钥是否有误？",
                              "master key ({where}): cannot unwrap a data key: wrong master key?"),
    "lib.keys.master_missing": ("主密钥（文件 {path}）：文件不存在；请运行 `govgate init`",
                                "master key (file {path}): missing; run `govgate init`"),
    "lib.keys.master_os": ("主密钥（{where}）：{reason}", "master key ({where}): {reason}"),
    "lib.keys.master_not_file": ("主密钥（文件 {path}）：不是普通文件",
                                 "master key (file {path}): not a regular file"),
    "lib.keys.master_mode": (
        "主密钥（文件 {path}）：权限 {mode} 允许同组或其他用户访问；请运行 chmod 600",
        "master key (file {path}): mode {mode} is group- or world-accessible; run chmod 600"),
    "lib.keys.master_unreadable": ("主密钥（文件 {path}）：无法读取：{detail}",
                                   "master key (file {path}): unreadable: {detail}"),
    "lib.keys.master_exists": ("主密钥（{where}）：已存在，拒绝覆盖",
                               "master key ({where}): already exists; refusing to overwrite"),
    "lib.keys.master_key_exists": ("主密钥（{where}）：密钥已存在，拒绝覆盖",
                                   "master key ({where}): key already exists; refusing to "
                                   "overwrite"),
    "lib.keys.master_create": ("主密钥（{where}）：无法创建：{detail}",
                               "master key ({where}): cannot create: {detail}"),
    "lib.keys.master_env_unset": ("主密钥（环境变量 {var}）：该变量未设置",
                                  "master key (env {var}): variable is not set"),
    "lib.keys.master_no_module": ("主密钥（{where}）：未设置 pkcs11_module",
                                  "master key ({where}): pkcs11_module is not set"),
    "lib.keys.master_no_token": ("主密钥（{where}）：找不到该 PKCS#11 令牌",
                                 "master key ({where}): no such token"),
    "lib.keys.master_pin": ("主密钥（{where}）：PIN 码错误", "master key ({where}): wrong PIN"),
    "lib.keys.master_token": ("主密钥（{where}）：无法打开 PKCS#11 令牌：{detail}",
                              "master key ({where}): cannot open token: {detail}"),
    "lib.keys.master_no_key": ("主密钥（{where}）：PKCS#11 令牌中没有该密钥",
                               "master key ({where}): no such key in token"),
    "lib.keys.master_label": ("主密钥（{where}）：密钥标签不唯一",
                              "master key ({where}): label is not unique"),
    "lib.keys.master_generate": ("主密钥（{where}）：无法生成密钥：{detail}",
                                 "master key ({where}): cannot generate key: {detail}"),
    "lib.keys.master_wrap": ("主密钥（{where}）：封装失败：{detail}",
                             "master key ({where}): wrap failed: {detail}"),
    "lib.keys.master_no_path": ("主密钥（文件）：未配置路径",
                                "master key (file): no path configured"),
    "lib.keys.master_provider": (
        "主密钥（{provider}）：未知的提供方（可选：file、env、pkcs11）",
        "master key ({provider}): unknown provider (one of file, env, pkcs11)"),
    "lib.keys.master_bad_length": ("主密钥（{where}）：数据密钥 {id} 的长度不正确",
                                   "master key ({where}): data key {id} has a bad length"),
    "lib.keys.master_rewrap_check": ("主密钥（{where}）：重新封装后的校验失败；未做任何更改",
                                     "master key ({where}): re-wrap check failed; nothing changed"),
    "lib.keys.master_other": (
        "主密钥（{where}）：数据密钥由 {wrapped} 封装，而当前主密钥是 {current}",
        "master key ({where}): data keys are wrapped under {wrapped}, this master key is "
        "{current}"),
    "lib.keys.master_profile": (
        "主密钥（{where}）：数据密钥 {id} 的密码算法配置 {profile} 未知",
        "master key ({where}): data key {id} has unknown profile {profile}"),
    "lib.keys.master_same": ("主密钥（{where}）：新密钥就是当前密钥",
                             "master key ({where}): the new key is the current key"),
    # audit: verification (a report's summary, then each problem as where: detail)
    "lib.audit.intact": (
        "审计日志完好：{records} 条记录，{chains} 条哈希链，{checkpoints} 个检查点，{detail}",
        "audit log intact: {records} records, {chains} chains, {checkpoints} checkpoints, "
        "{detail}"),
    "lib.audit.tampered": (
        "审计日志已被篡改：{records} 条记录，{chains} 条哈希链，{checkpoints} 个检查点，{detail}",
        "audit log TAMPERED: {records} records, {chains} chains, {checkpoints} checkpoints, "
        "{detail}"),
    "lib.audit.no_records": ("没有记录", "no records"),
    "lib.audit.at_record": ("记录 chain={chain} seq={seq}", "record chain={chain} seq={seq}"),
    "lib.audit.at_record_short": ("记录 {chain}/{seq}", "record {chain}/{seq}"),
    "lib.audit.at_checkpoint": ("检查点 {gap}", "checkpoint {gap}"),
    "lib.audit.at_chain": ("哈希链 {chain}", "chain {chain}"),
    "lib.audit.at_anchor": ("哈希链 {chain} 的清理锚点", "anchor of chain {chain}"),
    "lib.audit.at_database": ("数据库", "database"),
    "lib.audit.other_chain": ("属于哈希链 {chain}", "belongs to chain {chain}"),
    "lib.audit.unencodable": ("无法编码（{detail}）", "cannot be encoded ({detail})"),
    "lib.audit.changed": ("内容与其哈希值不符（有字段被修改）",
                          "content does not match its hash (a field was changed)"),
    "lib.audit.missing_one": ("记录 seq {seq} 缺失（已被删除）",
                              "record seq {seq} missing (deleted)"),
    "lib.audit.missing_many": ("记录 seq {first}..{last} 缺失（已被删除）",
                               "records seq {first}..{last} missing (deleted)"),
    "lib.audit.out_of_order": ("seq 重复或顺序错乱，应为 {seq}",
                               "duplicate or out-of-order seq, expected {seq}"),
    "lib.audit.unlinked": (
        "prev_hash 与前一条记录的哈希值不符（有记录被插入、替换或调换了顺序）",
        "prev_hash does not match the hash of the record before it (inserted, replaced or "
        "reordered record)"),
    "lib.audit.unreadable": ("无法读取（{detail}）", "unreadable ({detail})"),
    "lib.audit.head_differs": ("哈希值与检查点 {n} 所签名的链头不符",
                               "hash differs from the head signed in checkpoint {n}"),
    "lib.audit.anchor_unvouched": ("没有完好的封存记录能证明这个清理锚点",
                                   "no intact sealing record vouches for this purge anchor"),
    "lib.audit.checkpoint_registered": (
        "缺失（已被删除）：写入进程登记过它，现存最新的是 {n}",
        "missing (deleted): its writer registered it, the newest present is {n}"),
    "lib.audit.checkpoint_after": ("缺失（已被删除）：在它之后还写入了 {where}",
                                   "missing (deleted): {where} was written after it"),
    "lib.audit.checkpoint_before": ("缺失（已被删除），位于 {where} 之前",
                                    "missing (deleted) before {where}"),
    "lib.audit.checkpoint_order": ("重复或顺序错乱", "duplicate or out of order"),
    "lib.audit.checkpoint_changed": ("内容与其哈希值不符（已被修改）",
                                     "payload does not match its hash (changed)"),
    "lib.audit.checkpoint_columns": ("各列与已签名的内容不一致",
                                     "columns disagree with the signed payload"),
    "lib.audit.checkpoint_unlinked": ("未与前一个检查点相链接",
                                      "does not link to the checkpoint before it"),
    "lib.audit.signature_kid": ("签名校验失败（kid {kid}）",
                                "signature does not verify (kid {kid})"),
    "lib.audit.head_back": ("哈希链 {chain} 的链头回退到了 seq {seq}",
                            "head of chain {chain} went back to seq {seq}"),
    "lib.audit.unregistered": ("属于未登记哈希链的记录", "records of a chain nobody registered"),
    "lib.audit.unknown_hash": ("未知的哈希算法 {name}（可选：{known}）",
                               "unknown hash {name} (one of {known})"),
    "lib.audit.tail_cut": (
        "止于 seq {seq}，但检查点 {n} 签名的链头在 seq {head}（末尾的记录已被删除）",
        "ends at seq {seq} but checkpoint {n} signed its head at seq {head} (records deleted "
        "from the tail)"),
    "lib.audit.registry_cut": (
        "登记的链头是 seq {head}，记录止于 seq {seq}（末尾的记录已被删除）",
        "registry head is seq {head}, records end at seq {seq} (records deleted from the "
        "tail)"),
    "lib.audit.registry_added": ("登记的链头是 seq {head}，记录止于 seq {seq}（有记录被添加）",
                                 "registry head is seq {head}, records end at seq {seq} "
                                 "(records added)"),
    "lib.audit.manifest_tail": (
        "归档清单记载该链止于 seq {head}，而记录止于 seq {seq}",
        "archive manifest says the chain ends at seq {head}, records end at seq {seq}"),
    "lib.audit.cannot_read": ("无法读取：{detail}", "cannot be read: {detail}"),
    # audit: archives and purges
    "lib.audit.listed_no_records": ("清单中列出，但没有记录", "listed in the manifest, no records"),
    "lib.audit.manifest_count": ("清单记载 {n} 条记录，归档中有 {count} 条",
                                 "manifest lists {n} records, the archive holds {count}"),
    "lib.audit.no_public_key": ("归档中没有公钥 {kid}", "no public key {kid} in the archive"),
    "lib.audit.signature": ("签名校验失败（{detail}）", "signature does not verify ({detail})"),
    "lib.audit.not_empty": ("目录不为空", "not empty"),
    "lib.audit.written_unverified": ("写出的归档未通过校验：{detail}",
                                     "the written archive does not verify: {detail}"),
    "lib.audit.not_readable_archive": ("{path}：不是可读取的审计归档（{detail}）",
                                       "{path}: not a readable audit archive ({detail})"),
    "lib.audit.archive_format": ("未知的归档格式 {format}", "unknown archive format {format}"),
    "lib.audit.unexpected_file": ("意外的文件 {name}", "unexpected file {name}"),
    "lib.audit.file_changed": ("自归档写出后已被修改或缺失",
                               "changed or missing since the archive was written"),
    "lib.audit.retention": (
        "保留期（{days} 天）内的记录不能清理：--until 不得晚于 {date}",
        "records younger than the retention period ({days} days) cannot be purged: --until "
        "must be on or before {date}"),
    "lib.audit.archive_unverified": ("归档未通过校验：{detail}",
                                     "the archive does not verify: {detail}"),
    "lib.audit.not_archived": (
        "seq {seq} 及之前的记录早于 --until，但不在归档中",
        "records up to seq {seq} are older than --until but not in the archive"),
    "lib.audit.differs": ("记录 seq {seq} 与归档不一致",
                          "record seq {seq} differs from the archive"),
    # audit: query filters (after the option's name) and the writer
    "lib.audit.not_a_time": ("不是时间：{value}（应为 ISO 8601 或毫秒时间戳）",
                             "not a time: {value} (ISO 8601 or epoch ms)"),
    "lib.audit.not_a_cursor": ("不是上一页给出的游标", "not a cursor from a previous page"),
    "lib.audit.unknown_filter": ("未知的筛选条件", "unknown filter"),
    "lib.audit.bad_value": ("值无效", "bad value"),
    "lib.audit.not_one_of": ("{value} 无效（可选：{known}）", "{value} is not one of {known}"),
    "lib.audit.text_length": ("最多 200 个字符", "at most 200 characters"),
    "lib.audit.not_integer": ("不是整数", "not an integer"),
    "lib.audit.limit_range": ("须在 1 到 {limit} 之间", "between 1 and {limit}"),
    "lib.audit.after_since": ("须晚于 since", "must be after since"),
    "lib.audit.day": ("须为 YYYY-MM-DD 格式的日期", "a day as YYYY-MM-DD"),
    "lib.audit.day_order": ("{until} 早于 since（{since}）", "{until} is before since ({since})"),
    "lib.audit.unavailable": ("审计日志不可用：{detail}", "audit log unavailable: {detail}"),
    "lib.audit.not_written": ("审计记录未写入：{detail}", "audit record not written: {detail}"),
    "lib.audit.closed": ("审计日志已关闭", "audit log is closed"),
    "lib.audit.checkpoint_not_written": ("检查点未写入：{detail}",
                                         "checkpoint not written: {detail}"),
    "lib.audit.chain_lost": ("审计哈希链 {chain} 已不归本进程所有",
                             "audit chain {chain} is no longer ours"),
    # the organisation: regions, departments, users, roles, passwords
    "lib.org.bad_region_code": ("区域代码 {code} 无效", "bad region code {code}"),
    "lib.org.region_exists": ("区域 {code} 已存在", "region {code} exists"),
    "lib.org.unknown_parent_region": ("上级区域 {code} 不存在", "unknown parent region {code}"),
    "lib.org.bad_department_code": (
        "部门代码 {code} 无效（只能含小写字母、数字和 ._-）",
        "bad department code {code} (lower-case letters, digits, ._-)"),
    "lib.org.department_name_empty": ("部门名称为空", "department name is empty"),
    "lib.org.department_exists": ("部门 {code} 已存在", "department {code} exists"),
    "lib.org.unknown_region": ("区域 {code} 不存在", "unknown region {code}"),
    "lib.org.unknown_parent_department": ("上级部门 {code} 不存在",
                                          "unknown parent department {code}"),
    "lib.org.parent_region": ("上级部门 {code} 属于区域 {region}，而不是 {expected}",
                              "parent department {code} is in region {region}, not {expected}"),
    "lib.org.parent_other_region": ("上级部门 {code} 属于另一个区域",
                                    "parent department {code} is in another region"),
    "lib.org.unknown_department": ("部门 {code} 不存在", "unknown department {code}"),
    "lib.org.user_name_empty": ("用户姓名为空", "user name is empty"),
    "lib.org.bad_username_rule": (
        "用户名 {username} 无效（须为 2-64 个小写字母、数字或 ._-）",
        "bad username {username} (2-64 of lower-case letters, digits, ._-)"),
    "lib.org.bad_username": ("用户名 {username} 无效", "bad username {username}"),
    "lib.org.user_exists": ("用户 {username} 已存在", "user {username} exists"),
    "lib.org.unknown_user": ("用户 {username} 不存在", "unknown user {username}"),
    "lib.org.unknown_user_id": ("用户编号 {id} 不存在", "unknown user id {id}"),
    "lib.org.unknown_role": ("角色 {role} 不存在", "unknown role {role}"),
    "lib.org.two_admin_roles": (
        "同一账号不能同时拥有 {role1} 和 {role2} 角色（三员分立：sysadmin、secadmin、auditor "
        "三者互斥）",
        "roles {role1} and {role2} cannot be held by one account (三员分立: sysadmin, "
        "secadmin and auditor are mutually exclusive)"),
    "lib.org.three_admin_roles": (
        "同一账号不能同时拥有 {role1}、{role2} 和 {role3} 角色（三员分立：sysadmin、secadmin、"
        "auditor 三者互斥）",
        "roles {role1} and {role2} and {role3} cannot be held by one account (三员分立: "
        "sysadmin, secadmin and auditor are mutually exclusive)"),
    "lib.org.password_short": ("密码太短：至少 {n} 位",
                               "password too short: needs at least {n} characters"),
    "lib.org.password_blank": ("密码不得全为空白字符", "password must not be only whitespace"),
    "lib.org.password_guessable": (
        "密码太容易猜到：属于常见或已泄露的密码，或由单词、姓名、日期、连续或重复的字符组成；"
        "请使用更长的短语",
        "password too easy to guess: a common or breached password, or a word, name, date, "
        "sequence or repetition; use a longer phrase"),
    "lib.org.password_username": ("密码不得与用户名相同", "password must not be the username"),
    "lib.org.password_recent": ("该密码近期用过（不得与最近 {n} 次的密码相同）",
                                "password was used recently (last {n} are not allowed)"),
    # policy lines
    "lib.pol.subject": ("主体 {subject}：应为 role:NAME、user:NAME、client:ID 或 dept:CODE",
                        "subject {subject}: expected role:NAME, user:NAME, client:ID or dept:CODE"),
    "lib.pol.department": ("部门 {department}：应为部门代码或 '*'",
                           "department {department}: expected a department code or '*'"),
    "lib.pol.object": (
        "对象 {object}：应为 '/s/SYSTEM/path'，末尾可以是 '*'（不得有其他 '*'，不得有 . 或 .. "
        "路径段，不得有空路径段）",
        "object {object}: expected '/s/SYSTEM/path', optionally ending in '*' (no other '*', "
        "no dot segments, no empty segments)"),
    "lib.pol.action": ("操作 {action}：应为 {known} 之一",
                       "action {action}: expected one of {known}"),
    "lib.pol.effect": ("效果 {effect}：应为 allow 或 deny",
                       "effect {effect}: expected allow or deny"),
    "lib.pol.subject_department": ("主体 {subject} 中的部门不存在",
                                   "unknown department in subject {subject}"),
    "lib.pol.duplicate": ("与 {first} 重复", "duplicate of {first}"),
    # the state file's clients section (also govgate client add)
    "lib.state.problems": ("状态文件中有 {n} 处问题", "{n} problem(s) in the state file"),
    "lib.state.bad_client_id": ("client_id {client} 无效", "bad client_id {client}"),
    "lib.state.grant_type": ("未知的授权类型 {grant_type}", "unknown grant type {grant_type}"),
    "lib.state.auth_method": ("未知的 token_endpoint_auth_method {method}",
                              "unknown token_endpoint_auth_method {method}"),
    "lib.state.weak_secret": ("客户端密钥强度不足（至少 {n} 个随机字符）",
                              "secret too weak (at least {n} random characters)"),
    "lib.state.needs_secret": ("{method} 需要客户端密钥", "{method} needs a secret"),
    "lib.state.jwks": ("jwks 必须是至少含一个密钥的 JWK 集合",
                       "jwks must be a JWK set with at least one key"),
    "lib.state.not_a_jwk": ("jwks.keys[{n}] 不是 JWK", "jwks.keys[{n}] is not a JWK"),
    "lib.state.private_jwk": ("jwks.keys[{n}] 含有私钥内容",
                              "jwks.keys[{n}] holds private key material"),
    "lib.state.code_needs_redirect": ("authorization_code 需要 redirect_uris",
                                      "authorization_code needs redirect_uris"),
    "lib.state.credentials_need_auth": ("client_credentials 需要能认证身份的客户端",
                                        "client_credentials needs an authenticated client"),
    "lib.state.scope": ("scope 必须是文本（以空格分隔的权限范围）",
                        "scope must be text (space-separated scopes)"),
    "lib.state.status": ("status 必须是 active 或 disabled", "status must be active or disabled"),
    "lib.state.url_string": ("必须是 URL 字符串", "must be a URL string"),
    "lib.state.url_scheme": ("URL {url} 无效（须以 http:// 或 https:// 开头，并含主机名）",
                             "bad URL {url} (needs http:// or https:// and a host)"),
    "lib.state.url_port": ("URL {url} 无效（端口有误）", "bad URL {url} (bad port)"),
    "lib.state.url_credentials": ("URL {url} 无效（URL 中不得含用户名或密码）",
                                  "bad URL {url} (no credentials in URLs)"),
    "lib.state.redirect_fragment": ("回调地址 {url} 无效（不得含 # 片段）",
                                    "bad redirect URI {url} (no fragment allowed)"),
    "lib.state.redirect_http": (
        "回调地址 {url} 无效（http 只能用于本机回环地址；请使用 https）",
        "bad redirect URI {url} (http only for loopback; use https)"),
    "lib.state.field_list": ("{field} 必须是列表", "{field} must be a list"),
    # the state file (govgate apply): loading and the other sections
    "lib.state.too_large": ("{path}：超过 {n} 字节", "{path}: larger than {n} bytes"),
    "lib.state.top_level": ("顶层必须是由各部分组成的映射",
                            "the top level must be a mapping of sections"),
    "lib.state.unknown_section": ("未知的部分 {section}；可用的部分：{known}",
                                  "unknown section {section}; known: {known}"),
    "lib.state.unknown_section_line": (
        "未知的部分 {section}（第 {line} 行）；可用的部分：{known}",
        "unknown section {section} (line {line}); known: {known}"),
    "lib.state.duplicate": ("重复的 {field} {value}（首次出现在 {first}）",
                            "duplicate {field} {value} (first at {first})"),
    "lib.state.roles": ("roles 必须是角色名称的列表", "roles must be a list of role names"),
    "lib.state.portal_path": ("portal_path 必须以 / 开头", "portal_path must start with /"),
    "lib.state.own_ancestor": ("{code} 是它自己的上级", "{code} is its own ancestor"),
    # what is wrong with a field of a file (state file, catalogue import, CSV)
    "lib.field.unknown_key": ("未知的键 {key}", "unknown key {key}"),
    "lib.field.missing_key": ("缺少键 {key}", "missing key {key}"),
    "lib.field.mapping": ("必须是映射", "must be a mapping"),
    "lib.field.list": ("必须是列表", "must be a list"),
    "lib.field.bad_code": ("代码 {code} 无效", "bad code {code}"),
    "lib.field.string": ("{field} 必须是字符串", "{field} must be a string"),
    "lib.field.non_empty": ("{field} 必须是非空字符串", "{field} must be a non-empty string"),
    "lib.field.non_empty_list": ("{field} 必须是非空列表", "{field} must be a non-empty list"),
    "lib.field.integer": ("{field} 必须是整数", "{field} must be an integer"),
    "lib.field.too_long": ("{field} 超过 {n} 个字符", "{field} longer than {n} characters"),
    "lib.field.bool": ("{field} 必须是 true 或 false", "{field} must be true or false"),
    "lib.field.one_of": ("{field} 必须是 {known} 之一", "{field} must be one of {known}"),
    "lib.field.one_of_got": ("{field} 必须是 {known} 之一（实为 {value}）",
                             "{field} must be one of {known} (got {value})"),
    "lib.field.date": ("{field} 必须是 YYYY-MM-DD 格式的日期",
                       "{field} must be a date YYYY-MM-DD"),
    "lib.field.from_after_until": ("from 晚于 until", "from is after until"),
    "lib.field.not_utf8": ("{path}：不是 UTF-8 文本", "{path}: not UTF-8 text"),
    "lib.field.not_yaml": ("不是有效的 YAML：{detail}", "not valid YAML: {detail}"),
    # catalogue: resources and their items
    "lib.cat.duplicate": (
        "{resource}（{department}）的信息项 {item} 已由 {source_department} 在 "
        "{source_resource} {source_name}（信息项 {source_item}）中作为权威来源提供："
        "请复用该来源，不要重复采集",
        "item {item} of {resource} ({department}) is already provided as authoritative by "
        "{source_department} in {source_resource} {source_name} (item {source_item}): reuse "
        "that source instead of collecting it again"),
    "lib.cat.conditions": ("有条件共享的资源须写明共享条件（conditions）",
                           "a conditional resource needs its conditions (共享条件)"),
    "lib.cat.basis": ("不予共享（none）的资源须写明不予共享依据（basis）",
                      "a resource not shared (none) needs its basis (不予共享依据)"),
    "lib.cat.duplicate_item": ("重复的信息项 {name}（首次出现在 {first}）",
                               "duplicate item {name} (first at {first})"),
    "lib.cat.route_path": ("path 必须是以 / 开头的路径（可以含 {{plate}} 这样的模板）",
                           "path must be a path starting with / (templates like {{plate}})"),
    "lib.cat.route_records": ("records 必须是以点分隔的键路径，如 items 或 data.items",
                              "records must be a dotted key path like items or data.items"),
    "lib.cat.placeholder_segment": (
        "占位段 {segment} 无效（占位符须独占一整段，如 {{name}}）",
        "bad placeholder segment {segment} (use a whole segment {{name}})"),
    "lib.cat.placeholder_twice": ("占位符 {{{name}}} 重复使用",
                                  "placeholder {{{name}}} used twice"),
    "lib.cat.item_name": ("信息项名称 {name} 无效（只能含字母、数字和 _）",
                          "bad item name {name} (letters, digits and _)"),
    "lib.cat.level": ("level 必须是 1、2、3 或 4（一般 … 核心）",
                      "level must be 1, 2, 3 or 4 (一般 … 核心)"),
    "lib.cat.no_resource": ("资源 {code} 不存在", "no resource {code}"),
    "lib.cat.steward_saves": ("只有提供方部门的数据管理员才能保存此资源",
                              "only a data steward of the provider department saves this"),
    "lib.cat.resource_rejected": ("资源未通过校验", "resource rejected"),
    "lib.cat.belongs_to": ("{code} 属于 {department}", "{code} belongs to {department}"),
    "lib.cat.steward_changes": ("只有 {department} 的数据管理员才能变更 {code}",
                                "only a data steward of {department} changes {code}"),
    "lib.cat.already": ("{code} 已经是 {status} 状态", "{code} is already {status}"),
    "lib.cat.import_problems": ("导入内容中有 {n} 处问题", "{n} problem(s) in the import"),
    "lib.cat.csv_problems": ("CSV 文件中有 {n} 处问题", "{n} problem(s) in the CSV"),
    "lib.cat.yaml_mapping": ("YAML 必须是含 catalogue:（以及 grants:）的映射",
                             "the YAML must be a mapping with catalogue: (and grants:)"),
    "lib.cat.sections": ("未知的部分 {names}；导入内容只能包含 catalogue: 和 grants:",
                         "unknown section(s) {names}; an import holds catalogue: and grants:"),
    "lib.cat.csv_columns": ("未知的列 {names}；可用的列：{known}",
                            "unknown column(s) {names}; known: {known}"),
    "lib.cat.csv_missing": ("缺少列 {name}", "missing column {name}"),
    "lib.cat.csv_rows": ("超过 {n} 行", "more than {n} rows"),
    "lib.cat.csv_cells": ("有 {n} 个单元格，而表头有 {count} 列",
                          "{n} cells, the header has {count}"),
    "lib.cat.csv_level": ("item_level 必须是 1-4 的数字（实为 {value}）",
                          "item_level must be a number 1-4 (got {value})"),
    "lib.cat.csv_differs": ("{column} {text} 与第 {n} 行不同（{first}）",
                            "{column} {text} differs from row {n} ({first})"),
    "lib.cat.duplicate_code": ("重复的代码 {code}（首次出现在 {first}）",
                               "duplicate code {code} (first at {first})"),
    "lib.cat.unknown_provider": ("未知的提供方部门 {department}",
                                 "unknown provider department {department}"),
    "lib.cat.unknown_system": ("未知的系统 {system}", "unknown system {system}"),
    "lib.cat.system_owner": ("系统 {system} 属于 {owner}，不属于提供方 {provider}",
                             "system {system} belongs to {owner}, not to the provider {provider}"),
    "lib.cat.route_twice": ("接口 {method} {path} 同时也是 {code}（{where}）的接口",
                            "route {method} {path} is also the route of {code} ({where})"),
    "lib.cat.route_taken": ("接口 {method} {path} 已经是 {code} 的接口",
                            "route {method} {path} is already the route of {code}"),
    # catalogue: grants, applications and their workflow
    "lib.cat.unknown_resource": ("未知的资源 {code}", "unknown resource {code}"),
    "lib.cat.grants_conditional": (
        "{code} 的共享类型是 {share_type}；授权只适用于有条件共享的资源",
        "{code} is {share_type}; grants are for conditional resources"),
    "lib.cat.unknown_consumer": ("未知的申请部门 {department}",
                                 "unknown consumer department {department}"),
    "lib.cat.provider_needs_no_grant": ("{department} 是 {code} 的提供方，无需授权",
                                        "{department} provides {code} and needs no grant"),
    "lib.cat.item_names": ("items 必须是非空的信息项名称列表",
                           "items must be a non-empty list of item names"),
    "lib.cat.not_shareable": ("{code} 中以下信息项不可共享：{names}",
                              "items not shareable in {code}: {names}"),
    "lib.cat.unknown_client": ("未知的客户端 {client}", "unknown client {client}"),
    "lib.cat.client_owner": ("客户端 {client} 属于 {owner}，不属于 {department}",
                             "client {client} belongs to {owner}, not to {department}"),
    "lib.cat.duplicate_grant": ("与 {first} 重复（资源、申请部门、客户端和用途都相同）",
                                "duplicate of {first} (same resource, consumer, client and "
                                "purpose)"),
    "lib.cat.needs_consumer": ("申请须指明申请部门",
                               "an application needs the consumer department"),
    "lib.cat.own_department": ("只能为本部门提出申请",
                               "you can only apply for your own department"),
    "lib.cat.no_published": ("没有已发布的资源 {code}", "no published resource {code}"),
    "lib.cat.provider_applies": ("{department} 是 {code} 的提供方：无需申请",
                                 "{department} provides {code}: no application needed"),
    "lib.cat.unconditional": ("{code} 无条件共享：无需申请",
                              "{code} is shared unconditionally: no application needed"),
    "lib.cat.one_item": ("请至少指定一个信息项", "name at least one item"),
    "lib.cat.purpose": ("必须填写用途", "purpose (用途) is required"),
    "lib.cat.purpose_long": ("用途超过 {n} 个字符", "purpose longer than {n} characters"),
    "lib.cat.until_past": ("until 是已经过去的日期", "until is in the past"),
    "lib.cat.not_a_client_of": ("客户端 {client} 不属于 {department}",
                                "client {client} is not a client of {department}"),
    "lib.cat.application_rejected": ("申请未通过校验", "application rejected"),
    "lib.cat.no_application": ("申请 {id} 不存在", "no application {id}"),
    "lib.cat.resource_gone": ("资源 {code} 已不存在", "resource {code} no longer exists"),
    "lib.cat.steward_approves": ("只有 {department} 的数据管理员才能审批此申请",
                                 "only a data steward of {department} approves this"),
    "lib.cat.secadmin_decides": ("提请协商的申请由安全管理员决定",
                                 "an escalated application is decided by the security admin"),
    "lib.cat.application_state": ("申请 {id} 的状态是 {status}",
                                  "application {id} is {status}"),
    "lib.cat.share_type": ("{code} 的共享类型是 {share_type}", "{code} is {share_type}"),
    "lib.cat.narrow_items": ("审批只能减少信息项；以下信息项未申请：{names}",
                             "approval can only narrow the items; not applied for: {names}"),
    "lib.cat.approve_one": ("请至少同意一个信息项（否则请驳回）",
                            "approve at least one item (or reject)"),
    "lib.cat.no_longer_shareable": ("以下信息项已不可共享：{names}",
                                    "items no longer shareable: {names}"),
    "lib.cat.shorten": ("审批只能缩短期限（申请的期限至 {date}）",
                        "approval can only shorten the period (applied until {date})"),
    "lib.cat.until_before_from": ("until 早于 from", "until is before from"),
    "lib.cat.approval_rejected": ("审批未通过校验", "approval rejected"),
    "lib.cat.reason_to_mark": ("将申请标记为 {status} 须说明理由",
                               "a reason is required to mark an application {status}"),
    "lib.cat.steward_rejects": ("只有 {department} 的数据管理员才能驳回此申请",
                                "only a data steward of {department} rejects this"),
    "lib.cat.secadmin_closes": ("只有安全管理员才能结束协商中的申请",
                                "only the security admin closes an escalated application"),
    "lib.cat.escalates": ("只有 {department} 或安全管理员才能提请协商",
                          "only {department} or the security admin escalates this"),
    "lib.cat.no_grant": ("授权 {id} 不存在", "no grant {id}"),
    "lib.cat.reason_to_revoke": ("撤销授权须说明理由", "a reason is required to revoke a grant"),
    "lib.cat.revokes": ("只有 {department} 的数据管理员或安全管理员才能撤销此授权",
                        "only a data steward of {department} or the security admin revokes "
                        "this"),
    "lib.cat.revoked": ("授权 {id} 已被撤销", "grant {id} is already revoked"),
    "lib.cat.items_list": ("items 必须是信息项名称的列表", "items must be a list of item names"),
    "lib.setup.master_key_missing": (
        "主密钥文件 {path} 不存在，但数据库已经初始化；请恢复该文件（未做任何更改）",
        "master key file {path} is missing but the database is initialised; restore the "
        "file (nothing was changed)"),
}


# Placeholders of ``lib.*`` entries whose captured text is itself a library text,
# localised in turn: a place ({where}) and free text from a lower layer ({detail})
# when they can be; a {reason} or {problem} must be recognised, or the entry does not
# apply (a line is never half translated for the sake of its frame).
NESTED = frozenset({"where", "detail", "reason", "problem"})
OPTIONAL = frozenset({"where", "detail"})
# What a placeholder of a ``lib.*`` entry stands for, so that an entry matches only
# its own texts. By default one token, or one quoted value (a Python repr: 'x y'),
# so that "unknown department {code}" never swallows "unknown department in subject
# 'x'"; some are narrower (a number, a field name, a share type, a state), some wider:
# any text but "; " (the separator of a list of problems), or any text at all for the
# nested ones.
_ONE_VALUE = r"""'[^']*'|"[^"]*"|\S+?"""
_PHRASE = r"(?:(?!; ).)+?"
_LETTER = re.compile(r"[A-Za-z]")
SHAPES = {
    **dict.fromkeys(("n", "line", "count", "seq", "days", "limit"), r"-?[0-9]+"),
    "field": r"[a-z_]+",
    "share_type": r"unconditional|conditional|none",
    "status": r"[a-z_]+",
    **dict.fromkeys(("role1", "role2", "role3"), r"[a-z_]+"),
    **dict.fromkeys(("where", "known", "names", "allowed", "kind", "path", "file",
                     "directory", "source_name", "text"), _PHRASE),
    **dict.fromkeys(NESTED - {"where"}, r".+?"),
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


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern[str], int, bool], ...]:
    """(key, regex of the English text, weight, generic) of every ``lib.*`` entry.

    The weight (letters outside placeholders) makes the most specific entry win."""
    out = []
    for key, (_zh, en) in MESSAGES.items():
        if not key.startswith("lib."):
            continue
        regex, seen, letters = [], set(), 0
        for literal, name, _spec, _conv in string.Formatter().parse(en):
            regex.append(re.escape(literal))
            letters += len(_LETTER.findall(literal))
            if name is None:
                continue
            if name in seen:
                regex.append(f"(?P={name})")
            else:
                seen.add(name)
                regex.append(f"(?P<{name}>{SHAPES.get(name, _ONE_VALUE)})")
        out.append((key, re.compile("".join(regex), re.DOTALL), letters, letters == 0))
    return tuple(out)


def _match(text: str, depth: int, generic: bool) -> str | None:
    """The best entry for the whole of ``text``, among the specific entries or the
    generic ones (no letters of their own, e.g. ``{where}: {problem}``), which are
    tried last."""
    best: tuple[int, str, dict[str, str]] | None = None
    for key, regex, weight, is_generic in _patterns():
        if is_generic != generic or (best is not None and weight <= best[0]):
            continue
        m = regex.fullmatch(text)
        if m is None:
            continue
        values = m.groupdict()
        missed = False
        for name, value in values.items():
            if name in NESTED:
                inner = _recognise(value, depth + 1) if depth < 6 else None
                if inner is not None:
                    values[name] = inner
                elif name not in OPTIONAL:
                    missed = True
        if missed:
            continue
        best = (weight, key, values)
    return None if best is None else MESSAGES[best[1]][0].format(**best[2])


def _recognise(text: str, depth: int) -> str | None:
    found = _match(text, depth, generic=False)
    if found is None and "; " in text:  # a list of problems: every one, or none
        parts = [_recognise(part, depth + 1) for part in text.split("; ")]
        if all(parts):
            found = "；".join(p for p in parts if p)
    return found if found is not None else _match(text, depth, generic=True)


def localize(text: str, lang: str) -> str:
    """``text`` from the library layer in ``lang``: the Chinese form of a recognised
    English text under ``zh``; anything else (and every text under ``en``) unchanged."""
    if lang != "zh" or not text:
        return text
    return _recognise(text, 0) or text


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a CJK character (or a full-width
    punctuation mark) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ljust(text: str, width: int) -> str:
    """``str.ljust`` by terminal columns, so that a table with Chinese text lines up."""
    return text + " " * max(0, width - display_width(text))
