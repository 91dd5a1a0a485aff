"""Reading the directory with ldap3: the people (a paged search), the department OUs,
the mapped groups (their members read in full through Active Directory's ranges, and
through the groups nested in them), which accounts are disabled; and a person's
password checked by a bind as that person. LDAPS or StartTLS verify the server against
``ca_file``. Every operation has a deadline: a server answering byte by byte is cut,
not waited for."""

from __future__ import annotations

import contextlib
import functools
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from gateway.directory.config import DirectoryConfig
from gateway.directory.errors import (
    DirectoryPasswordChange,
    DirectoryRefusal,
    DirectoryUnavailable,
)
from gateway.org import USERNAME_RE
from gateway.settings import Settings
from texts import Text

if TYPE_CHECKING:
    import ldap3

# ask the server for no attributes, only the entries' DNs (RFC 4511 4.5.1.8)
NO_ATTRIBUTES = "1.1"
# Active Directory's: a security identifier (binary), read raw (ldap3 would decode
# some as text), and the RID of the user's primary group, which AD lists in neither
# the group's ``member`` nor the user's ``memberOf``
OBJECT_SID = "objectSid"
PRIMARY_GROUP = "primaryGroupID"
UPN = "userPrincipalName"
SAM_ACCOUNT = "sAMAccountName"
# where AD names a domain's NetBIOS name: the root DSE's configuration partition, whose
# CN=Partitions holds a crossRef per domain of the forest (MS-ADTS 3.1.1.3.2, 6.1.1.2.1.1)
CONFIGURATION_NC = "configurationNamingContext"
NETBIOS_NAME = "nETBIOSName"
# where AD keeps the members of its groups that are another domain's or forest's
# (``foreignSecurityPrincipal``, MS-ADTS 6.1.1.4.13): their people are not this directory's
FOREIGN_PRINCIPALS = ("cn", "foreignsecurityprincipals")
# Active Directory's reason for refusing a bind (invalidCredentials), in its diagnostic
# message: "80090308: LdapErr: ..., comment: AcceptSecurityContext error, data 773, ..."
# 773: the user must change the password at next logon, 532: the password expired,
# 533: the account is disabled, 701: it expired. AD answers these only to the right
# password (a wrong one is data 52e); 775, locked out, it answers to any password, and
# checks none while the lockout lasts
AD_BIND_DATA = re.compile(r"AcceptSecurityContext error, data (?P<data>[0-9a-f]+)\b",
                          re.IGNORECASE)
MUST_CHANGE = {"773": Text("directory.must_change", "the password must be changed at next logon"),
               "532": Text("directory.password_expired", "the password expired")}
# the refusals of the account itself: (why, for the record; the portal's message key)
AD_REFUSALS = {"533": (Text("directory.ad_disabled", "the account is disabled"),
                       "directory_ad_disabled"),
               "701": (Text("directory.ad_expired", "the account expired"),
                       "directory_ad_expired"),
               "775": (Text("directory.ad_locked", "the account is locked out"),
                       "directory_ad_locked")}
