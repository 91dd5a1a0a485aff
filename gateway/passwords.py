"""Human passwords: argon2id hashes and the password policy.

Policy: at least 12 characters, or at least 3 of the 4 character classes
(lower, upper, digit, other) with at least 8 characters; never the username;
never one of the last 5 passwords.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MIN_CLASS_LENGTH = 8
HISTORY = 5

# OWASP's argon2id baseline (19 MiB, t=2, p=1): about 50 ms here, so a login stays
# quick on a 2-core server while an offline guess still costs 19 MiB of memory.
# Hashes carry their parameters, so raising them later only needs rehash-on-login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing or damaged hash never matches."""
    if not password_hash:
        # spend the same time as a real check so absent users are not detectable
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _classes(password: str) -> int:
    groups = (
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    return sum(groups)


def policy_problems(password: str, username: str, previous_hashes: Iterable[str] = ()) -> list[str]:
    """Why ``password`` is not acceptable (empty when it is)."""
    problems: list[str] = []
    long_enough = len(password) >= MIN_LENGTH
    varied = _classes(password) >= 3 and len(password) >= MIN_CLASS_LENGTH
    if not (long_enough or varied):
        problems.append(
            f"password too weak: needs at least {MIN_LENGTH} characters, or "
            f"{MIN_CLASS_LENGTH}+ characters from 3 of: lower, upper, digit, symbol"
        )
    if username and password.strip().lower() == username.strip().lower():
        problems.append("password must not be the username")
    for old in list(previous_hashes)[:HISTORY]:
        if verify_password(old, password):
            problems.append(f"password was used recently (last {HISTORY} are not allowed)")
            break
    return problems


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the policy."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if _classes(candidate) >= 3:
            return candidate
