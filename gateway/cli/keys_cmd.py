"""``govgate keys``: list, rotate, promote, maintain, destroy, jwks, rotate-data-key,
rotate-master. Errors are one line on stderr and exit 1; usage errors exit 2."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.admin.keys import rotate_keys
from gateway.cli.audit_key_keep import refuse_signing_audit_key
from gateway.cli.context import GovgateGroup, InputError, cli_context, input_error, table
from gateway.i18n import cli_lang, render
from gateway.settings import Settings
from keys import (
    ALGORITHMS,
    USES,
    FileMasterKey,
    MasterKeyError,
    MasterKeyProvider,
    Pkcs11MasterKey,
)
from keys.master import EnvMasterKey, provider_label
from texts import Text, os_reason, where


def _fmt(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


keys = GovgateGroup("keys", help="Signing keys, JWKS, data keys and the master key.")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """Show every signing key: kid, use, alg, state and dates."""
    infos = cli_context(ctx).services.keys.list_keys()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    header = tuple(cli_context(ctx).msg("keys.header").split("|"))
    rows = [header] + [
        (i.kid, i.use, i.alg, i.state, _fmt(i.created_at), _fmt(i.activated_at),
         _fmt(i.retired_at), _fmt(i.leaves_jwks_at))
        for i in infos
    ]
    for line in table(rows):
        click.echo(line)


@keys.command()
@click.option("--use", "uses", type=click.Choice(USES), multiple=True,
              help="Key use to rotate (repeatable; default: all).")
@click.option("--alg", type=click.Choice(ALGORITHMS), default=None,
              help="Algorithm of the new key (default: the signing_alg setting).")
@click.option("--now", "at_once", is_flag=True,
              help="Promote at once, skipping the prepublication delay (compromised key).")
@click.pass_context
def rotate(ctx: click.Context, uses: tuple[str, ...], alg: str | None, at_once: bool) -> None:
    """Create the next key as pending; it is promoted after key_prepublish_seconds."""

    svc = cli_context(ctx).services.keys
    for info in rotate_keys(svc, cli_context(ctx).services.record_admin_change, uses, alg,
                            at_once):
        line = dict(use=info.use, kid=info.kid, alg=info.alg, state=info.state)
        if info.state == "active":
            click.echo(cli_context(ctx).msg("keys.rotated_now", **line))
        else:
            click.echo(cli_context(ctx).msg("keys.rotated_at", **line,
                                       when=_fmt(info.created_at + svc.ring.prepublish)))


@keys.command()
@click.pass_context
def promote(ctx: click.Context) -> None:
    """Promote pending keys whose prepublication delay has passed; destroy retired keys
    that have left the JWKS."""
    changed = cli_context(ctx).services.keys.promote_due()
    for info in changed:
        cli_context(ctx).record_change("key_state_changed", kid=info.kid, use=info.use,
                                       state=info.state)
        click.echo(f"{info.use}: {info.kid} -> {info.state}")
    if not changed:
        click.echo(cli_context(ctx).msg("keys.nothing_due"))


@keys.command()
@click.pass_context
def maintain(ctx: click.Context) -> None:
    """The periodic job (cron): rotate keys older than key_rotate_days, then promote."""
    state = cli_context(ctx)
    days = state.settings.key_rotate_days
    changed = state.services.keys.maintain(days * 86400 if days else None)
    for info in changed:
        state.record_change("key_state_changed", kid=info.kid, use=info.use, state=info.state)
        click.echo(f"{info.use}: {info.kid} -> {info.state}")
    if not changed:
        click.echo(state.msg("keys.nothing_due"))


@keys.command()
@click.argument("kid")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def destroy(ctx: click.Context, kid: str, yes: bool) -> None:
    """Erase the private part of a pending or retired key (the active key is refused, and
    an audit key that signed checkpoints still in the log: they must stay verifiable)."""
    state = cli_context(ctx)
    svc = state.services.keys
    refuse_signing_audit_key(state, kid)
    if not yes:
        click.confirm(cli_context(ctx).msg("keys.confirm_destroy", kid=kid), abort=True)
    info = svc.destroy(kid)
    cli_context(ctx).record_change("key_destroyed", kid=info.kid, use=info.use)
    click.echo(cli_context(ctx).msg("keys.destroyed", use=info.use, kid=info.kid))


@keys.command()
@click.option("--use", type=click.Choice(USES), default=None)
@click.pass_context
def jwks(ctx: click.Context, use: str | None) -> None:
    """Print the JWKS document (public parts only)."""
    click.echo(json.dumps(cli_context(ctx).services.keys.jwks(use), indent=2))


@keys.command("rotate-data-key")
@click.pass_context
def rotate_data_key(ctx: click.Context) -> None:
    """Start sealing under a new data key; older ones keep opening what they sealed."""
    cli_context(ctx).services.keys.rotate_data_key()
    cli_context(ctx).record_change("data_key_rotated")
    click.echo(cli_context(ctx).msg("keys.data_key_rotated"))


def _new_master_file(path: str, settings: Settings) -> Path:
    """``--new-file`` as an absolute path that is safe to create: not the current master
    key file, not any existing file (or link), in a directory that exists. A typo'd
    directory is not created: the new key would then hold every data key in a place
    nobody meant to keep."""
    new = Path(path).absolute()
    try:
        if settings.master_key_provider == "file":
            current = settings.master_key_path
            if new.resolve() == current.resolve() or (
                    new.exists() and current.exists() and os.path.samefile(new, current)):
                raise input_error("keys.new_file_is_current", path=path)
        if os.path.lexists(new):
            raise input_error("keys.new_file_exists", path=path)
        if not new.parent.is_dir():
            raise input_error("keys.new_file_no_dir", dir=new.parent)
    except OSError as exc:  # a name longer than the file system takes, a loop of links
        raise InputError(render(where(path, os_reason(exc)), cli_lang())) from None
    return new


def _fsync_dir(path: Path) -> None:
    """Make a new or renamed directory entry durable (the file itself is fsync'ed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@keys.command("rotate-master")
@click.option("--new-file", type=click.Path(dir_okay=False), default=None,
              help="Create the new master key in this file (must not exist; its folder must).")
@click.option("--new-env", default=None, help="Read the new master key from this variable.")
@click.option("--new-pkcs11-key-label", default=None,
              help="Use (creating it if missing) this key in the configured PKCS#11 token.")
@click.pass_context
def rotate_master(ctx: click.Context, new_file: str | None, new_env: str | None,
                  new_pkcs11_key_label: str | None) -> None:
    """Re-wrap every data key under a new master key (data is not re-encrypted).

    With the file provider and no option, the new key replaces the configured file and
    the old file is kept beside it as ``master.key.old-<time>``.
    """
    state = cli_context(ctx)
    chosen = [o for o in (new_file, new_env, new_pkcs11_key_label) if o]
    if len(chosen) > 1:
        raise click.UsageError(state.msg("keys.master_one_option"))
    settings, svc = state.settings, state.services.keys
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    swap: tuple[Path, Path] | None = None
    new: MasterKeyProvider
    if new_env:
        new = EnvMasterKey(new_env, os.environ)
        advice = state.msg("keys.master_advice_env", var=new_env)
    elif new_pkcs11_key_label:
        args = (settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_pin,
                new_pkcs11_key_label)
        try:
            new = Pkcs11MasterKey(*args)
        except MasterKeyError:
            new = Pkcs11MasterKey.create(*args)
        advice = state.msg("keys.master_advice_pkcs11", label=new_pkcs11_key_label)
    elif new_file:
        new_path = _new_master_file(new_file, settings)
        new = FileMasterKey.create(new_path)
        _fsync_dir(new_path.parent)  # the new file must outlive a crash: it alone opens
        advice = state.msg("keys.master_advice_file", path=new_path)
    else:
        if settings.master_key_provider != "file":
            raise click.UsageError(state.msg("keys.master_name_new"))
        current = settings.master_key_path
        staged = current.with_name(current.name + ".new")
        new = FileMasterKey.create(staged)
        _fsync_dir(staged.parent)
        swap = (current, staged)
        advice = state.msg("keys.master_replaced", path=current,
                           old=f"{current.name}.old-{stamp}")
    if new.key_id == svc.master.key_id:
        raise MasterKeyError(Text("keys.master_same",
                                  "master key ({where}): the new key is the current key",
                                  where=provider_label(new.name)))
    count = svc.rotate_master(new)
    if swap is not None:
        current, staged = swap
        # keep the old key under a new name first, then swap atomically: at no moment
        # is there no file at the configured path
        os.link(current, current.with_name(f"{current.name}.old-{stamp}"))
        os.replace(staged, current)
        _fsync_dir(current.parent)
    state.record_change("master_key_rotated", provider=new.name, data_keys=count)
    click.echo(state.msg("keys.master_rotated", count=count, kid=new.key_id, advice=advice))