# userAccountControl's ACCOUNTDISABLE bit (MS-ADTS 2.2.16), by AD's bitwise-and rule
AD_DISABLED = "(userAccountControl:1.2.840.113556.1.4.803:=2)"
# accountExpires (MS-ADA1): 100 ns since 1601 (FILETIME); 0 or the largest value: never
FILETIME_EPOCH = 11_644_473_600
GROUP_CLASSES = "(|(objectClass=groupOfNames)(objectClass=group))"
PAGED = "1.2.840.113556.1.4.319"  # RFC 2696
# an attribute's values a range at a time (MS-ADTS 3.1.1.3.1.3.3): member;range=0-1499
RANGE = re.compile(r"^(?P<type>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)
SIZE_LIMIT, ADMIN_LIMIT, NO_SUCH_OBJECT = 4, 11, 32
DnKey = tuple[tuple[str, str], ...]
# ldap3's connection options. Ranges are read by ``DirectoryClient.values``: ldap3's own
# reading (auto_range) keeps what it has when a next range fails, a group silently cut
# short; without it, ldap3's empty attributes drop an attribute not in the answer, and
# fail (KeyError) on the answer to ``member;range=1500-*``
CONNECTION: dict[str, Any] = {"read_only": True, "raise_exceptions": False,
                              "auto_referrals": False, "auto_range": False,
                              "return_empty_attributes": False}


def _ldap3() -> ModuleType:
    """ldap3 when the directory is first used, not at start: with pyasn1 it is 127
    modules and about 5 MiB of a server's resident memory, which a gateway with no
    directory configured would carry for nothing."""
    import ldap3
    import ldap3.core.exceptions
    import ldap3.utils.conv
    import ldap3.utils.dn

    return ldap3


def dn_key(dn: str) -> DnKey:
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


@dataclass
class Groups:
    """The mapped groups: each cn, the DNs of the entries of that cn, and their members'
    DNs, direct, through nested groups and by their primary group; ``too_deep``: the
    groups found nested deeper than ``DirectoryConfig.max_nesting`` below a mapped one
    (their members are not read: the sync stops on them). ``foreign`` and ``outside``:
    the members not read, as (the group's DN, the member's DN): another domain's or
    forest's (AD's ``foreignSecurityPrincipal``), outside the base DN, or under a
    continuation reference (``referred``)."""

    members: dict[str, dict[str, list[str]]]
    too_deep: list[tuple[str, str]]  # (the mapped group's DN, the deep group's DN)
    foreign: list[tuple[str, str]] = field(default_factory=list)
    outside: list[tuple[str, str]] = field(default_factory=list)
    # under a continuation reference not followed (a child domain's people)
    referred: list[tuple[str, str]] = field(default_factory=list)


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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _plain(entry: dict[str, Any], attribute: str) -> list[Any]:
    for name, value in entry.items():
        if name.casefold() == attribute.casefold():
            return _as_list(value)
    return []


def _ranged(entry: dict[str, Any], attribute: str) -> tuple[str, int, str] | None:
    """The key of ``attribute``'s range in ``entry`` (``member;range=0-1499``), its
    low end and its high end (a number, or ``*`` for the last)."""
    for name in entry:
        match = RANGE.match(name)
        if match and match["type"].casefold() == attribute.casefold():
            return name, int(match["low"]), match["high"]
    return None


def _attributes(entry: dict[str, Any]) -> dict[str, Any]:
    """An answer's attributes, ``objectSid`` as the bytes sent."""
    out = dict(entry.get("attributes") or {})
    for name, raw in (entry.get("raw_attributes") or {}).items():
        if name.casefold() == OBJECT_SID.casefold():
            out[name] = [bytes(v) for v in _as_list(raw)]
    return out


def sid_parts(value: Any) -> tuple[bytes, int] | None:
    """A binary SID (MS-DTYP 2.4.2.2: revision 1, the count of sub-authorities, a 48-bit
    authority, then the sub-authorities, little-endian) as its domain's SID and its
    RID, the last sub-authority; None for anything else. The domain's SID is given as
    a binary SID of one sub-authority fewer, to compare with another's."""
    if not isinstance(value, bytes) or len(value) < 12 or value[0] != 1:
        return None
    count = value[1]
    if count < 1 or len(value) != 8 + 4 * count:
        return None
    domain = bytes([1, count - 1]) + value[2:-4]
    return domain, int.from_bytes(value[-4:], "little")


def _sid(entry: dict[str, Any]) -> tuple[bytes, int] | None:
    values = _plain(entry, OBJECT_SID)
    return sid_parts(values[0]) if len(values) == 1 else None


def filetime(unix_seconds: float) -> int:
    """``unix_seconds`` as Active Directory's ``accountExpires`` counts."""
    return int((unix_seconds + FILETIME_EPOCH) * 10_000_000)


def _under(key: DnKey, top: DnKey) -> bool:
    """Whether the DN ``key`` is ``top`` or below it."""
    return bool(top) and key[-len(top):] == top


def _referred_dn(uri: str) -> DnKey:
    """The DN a continuation reference names (RFC 4516: ``ldap://host/dn??sub``)."""
    return dn_key(unquote(urlsplit(uri).path.lstrip("/")))


def _note(found: list[tuple[str, str]], pair: tuple[str, str]) -> None:
    if pair not in found:  # a group nested in two mapped ones is read for both
        found.append(pair)


def usable_username(value: str) -> str | None:
    """The directory's value as a govgate username, or None when it is none as spelt
    (Chinese characters, a space, full-width letters, longer than 64: AD allows them
    all in a ``sAMAccountName``). Only the case may differ: the directory matches the
    value so (caseIgnoreMatch) when the person signs in, so the username found at sign-in
    is the entry synced, and no normalising (NFKC's full-width to ASCII, casefold's
    ß to ss) makes one person's name another's."""
    return value.lower() if value.isascii() and USERNAME_RE.match(value.lower()) else None


def _only(entry: dict[str, Any], attribute: str) -> str | None:
    """The attribute's one value as a govgate username, None when it has none, several
    or one that is no govgate username (the sync skips that person)."""
    value = entry.get(attribute)
    values = value if isinstance(value, list) else [value] if value else []
    return usable_username(str(values[0])) if len(values) == 1 else None


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
        self._netbios: str | None = None  # read_netbios_domain's answer

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
            **CONNECTION)
        try:
            conn.open()
            if self.config.start_tls and not self.ldaps:
                with self.answer(conn, Text("directory.op_start_tls", "StartTLS")):
                    started = conn.start_tls()
                if not started:
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
            if self.config.bind_dn and not self.bind(conn, self.config.bind_dn):
                conn.unbind()
                raise DirectoryUnavailable(Text(
                    "directory.service_bind",
                    "the directory {url} refused the service account {dn}",
                    url=self.config.url, dn=self.config.bind_dn))
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        return conn

    def bind(self, conn: ldap3.Connection, dn: str) -> bool:
        try:
            with self.answer(conn, Text("directory.op_bind", "the bind as {dn}", dn=dn)):
                return bool(conn.bind())
        except DirectoryUnavailable:
            conn.unbind()
            raise

    def answer(self, conn: ldap3.Connection, what: Text) -> contextlib.AbstractContextManager[None]:
        """One exchange (a bind, a sign-in's search): ``timeout`` for all of it."""
        seconds = self.config.timeout
        return self.deadline(conn, time.monotonic() + seconds, what, seconds)

    # -- reading -----------------------------------------------------------------------

    def refused(self, detail: Text) -> DirectoryUnavailable:
        return DirectoryUnavailable(Text(
            "directory.unavailable", "the directory {url} is unavailable: {detail}",
            url=self.config.url, detail=detail))

    @contextlib.contextmanager
    def deadline(self, conn: ldap3.Connection, until: float, what: Text,
                 seconds: float) -> Iterator[None]:
        """Everything done on ``conn`` inside ends by ``until`` (``time.monotonic``), the
        end of ``seconds`` given to ``what``: past it the socket is shut, the read
        waiting on it ends, and DirectoryUnavailable says why. The
        receive timeout bounds each read only: a server sending a byte every few
        seconds would hold the sync, and the maintenance round running it, for ever."""
        left = until - time.monotonic()
        if left <= 0:
            raise self.too_slow(what, seconds)
        fired = threading.Event()

        def cut() -> None:
            fired.set()
            with contextlib.suppress(OSError, AttributeError, TypeError):
                # the plain socket's shutdown, under TLS too: the read waiting on it sees
                # the end (an SSLSocket's own would drop its state under that read)
                socket.socket.shutdown(conn.socket, socket.SHUT_RDWR)

        timer = threading.Timer(left, cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        except (DirectoryUnavailable, _ldap_error()) as exc:
            if fired.is_set():
                raise self.too_slow(what, seconds) from None
            if isinstance(exc, DirectoryUnavailable):
                raise
            raise self.unavailable(exc) from None
        finally:
            timer.cancel()
        if fired.is_set():  # the last answer came as the time ran out
            raise self.too_slow(what, seconds)

    def too_slow(self, what: Text, seconds: float) -> DirectoryUnavailable:
        return self.refused(Text("directory.too_slow", "{what} took longer than {seconds} s",
                                 what=what, seconds=f"{seconds:g}"))

    def search(self, conn: ldap3.Connection, search_filter: str, attributes: list[str],
               references: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every entry under the base DN the filter matches, a page at a time; a
        directory gone in the middle raises DirectoryUnavailable, and so does one that
        stops the search at its size limit (entries would be missed: a sync would take
        the people not read for gone) or takes longer than ``search_seconds``. The
        continuation references answered (RFC 4511 4.5.3: a part of the tree another
        server holds, AD's child domains) go to ``references``: they are not followed."""
        cookie: Any = None
        seen, seconds = 0, self.config.search_seconds
        until = time.monotonic() + seconds
        while True:
            with self.deadline(conn, until, Text("directory.op_search", "the search "
                                                 "{filter}", filter=search_filter), seconds):
                found = self.page(conn, search_filter, attributes, cookie)
            for e in conn.response or []:
                if references is not None and e.get("type") == "searchResRef":
                    references.extend(u for u in map(str, e.get("uri") or [])
                                      if u not in references)
            seen += len(found)
            if (conn.result or {}).get("result") == SIZE_LIMIT:
                # OpenLDAP's sizelimit counts a paged search's pages together (its
                # size.prtotal): the search ends there, the entries past it unread.
                # Taken for the end, they were people gone from the directory, disabled
                raise self.refused(Text(
                    "directory.size_limit", "its size limit ended the search {filter} "
                    "after {n} entries; lift the service account's limit on paged "
                    "searches (OpenLDAP: limits ... size.prtotal=unlimited)",
                    filter=search_filter, n=seen))
            if seen > self.config.max_entries:
                # a directory answering without end is refused before it fills the memory
                raise self.unavailable(Exception(
                    f"more than {self.config.max_entries} entries match {search_filter}"))
            yield from found
            controls = (conn.result or {}).get("controls") or {}
            cookie = controls.get(PAGED, {}).get("value", {}).get("cookie")
            if not cookie:
                return

    def page(self, conn: ldap3.Connection, search_filter: str, attributes: list[str],
             cookie: Any) -> list[tuple[str, dict[str, Any]]]:
        """One page; a size limit reached is left to ``search`` (``conn.result``)."""
        conn.search(self.config.base_dn, search_filter, _ldap3().SUBTREE,
                    attributes=attributes, paged_size=self.config.page_size,
                    paged_cookie=cookie)
        result = conn.result or {}
        code = result.get("result", 0)
        if code == ADMIN_LIMIT:
            raise self.refused(Text(
                "directory.page_limit", "it refuses pages of {size} entries "
                "(adminLimitExceeded); set directory_page_size to its page limit or below",
                size=self.config.page_size))
        if code not in (0, SIZE_LIMIT):
            raise self.unavailable(Exception(
                f"{result.get('description', 'error')} {result.get('message', '')}".strip()))
        return [(e["dn"], _attributes(e)) for e in conn.response or []
                if e.get("type") == "searchResEntry"]

    def entry(self, conn: ldap3.Connection, dn: str, search_filter: str,
              attributes: list[str]) -> dict[str, Any] | None:
        """The entry at ``dn`` if the filter matches it, else None (none there)."""
        conn.search(dn, search_filter, _ldap3().BASE, attributes=attributes)
        result = conn.result or {}
        code = result.get("result", 0)
        if code == NO_SUCH_OBJECT:
            return None
        if code != 0:
            raise self.unavailable(Exception(
                f"{result.get('description', 'error')} {result.get('message', '')}".strip()))
        found = [_attributes(e) for e in conn.response or []
                 if e.get("type") == "searchResEntry"]
        return found[0] if found else None

    def values(self, conn: ldap3.Connection, dn: str, entry: dict[str, Any],
               attribute: str) -> list[str]:
        """Every value of ``attribute`` of the entry ``dn`` read as ``entry``. Active
        Directory sends at most MaxValRange (1500) values of one attribute per entry,
        as ``member;range=0-1499``; the rest are asked for range after range
        (``member;range=1500-*``) until a range ends in ``*``. A range that does not go
        on from where the last ended, or an entry that stops answering ranges, is the
        directory unavailable: a group read in part would take roles from its members."""
        got = [str(v) for v in _plain(entry, attribute)]
        ranged = _ranged(entry, attribute)
        while ranged is not None:
            key, low, high = ranged
            chunk = [str(v) for v in _as_list(entry[key])]
            if low != len(got) or (high != "*" and (not chunk or int(high) < low)):
                raise self.refused(Text(
                    "directory.bad_range", "{dn}: the range {range} does not follow the "
                    "{n} values read", dn=dn, range=key, n=len(got)))
            got.extend(chunk)
            if high == "*":
                break
            if len(got) > self.config.max_entries:
                raise self.unavailable(Exception(
                    f"more than {self.config.max_entries} values of {attribute} in {dn}"))
            asked = f"{attribute};range={len(got)}-*"
            follow = self.entry(conn, dn, "(objectClass=*)", [asked])
            ranged = _ranged(follow, attribute) if follow is not None else None
            if follow is None or ranged is None:
                raise self.refused(Text(
                    "directory.range_stopped", "{dn}: no {attribute} after the {n} values "
                    "read, the last range not ending in *", dn=dn, attribute=attribute,
                    n=len(got)))
            entry = follow
        return got

    def people(self, conn: ldap3.Connection,
               references: list[str] | None = None) -> list[Person]:
        """The people the user filter matches; the continuation references the search
        met (people not read) to ``references``."""
        c = self.config
        attributes = [c.username_attribute, c.name_attribute, c.email_attribute]
        out = []
        for dn, entry in self.search(conn, c.user_filter, attributes, references):
            username = _first(entry, c.username_attribute)
            values = entry.get(c.username_attribute)
            out.append(Person(dn=dn, username=username,
                              name=_first(entry, c.name_attribute) or username,
                              email=_first(entry, c.email_attribute) or None,
                              aliases=tuple(str(v) for v in values[1:])
                              if isinstance(values, list) else ()))
        return out

    def disabled(self, conn: ldap3.Connection) -> set[tuple[tuple[str, str], ...]]:
        """The DNs (as ``dn_key``) of the people the disabled filter matches, and of
        the Active Directory accounts disabled (``userAccountControl``'s ACCOUNTDISABLE,
        whatever the filter: the default is OpenLDAP's, and an AD left with it kept
        its disabled people active) or past their ``accountExpires`` (AD refuses
        their bind, but a session or refresh token made before would go on in
        govgate). A directory without these attributes matches none by them (RFC 4511
        4.5.1.7: Undefined)."""
        expired = f"(&(accountExpires>=1)(accountExpires<={filetime(time.time())}))"
        both = (f"(&{self.config.user_filter}"
                f"(|{self.config.disabled_filter}{AD_DISABLED}{expired}))")
        return {dn_key(dn) for dn, _ in self.search(conn, both, [NO_ATTRIBUTES])}

    def units(self, conn: ldap3.Connection) -> list[Unit]:
        attr = self.config.department_attribute
        found = self.search(conn, f"(&(objectClass=organizationalUnit)({attr}=*))",
                            ["ou", attr])
        return [Unit(dn=dn, name=_first(e, "ou"), code=_first(e, attr)) for dn, e in found]

    def groups(self, conn: ldap3.Connection, references: list[str] | None = None) -> Groups:
        """Each mapped group's cn, the DNs of the entries of that cn and their members:
        read in full (``values``), and through the groups nested in them, as Active
        Directory's LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941) would give
        them; OpenLDAP has no such rule, so the nesting is followed here, for both. A
        member that is one of the groups under the base DN (one search of their DNs)
        is read in turn, each group once (a cycle ends), down to ``max_nesting`` groups
        below the mapped one; a group outside the base DN is not read, as its people
        are not. Its members in other domains or forests (AD's foreign security
        principals), outside the base DN and under the ``references`` the people's
        search met are not read either: ``Groups.foreign``, ``outside`` and
        ``referred`` name them. A group with an ``objectSid`` (AD's) also holds the
        people whose ``primaryGroupID`` is its RID in its domain (``primary``)."""
        names = [g for g, _ in self.config.group_roles]
        out = Groups({}, [])
        if not names:
            return out
        wanted = "".join(f"(cn={_escape(n)})" for n in names)
        seconds = self.config.search_seconds
        until = time.monotonic() + seconds
        mapped = list(self.search(conn, f"(&{GROUP_CLASSES}(|{wanted}))",
                                  ["cn", "member", OBJECT_SID]))
        nested = {dn_key(dn) for dn, _ in self.search(conn, GROUP_CLASSES, [NO_ATTRIBUTES])}
        # the groups read: their direct members, the mapped ones' first
        read: dict[DnKey, list[str]] = {}
        with self.deadline(conn, until, Text("directory.op_groups",
                                             "reading the groups' members"), seconds):
            for dn, e in mapped:
                read[dn_key(dn)] = self.values(conn, dn, e, "member") + self.primary(conn, e)
            for dn, e in mapped:
                members = self._nested(conn, dn, read, nested, out,
                                       [_referred_dn(r) for r in references or []])
                out.members.setdefault(_first(e, "cn"), {})[dn] = members
        return out

    def primary(self, conn: ldap3.Connection, group: dict[str, Any]) -> list[str]:
        """The people whose primary group ``group`` is: Active Directory lists them in
        neither its ``member`` nor their ``memberOf`` ("Domain Users", as a rule).
        As AD's clients do: a user whose ``primaryGroupID`` is the group's RID (the
        last part of its ``objectSid``) and whose own ``objectSid`` is of the group's
        domain (a RID is one domain's number). None for a group without a SID."""
        sid = _sid(group)
        if sid is None:
            return []
        domain, rid = sid
        found = self.search(conn, f"(&{self.config.user_filter}({PRIMARY_GROUP}={rid}))",
                            [OBJECT_SID])
        return [dn for dn, e in found if (own := _sid(e)) is not None and own[0] == domain]

    def _nested(self, conn: ldap3.Connection, top: str, read: dict[DnKey, list[str]],
                groups: set[DnKey], found: Groups,
                referred: list[DnKey] | None = None) -> list[str]:
        """The members of the group ``top`` and of the ``groups`` nested in it, level
        by level; ``read`` keeps the groups read for the next mapped group. The groups
        nested too deep, the foreign members and those outside the base DN go to
        ``found``."""
        base = dn_key(self.config.base_dn)
        out: list[str] = []
        seen = {dn_key(top)}
        level = [top]
        for depth in range(self.config.max_nesting + 2):
            below: list[str] = []
            for dn in level:
                if depth > self.config.max_nesting:
                    found.too_deep.append((top, dn))
                    continue
                for member in read.get(dn_key(dn), []):
                    key = dn_key(member)
                    if key not in groups:
                        # another domain's or forest's, or outside the base: not read,
                        # its people are not synced; named so the operator knows
                        if len(key) > 1 and key[1] == FOREIGN_PRINCIPALS:
                            _note(found.foreign, (dn, member))
                        elif any(_under(key, r) for r in referred or []):
                            _note(found.referred, (dn, member))
                        elif not _under(key, base) or key == base:
                            _note(found.outside, (dn, member))
                        else:
                            out.append(member)
                    elif key not in seen:  # one seen is not read again: a cycle ends
                        seen.add(key)
                        if key not in read:
                            group = self.entry(conn, member, GROUP_CLASSES,
                                               ["member", OBJECT_SID])
                            read[key] = (self.values(conn, member, group, "member")
                                         + self.primary(conn, group)
                                         if group is not None else [])
                        below.append(member)
            if not below:
                break
            level = below
        return out

    # -- signing in ----------------------------------------------------------------------

    def principal_username(self, principal: str) -> str | None:
        """The username of the one person ``principal`` names, as staff sign in at
        Windows: a ``userPrincipalName`` (``zhang.san@gov.cn``; its first part need
        not be the ``sAMAccountName``), or the down-level ``GOV\\zhang.san`` of the
        configured NetBIOS domain (``netbios_domain``; when empty, the one AD names,
        ``read_netbios_domain``; any other domain names no one here). None when no
        one's or several's; DirectoryUnavailable when the directory cannot answer."""
        c = self.config
        domain, slash, account = principal.partition("\\")
        if slash:
            attribute, value = SAM_ACCOUNT, account
        else:
            attribute, value = UPN, principal
        if not value or (not slash and c.username_attribute.casefold() == UPN.casefold()):
            return None  # the username itself: nothing to look up
        if slash and (c.netbios_domain or self._netbios is not None) and \
                domain.casefold() != (c.netbios_domain or self._netbios or "").casefold():
            return None  # another domain's: no one here (without asking the directory)
        if slash and not c.netbios_domain and self._netbios is None:
            conn = self.service()
            try:
                netbios = self.read_netbios_domain(conn)
            except _ldap_error() as exc:
                raise self.unavailable(exc) from None
            finally:
                conn.unbind()
            if not netbios or domain.casefold() != netbios.casefold():
                return None
        found = [_only(e.get("attributes") or {}, c.username_attribute) for e in
                 self._sign_in_search(f"(&{c.user_filter}({attribute}={_escape(value)}))")]
        return found[0] if len(found) == 1 else None

    def _sign_in_search(self, look_for: str) -> list[dict[str, Any]]:
        """The entries (at most two: one is the answer, two are too many) the service
        account finds under ``look_for``, with their username attribute;
        DirectoryUnavailable when the directory cannot answer."""
        c = self.config
        conn = self.service()
        try:
            with self.answer(conn, Text("directory.op_sign_in",
                                        "the search for the sign-in name")):
                conn.search(c.base_dn, look_for, _ldap3().SUBTREE,
                            attributes=[c.username_attribute], size_limit=2)
            if (conn.result or {}).get("result", 0) not in (0, SIZE_LIMIT):
                raise self.unavailable(Exception(str((conn.result or {}).get("description"))))
            return [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        finally:
            conn.unbind()

    def read_netbios_domain(self, conn: ldap3.Connection) -> str:
        """The NetBIOS name of the base DN's domain as Active Directory keeps it: the
        ``nETBIOSName`` of the domain's ``crossRef`` (its ``nCName`` the domain's DN, the
        ``dc=`` part of the base DN) under ``CN=Partitions`` of the configuration
        partition the root DSE names (``configurationNamingContext``). Read once, when
        ``directory_netbios_domain`` is empty; "" for a directory without them (not
        AD: down-level names name no one), remembered as well. A failure to answer is
        DirectoryUnavailable, and read again next time."""
        if self._netbios is not None:
            return self._netbios
        ldap = _ldap3()
        # parse_dn keeps a value as written, escapes included
        domain = ",".join(f"{t}={v}" for t, v, _ in
                          ldap.utils.dn.parse_dn(self.config.base_dn, strip=True)
                          if t.casefold() == "dc")
        found = ""
        with self.answer(conn, Text("directory.op_netbios", "reading the NetBIOS domain")):
            conn.search("", "(objectClass=*)", ldap.BASE,
                        attributes=[CONFIGURATION_NC])
            roots = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            partitions = _first(roots[0].get("attributes") or {}, CONFIGURATION_NC) \
                if roots else ""
            if partitions and domain:
                conn.search(f"CN=Partitions,{partitions}",
                            f"(&(objectClass=crossRef)(nCName={_escape(domain)})"
                            f"(nETBIOSName=*))", ldap.LEVEL, attributes=[NETBIOS_NAME],
                            size_limit=2)
                code = (conn.result or {}).get("result", 0)
                if code not in (0, SIZE_LIMIT, NO_SUCH_OBJECT):
                    raise self.unavailable(Exception(str((conn.result or {}).get(
                        "description"))))
                names = [_first(e.get("attributes") or {}, NETBIOS_NAME)
                         for e in conn.response or [] if e.get("type") == "searchResEntry"]
                found = names[0] if len(names) == 1 else ""
        self._netbios = found
        return found

    def verify(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s: found with the service account, then
        a bind as that person. An empty password is refused here (LDAP would take it
        as an anonymous bind); DirectoryUnavailable when the directory cannot answer."""
        if not password or not username:
            return False
        c = self.config
        # an entry found by a second value of its username attribute is someone
        # else's (the sync refuses it): signing in as that name would be taking it
        found = [e["dn"] for e in self._sign_in_search(
                     f"(&{c.user_filter}({c.username_attribute}={_escape(username)}))")
                 if _only(e.get("attributes") or {}, c.username_attribute) == username]
        if len(found) != 1:
            return False
        try:
            person = self._connect(found[0], password)
            try:
                ok = self.bind(person, found[0])
                code = (person.result or {}).get("result", 49)
            finally:
                person.unbind()
        except _ldap_error() as exc:
            raise self.unavailable(exc) from None
        if not ok and code != 49:  # 49: invalidCredentials; anything else is not an answer
            raise self.unavailable(Exception(str((person.result or {}).get("description"))))
        found_data = AD_BIND_DATA.search(str((person.result or {}).get("message") or ""))
        data = found_data["data"].lower() if found_data and not ok else ""
        if data in MUST_CHANGE:
            raise DirectoryPasswordChange(Text(
                "directory.password_change", "the directory {url} requires a new password "
                "for {username}: {why} (AD: data {data})", url=self.config.url,
                username=username, why=MUST_CHANGE[data], data=data))
        if data in AD_REFUSALS:
            why, message = AD_REFUSALS[data]
            raise DirectoryRefusal(Text(
                "directory.refused", "the directory {url} refused {username}: {why} "
                "(AD: data {data})", url=self.config.url, username=username, why=why,
                data=data), message=message)
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
