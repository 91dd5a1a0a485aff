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
# Placeholders that stand for a number only.
DIGITS = frozenset({"n", "line", "count", "seq", "days", "limit"})
_LETTER = re.compile(r"[A-Za-z]")


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

    The weight (letters outside placeholders) makes the most specific entry win. A
    placeholder never spans ``"; "`` (the separator of a list of problems) unless it
    is ``{detail}``, free text from a lower layer (a parser, a driver)."""
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
                regex.append(f"(?P<{name}>-?[0-9]+)" if name in DIGITS
                             else f"(?P<{name}>.+?)" if name == "detail"
                             else f"(?P<{name}>(?:(?!; ).)+?)")
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
