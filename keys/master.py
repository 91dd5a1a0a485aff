"""Master-key providers: the key-encryption key (KEK) that wraps the data keys.

Three providers, all behind one small protocol (``wrap``/``unwrap``/``key_id``):

- ``FileMasterKey``: 32 random bytes, base64 in a file created with mode 0600;
  a group- or world-readable file is refused.
- ``EnvMasterKey``: the same base64 text in an environment variable.
- ``Pkcs11MasterKey``: a non-extractable AES-256 key inside an HSM token
  (PKCS#11, tested against SoftHSM2); wrapping happens inside the token.

Wrapping is AES-256-GCM with a random 96-bit nonce and the caller's associated
data (file/env: ``cryptography``; PKCS#11: CKM_AES_GCM in the token). Every
failure raises ``MasterKeyError`` with a one-line message naming the provider.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from keys import _primitives
from keys.errors import MasterKeyError
from texts import Text, os_reason

__all__ = [
    "EnvMasterKey",
    "FileMasterKey",
    "MasterKeyError",
    "MasterKeyProvider",
    "Pkcs11MasterKey",
    "generate_master_key_text",
    "master_key_from_settings",
]

KEY_SIZE = 32
_WRAP_VERSION = b"\x01"
_KCV_LABEL = b"govgate master key check value v1"


@runtime_checkable
class MasterKeyProvider(Protocol):
    name: str  # "file" | "env" | "pkcs11"
    key_id: str  # identifies the key, not the provider: same bytes, same id

    def wrap(self, dk: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...


def generate_master_key_text() -> str:
    """A fresh master key as the base64 text the file and env providers read."""
    return base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii")


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(Text("keys.master_not_base64",
                                  "master key ({where}): not base64", where=where)) from None
    if len(raw) != KEY_SIZE:
        raise MasterKeyError(Text("keys.master_size",
                                  "master key ({where}): must be {size} bytes, got {got}",
                                  where=where, size=KEY_SIZE, got=len(raw)))
    return raw


def _file(path: str | os.PathLike[str]) -> Text:
    return Text("keys.where_file", "file {path}", path=path)


def provider_label(name: str) -> str:
    """A provider's name as the messages show it alone: ``master key (file): ...``."""
    if name == "file":
        return Text("keys.where_file_provider", "file")
    if name == "env":
        return Text("keys.where_env_provider", "env")
    return name


def _pkcs11(token_label: str, key_label: str) -> Text:
    return Text("keys.where_pkcs11", "pkcs11 {label}", label=f"{token_label}/{key_label}")


class _SoftwareKek:
    """AES-256-GCM wrapping with a key held in process memory."""

    name = "software"
    where = "software"

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.key_id = "kcv:" + _primitives.hmac_digest("sha256", key, _KCV_LABEL)[:8].hex()

    def wrap(self, dk: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_primitives.NONCE_SIZE)
        return _WRAP_VERSION + nonce + _primitives.aead_encrypt(
            "AES-256-GCM", self._key, nonce, dk, aad
        )

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        if blob[:1] != _WRAP_VERSION:
            raise MasterKeyError(Text("keys.master_format",
                                      "master key ({where}): unknown wrapped-key format",
                                      where=self.where))
        nonce, body = blob[1 : 1 + _primitives.NONCE_SIZE], blob[1 + _primitives.NONCE_SIZE :]
        try:
            return _primitives.aead_decrypt("AES-256-GCM", self._key, nonce, body, aad)
        except _primitives.AeadFailure:
            raise MasterKeyError(
                Text("keys.master_wrong",
                     "master key ({where}): cannot unwrap a data key: wrong master key?",
                     where=self.where)
            ) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where} {self.key_id}>"


