"""Which SAML service providers may receive assertions: each system registers its SP
by metadata in the state file.

    systems:
      - code: archives
        ...
        saml_sp:
          metadata_file: /etc/govgate/archives-sp.xml   # or metadata: "<EntityDescriptor ...>"
          name_id: persistent         # (default) or transient
          release_username: false     # true: also the uid attribute (the username)
          attributes: [name, department]   # what else it gets (absent: nothing else)
          launch_url: https://archives.example/Shibboleth.sso/Login   # the launcher opens it
          encrypt_assertions: true    # absent: as the metadata says (gateway.idp.saml.encryption)

The metadata is the SP's own (``Shibboleth.sso/Metadata``, pysaml2's
``make_metadata``, Spring's ``/saml2/service-provider-metadata/{id}``): one
``EntityDescriptor`` with an ``SPSSODescriptor``. It is the registration: responses
go only to its ``AssertionConsumerService`` URLs (HTTP-POST binding), signatures
on its requests are checked only against its signing certificates, single logout
goes to its ``SingleLogoutService`` (SOAP for the back channel). Every URL in it must
be https, or http on a loopback host (the rule of ``cas_services``). Applying reads
the file and stores the metadata; ``export`` writes it inline (``metadata:``).
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.clock import utcnow
from gateway.idp import attribute_release
from gateway.idp.cas.services import url_problem
from gateway.idp.saml import names
from gateway.idp.saml.encryption import EncryptionKey, choose, usable_until

KEYS = frozenset({"metadata", "metadata_file", "name_id", "release_username", "attributes",
                  "launch_url", "encrypt_assertions"})
NAME_IDS = {"persistent": names.NAMEID_FORMAT_PERSISTENT,
            "transient": names.NAMEID_FORMAT_TRANSIENT}
MAX_METADATA = 256 * 1024
MAX_ENTITY_ID = 1024
SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"


@dataclass(frozen=True)
class Endpoint:
    binding: str
    location: str
    response_location: str | None = None
    index: int | None = None
    default: bool = False


@dataclass(frozen=True)
class SpMetadata:
    """What govgate reads from an SP's metadata."""

    entity_id: str
    acs: tuple[Endpoint, ...]  # HTTP-POST ones only: the binding responses go by
    slo: tuple[Endpoint, ...]
    signing_certs: tuple[str, ...]  # base64 DER, as in the metadata
    signs_requests: bool  # AuthnRequestsSigned="true": unsigned requests are refused
    #: the keys good for encryption: use="encryption", or no use (good for both)
    encryption_keys: tuple[EncryptionKey, ...] = ()

    def acs_for(self, url: str | None, index: int | None) -> Endpoint | None:
        """The ACS a request names (by URL or index), the default one when it names
        none; None when it names one the metadata does not list."""
        if url is not None:
            return next((e for e in self.acs if e.location == url), None)
        if index is not None:
            return next((e for e in self.acs if e.index == index), None)
        return next((e for e in self.acs if e.default), self.acs[0])

    def slo_for(self, binding: str) -> Endpoint | None:
        return next((e for e in self.slo if e.binding == binding), None)


@dataclass(frozen=True)
class ServiceProvider:
    """One registered SP: the system it belongs to, its metadata and what it gets."""

    system: str
    metadata_xml: str
    meta: SpMetadata
    name_id: str  # persistent | transient
    release_username: bool
    launch_url: str | None
    #: the attributes it receives (gateway.idp.attribute_release); none by default
    attributes: tuple[str, ...] = ()
    #: saml_sp.encrypt_assertions: None as the metadata says (gateway.idp.saml.encryption)
    encrypt_assertions: bool | None = None

    def may_have(self, name_id_format: str) -> bool:
        """Whether a request of this SP may ask for ``name_id_format``: its registered
        format, or transient (which tells it less); an SP registered for transient
        NameIDs gets no stable identifier however it asks."""
        return name_id_format in (NAME_IDS[self.name_id], names.NAMEID_FORMAT_TRANSIENT)


def _text(e: Mapping[str, Any], key: str) -> str | None:
    value = e.get(key)
    return value if isinstance(value, str) else None


def _endpoints(items: list[Mapping[str, Any]]) -> list[Endpoint]:
    out = []
    for item in items:
        index = item.get("index")
        out.append(Endpoint(
            binding=str(item.get("binding") or ""), location=str(item.get("location") or ""),
            response_location=_text(item, "response_location"),
            index=int(index) if isinstance(index, str) and index.isdigit() else None,
            default=str(item.get("is_default", "")).lower() == "true"))
    return out


