"""``govgate client add|list|rotate-secret|disable|enable|static-credential|...``: OAuth
clients of department systems.

The operations are ``gateway.admin.clients`` (the system administrator's console
calls the same ones): a secret is generated there, shown here once and stored only
as a keyed hash."""

from __future__ import annotations

import json

import click

from gateway.admin import clients as ops
from gateway.cli.context import CliContext, pass_cli, read_input
from gateway.errors import ValidationError
from gateway.idp.oauth2.oidc import ID_TOKEN_ALGS

#: a client's public keys: a few JWKs, far below this
MAX_JWKS_BYTES = 1024 * 1024


@click.group()
def client() -> None:
    """Manage OAuth 2.0 / OpenID Connect clients."""


@client.command("add")
@click.argument("client_id")
@click.option("--name", required=True, help="Display name.")
@click.option("--department", "-d", required=True, help="Owning department code.")
@click.option("--grant-type", "grant_types", multiple=True, required=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
              help="Grant type (repeatable).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True,
              help="Where a logout may send the browser back (repeatable; exact match).")
@click.option("--scope", default=None,
              help="The scopes it may be granted. Default: proxy for a client with "
                   "client_credentials only (a system calling systems through /s/), "
                   "else openid profile (one that signs people in).")
@click.option("--auth-method", default=None,
              type=click.Choice(["client_secret_basic", "client_secret_post",
                                 "private_key_jwt", "none"]),
              help="Token endpoint auth method (default client_secret_basic, or "
                   "private_key_jwt with --jwks-file).")
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Public JWK set for private_key_jwt.")
@click.option("--backchannel-logout-uri", default=None)
@click.option("--token-exchange", is_flag=True, default=False,
              help="May exchange its users' tokens for tokens to call another system "
                   "as acting for them (RFC 8693; docs/delegation.md).")
@click.option("--system", default=None,
              help="The system the client signs users in to: a delegation naming it "
                   "makes a sign-in while acting A's, acted for by B (docs/delegation.md).")
@click.option("--require-pkce/--no-require-pkce", default=True, show_default=True,
              help="Its authorization requests must carry a PKCE challenge (S256; RFC "
                   "9700 section 2.1.1). A public client's always must.")
@click.option("--dpop-bound", is_flag=True, default=False,
              help="Its token requests must carry a DPoP proof; its access tokens are "
                   "bound to its key (RFC 9449; docs/sso.md).")
@pass_cli
def client_add(cli_ctx: CliContext, client_id: str, name: str, department: str,
               grant_types: tuple[str, ...], redirect_uris: tuple[str, ...],
               post_logout_uris: tuple[str, ...], scope: str | None,
               auth_method: str | None, jwks_file: str | None,
               backchannel_logout_uri: str | None, token_exchange: bool,
               system: str | None, require_pkce: bool, dpop_bound: bool) -> None:
    """Register a client; a generated secret is printed once."""
    method = auth_method or ("private_key_jwt" if jwks_file else "client_secret_basic")
    if scope is None:
        # "openid profile" for a system's own client got tokens the proxy refuses
        # (insufficient_scope: proxy:CODE): a client_credentials client calls systems
        scope = "proxy" if set(grant_types) == {"client_credentials"} else "openid profile"
    entry: dict[str, object] = {
        "client_id": client_id, "name": name, "department": department,
        "grant_types": list(grant_types), "redirect_uris": list(redirect_uris),
        "scope": scope, "token_endpoint_auth_method": method,
        "require_pkce": require_pkce,
    }
    if post_logout_uris:
        entry["post_logout_redirect_uris"] = list(post_logout_uris)
    if jwks_file:
        data = read_input(jwks_file, MAX_JWKS_BYTES)  # unreadable, a directory, endless
        try:
            entry["jwks"] = json.loads(data.decode("utf-8"))
        except ValueError as exc:  # not UTF-8, not JSON
            raise ValidationError(cli_ctx.msg("client.jwks_not_json", file=jwks_file,
                                     detail=str(exc))) from None
    if backchannel_logout_uri:
        entry["backchannel_logout_uri"] = backchannel_logout_uri
    if token_exchange:
        entry["token_exchange"] = True
    if system:
        entry["system"] = system
    if dpop_bound:
        entry["dpop_bound"] = True
    secret = ops.add_client(cli_ctx.gateway, entry)
    click.echo(cli_ctx.msg("client.added", cid=client_id))
    if secret:
        click.echo(cli_ctx.msg("client.secret", secret=secret))


@client.command("list")
@pass_cli
def client_list(cli_ctx: CliContext) -> None:
    """List clients (never their secrets)."""
    click.echo("client_id\tname\tdepartment\tgrant_types\tauth_method\tstatus")
    for c in ops.client_entries(cli_ctx.services.engine):
        kinds = [*c["grant_types"], *(["token_exchange"] if c.get("token_exchange") else [])]
        click.echo(f"{c['client_id']}\t{c['name']}\t{c['department']}\t"
                   f"{','.join(kinds)}\t{c['token_endpoint_auth_method']}\t"
                   f"{c['status']}")


@client.command("rotate-secret")
@click.argument("client_id")
@pass_cli
def client_rotate(cli_ctx: CliContext, client_id: str) -> None:
    """Replace a client's secret; the new one is printed once."""
    secret = ops.rotate_secret(cli_ctx.gateway, client_id)
    click.echo(cli_ctx.msg("client.rotated", cid=client_id))
    click.echo(cli_ctx.msg("client.secret", secret=secret))


@client.command("disable")
@click.argument("client_id")
@pass_cli
def client_disable(cli_ctx: CliContext, client_id: str) -> None:
    """Disable a client: no new tokens, its refresh tokens revoked, and its access
    tokens refused by every gateway process within a second."""
    ops.disable_client(cli_ctx.gateway, client_id)
    click.echo(cli_ctx.msg("client.disabled", cid=client_id))


