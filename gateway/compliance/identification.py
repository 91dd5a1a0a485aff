"""Identification and authentication (身份鉴别, GB/T 22239-2019 8.1.4.1 a, b, d)."""

from __future__ import annotations

import sqlalchemy as sa

from gateway import passwords
from gateway.compliance.model import Check, State, names, verdict
from gateway.idp.passkeys.tables import webauthn_credentials
from gateway.org import ADMIN_ROLES, USERNAME_RE, sign_in_name
from gateway.tables import clients, user_roles, users
from texts import Text

# our thresholds (docs/compliance.md): GB/T 22239 names the measures, not the numbers
MAX_LOCKOUT_THRESHOLD = 10
MIN_LOCK_SECONDS = 600
MAX_IDLE_SECONDS = 1800
MAX_ABSOLUTE_SECONDS = 24 * 3600

# what the password rule must refuse, with a sign-in name it is checked for
PROBE_USER = "zhang.san"
WEAK_PROBES = (
    ("Tb7#kq9!", Text("compliance.probe_short", "8 characters")),
    ("password1234", Text("compliance.probe_common", "a common password")),
    ("qwertyuiop123", Text("compliance.probe_keyboard", "a keyboard walk")),
    ("aaaaaaaaaaaaaaaa", Text("compliance.probe_repeat", "a repetition")),
    ("zhang.san2026!", Text("compliance.probe_name", "the username and a year")),
    ("            ", Text("compliance.probe_blank", "only spaces")),
)


def unique_identity(state: State) -> tuple[str, list[str]]:
    with state.engine.connect() as conn:
        usernames = [r.username for r in conn.execute(sa.select(users.c.username))]
        unique = any(set(u["column_names"]) == {"username"}
                     for u in sa.inspect(conn).get_unique_constraints("users")) or any(
            i["unique"] and i["column_names"] == ["username"]
            for i in sa.inspect(conn).get_indexes("users"))
    problems: list[str] = []
    if not unique:
        problems.append(Text("compliance.no_unique_username",
                             "the database does not keep usernames unique (no unique "
                             "constraint on users.username)"))
    odd = sorted(n for n in usernames if not USERNAME_RE.match(n))
    if odd:
        problems.append(Text("compliance.odd_usernames",
                             "{n} account(s) not in the one sign-in form (lower-case letters, "
                             "digits, . _ -): {names}", n=len(odd), names=names(odd)))
    folded: dict[str, list[str]] = {}
    for n in usernames:
        folded.setdefault(sign_in_name(n), []).append(n)
    shared = sorted(k for k, v in folded.items() if len(v) > 1)
    if shared:
        problems.append(Text("compliance.shared_sign_in",
                             "sign-in names that reach more than one account: {names}",
                             names=names(shared)))
    # a client-credentials token's sub is its client_id (RFC 9700 section 4.15): a pair
    # made before registration refused it (gateway.statefile.name_problems) is still here
    twins = client_user_twins(state.engine)
    if twins:
        problems.append(Text("compliance.client_user_twins",
                             "clients whose client_id is also a username (a resource server "
                             "reading sub alone takes the client for the person; rename the "
                             "client): {names}", names=names(twins)))
    return verdict(problems, [Text(
        "compliance.accounts_unique",
        "{n} accounts, each with its own username (unique in the database; what people type "
        "is folded to it: full-width forms, case, spaces)", n=len(usernames))])


def client_user_twins(engine: sa.Engine) -> list[str]:
    """The client ids that are also a username, compared without case, as
    ``gateway.statefile.name_problems`` and ``gateway.org.add_user`` compare them."""
    with engine.connect() as conn:
        return sorted(conn.execute(
            sa.select(clients.c.client_id).where(sa.func.lower(clients.c.client_id).in_(
                sa.select(sa.func.lower(users.c.username))))).scalars())