@functools.lru_cache(maxsize=256)
def parse_metadata(xml: str) -> SpMetadata:
    """The SP's metadata read (by pysaml2's parser, which refuses DTDs and entities);
    ValueError saying what is wrong."""
    if len(xml.encode("utf-8")) > MAX_METADATA:
        raise ValueError(f"over {MAX_METADATA} bytes")
    # pysaml2 only when a metadata document is read: its import costs most of a
    # second of every command that merely loads the state file's checks
    from gateway.idp.saml import library as lib

    store = lib.InMemoryMetaData(None, metadata=xml)
    try:
        store.load()
    except Exception:
        raise ValueError("not SAML 2.0 metadata (an EntityDescriptor)") from None
    entities = list(store.items())
    if len(entities) != 1:
        raise ValueError("must describe exactly one entity (one EntityDescriptor)")
    entity_id, entity = entities[0]
    descriptors = [d for d in entity.get("spsso_descriptor") or []
                   if SAML2_PROTOCOL in str(d.get("protocol_support_enumeration", "")).split()]
    if not descriptors:
        raise ValueError("has no SAML 2.0 SPSSODescriptor")
    sp = descriptors[0]
    acs = [e for e in _endpoints(sp.get("assertion_consumer_service") or [])
           if e.binding == names.BINDING_HTTP_POST]
    if not acs:
        raise ValueError("has no AssertionConsumerService with the HTTP-POST binding")
    slo = _endpoints(sp.get("single_logout_service") or [])
    certs, encryption = [], []
    for kd in sp.get("key_descriptor") or []:
        use = kd.get("use")
        for data in (kd.get("key_info") or {}).get("x509_data") or []:
            text = "".join(str((data.get("x509_certificate") or {}).get("text") or "").split())
            if not text:
                continue
            if use in (None, "signing"):
                certs.append(text)
            if use in (None, "encryption"):
                methods = tuple(str(m.get("algorithm") or "")
                                for m in kd.get("encryption_method") or [])
                encryption.append(EncryptionKey(cert=text, methods=methods,
                                                explicit=use == "encryption"))
    signs = str(sp.get("authn_requests_signed", "false")).lower() == "true"
    meta = SpMetadata(entity_id=str(entity_id), acs=tuple(acs), slo=tuple(slo),
                      signing_certs=tuple(certs), signs_requests=signs,
                      encryption_keys=tuple(encryption))
    if problem := metadata_problem(meta):
        raise ValueError(problem)
    return meta


def metadata_problem(meta: SpMetadata) -> str | None:
    if not meta.entity_id or len(meta.entity_id) > MAX_ENTITY_ID:
        return f"entityID must be 1 to {MAX_ENTITY_ID} characters"
    for kind, endpoints in (("AssertionConsumerService", meta.acs),
                            ("SingleLogoutService", meta.slo)):
        for e in endpoints:
            for url in filter(None, (e.location, e.response_location)):
                if problem := url_problem(url):
                    return f"{kind} {url[:100]!r}: {problem}"
    if meta.signs_requests and not meta.signing_certs:
        return "AuthnRequestsSigned is true but no signing certificate is given"
    for cert in meta.signing_certs + tuple(k.cert for k in meta.encryption_keys):
        try:
            base64.b64decode(cert, validate=True)
        except ValueError:
            return "a certificate is not base64"
    return None


def encryption_problem(meta: SpMetadata, setting: bool | None, now: datetime) -> str | None:
    """Why assertions for this SP cannot be encrypted as they must be, or None."""
    try:
        choose(meta.encryption_keys, setting, now)
    except ValueError as exc:
        return str(exc)
    return None


def _metadata_of(entry: Mapping[str, Any]) -> str:
    if "metadata" in entry:
        value = entry["metadata"]
        if not isinstance(value, str):
            raise ValueError("metadata must be the metadata's XML text")
        return value
    path = entry.get("metadata_file")
    if not isinstance(path, str) or not path:
        raise ValueError("metadata_file must be a file path")
    data = Path(path).read_bytes()
    if len(data) > MAX_METADATA:
        raise ValueError(f"metadata_file: over {MAX_METADATA} bytes")
    return data.decode("utf-8")


