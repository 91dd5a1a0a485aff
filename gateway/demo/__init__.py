"""What ``govgate demo`` runs: the demo state (``demo.yaml``, the state-file format
operators use) and the demo departments' upstream systems (``apps``), shipped with
the package so the demo starts from an installed govgate as from a checkout."""

from pathlib import Path

DEMO_STATE = Path(__file__).with_name("demo.yaml")
