"""TLS to a department system: its own CA, a client certificate (mTLS), a version floor.

Agencies run systems behind certificates of their own CA, and some systems accept
only callers that present a certificate. A system says so in the state file:

    systems:
      - code: assets
        upstream: https://assets.internal:8443
        tls:
          ca_file: /etc/govgate/agency-ca.pem        # trust this CA (PEM) for the system
          cert_file: /etc/govgate/gw-client.pem      # present this certificate (mTLS)
          key_file: /etc/govgate/gw-client.key       # its private key: read once, kept
                                                     # sealed by the key ring, never exported
          min_version: "1.3"                         # TLS floor, "1.2" (default) or "1.3"

``govgate apply`` reads the files, stores the CA and certificate (public) and the
key sealed with the master key (``keys.seal``, context ``upstream-tls:{system}``).
``govgate export`` writes the CA and certificate inline (``ca_pem``, ``cert_pem``)
and never the key: applying the export again keeps the stored key (a changed
certificate needs its ``key_file``).
Verification is never switched off: a system that names no CA is checked against
the platform's trust store, with its host name.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
KEYS = frozenset({"ca_file", "ca_pem", "cert_file", "cert_pem", "key_file", "min_version"})
MAX_PEM = 64 * 1024


def seal_context(system: str) -> str:
    return f"upstream-tls:{system}"


@dataclass(frozen=True)
class UpstreamTLS:
    """How to speak TLS to one system (hashable: the upstream pool keys on it)."""

    ca_pem: str | None = None
    cert_pem: str | None = None
    key_pem: str | None = field(default=None, repr=False)
    min_version: str = "1.2"

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem \
            else ssl.create_default_context()
        ctx.minimum_version = VERSIONS[self.min_version]
        if self.cert_pem and self.key_pem:
            # the ssl module loads a certificate chain from files only: the key is
            # written for the moment of loading, readable by this process alone
            with tempfile.TemporaryDirectory(prefix="govgate-tls-") as tmp:
                cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
                cert.write_text(self.cert_pem)
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(self.key_pem)
                ctx.load_cert_chain(cert, key)
        return ctx


def _pem(entry: Mapping[str, Any], name: str) -> str | None:
    """The PEM text of ``name`` (``ca`` or ``cert``), inline or from its file."""
    if f"{name}_pem" in entry:
        value = entry[f"{name}_pem"]
        if not isinstance(value, str) or len(value) > MAX_PEM:
            raise ValueError(f"{name}_pem must be PEM text (at most {MAX_PEM} bytes)")
        return value
    if f"{name}_file" in entry:
        return _read(entry[f"{name}_file"])
    return None


def problems(entry: Any, *, has_stored_key: bool = False) -> list[str]:
    """What is wrong with a system's ``tls`` entry (files are read to check them)."""
    if not isinstance(entry, Mapping):
        return ["tls must be a mapping (ca_file, cert_file, key_file, min_version)"]
    out = [f"tls: unknown key {k!r}" for k in sorted(set(entry) - KEYS)]
    if str(entry.get("min_version", "1.2")) not in VERSIONS:
        out.append("tls: min_version must be 1.2 or 1.3")
    for name in ("ca", "cert"):
        if f"{name}_pem" in entry and f"{name}_file" in entry:
            out.append(f"tls: {name}_pem or {name}_file, not both")
    pems: dict[str, str | None] = {}
    for name in ("ca", "cert"):
        try:
            pems[name] = _pem(entry, name)
        except (OSError, ValueError, UnicodeError) as exc:
            out.append(f"tls: {name}: {exc}")
            continue
        if pems[name] is not None and "-----BEGIN " not in str(pems[name]):
            out.append(f"tls: {name}: not PEM")
    key = None
    if "key_file" in entry:
        try:
            key = _read(entry["key_file"])
        except (OSError, ValueError, UnicodeError) as exc:
            out.append(f"tls: key_file: {exc}")
    if out:
        return out
    if key is not None and pems.get("cert") is None:
        return ["tls: key_file needs its certificate (cert_file)"]
    if pems.get("cert") is not None and key is None and not has_stored_key:
        return ["tls: a client certificate needs its key_file"]
    try:
        if pems.get("cert") is not None and key is not None:
            UpstreamTLS(None, pems["cert"], key).context()
        if pems.get("ca") is not None:
            UpstreamTLS(pems["ca"]).context()
    except ssl.SSLError as exc:
        return [f"tls: the certificates or the key do not load ({exc.reason})"]
    return []


def _read(path: Any) -> str:
    if not isinstance(path, str) or not path:
        raise ValueError("must be a file path")
    data = Path(path).read_bytes()
    if len(data) > MAX_PEM:
        raise ValueError(f"over {MAX_PEM} bytes")
    return data.decode("ascii")


def stored(entry: Mapping[str, Any], system: str, seal: Any, open_: Any,
           previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The column value for a state-file ``tls`` entry: the CA and certificate as PEM,
    the key sealed (base64). A stored key stays when no ``key_file`` is given, or
    when the file holds the same key (so applying the same file changes nothing)."""
    out: dict[str, Any] = {"min_version": str(entry.get("min_version", "1.2"))}
    ca, cert = _pem(entry, "ca"), _pem(entry, "cert")
    if ca is not None:
        out["ca_pem"] = ca
    if cert is None:
        return out
    out["cert_pem"] = cert
    old = previous.get("key_sealed") if previous else None
    if "key_file" not in entry:
        if old:
            out["key_sealed"] = old
        return out
    key = _read(entry["key_file"]).encode("ascii")
    if old and open_(base64.b64decode(old), seal_context(system)) == key:
        out["key_sealed"] = old
    else:
        out["key_sealed"] = base64.b64encode(seal(key, seal_context(system))).decode()
    return out


def exported(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The state-file form of a stored column: public parts inline, no key."""
    if not value:
        return None
    out = {k: value[k] for k in ("ca_pem", "cert_pem") if value.get(k)}
    out["min_version"] = value.get("min_version", "1.2")
    return out


def from_column(value: Mapping[str, Any] | None, system: str, open_: Any
                ) -> UpstreamTLS | None:
    """The system's TLS settings from its stored column (the key opened)."""
    if not value:
        return None
    key = None
    if value.get("key_sealed"):
        key = open_(base64.b64decode(value["key_sealed"]), seal_context(system)).decode("ascii")
    return UpstreamTLS(value.get("ca_pem"), value.get("cert_pem"), key,
                       str(value.get("min_version", "1.2")))
