"""WebAuthn credentials (security keys, passkeys) as a second factor and for
passwordless sign-in: the stored credentials and challenges, and the two ceremonies
checked with py_webauthn (docs/webauthn.md)."""
