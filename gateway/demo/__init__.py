"""What ``govgate demo`` runs: the demo state (``demo.yaml``, the state-file format
operators use) and the demo departments' upstream systems (``apps``), shipped with
the package so the demo starts from an installed govgate as from a checkout."""

from pathlib import Path

DEMO_STATE = Path(__file__).with_name("demo.yaml")

# The demo's own settings, written to its home's govgate.toml (with its port and issuer)
# so that every command run on that home (govgate compliance, audit ...) sees what the
# demo runs with: the 国密 profile 密评 level 3 asks for, and the audit log shipped as
# JSON lines for a log collector (docs/compliance.md).
DEMO_SETTINGS: dict[str, str | int] = {"crypto_profile": "gm", "audit_ship_file": "audit.jsonl"}

# The demo's one delegation (委托, docs/delegation.md): 李四 acts for 张三 on the vehicle
# system for two weeks, approved by 周玲, head of 机关事务管理局. Not a state-file section:
# ``govgate demo`` asks for it and approves it through the portal's rules and audit
# records (gateway/cli/delegation_cmd.py, ``demo_delegations``).
DEMO_DELEGATIONS: list[dict[str, object]] = [
    {"from": "zhang.san", "to": "li.si", "systems": ["vehicles"], "days": 14,
     "approver": "zhou.ling", "reason": "张三出差两周，由李四代为办理公务用车事务"},
]
