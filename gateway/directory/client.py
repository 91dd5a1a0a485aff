"""Reading the directory with ldap3: the people (a paged search), the department OUs,
the mapped groups, which accounts are disabled; and a person's password checked by a
bind as that person. LDAPS or StartTLS verify the server against ``ca_file``."""

from __future__ import annotations

import functools
import math
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway.directory.config import DirectoryConfig
from gateway.directory.errors import DirectoryUnavailable
from gateway.org import sign_in_name
from gateway.settings import Settings
from texts import Text

if TYPE_CHECKING:
    import ldap3

# ask the server for no attributes, only the entries' DNs (RFC 4511 4.5.1.8)
NO_ATTRIBUTES = "1.1"
GROUP_CLASSES = "(|(objectClass=groupOfNames)(objectClass=group))"


def _ldap3() -> ModuleType:
    """ldap3 when the directory is first used, not at start: with pyasn1 it is 127
    modules and about 5 MiB of a server's resident memory, which a gateway with no
    directory configured would carry for nothing."""
    import ldap3
    import ldap3.core.exceptions
    import ldap3.utils.conv
    import ldap3.utils.dn

    return ldap3


def dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN as the directory compares it: attribute types and values case-folded, space
    round the separators ignored (a member's DN may be spelt unlike the entry's)."""
    ldap = _ldap3()
    try:
        return tuple((t.casefold(), v.casefold())
                     for t, v, _ in ldap.utils.dn.parse_dn(dn, strip=True))
    except ldap.core.exceptions.LDAPInvalidDnError:
        return (("", dn.casefold()),)


@dataclass(frozen=True)
class Person:
    dn: str
    username: str
    name: str
    email: str | None
    # the username attribute's values past the first: one entry under several sign-in
    # names is no one person (the sync refuses it)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unit:
    """An OU that is a department: its DN, name (the ``ou``) and govgate code."""

    dn: str
    name: str
    code: str


@functools.cache
def _verified_tls() -> type[ldap3.Tls]:
    """The class, made on first use: its base is ldap3's."""

    class VerifiedTls(_ldap3().Tls):  # type: ignore[misc]
        """LDAPS and StartTLS with the standard library's own checks: the certificate
        against ``ca_file`` (or the system's CAs), the host name, TLS 1.2 at least.
        ldap3 2.9 turns the context's host-name check off and calls
        ``ssl.match_hostname``, deprecated since Python 3.7 and gone in 3.12."""

        def __init__(self, ca_file: str, host: str, context: ssl.SSLContext) -> None:
            super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file or None)
            self.context = context
            self.host = host

        def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
            connection.socket = self.context.wrap_socket(
                connection.socket, server_hostname=self.host,
                do_handshake_on_connect=do_handshake)

    return VerifiedTls


def _ldap_error() -> type[Exception]:
    """ldap3's base exception (an ``except`` clause evaluates it only when something
    was raised, by then ldap3 is loaded)."""
    return _ldap3().core.exceptions.LDAPException  # type: ignore[no-any-return]


def _escape(value: str) -> str:
    return str(_ldap3().utils.conv.escape_filter_chars(value))


def _first(entry: dict[str, Any], attribute: str) -> str:
    value = entry.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else ""
    return "" if value is None else str(value)


def _only(entry: dict[str, Any], attribute: str) -> str | None:
    """The attribute's one value as a sign-in name (NFKC, case-folded), None when it
    has none or several."""
    value = entry.get(attribute)
    values = value if isinstance(value, list) else [value] if value else []
    return sign_in_name(str(values[0])) if len(values) == 1 else None


