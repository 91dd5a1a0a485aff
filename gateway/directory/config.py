"""The directory's settings as one object (``Settings.directory_*``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.errors import SettingsError
from gateway.org import ADMIN_ROLES
from gateway.settings import Secret, Settings
from texts import Text, os_reason

# past any agency's directory; a directory answering more is refused, not read into memory
MAX_ENTRIES = 200_000
# a paged search of that many, page after page each within the timeout
SEARCH_SECONDS = 600.0
# groups below a mapped group whose members are read (AD's own nesting has no bound;
# an agency's is a handful: a bound far past it ends a chain grown without end)
MAX_NESTING = 16


@dataclass(frozen=True)
class DirectoryConfig:
    url: str
    base_dn: str
    region: str
    bind_dn: str = ""
    bind_password: Secret | None = None
    start_tls: bool = False
    ca_file: str = ""
    user_filter: str = "(objectClass=inetOrgPerson)"
    username_attribute: str = "uid"
    name_attribute: str = "cn"
    email_attribute: str = "mail"
    department_attribute: str = "businessCategory"
    group_roles: tuple[tuple[str, str], ...] = ()  # (group cn, role)
    disabled_filter: str = "(pwdAccountLockedTime=*)"
    page_size: int = 500
    timeout: float = 5.0
    max_entries: int = MAX_ENTRIES  # per search: people, OUs or groups
    # per search, and for reading the mapped groups' members: the socket is shut when
    # it is past (gateway.directory.client.DirectoryClient.deadline)
    search_seconds: float = SEARCH_SECONDS
    max_nesting: int = MAX_NESTING
    netbios_domain: str = ""  # AD's, for the down-level logon name DOMAIN\user

    def __post_init__(self) -> None:
        for group, role in self.group_roles:
            if role in ADMIN_ROLES:
                # 三员: the operator grants them (govgate user ...); whoever may edit a
                # group in the directory would otherwise make govgate's administrators
                raise SettingsError(Text(
                    "directory.admin_role", "setting 'directory_group_roles': {group!r} maps "
                    "to the admin role {role}; admin roles (三员) are granted by the operator "
                    "(govgate user ...), never by the directory", group=group, role=role))

    @classmethod
    def from_settings(cls, settings: Settings) -> DirectoryConfig | None:
        """The directory of ``settings``, or None when none is configured."""
        s = settings
        if not s.directory_url:
            return None
        password = s.directory_bind_password
        if s.directory_bind_password_file:
            try:
                text = Path(s.directory_bind_password_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
                raise SettingsError(Text(
                    "directory.password_file", "setting 'directory_bind_password_file': "
                    "{reason}", reason=reason)) from None
            password = Secret(text.strip())
        roles = tuple((group.strip(), role.strip()) for group, _, role in
                      (entry.rpartition("=") for entry in s.directory_group_roles))
        return cls(url=s.directory_url, base_dn=s.directory_base_dn, region=s.directory_region,
                   bind_dn=s.directory_bind_dn, bind_password=password,
                   start_tls=s.directory_start_tls, ca_file=s.directory_ca_file,
                   user_filter=s.directory_user_filter,
                   username_attribute=s.directory_username_attribute,
                   name_attribute=s.directory_name_attribute,
                   email_attribute=s.directory_email_attribute,
                   department_attribute=s.directory_department_attribute,
                   group_roles=roles, disabled_filter=s.directory_disabled_filter,
                   page_size=s.directory_page_size, timeout=s.directory_timeout_seconds,
                   netbios_domain=s.directory_netbios_domain.strip())
