"""``govgate system add|update|release|sign-on``: the systems behind the proxy, through the same
operations as the console and the API (``gateway.admin.systems``, which apply a
state-file entry: validated and audited as ``govgate apply`` is)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from gateway.admin import systems as ops
from gateway.cli.context import CliContext, input_error, pass_cli
from gateway.errors import StateFileError, ValidationError
from gateway.idp.attribute_release import ATTRIBUTES, FORWARD_AUTH
from gateway.proxy.assertion import REUSE_MODES
from gateway.proxy.identity_headers import MODES as IDENTITY_MODES
from texts import Text

ASSERTION_HELP = ("per_request (default): an assertion signed for every request; "
                  "per_caller: one reused for the same caller and system up to 30 s "
                  "(docs/proxy.md).")
IDENTITY_HELP = ("How the system learns who calls: assertion (default, a signed JWT), plain "
                 "(X-Govgate-User and the other plain headers; only for a system nobody but "
                 "the gateway reaches) or both (docs/integration.md).")
REMOTE_USER_HELP = "With plain headers, also send Remote-User (the username)."
LAUNCH_URL_HELP = ("Where the portal's launcher opens the system when it is reached at an "
                   "address of its own (the agency's nginx with forward-auth): https, http "
                   "only on a loopback host; \"\" removes it (the launcher path again).")


PLACE = "systems[0]"  # the one entry the operations apply (gateway.admin.systems)


def _unplaced(problem: Any) -> Any:
    """A problem of the entry without its place in a state file: the operator typed
    options, not a file, so ``systems[0]: unknown department`` says where nothing is."""
    if isinstance(problem, Text) and problem.key == "where" \
            and str(problem.params.get("where", "")).startswith(PLACE):
        return problem.params["problem"]
    if isinstance(problem, str) and problem.startswith(PLACE + ": "):
        return problem[len(PLACE) + 2:]
    return problem


@contextmanager
def _as_options(message: Callable[[], Text]) -> Iterator[None]:
    """The operations validate the options as a state-file entry; their refusal is
    told as this command's (``message``), each problem without the file's place."""
    try:
        yield
    except StateFileError as exc:
        raise ValidationError(message(), problems=[_unplaced(p) for p in exc.problems]
                              ) from None


@click.group()
def system() -> None:
    """Manage the department systems behind the proxy."""


@system.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Display name.")
@click.option("--department", "-d", required=True, help="Owning department code.")
@click.option("--upstream", required=True, help="The system's address (http/https URL).")
@click.option("--portal-path", default=None, help="Where the portal's launcher opens it.")
@click.option("--launch-url", default=None, metavar="URL", help=LAUNCH_URL_HELP)
@click.option("--identity-headers", type=click.Choice(IDENTITY_MODES), default=None,
              help=IDENTITY_HELP)
@click.option("--remote-user/--no-remote-user", default=None, help=REMOTE_USER_HELP)
@click.option("--assertion", type=click.Choice(REUSE_MODES), default=None,
              help=ASSERTION_HELP)
@pass_cli
def system_add(cli_ctx: CliContext, code: str, name: str, department: str, upstream: str,
               portal_path: str | None, launch_url: str | None, identity_headers: str | None,
               remote_user: bool | None, assertion: str | None) -> None:
    """Register a system."""
    entry: dict[str, Any] = {"code": code, "name": name, "department": department,
                             "upstream": upstream}
    for key, value in (("portal_path", portal_path), ("identity_headers", identity_headers),
                       ("remote_user", remote_user), ("assertion", assertion),
                       ("launch_url", launch_url)):
        if value is not None:
            entry[key] = value
    with _as_options(lambda: Text("system.not_added", "system {code} not registered",
                                  code=code)):
        ops.add_system(cli_ctx.gateway, entry)
    click.echo(cli_ctx.msg("system.added", code=code))


@system.command("update")
@click.argument("code")
@click.option("--name", default=None)
@click.option("--upstream", default=None)
@click.option("--portal-path", default=None, help="Where the portal's launcher opens it.")
@click.option("--launch-url", default=None, metavar="URL", help=LAUNCH_URL_HELP)
@click.option("--identity-headers", type=click.Choice(IDENTITY_MODES), default=None,
              help=IDENTITY_HELP)
@click.option("--remote-user/--no-remote-user", default=None, help=REMOTE_USER_HELP)
@click.option("--assertion", type=click.Choice(REUSE_MODES), default=None,
              help=ASSERTION_HELP)
@pass_cli
def system_update(cli_ctx: CliContext, code: str, name: str | None, upstream: str | None,
                  portal_path: str | None, launch_url: str | None,
                  identity_headers: str | None, remote_user: bool | None,
                  assertion: str | None) -> None:
    """Change a system; what is not named stays as it is."""
    changes = {k: v for k, v in (("name", name), ("upstream", upstream),
                                 ("portal_path", portal_path), ("launch_url", launch_url),
                                 ("identity_headers", identity_headers),
                                 ("remote_user", remote_user),
                                 ("assertion", assertion)) if v is not None}
    with _as_options(lambda: Text("system.not_updated", "system {code} not changed",
                                  code=code)):
        ops.update_system(cli_ctx.gateway, code, changes)
    click.echo(cli_ctx.msg("system.updated", code=code))


def _names(value: str | None) -> list[str] | None:
    """``--cas name,department`` as a list; "" (or "-") the identifier alone."""
    if value is None:
        return None
    return [n.strip() for n in value.replace("，", ",").split(",")
            if n.strip() and n.strip() != "-"]


@system.command("release")
@click.argument("code")
@click.option("--cas", default=None, metavar="NAMES",
              help="What its CAS services receive, comma-separated "
                   f"({', '.join(ATTRIBUTES)}); \"\" for the username alone.")
@click.option("--saml", default=None, metavar="NAMES",
              help="What its SAML service provider receives, the same names; \"\" for the "
                   "NameID alone.")
@click.option("--forward-auth", "forward_auth", default=None, metavar="NAMES",
              help="What forward-auth's answer adds to the user, department and roles it "
                   f"always carries ({', '.join(FORWARD_AUTH)}: X-Govgate-Name, "
                   "X-Govgate-Region); \"\" for neither.")
@pass_cli
def system_release(cli_ctx: CliContext, code: str, cas: str | None,
                   saml: str | None, forward_auth: str | None) -> None:
    """Show or set the attributes a system's CAS services, SAML SP and forward-auth
    answer receive besides the user's identifier (the state file's cas_attributes,
    saml_sp.attributes and forward_auth_attributes)."""
    lists = {k: v for k, v in (("cas", _names(cas)), ("saml", _names(saml)),
                               ("forward_auth", _names(forward_auth)))
             if v is not None}
    if lists:
        with _as_options(lambda: Text("system.not_updated", "system {code} not changed",
                                      code=code)):
            ops.set_release(cli_ctx.gateway, code, lists)
        click.echo(cli_ctx.msg("system.release_set", code=code))
    release = ops.release_of(ops.get_system(cli_ctx.gateway.services.engine, code))
    click.echo("protocol\treleased")
    for protocol in ops.PROTOCOLS:
        listed = release[protocol]
        shown = "(not registered)" if listed is None else ",".join(listed) or "-"
        click.echo(f"{protocol}\t{shown}")


@system.command("sign-on")
@click.argument("code")
@click.option("--cas-service", "cas_service", multiple=True, metavar="URL",
              help="An address that may receive a CAS ticket (https; http only on a "
                   "loopback host; a * only at the end after a /). Repeat it for more; "
                   "the list given replaces the system's.")
@click.option("--no-cas", is_flag=True, help="Remove the CAS service addresses (and the "
                                              "CAS release list).")
@click.option("--add-cas-service", "add_cas", multiple=True, metavar="URL",
              help="Add this address to the system's CAS service addresses, the others "
                   "kept. Repeat it for more.")
@click.option("--remove-cas-service", "remove_cas", multiple=True, metavar="URL",
              help="Remove this address, the others kept (removing the last removes CAS). "
                   "Repeat it for more.")
@click.option("--saml-metadata", "metadata_file", default=None, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="The SAML service provider's metadata (its XML file); registers the "
                   "SP or replaces its metadata.")
@click.option("--no-saml", is_flag=True, help="Remove the SAML service provider.")
@click.option("--name-id", "name_id", default=None,
              type=click.Choice(["persistent", "transient"]),
              help="The NameID format its assertions carry.")
@click.option("--release-username/--no-release-username", "release_username", default=None,
              help="Whether its assertions also carry the username (the uid attribute; "
                   "saml_sp.release_username).")
@click.option("--encrypt-assertions", "encryption", default=None,
              type=click.Choice(["metadata", "always", "never"]),
              help="Whether its assertions are encrypted: as its metadata says (a "
                   "KeyDescriptor use=\"encryption\"; the default), always, or never.")
@pass_cli
def system_sign_on(cli_ctx: CliContext, code: str, cas_service: tuple[str, ...],
                   no_cas: bool, add_cas: tuple[str, ...], remove_cas: tuple[str, ...],
                   metadata_file: str | None, no_saml: bool, name_id: str | None,
                   release_username: bool | None, encryption: str | None) -> None:
    """Show or set how a system's users sign on to it: its CAS service addresses and its
    SAML service provider (metadata, NameID format, encrypted assertions). Without
    options it shows them."""
    changes: dict[str, Any] = {}
    if cas_service and no_cas:
        raise input_error("system.cas_both")
    if (add_cas or remove_cas) and (cas_service or no_cas):
        raise input_error("system.cas_whole_or_one")
    if metadata_file is not None and no_saml:
        raise input_error("system.saml_both")
    if cas_service or no_cas:
        changes["cas_services"] = list(cas_service)
    if add_cas:
        changes["cas_services_add"] = list(add_cas)
    if remove_cas:
        changes["cas_services_remove"] = list(remove_cas)
    if no_saml:
        changes["saml_metadata"] = ""
    elif metadata_file is not None:
        try:
            with open(metadata_file, "rb") as fh:
                changes["saml_metadata"] = fh.read(256 * 1024 + 1).decode("utf-8")
        except OSError as exc:
            raise input_error("system.metadata_unreadable", file=metadata_file,
                              reason=exc.strerror or exc) from None
        except UnicodeDecodeError:
            raise input_error("catalogue.not_utf8", file=metadata_file) from None
    if name_id is not None:
        changes["saml_name_id"] = name_id
    if release_username is not None:
        changes["saml_release_username"] = release_username
    if encryption is not None:
        changes["saml_encryption"] = encryption
    if changes:
        ops.set_sign_on(cli_ctx.gateway, code, changes)
        click.echo(cli_ctx.msg("system.sign_on_set", code=code))
    shown = ops.sign_on_of(ops.get_system(cli_ctx.gateway.services.engine, code))
    click.echo("cas_services\t" + (" ".join(shown["cas_services"]) or "-"))
    saml = shown["saml"]
    click.echo("saml\t" + ("-" if saml is None else
                           f"{saml['entity_id']} (name_id {saml['name_id']}"
                           + (", release_username" if saml["release_username"] else "")
                           + f", encrypt_assertions {saml['encryption']}: "
                           f"{'encrypted' if saml['encrypted'] else 'signed only'})"))
