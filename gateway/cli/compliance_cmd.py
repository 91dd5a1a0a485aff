"""``govgate compliance``: the running configuration against GB/T 22239-2019 level 3
(等保2.0) and GB/T 39786-2021 level 3 (密评), item by item with its evidence
(gateway.compliance, docs/compliance.md).

Exit codes: 0 when no item fails, 1 when any does (or on an error), 2 on bad usage.
The run is audited (``compliance_check``, with the items that failed).
"""

from __future__ import annotations

import json

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.compliance import FAIL, NOT_APPLICABLE, PASS, State, as_json, run_checks
from gateway.i18n import render
from texts import parts

STATUS_KEYS = {PASS: "compliance.pass", FAIL: "compliance.fail",
               NOT_APPLICABLE: "compliance.not_applicable"}


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@pass_cli
@click.pass_context
def compliance(ctx: click.Context, cli_ctx: CliContext, fmt: str) -> None:
    """Check the configuration against 等保2.0 level 3 and 密评 (exit 1 if an item fails)."""
    services = cli_ctx.services
    items = run_checks(State(settings=cli_ctx.settings, engine=services.engine,
                             keys=services.keys, now=services.clock()))
    failed = [i.id for i in items if i.status == FAIL]
    cli_ctx.record("compliance_check", "compliance checked (cli)", items=len(items),
                   failed=failed)
    lang = cli_ctx.lang
    if fmt == "json":
        click.echo(json.dumps(as_json(items, lambda text: render(text, lang)),
                              ensure_ascii=False, indent=2))
    else:
        for item in items:
            click.echo(f"[{cli_ctx.msg(STATUS_KEYS[item.status])}] {item.id}  "
                       f"{render(item.title, lang)}")
            for part in parts(item.evidence):
                click.echo(f"    - {render(part, lang)}")
        count = {s: sum(1 for i in items if i.status == s) for s in STATUS_KEYS}
        click.echo(cli_ctx.msg("compliance.summary", passed=count[PASS], failed=count[FAIL],
                               na=count[NOT_APPLICABLE]))
    ctx.exit(1 if failed else 0)
