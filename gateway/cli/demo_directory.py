"""The demo's directory-backed department from the command line's side: start the
demo's ``slapd`` (gateway.demo.directory) before the settings are written, and sync
its people in once the demo's state is applied, as ``govgate directory sync`` does."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.cli.context import CliContext
from gateway.demo.directory import DEPARTMENT, PEOPLE, DemoDirectory, start_directory
from gateway.directory import DirectoryClient, DirectoryConfig, SyncConflict, sync
from gateway.directory.errors import DirectoryUnavailable
from gateway.i18n import render
from gateway.services import Services


def start(cli_ctx: CliContext, home: Path, *, password: str,
          region: str) -> tuple[DemoDirectory | None, str]:
    """The running directory (or None) and the line the demo prints about it."""
    try:
        directory = start_directory(home, password=password, region=region)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        return None, cli_ctx.msg("demo.directory_failed", reason=str(exc)[:200])
    if directory is None:
        return None, cli_ctx.msg("demo.directory_skipped")
    return directory, ""


def sync_people(cli_ctx: CliContext, services: Services, directory: DemoDirectory) -> str:
    """Sync the directory in; the line saying what arrived (or why nothing did)."""
    config = DirectoryConfig.from_settings(services.settings)
    if config is None:  # the settings written a moment ago name it
        return cli_ctx.msg("demo.directory_failed", reason="directory_url")
    try:
        plan = sync(services, DirectoryClient(config))
    except SyncConflict as exc:
        reason = "; ".join(render(p, cli_ctx.lang) for p in exc.problems)
        return cli_ctx.msg("demo.directory_failed", reason=reason[:200])
    except DirectoryUnavailable as exc:
        return cli_ctx.msg("demo.directory_failed", reason=render(exc.description, cli_ctx.lang))
    name, code = DEPARTMENT
    active = [uid for uid, _name, _group in PEOPLE if uid not in plan.disabled]
    return cli_ctx.msg("demo.directory", name=name, code=code, url=directory.url,
                       people=plan.people, users=", ".join(active), password=directory.password,
                       disabled=", ".join(plan.disabled) or "-")
