"""``govgate audit keys``: the trust file an auditor verifies archives with, and the
trust anchor ``govgate audit verify --archive`` builds from its options
(:mod:`audit.archive_trust`, docs/audit.md "Archive and retention")."""

from __future__ import annotations

import json

import click

from audit.archive_trust import (
    AnchorKeys,
    KeyTrust,
    RingTrust,
    TrustFileError,
    any_of,
    fingerprint,
    load_trust_file,
    parse_fingerprint,
    ring_keys,
)
from gateway.cli.context import cli_context, input_error, write_output
from gateway.i18n import cli_lang, render


def archive_trust(ctx: click.Context, trust_files: tuple[str, ...],
                  fingerprints: tuple[str, ...], gateway_keys: bool) -> KeyTrust | None:
    """The anchor the options name (None: none given); a trust file or fingerprint
    that cannot be used is an input error (exit 2)."""
    anchors: list[KeyTrust] = []
    try:
        jwks = [jwk for path in trust_files for jwk in load_trust_file(path)]
        parsed = [parse_fingerprint(f) for f in fingerprints]
    except TrustFileError as exc:
        raise input_error("audit.trust_unusable",
                          reason=render(exc.description, cli_lang())) from None
    if jwks or parsed:
        anchors.append(AnchorKeys(jwks, parsed))
    if gateway_keys:
        anchors.append(RingTrust(cli_context(ctx).services.keys))
    return any_of(anchors)


@click.command("keys")
@click.option("--to", "to", type=click.Path(dir_okay=False),
              help="Write the trust file here instead of printing it.")
@click.option("--fingerprints", is_flag=True,
              help="Print each key's kid, SHA-256 and SM3 fingerprint (not the JSON).")
@click.pass_context
def keys_cmd(ctx: click.Context, to: str | None, fingerprints: bool) -> None:
    """The public audit keys this gateway's key ring made: the trust file for
    `govgate audit verify --archive DIR --trust FILE` on another machine."""
    st = cli_context(ctx)
    found = ring_keys(st.services.keys)
    st.record("audit_keys_exported", "audit trust keys exported (cli)",
              kids=[k["kid"] for k in found], to=to or "-")
    text = json.dumps({"keys": found}, indent=1, sort_keys=True) + "\n"
    if to is not None:
        write_output(to, text)
        click.echo(st.msg("audit.keys_written", n=len(found), path=to))
    if fingerprints:
        for jwk in found:
            click.echo(f"{jwk['kid']}\t{fingerprint(jwk, 'SHA-256')}\t{fingerprint(jwk, 'SM3')}")
    elif to is None:
        click.echo(text, nl=False)
