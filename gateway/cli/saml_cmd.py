"""``govgate saml metadata|list``: the SAML identity provider's metadata (to hand to a
service provider's administrator) and the service providers the systems registered
(``saml_sp`` in the state file, ``govgate apply``)."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, pass_cli
from gateway.idp.saml import names


@click.group()
def saml() -> None:
    """The SAML 2.0 identity provider."""


@saml.command("metadata")
@pass_cli
def saml_metadata(cli_ctx: CliContext) -> None:
    """Print the IdP's metadata (XML): entity ID, endpoints, signing certificate.
    The same document is served at /saml/metadata."""
    click.echo(cli_ctx.gateway.saml.run(lambda engine: engine.metadata()), nl=False)


@saml.command("list")
@pass_cli
def saml_list(cli_ctx: CliContext) -> None:
    """List the registered service providers: system, entity ID, NameID, the
    attributes it receives (``uid`` for the username), whether it signs its requests,
    its assertion consumer services, its SOAP logout endpoint."""

    registered = cli_ctx.gateway.saml.registered()
    if not registered:
        click.echo(cli_ctx.msg("saml.no_sps"))
        return
    click.echo("system\tentity_id\tname_id\treleased\tsigns_requests\tacs\tsoap_logout")
    for entity_id, sp in sorted(registered.items(), key=lambda item: item[1].system):
        soap = sp.meta.slo_for(names.BINDING_SOAP)
        released = " ".join([*(["uid"] if sp.release_username else []), *sp.attributes])
        click.echo(f"{sp.system}\t{entity_id}\t{sp.name_id}\t{released or '-'}"
                   f"\t{str(sp.meta.signs_requests).lower()}"
                   f"\t{' '.join(e.location for e in sp.meta.acs)}\t"
                   f"{soap.location if soap else '-'}")
