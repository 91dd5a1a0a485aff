"""A DPoP client's key and the proofs it signs (RFC 9449 section 4), for the tests of
gateway.idp.dpop: signed by joserfc, as a client library would."""

from __future__ import annotations

import json
import secrets
import time
import warnings
from typing import Any

from joserfc import jwk, jws

from gateway.idp.dpop import ath_of


class Holder:
    """A client's DPoP key and the proofs it signs."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: Any = {"ES256": lambda: jwk.ECKey.generate_key("P-256"),
                         "EdDSA": lambda: jwk.OKPKey.generate_key("Ed25519"),
                         "PS256": lambda: jwk.RSAKey.generate_key(2048)}[alg]()
        self.jkt = self.key.thumbprint()

    def proof(self, method: str, url: str, *, token: str | None = None,
              iat: int | None = None, **claims: Any) -> str:
        body = {"jti": secrets.token_urlsafe(12), "htm": method, "htu": url,
                "iat": int(time.time()) if iat is None else iat, **claims}
        if token is not None:
            body["ath"] = ath_of(token)
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        with warnings.catch_warnings():  # joserfc: "EdDSA" is deprecated by RFC 9864
            warnings.simplefilter("ignore")
            return jws.serialize_compact(header, json.dumps(body).encode(), self.key,
                                         algorithms=[self.alg])
