"""A TCP relay in front of the real slapd that answers some people's binds as Active
Directory does when the password is right but may not be used as it is: result 49
(invalidCredentials) with AD's diagnostic, ``... AcceptSecurityContext error, data
773, ...`` (the user must change the password at next logon), ``data 532`` (the
password expired), ``533`` (the account disabled) or ``701`` (it expired). slapd checks
the password; only its success is rewritten, so a wrong password stays a wrong
password; but ``775`` (locked out) answers every bind, as AD checks no password while
an account is locked."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ldap3.operation.bind import bind_response_operation
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.strategy.base import BaseStrategy
from pyasn1.codec.ber import decoder, encoder

from gateway.directory.client import dn_key


def ad_diagnostic(data: str) -> str:
    return ("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, "
            f"data {data}, v4563")


BIND_REQUEST, BIND_RESPONSE = 0x60, 0x61  # [APPLICATION 0], [APPLICATION 1]
# AD's answers to any password, the wrong ones too: locked out (775) checks none
ANY_PASSWORD = {"775"}


def _operation(frame: bytes) -> int:
    """The tag of the message's protocolOp: past the SEQUENCE's header and the
    messageID (only binds are decoded; pyasn1 would need the whole of RFC 4511's
    controls for the rest)."""
    at = 2 + (frame[1] - 128 if frame[1] > 127 else 0)
    return frame[at + 2 + frame[at + 1]]


def _frames(source: socket.socket, target: socket.socket,
            each: Callable[[bytes], bytes]) -> None:
    """Relay whole LDAP messages (BER), each passed through ``each``."""
    buffer = b""
    try:
        while chunk := source.recv(65536):
            buffer += chunk
            while (size := BaseStrategy.compute_ldap_message_size(buffer)) != -1 \
                    and len(buffer) >= size:
                frame, buffer = buffer[:size], buffer[size:]
                target.sendall(each(frame))
    except OSError:
        pass
    finally:
        target.close()


@contextmanager
def ad_binds(port: int, answers: dict[str, str]) -> Iterator[str]:
    """``ldap://127.0.0.1:<its port>``, relaying to 127.0.0.1:``port``; a successful
    bind as a DN of ``answers`` is answered 49 with ``ad_diagnostic(answers[dn])``
    (``answers`` as it is at the bind: a test may change it)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def connection(client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", port))
        pending: dict[int, str] = {}  # message id: the AD answer for it

        def asked(frame: bytes) -> bytes:
            if _operation(frame) != BIND_REQUEST:
                return frame
            message, _ = decoder.decode(frame, asn1Spec=LDAPMessage())
            op = message["protocolOp"]
            if op.getName() == "bindRequest":
                asked_dn = dn_key(str(op["bindRequest"]["name"]))
                data = next((d for dn, d in list(answers.items()) if dn_key(dn) == asked_dn),
                            None)
                if data is not None:
                    pending[int(message["messageID"])] = data
            return frame

        def answered(frame: bytes) -> bytes:
            if _operation(frame) != BIND_RESPONSE:
                return frame
            message, _ = decoder.decode(frame, asn1Spec=LDAPMessage())
            op, number = message["protocolOp"], int(message["messageID"])
            if op.getName() != "bindResponse" or number not in pending:
                return frame
            data = pending.pop(number)
            if int(op["bindResponse"]["resultCode"]) != 0 and data not in ANY_PASSWORD:
                return frame
            out = LDAPMessage()
            out["messageID"] = MessageID(number)
            out["protocolOp"] = ProtocolOp().setComponentByName(
                "bindResponse", bind_response_operation(49, "", ad_diagnostic(data)))
            return bytes(encoder.encode(out))

        threading.Thread(target=_frames, args=(client, server, asked), daemon=True).start()
        threading.Thread(target=_frames, args=(server, client, answered), daemon=True).start()

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            connection(client)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