def client_authentication(state: State) -> tuple[str, list[str]]:
    """The department systems' own authentication at the identity provider: PKCE on
    every authorization code (RFC 9700 section 2.1.1), client assertions naming the
    issuer alone (draft-ietf-oauth-rfc7523bis; the OpenID Foundation's advisory of January 2025),
    and no fixed credential (HTTP Basic or an API key) taken at /s/ instead of a token."""
    with state.engine.connect() as conn:
        rows = conn.execute(sa.select(
            clients.c.client_id, clients.c.grant_types, clients.c.require_pkce,
            clients.c.token_endpoint_auth_method, clients.c.lenient_assertion_audience,
            clients.c.static_credential)
            .where(clients.c.status == "active")
            .order_by(clients.c.client_id)).fetchall()
    coded = [r for r in rows if "authorization_code" in (r.grant_types or [])]
    without = [r.client_id for r in coded
               if not r.require_pkce and r.token_endpoint_auth_method != "none"]  # noqa: S105
    asserting = [r.client_id for r in rows
                 if r.token_endpoint_auth_method == "private_key_jwt"]  # noqa: S105
    lenient = state.settings.client_assertion_audience != "issuer"
    # let off one by one (govgate client assertion-audience), when not all together
    let_off = [r.client_id for r in rows if r.lenient_assertion_audience
               and r.token_endpoint_auth_method == "private_key_jwt"]  # noqa: S105
    # a fixed credential at /s/ (gateway.proxy.static_credentials): sent on every call,
    # never expiring, where a token lives minutes and its secret crosses once
    fixed = [f"{r.client_id} ({r.static_credential})" for r in rows
             if (r.static_credential or "off") != "off"]
    problems: list[str] = []
    if fixed:
        problems.append(Text("compliance.static_credentials",
                             "clients that call /s/ with a fixed credential, weaker than a "
                             "token (govgate client static-credential CLIENT off): {names}",
                             names=names(fixed)))
    if without:
        problems.append(Text("compliance.pkce_optional",
                             "clients whose authorization requests may leave PKCE out "
                             "(govgate client pkce CLIENT --require): {names}",
                             names=names(without)))
    if lenient and asserting:
        problems.append(Text("compliance.assertion_audience_lenient",
                             "client assertions may name the token endpoint or several "
                             "audiences (client_assertion_audience = {value}): {names}",
                             value=state.settings.client_assertion_audience,
                             names=names(asserting)))
    elif let_off:
        problems.append(Text("compliance.assertion_audience_clients",
                             "clients whose assertions may name the token endpoint or several "
                             "audiences (govgate client assertion-audience CLIENT --strict): "
                             "{names}", names=names(let_off)))
    return verdict(problems, [
        Text("compliance.pkce", "{n} of {total} clients with authorization codes send PKCE "
             "(S256; plain refused)", n=len(coded) - len(without), total=len(coded)),
        Text("compliance.assertion_audience",
             "{n} clients authenticate by private_key_jwt; an assertion must name the issuer "
             "alone", n=len(asserting)) if not lenient else
        Text("compliance.assertion_audience_any",
             "{n} clients authenticate by private_key_jwt; an assertion may name the issuer "
             "or the token endpoint", n=len(asserting)),
    ])


def password_complexity(state: State) -> tuple[str, list[str]]:
    accepted = [kind for probe, kind in WEAK_PROBES
                if not passwords.policy_problems(probe, PROBE_USER)]
    facts = [
        Text("compliance.password_rule",
             "the rule of every password write (portal, API, CLI, state file): at least {n} "
             "characters, strength estimate {score} of 4 or more (zxcvbn: common and breached "
             "passwords, words, names, dates, keyboard walks), not the username, none of the "
             "last {history}", n=passwords.MIN_LENGTH, score=passwords.MIN_SCORE,
             history=passwords.HISTORY),
        Text("compliance.password_probes", "{refused} of {total} weak passwords tried were "
             "refused", refused=len(WEAK_PROBES) - len(accepted), total=len(WEAK_PROBES)),
        Text("compliance.password_no_expiry",
             "no maximum age: a change is forced after a reset or when the rule tightens "
             "(NIST SP 800-63B 5.1.1.2)"),
    ]
    problems = [Text("compliance.password_accepts",
                     "the rule accepts weak passwords: {kinds}", kinds=", ".join(accepted))
                ] if accepted else []
    return verdict(problems, facts)


def login_failure(state: State) -> tuple[str, list[str]]:
    s = state.settings
    threshold = max(s.lockout_threshold, 1)
    problems: list[str] = []
    if threshold > MAX_LOCKOUT_THRESHOLD:
        problems.append(Text("compliance.lockout_late",
                             "an account locks only after {n} failures (at most {max})",
                             n=threshold, max=MAX_LOCKOUT_THRESHOLD))
    if s.lockout_window_seconds < MIN_LOCK_SECONDS:
        problems.append(Text("compliance.lockout_short",
                             "a lock lasts {s} s (at least {min} s)",
                             s=s.lockout_window_seconds, min=MIN_LOCK_SECONDS))
    facts = [Text("compliance.lockout",
                  "{n} failures within {window} s lock the account for {window} s "
                  "(lockout_threshold, lockout_window_seconds); sign-in names with no account "
                  "lock the same way", n=threshold, window=s.lockout_window_seconds)]
    if s.login_delay_base_seconds > 0:
        facts.append(Text("compliance.login_delay",
                          "each source address waits {base} s after a failure, doubling up "
                          "to {max} s", base=s.login_delay_base_seconds,
                          max=s.login_delay_max_seconds))
    else:
        facts.append(Text("compliance.login_delay_off",
                          "no delay per source address (login_delay_base_seconds = 0)"))
    return verdict(problems, facts)


