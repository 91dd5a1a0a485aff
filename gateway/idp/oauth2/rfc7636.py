"""Proof Key for Code Exchange by OAuth Public Clients (RFC 7636,
https://www.rfc-editor.org/rfc/rfc7636).

Section 4.2: only ``S256`` is accepted (``plain`` is refused, as OAuth 2.1 and
RFC 9700 section 2.1.1 advise); a public client (``token_endpoint_auth_method:
none``) and a client registered with ``require_pkce`` must send a challenge, another
confidential client may. RFC 9700 section 4.8.2: a verifier for a code issued without a
challenge is refused (a PKCE downgrade), here as well as in authlib. Section 4.6: the
verifier is compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge


def _s256_matches(verifier: str, challenge: str) -> bool:
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge)


class S256CodeChallenge(CodeChallenge):
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012
    CODE_CHALLENGE_METHODS = {"S256": _s256_matches}  # noqa: RUF012

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if method == "plain":
            raise InvalidRequestError("code_challenge_method 'plain' is not accepted; use S256")
        client = grant.request.client
        if not challenge and client is not None and client.is_public:
            raise InvalidRequestError("public clients must send code_challenge (S256)")
        if not challenge and client is not None and client.require_pkce:
            raise InvalidRequestError("this client must send code_challenge (S256)")
        if challenge and method != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        code = grant.request.authorization_code
        if code is not None and not code.code_challenge \
                and grant.request.form.get("code_verifier"):
            # RFC 9700 section 4.8.2: the AS MUST refuse it; not left to authlib's version
            raise InvalidRequestError("the authorization request had no code_challenge, "
                                      "but a code_verifier was given")
        try:
            super().validate_code_verifier(grant, result)
        except InvalidRequestError as exc:
            # a missing or malformed verifier for a code with a challenge is a failed proof
            if grant.request.authorization_code is not None and \
                    grant.request.authorization_code.code_challenge:
                raise InvalidGrantError(description=exc.description) from None
            raise