class DirectoryClient:
    """One directory. Each call opens its own connection and closes it: sign-ins run
    in threads, and a sync runs rarely."""

    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config
        parts = urlsplit(config.url)
        self.host, self.port = parts.hostname or "", parts.port
        self.ldaps = parts.scheme == "ldaps"
        # the context now (a CA file that cannot be read stops start-up), ldap3's
        # wrapper round it on the first connection
        self._context = ssl.create_default_context(cafile=config.ca_file or None)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2

    @functools.cached_property
    def tls(self) -> ldap3.Tls:
        return _verified_tls()(self.config.ca_file, self.host, self._context)

    def server(self) -> ldap3.Server:
        """A server object per connection: ldap3 marks an address that failed as
        unavailable for a while, and a directory back from an outage must be used at
        once (the host name is also resolved anew, for a directory behind DNS)."""
        ldap = _ldap3()
        return ldap.Server(self.host, port=self.port, use_ssl=self.ldaps, tls=self.tls,
                           get_info=ldap.NONE, connect_timeout=self.config.timeout)

    def unavailable(self, exc: Exception) -> DirectoryUnavailable:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return DirectoryUnavailable(Text(
            "directory.unavailable", "the directory {url} is unavailable: {detail}",
            url=self.config.url, detail=detail[:200]))

    def _connect(self, dn: str, password: str) -> ldap3.Connection:
        # ldap3 packs the receive timeout into SO_RCVTIMEO: whole seconds
        conn = _ldap3().Connection(
            self.server(), user=dn or None, password=password or None,
            receive_timeout=max(1, math.ceil(self.config.timeout)),
            read_only=True, raise_exceptions=False, auto_referrals=False)
        try:
            conn.open()
            if self.config.start_tls and not self.ldaps and not conn.start_tls():
                raise DirectoryUnavailable(Text("directory.start_tls",
                                                "the directory {url} refused StartTLS",
                                                url=self.config.url))
        except BaseException:
            conn.unbind()
            if conn.socket is not None:  # ldap3 keeps a socket that failed to connect
                conn.socket.close()
            raise
        return conn

    def service(self) -> ldap3.Connection:
        """A connection bound as the service account (anonymous without one)."""
        password = self.config.bind_password.get() if self.config.bind_password else ""
        try:
            conn = self._connect(self.config.bind_dn, password)
            if self.config.bind_dn and not conn.bind():
                conn.unbind()
                raise DirectoryUnavailable(Text(
                    "directory.service_bind",
                    "the directory {url} refused the service account {dn}",
                    url=self.config.url, dn=self.config.bind_dn))
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        return conn

    # -- reading -----------------------------------------------------------------------

    def search(self, conn: ldap3.Connection, search_filter: str,
               attributes: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every entry under the base DN the filter matches, a page at a time; a
        directory gone in the middle raises DirectoryUnavailable."""
        cookie: Any = None
        seen, until = 0, time.monotonic() + self.config.search_seconds
        while True:
            found = self.page(conn, search_filter, attributes, cookie)
            seen += len(found)
            if seen > self.config.max_entries:
                # a directory answering without end is refused before it fills the memory
                raise self.unavailable(Exception(
                    f"more than {self.config.max_entries} entries match {search_filter}"))
            if time.monotonic() > until:
                # each answer within the timeout, but page after page: the maintenance
                # round that runs the sync would wait for it
                raise self.unavailable(Exception(
                    f"the search {search_filter} took longer than "
                    f"{self.config.search_seconds:g} s"))
            yield from found
            controls = (conn.result or {}).get("controls") or {}
            cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
            if not cookie:
                return

    def page(self, conn: ldap3.Connection, search_filter: str, attributes: list[str],
             cookie: Any) -> list[tuple[str, dict[str, Any]]]:
        try:
            conn.search(self.config.base_dn, search_filter, _ldap3().SUBTREE,
                        attributes=attributes, paged_size=self.config.page_size,
                        paged_cookie=cookie)
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        result = conn.result or {}
        if result.get("result", 0) not in (0, 4):  # 4: size limit, a page's end
            raise self.unavailable(Exception(
                f"{result.get('description', 'error')} {result.get('message', '')}".strip()))
        return [(e["dn"], dict(e.get("attributes") or {})) for e in conn.response or []
                if e.get("type") == "searchResEntry"]

    def people(self, conn: ldap3.Connection) -> list[Person]:
        c = self.config
        attributes = [c.username_attribute, c.name_attribute, c.email_attribute]
        out = []
        for dn, entry in self.search(conn, c.user_filter, attributes):
            username = _first(entry, c.username_attribute)
            values = entry.get(c.username_attribute)
            out.append(Person(dn=dn, username=username,
                              name=_first(entry, c.name_attribute) or username,
                              email=_first(entry, c.email_attribute) or None,
                              aliases=tuple(str(v) for v in values[1:])
                              if isinstance(values, list) else ()))
        return out

    def disabled(self, conn: ldap3.Connection) -> set[tuple[tuple[str, str], ...]]:
        """The DNs (as ``dn_key``) of the people the disabled filter matches."""
        both = f"(&{self.config.user_filter}{self.config.disabled_filter})"
        return {dn_key(dn) for dn, _ in self.search(conn, both, [NO_ATTRIBUTES])}

    def units(self, conn: ldap3.Connection) -> list[Unit]:
        attr = self.config.department_attribute
        found = self.search(conn, f"(&(objectClass=organizationalUnit)({attr}=*))",
                            ["ou", attr])
        return [Unit(dn=dn, name=_first(e, "ou"), code=_first(e, attr)) for dn, e in found]

    def groups(self, conn: ldap3.Connection) -> dict[str, dict[str, list[str]]]:
        """Each mapped group's cn, the DNs of the entries of that cn, their members'."""
        names = [g for g, _ in self.config.group_roles]
        if not names:
            return {}
        wanted = "".join(f"(cn={_escape(n)})" for n in names)
        out: dict[str, dict[str, list[str]]] = {}
        for dn, e in self.search(conn, f"(&{GROUP_CLASSES}(|{wanted}))", ["cn", "member"]):
            members = e.get("member") or []
            out.setdefault(_first(e, "cn"), {})[dn] = [str(m) for m in members]
        return out

    # -- signing in ----------------------------------------------------------------------

    def verify(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s: found with the service account, then
        a bind as that person. An empty password is refused here (LDAP would take it
        as an anonymous bind); DirectoryUnavailable when the directory cannot answer."""
        if not password or not username:
            return False
        c = self.config
        look_for = (f"(&{c.user_filter}"
                    f"({c.username_attribute}={_escape(username)}))")
        conn = self.service()
        try:
            conn.search(c.base_dn, look_for, _ldap3().SUBTREE,
                        attributes=[c.username_attribute], size_limit=2)
            # an entry found by a second value of its username attribute is someone
            # else's (the sync refuses it): signing in as that name would be taking it
            found = [e["dn"] for e in conn.response or [] if e.get("type") == "searchResEntry"
                     and _only(e.get("attributes") or {}, c.username_attribute) == username]
            if (conn.result or {}).get("result", 0) not in (0, 4):
                raise self.unavailable(Exception(str((conn.result or {}).get("description"))))
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        finally:
            conn.unbind()
        if len(found) != 1:
            return False
        try:
            person = self._connect(found[0], password)
            try:
                ok = bool(person.bind())
                code = (person.result or {}).get("result", 49)
            finally:
                person.unbind()
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        if not ok and code != 49:  # 49: invalidCredentials; anything else is not an answer
            raise self.unavailable(Exception(str((person.result or {}).get("description"))))
        return ok


def directory_client(settings: Settings) -> DirectoryClient | None:
    """The settings' directory, or None when none is configured."""
    config = DirectoryConfig.from_settings(settings)
    return DirectoryClient(config) if config else None


def password_checker(client: DirectoryClient | None) -> Callable[[str, str], bool]:
    """``directory_password_ok`` for ``client``: the account page's proof."""
    return functools.partial(directory_password_ok, client)


def directory_password_ok(client: DirectoryClient | None, username: str,
                          password: str) -> bool:
    """A directory user's password, checked by the directory; with no directory
    configured any more, DirectoryUnavailable (the sign-in fails closed)."""
    if client is None:
        raise DirectoryUnavailable(Text("directory.none", "no directory is configured for "
                                        "the directory's users"))
    return client.verify(username, password)