def session_timeout(state: State) -> tuple[str, list[str]]:
    s = state.settings
    problems: list[str] = []
    if not 0 < s.session_idle_timeout <= MAX_IDLE_SECONDS:
        problems.append(Text("compliance.idle_long",
                             "an idle session ends after {s} s (at most {max} s)",
                             s=s.session_idle_timeout, max=MAX_IDLE_SECONDS))
    if not 0 < s.session_absolute_timeout <= MAX_ABSOLUTE_SECONDS:
        problems.append(Text("compliance.absolute_long",
                             "a session lasts up to {s} s (at most {max} s)",
                             s=s.session_absolute_timeout, max=MAX_ABSOLUTE_SECONDS))
    return verdict(problems, [Text(
        "compliance.sessions",
        "sessions end after {idle} s idle and {absolute} s in all (session_idle_timeout, "
        "session_absolute_timeout); access tokens live {access} s, refresh tokens {refresh} s",
        idle=s.session_idle_timeout, absolute=s.session_absolute_timeout,
        access=s.access_token_lifetime, refresh=s.refresh_token_lifetime)])


def admin_two_factor(state: State) -> tuple[str, list[str]]:
    """An admin signs in with the password and a TOTP code; one without an authenticator
    must set one up before any session starts (gateway.web.portal.routes.next_stage).
    Until then the password alone leads to that set-up: safe only while it is the
    one-time password the admin must change first."""
    with state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(users.c.username, users.c.must_change,
                      # a TOTP or a security key (docs/webauthn.md): either is the factor
                      (users.c.totp_secret.is_not(None) | users.c.id.in_(
                          sa.select(webauthn_credentials.c.user_id))).label("totp"))
            .where(users.c.status == "active",
                   users.c.id.in_(sa.select(user_roles.c.user_id)
                                  .where(user_roles.c.role_code.in_(sorted(ADMIN_ROLES)))))
            .order_by(users.c.username)).fetchall()
    enrolled = [r.username for r in rows if r.totp]
    first = [r.username for r in rows if not r.totp and r.must_change]
    exposed = [r.username for r in rows if not r.totp and not r.must_change]
    problems = [Text("compliance.admin_password_only",
                     "admins whose next sign-in sets up an authenticator with the password "
                     "alone: {names}", names=names(exposed))] if exposed else []
    return verdict(problems, [
        Text("compliance.admin_mfa_rule",
             "admin accounts sign in with the password and a TOTP code (RFC 6238, its seed "
             "sealed by the key ring); an admin without one sets it up before any session"),
        Text("compliance.admin_mfa_count",
             "{enrolled} of {total} active admins have an authenticator; {first} have not "
             "signed in yet (one-time password to change, then the authenticator)",
             enrolled=len(enrolled), total=len(rows), first=len(first)),
    ])


CHECKS = (
    Check("ia.unique_identity", Text(
        "compliance.title.unique_identity",
        "Unique user identification (GB/T 22239-2019 8.1.4.1 a)"), unique_identity),
    Check("ia.password_complexity", Text(
        "compliance.title.password_complexity",
        "Password complexity (GB/T 22239-2019 8.1.4.1 a)"), password_complexity),
    Check("ia.login_failure", Text(
        "compliance.title.login_failure",
        "Login failure handling (GB/T 22239-2019 8.1.4.1 b)"), login_failure),
    Check("ia.session_timeout", Text(
        "compliance.title.session_timeout",
        "Session timeout (GB/T 22239-2019 8.1.4.1 b)"), session_timeout),
    Check("ia.admin_two_factor", Text(
        "compliance.title.admin_two_factor",
        "Two factors for administrators (GB/T 22239-2019 8.1.4.1 d)"), admin_two_factor),
    Check("ia.client_authentication", Text(
        "compliance.title.client_authentication",
        "Authentication of department systems (GB/T 22239-2019 8.1.4.1 a)"),
        client_authentication),
)
