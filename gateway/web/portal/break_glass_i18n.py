"""The break-glass pages' texts (``key: (zh, en)``), joined into ``i18n.TABLE``."""

from __future__ import annotations

BREAK_GLASS_MESSAGES: dict[str, tuple[str, str]] = {
    "bg_title": ("紧急授权", "Break-glass"),
    "bg_banner": ("紧急授权生效中：{what}，至 {until}（北京时间）。"
                  "每次访问均被标记并由审计管理员复核。",
                  "Break-glass active: {what} until {until} (Beijing time). Every access is "
                  "marked and reviewed by the audit administrator."),
    "bg_request": ("申请紧急授权", "Request break-glass"),
    "bg_request_note": ("须两名不同的安全管理员批准后才生效，最长 {hours} 小时，到期自动失效。",
                        "Active only once two different security administrators approve; at "
                        "most {hours} h; it expires by itself."),
    "bg_system": ("系统", "System"),
    "bg_resource": ("目录资源（可选）", "Catalogue resource (optional)"),
    "bg_reason": ("事由", "Reason"),
    "bg_minutes": ("时长（分钟）", "Duration (minutes)"),
    "bg_submit": ("提交申请", "Submit"),
    "bg_mine": ("我的紧急授权", "My break-glass"),
    "bg_all": ("全部紧急授权", "All break-glass"),
    "bg_none": ("没有", "None"),
    "bg_id": ("编号", "Id"),
    "bg_holder": ("申请人", "Requester"),
    "bg_state": ("状态", "State"),
    "bg_approvals": ("批准人", "Approved by"),
    "bg_ends": ("结束时间", "Ends"),
    "bg_approve": ("批准", "Approve"),
    "bg_end": ("结束", "End"),
    "bg_end_reason": ("结束理由", "Reason to end"),
    "bg_st_pending": ("待批准", "pending"),
    "bg_st_active": ("生效中", "active"),
    "bg_st_expired": ("已到期", "expired"),
    "bg_st_ended": ("已提前结束", "ended early"),
    "bg_st_refused": ("未获批准", "refused"),
    "bg_st_lapsed": ("已失效（无人批准）", "lapsed (not approved)"),
    "bg_review": ("紧急授权复核", "Break-glass review"),
    "bg_review_open": ("待复核", "To review"),
    "bg_review_closed": ("已复核（只读）", "Reviewed (read-only)"),
    "bg_uses": ("使用次数", "Uses"),
    "bg_records": ("带此编号的审计记录", "Audit records carrying its id"),
    "bg_finding": ("复核结论", "Finding"),
    "bg_close": ("关闭复核", "Close the review"),
    "bg_reviewed_by": ("复核人", "Reviewed by"),
    "bg_done_requested": ("已提交申请 {target}", "Requested {target}"),
    "bg_done_approved": ("已批准 {target}", "Approved {target}"),
    "bg_done_ended": ("已结束 {target}", "Ended {target}"),
    "bg_done_reviewed": ("已复核 {target}", "Reviewed {target}"),
    "bg_review_link": ("紧急授权复核", "Break-glass review"),
    "bg_launcher": ("紧急授权", "break-glass"),
    # the error page's way back (the newcomer's walk, 2026-12-05)
    "bg_back": ("返回紧急授权", "Back to break-glass"),
    "bg_done_approved_once": ("已批准 {target}：还须另一名安全管理员批准才生效",
                              "Approved {target}: it takes effect once another security "
                              "administrator approves"),
}