class FileMasterKey(_SoftwareKek):
    """The master key in a file readable by its owner only."""

    name = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.where: str = _file(self.path)
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise MasterKeyError(Text("keys.master_missing",
                                      "master key (file {path}): missing; run `govgate init`",
                                      path=self.path)) from None
        except OSError as exc:
            raise MasterKeyError(Text("keys.master_os", "master key ({where}): {reason}",
                                      where=self.where, reason=os_reason(exc))) from None
        if not stat.S_ISREG(st.st_mode):
            raise MasterKeyError(Text("keys.master_not_file",
                                      "master key (file {path}): not a regular file",
                                      path=self.path))
        if st.st_mode & 0o077:
            raise MasterKeyError(Text(
                "keys.master_mode", "master key (file {path}): mode {mode} is group- or "
                "world-accessible; run chmod 600", path=self.path,
                mode=f"{stat.S_IMODE(st.st_mode):04o}"))
        try:
            text = self.path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyError(Text("keys.master_unreadable",
                                      "master key (file {path}): unreadable: {detail}",
                                      path=self.path, detail=str(exc))) from None
        super().__init__(_decode_key(text, self.where))

    def reopen(self) -> FileMasterKey:
        """The key the file holds now (``keys rotate-master`` replaces the file while
        servers run), with the same checks as at start."""
        return FileMasterKey(self.path)

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> FileMasterKey:
        """Write a new random master key with mode 0600; never overwrites a file."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise MasterKeyError(Text(
                "keys.master_exists", "master key ({where}): already exists; refusing to "
                "overwrite", where=_file(p))) from None
        except OSError as exc:
            raise MasterKeyError(Text("keys.master_create",
                                      "master key ({where}): cannot create: {detail}",
                                      where=_file(p), detail=os_reason(exc))) from None
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(generate_master_key_text() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(p, 0o600)  # in case the umask was unusual
        return cls(p)


class EnvMasterKey(_SoftwareKek):
    """The master key as base64 text in an environment variable."""

    name = "env"

    def __init__(self, var_name: str, environ: Mapping[str, str]) -> None:
        self.var_name = var_name
        self.where: str = Text("keys.where_env", "env {var}", var=var_name)
        text = environ.get(var_name)
        if not text:
            raise MasterKeyError(Text("keys.master_env_unset",
                                      "master key (env {var}): variable is not set",
                                      var=var_name))
        super().__init__(_decode_key(text, self.where))


_PKCS11_LIBS: dict[str, Any] = {}


def _pkcs11_lib(module: str) -> Any:
    import pkcs11

    if module not in _PKCS11_LIBS:
        _PKCS11_LIBS[module] = pkcs11.lib(module)
    return _PKCS11_LIBS[module]


def _pin_text(pin: Any) -> str:
    if pin is None:
        return ""
    return str(pin.get()) if hasattr(pin, "get") else str(pin)


class Pkcs11MasterKey:
    """A non-extractable AES-256 key in a PKCS#11 token; wrapping runs in the token."""

    name = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: Any, key_label: str) -> None:
        self.module = module
        self.token_label = token_label
        self.key_label = key_label
        self._pin = _pin_text(pin)
        self.where: str = _pkcs11(token_label, key_label)
        self.key_id = f"pkcs11:{token_label}/{key_label}"
        with self._session() as session:
            self._find_key(session)

    def _session(self) -> Any:
        import pkcs11

        if not self.module:
            raise MasterKeyError(Text("keys.master_no_module",
                                      "master key ({where}): pkcs11_module is not set",
                                      where=self.where))
        try:
            lib = _pkcs11_lib(self.module)
            token = lib.get_token(token_label=self.token_label)
            return token.open(user_pin=self._pin, rw=True)
        except pkcs11.exceptions.NoSuchToken:
            raise MasterKeyError(Text("keys.master_no_token",
                                      "master key ({where}): no such token",
                                      where=self.where)) from None
        except pkcs11.exceptions.PinIncorrect:
            raise MasterKeyError(Text("keys.master_pin", "master key ({where}): wrong PIN",
                                      where=self.where)) from None
        except (pkcs11.exceptions.PKCS11Error, OSError, RuntimeError) as exc:
            raise MasterKeyError(Text(
                "keys.master_token", "master key ({where}): cannot open token: {detail}",
                where=self.where, detail=type(exc).__name__)) from None

    def _find_key(self, session: Any) -> Any:
        import pkcs11
        from pkcs11 import ObjectClass

        try:
            return session.get_key(label=self.key_label, object_class=ObjectClass.SECRET_KEY)
        except pkcs11.exceptions.NoSuchKey:
            raise MasterKeyError(Text("keys.master_no_key",
                                      "master key ({where}): no such key in token",
                                      where=self.where)) from None
        except pkcs11.exceptions.MultipleObjectsReturned:
            raise MasterKeyError(Text("keys.master_label",
                                      "master key ({where}): label is not unique",
                                      where=self.where)) from None

    @classmethod
    def create(cls, module: str, token_label: str, pin: Any, key_label: str) -> Pkcs11MasterKey:
        """Generate the AES-256 key in the token; refuses if the label is taken."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass

        probe = cls.__new__(cls)
        probe.module, probe.token_label, probe.key_label = module, token_label, key_label
        probe._pin = _pin_text(pin)
        probe.where = _pkcs11(token_label, key_label)
        with probe._session() as session:
            existing = list(
                session.get_objects(
                    {Attribute.LABEL: key_label, Attribute.CLASS: ObjectClass.SECRET_KEY}
                )
            )
            if existing:
                raise MasterKeyError(Text(
                    "keys.master_key_exists",
                    "master key ({where}): key already exists; refusing to overwrite",
                    where=probe.where))
            try:
                session.generate_key(
                    KeyType.AES, 256, label=key_label, store=True,
                    template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.TOKEN: True,
                    },
                )
            except pkcs11.exceptions.PKCS11Error as exc:
                raise MasterKeyError(Text(
                    "keys.master_generate", "master key ({where}): cannot generate key: {detail}",
                    where=probe.where, detail=type(exc).__name__)) from None
        return cls(module, token_label, pin, key_label)

    def wrap(self, dk: bytes, aad: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        nonce = secrets.token_bytes(_primitives.NONCE_SIZE)
        with self._session() as session:
            key = self._find_key(session)
            try:
                body = key.encrypt(
                    dk, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)
                )
            except pkcs11.exceptions.PKCS11Error as exc:
                raise MasterKeyError(Text(
                    "keys.master_wrap", "master key ({where}): wrap failed: {detail}",
                    where=self.where, detail=type(exc).__name__)) from None
        return _WRAP_VERSION + nonce + bytes(body)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        import pkcs11
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        n = _primitives.NONCE_SIZE
        if blob[:1] != _WRAP_VERSION or len(blob) < 1 + n + _primitives.TAG_SIZE:
            raise MasterKeyError(Text("keys.master_format",
                                      "master key ({where}): unknown wrapped-key format",
                                      where=self.where))
        nonce, body = blob[1 : 1 + n], blob[1 + n :]
        with self._session() as session:
            key = self._find_key(session)
            try:
                return bytes(
                    key.decrypt(
                        body, mechanism=Mechanism.AES_GCM,
                        mechanism_param=GCMParams(nonce, aad, 128),
                    )
                )
            except pkcs11.exceptions.PKCS11Error:
                raise MasterKeyError(
                    Text("keys.master_wrong",
                     "master key ({where}): cannot unwrap a data key: wrong master key?",
                     where=self.where)
                ) from None

    def __repr__(self) -> str:
        return f"<Pkcs11MasterKey {self.where}>"


def master_key_from_settings(
    provider: str,
    *,
    path: str | os.PathLike[str] | None = None,
    env_var: str = "GOVGATE_MASTER_KEY",
    environ: Mapping[str, str] | None = None,
    pkcs11_module: str = "",
    pkcs11_token_label: str = "",
    pkcs11_pin: Any = None,
    pkcs11_key_label: str = "",
) -> MasterKeyProvider:
    """Open the configured provider; MasterKeyError (one line, naming it) if it fails."""
    if provider == "file":
        if path is None:
            raise MasterKeyError(Text("keys.master_no_path",
                                      "master key (file): no path configured"))
        return FileMasterKey(path)
    if provider == "env":
        return EnvMasterKey(env_var, environ if environ is not None else {})
    if provider == "pkcs11":
        return Pkcs11MasterKey(pkcs11_module, pkcs11_token_label, pkcs11_pin, pkcs11_key_label)
    raise MasterKeyError(Text(
        "keys.master_provider",
        "master key ({provider}): unknown provider (one of file, env, pkcs11)", provider=provider))