def problems(entry: Any, registered: Mapping[str, Any] | None = None) -> list[str]:
    """What is wrong with a system's ``saml_sp`` entry (the file is read).
    ``registered``: the system's stored ``saml_sp``. An entry that registers exactly
    that again is not refused for its encryption key: a certificate that expired
    while registered would otherwise hold up every other change of the state file
    until the SP's new metadata comes; its sign-ins fail closed meanwhile
    (``errors.BadEncryptionKey``) and compliance names it (``expiring_keys``)."""
    if not isinstance(entry, Mapping):
        return ["saml_sp must be a mapping (metadata_file, name_id, release_username, "
                "attributes, launch_url)"]
    out = [f"saml_sp: unknown key {k!r}" for k in sorted(set(entry) - KEYS)]
    if ("metadata" in entry) == ("metadata_file" in entry):
        out.append("saml_sp: metadata_file or metadata, exactly one")
    if entry.get("name_id", "persistent") not in NAME_IDS:
        out.append("saml_sp: name_id must be persistent or transient")
    if not isinstance(entry.get("release_username", False), bool):
        out.append("saml_sp: release_username must be true or false")
    if entry.get("attributes") is not None:
        out.extend(attribute_release.problems(entry["attributes"], "saml_sp: attributes"))
    if entry.get("launch_url") is not None and (problem := url_problem(entry["launch_url"])):
        out.append(f"saml_sp: launch_url: {problem}")
    if not isinstance(entry.get("encrypt_assertions", False), bool):
        out.append("saml_sp: encrypt_assertions must be true or false")
    if out:
        return out
    try:
        meta = parse_metadata(_metadata_of(entry))
    except (OSError, UnicodeError) as exc:
        return [f"saml_sp: metadata_file: {exc}"]
    except ValueError as exc:
        return [f"saml_sp: metadata: {exc}"]
    if problem := encryption_problem(meta, entry.get("encrypt_assertions"), utcnow()):
        if registered is not None and stored(entry) == dict(registered):
            return []
        return [f"saml_sp: {problem}"]
    return []


#: an SP whose every usable encryption key expires within this is named ahead
EXPIRY_NOTICE = timedelta(days=30)


def expiring_keys(sps: Iterable[ServiceProvider], now: datetime
                  ) -> tuple[list[str], list[str]]:
    """(systems whose SP gets encrypted assertions and has no usable encryption key
    now, systems whose SP has one now but none left in ``EXPIRY_NOTICE``), each named
    ``code (entity ID): why``."""
    unusable, soon = [], []
    for sp in sps:
        named = f"{sp.system} ({sp.meta.entity_id})"
        if problem := encryption_problem(sp.meta, sp.encrypt_assertions, now):
            unusable.append(f"{named}: {problem}")
        elif (until := usable_until(sp.meta.encryption_keys, sp.encrypt_assertions, now)
              ) is not None and until < now + EXPIRY_NOTICE:
            soon.append(f"{named}: the encryption certificate expires "
                        f"{until:%Y-%m-%d %H:%M} UTC")
    return unusable, soon


def entity_id_of(entry: Any) -> str | None:
    """The entity ID a valid entry registers (None when it is not valid)."""
    try:
        return parse_metadata(_metadata_of(entry)).entity_id
    except (OSError, UnicodeError, ValueError, AttributeError, TypeError):
        return None


def stored(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ``systems.saml_sp`` column value of a valid entry."""
    xml = _metadata_of(entry)
    out: dict[str, Any] = {
        "entity_id": parse_metadata(xml).entity_id, "metadata": xml,
        "name_id": str(entry.get("name_id", "persistent")),
        "release_username": bool(entry.get("release_username", False)),
    }
    if listed := attribute_release.normalised(entry.get("attributes")):
        out["attributes"] = listed
    if entry.get("launch_url"):
        out["launch_url"] = str(entry["launch_url"])
    if isinstance(entry.get("encrypt_assertions"), bool):
        out["encrypt_assertions"] = entry["encrypt_assertions"]
    return out


def exported(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The state-file form of the column: the metadata inline."""
    if not value:
        return None
    out: dict[str, Any] = {"metadata": value["metadata"]}
    if value.get("name_id", "persistent") != "persistent":
        out["name_id"] = value["name_id"]
    if value.get("release_username"):
        out["release_username"] = True
    if listed := attribute_release.normalised(value.get("attributes")):
        out["attributes"] = listed
    if value.get("launch_url"):
        out["launch_url"] = value["launch_url"]
    if isinstance(value.get("encrypt_assertions"), bool):
        out["encrypt_assertions"] = value["encrypt_assertions"]
    return out


def from_column(system: str, value: Mapping[str, Any]) -> ServiceProvider | None:
    """The registered SP of a stored column (None if its metadata no longer parses)."""
    try:
        meta = parse_metadata(str(value["metadata"]))
    except (ValueError, KeyError):
        return None
    return ServiceProvider(system=system, metadata_xml=str(value["metadata"]), meta=meta,
                           name_id=str(value.get("name_id", "persistent")),
                           release_username=bool(value.get("release_username", False)),
                           launch_url=value.get("launch_url"),
                           attributes=tuple(attribute_release.normalised(
                               value.get("attributes"))),
                           encrypt_assertions=value.get("encrypt_assertions")
                           if isinstance(value.get("encrypt_assertions"), bool) else None)
