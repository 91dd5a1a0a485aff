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
