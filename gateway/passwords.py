"""Human passwords: argon2id hashes and the password rule.

The rule (:func:`policy_problems`, the one check behind the portal, the CLI, the
state file and every ``Org`` write):

=====================  ==========================================================
``too_short``          fewer than 12 characters (after NFKC, so full-width forms
                       count as what they look like)
``blank``              nothing but whitespace
``guessable``          a strength estimate (zxcvbn) below score 3: it ships the
                       common and breached password lists, English words and names,
                       and finds keyboard walks, sequences, repeats, dates and l33t,
                       with the username, its parts and a few words every guesser
                       tries against a Chinese government system added to them
``username``           the username itself
``recent``             one of the last 5 passwords
=====================  ==========================================================

NIST SP 800-63B 5.1.1.2 asks for length and a blocklist of common, breached and
context-specific values, and no composition rule: ``Tb7#kq9!`` is not stronger
than a long phrase, and ``Password1`` meets every class rule. A plain list would
let ``abcdefghijkl`` or ``zhang.san2026`` through; zxcvbn covers both the list
and the patterns, offline, in about a millisecond.

A problem is a ``str`` (its English text: the CLI translates it in
``gateway.i18n``, the API returns it) that also carries a ``code`` the portal
translates by key.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import string
import threading
import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from texts import Text

MIN_LENGTH = 12
MIN_SCORE = 3  # zxcvbn: about 10^8 guesses or more
HISTORY = 5
# zxcvbn's cost grows with the length and it refuses more than 72 characters; a
# longer password is judged by its first 72, which is enough to tell a pattern
ESTIMATE_LENGTH = 72

# Guessers add the site's and the country's words to their lists; zxcvbn's lists are
# English, so these go in as user inputs (lower case, matched inside the password).
CONTEXT_WORDS = (
    "govgate", "gov", "zhengfu", "jiguan", "shiwu", "jgswj", "guojia", "zhongguo",
    "china", "beijing", "admin", "sysadmin", "secadmin", "auditor", "mima", "woaini",
    "aini", "5201314", "1314", "520", "wang", "zhang", "liu", "chen", "huang", "zhao",
)

# OWASP's argon2id baseline (19 MiB, t=2, p=1): about 50 ms here, so a login stays
# quick on a 2-core server while an offline guess still costs 19 MiB of memory.
# Hashes carry their parameters, so raising them later only needs rehash-on-login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# An unknown user is checked against this, so the answer takes as long as for a
# real one (argon2 verify, same parameters) and never tells which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# Each argon2 call holds 19 MiB for its ~50 ms. The thread pool would run 40 at once
# (measured: ~800 MiB resident when 40 sign-ins from different addresses overlap), and
# on a core or two they only take turns anyway: as many at once as there are cores
# gives the same number of checks per second, answers each one sooner, and keeps a
# flood of sign-ins from growing the server by 19 MiB per request in flight. The
# cores are those this process may run on (its affinity), not the host's: a
# container's two CPUs on a 64-core host.
HASHING_AT_ONCE = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1)
_hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)
# zxcvbn keeps the user inputs in a module-level dictionary for the call: two
# threads checking at once would each see the other's username.
_estimate_lock = threading.Lock()


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing or damaged hash never matches."""
    with _hashing:
        if not password_hash:
            # the same argon2 verify as a real check, so absent users are not detectable
            with contextlib.suppress(VerificationError):
                _hasher.verify(_DUMMY_HASH, password)
            return False
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _context(username: str, extra: Iterable[str]) -> list[str]:
    words = [username, *re.split(r"[._\-@\s]+", username), *extra, *CONTEXT_WORDS]
    return [w for w in (w.strip().lower() for w in words) if len(w) >= 2]


def strength_score(password: str, username: str = "", context: Iterable[str] = ()) -> int:
    """zxcvbn's score (0-4) of ``password`` with the username and ``context`` as known
    words."""
    # zxcvbn on the first estimate, not at start: its word lists are 12 MiB of a
    # server's resident memory, and most servers set no password for hours
    from zxcvbn import zxcvbn

    text = unicodedata.normalize("NFKC", password)[:ESTIMATE_LENGTH]
    with _estimate_lock:
        return int(zxcvbn(text, user_inputs=_context(username, context))["score"])


def policy_problems(
    password: str,
    username: str,
    previous_hashes: Iterable[str] = (),
    *,
    context: Iterable[str] = (),
) -> list[str]:
    """Why ``password`` is not acceptable for ``username`` (empty when it is).

    ``previous_hashes`` are the user's last passwords, newest first; ``context`` more
    words a guesser would try (the person's name, the department)."""
    problems: list[str] = []
    text = unicodedata.normalize("NFKC", password)
    if not text.strip():
        problems.append(Text("org.password_blank", "password must not be only whitespace"))
    elif len(text) < MIN_LENGTH:
        problems.append(Text("org.password_too_short",
                             "password too short: needs at least {n} characters", n=MIN_LENGTH))
    if username and text.strip().casefold() == username.strip().casefold():
        problems.append(Text("org.password_username", "password must not be the username"))
    if not problems and strength_score(text, username, context) < MIN_SCORE:
        problems.append(Text(
            "org.password_guessable",
            "password too easy to guess: a common or breached password, or a word, name, date, "
            "sequence or repetition; use a longer phrase"))
    for old in list(previous_hashes)[:HISTORY]:
        if verify_password(old, password):
            problems.append(Text("org.password_recent",
                                 "password was used recently (last {n} are not allowed)",
                                 n=HISTORY))
            break
    return problems


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the rule."""
    alphabet = string.ascii_letters + string.digits + "-_.!@#"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if not policy_problems(candidate, ""):
            return candidate