@client.command("enable")
@click.argument("client_id")
@pass_cli
def client_enable(cli_ctx: CliContext, client_id: str) -> None:
    """Enable a disabled client again. Tokens issued before the disable stay dead; new
    ones work (a process that has not yet seen the change may refuse them for up to
    two seconds)."""
    ops.enable_client(cli_ctx.gateway, client_id)
    click.echo(cli_ctx.msg("client.enabled", cid=client_id))


@client.command("token-exchange")
@click.argument("client_id")
@click.option("--allow/--forbid", required=True,
              help="Allow or forbid exchanging its users' tokens (RFC 8693).")
@pass_cli
def client_token_exchange(cli_ctx: CliContext, client_id: str, allow: bool) -> None:
    """Allow or forbid a client to call other systems acting for its users
    (docs/delegation.md); forbidding ends its delegated tokens within a second."""
    ops.set_token_exchange(cli_ctx.gateway, client_id, allow)
    click.echo(cli_ctx.msg("client.exchange_allowed" if allow else "client.exchange_forbidden",
                           cid=client_id))


@client.command("pkce")
@click.argument("client_id")
@click.option("--require/--optional", required=True,
              help="Require a PKCE challenge (S256) of its authorization requests, or let "
                   "a confidential client leave it out (govgate compliance names it).")
@pass_cli
def client_pkce(cli_ctx: CliContext, client_id: str, require: bool) -> None:
    """Require PKCE of a client, or no longer (RFC 9700 section 2.1.1)."""
    ops.update_client(cli_ctx.gateway, client_id, {"require_pkce": require})
    click.echo(cli_ctx.msg("client.pkce_required" if require else "client.pkce_optional",
                           cid=client_id))


@client.command("assertion-audience")
@click.argument("client_id")
@click.option("--lenient/--strict", required=True,
              help="Let its client assertions name the token endpoint or several audiences "
                   "(the rule before draft-ietf-oauth-rfc7523bis), or hold them to the "
                   "issuer alone.")
@pass_cli
def client_assertion_audience(cli_ctx: CliContext, client_id: str, lenient: bool) -> None:
    """Let one private_key_jwt client not yet changed keep sending the token endpoint as
    its assertions' audience (govgate compliance names it), or end that."""
    ops.update_client(cli_ctx.gateway, client_id, {"lenient_assertion_audience": lenient})
    click.echo(cli_ctx.msg("client.audience_lenient" if lenient else "client.audience_strict",
                           cid=client_id))


@client.command("consent")
@click.argument("client_id")
@click.argument("when", type=click.Choice(["required", "not-required", "rule"]))
@pass_cli
def client_consent(cli_ctx: CliContext, client_id: str, when: str) -> None:
    """Ask every person's consent before the client signs them in (Keycloak's "Consent
    required"), nobody's (a first-party system), or by the rule: a person not of the
    client's department or one below it is asked."""
    value = {"required": True, "not-required": False, "rule": None}[when]
    ops.update_client(cli_ctx.gateway, client_id, {"consent_required": value})
    click.echo(cli_ctx.msg({"required": "client.consent_required",
                            "not-required": "client.consent_not_required",
                            "rule": "client.consent_by_rule"}[when], cid=client_id))


@client.command("id-token-alg")
@click.argument("client_id")
@click.argument("alg", type=click.Choice([*ID_TOKEN_ALGS, "default"]))
@pass_cli
def client_id_token_alg(cli_ctx: CliContext, client_id: str, alg: str) -> None:
    """Sign the client's ID tokens with ALG (id_token_signed_response_alg: RS256 for a
    relying party that verifies nothing else), or with the token key's, ``default``."""
    ops.update_client(cli_ctx.gateway, client_id,
                      {"id_token_signed_response_alg": None if alg == "default" else alg})
    click.echo(cli_ctx.msg("client.id_token_alg_default" if alg == "default"
                           else "client.id_token_alg", cid=client_id, alg=alg))


@client.command("dpop")
@click.argument("client_id")
@click.option("--require/--optional", required=True,
              help="Require a DPoP proof on its token requests (RFC 9449), or not.")
@pass_cli
def client_dpop(cli_ctx: CliContext, client_id: str, require: bool) -> None:
    """Require DPoP-bound tokens for a client (Keycloak's "Require DPoP bound tokens"):
    a token request without a proof is refused, and its tokens work only with proofs
    of its key."""
    ops.set_dpop_bound(cli_ctx.gateway, client_id, require)
    click.echo(cli_ctx.msg("client.dpop_required" if require else "client.dpop_optional",
                           cid=client_id))


@client.command("static-credential")
@click.argument("client_id")
@click.argument("kind", type=click.Choice(["basic", "api_key", "off"]))
@pass_cli
def client_static_credential(cli_ctx: CliContext, client_id: str, kind: str) -> None:
    """Let an old system that cannot fetch a token call /s/ as this client (of the
    client_credentials grant alone) with a fixed credential: basic (curl -u
    CLIENT_ID:SECRET, its existing secret) or api_key (X-Api-Key: a key of its own,
    made anew each time and printed once; the one before stops working); off ends it.
    Weaker than a token: the secret crosses on every call (https only, off the
    loopback), and govgate compliance names the client."""
    key = ops.set_static_credential(cli_ctx.gateway, client_id, kind)
    said = {"basic": "client.static_basic", "api_key": "client.static_api_key",
            "off": "client.static_off"}[kind]
    click.echo(cli_ctx.msg(said, cid=client_id))
    if key is not None:
        click.echo(cli_ctx.msg("client.api_key", api_key=key))
