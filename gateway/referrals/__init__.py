"""Referrals of applications to the provider department's head (负责人): overdue ones
automatically, each round of the gateway's maintenance or of ``govgate catalogue
escalate-overdue``, and the notices that announce them (a signed webhook, e-mail).

    rounds.py    one round: refer what is overdue, then deliver what is pending
    webhook.py   the JSON POST and its HMAC signature (the key service's mac)
    mail.py      the message (in the platform's language) and SMTP
    security_mail.py  the owner's security notices by e-mail (``security_notice_mail``):
                 not a referral, but the same SMTP settings and maintenance round

The referral itself is the catalogue workflow's (``Workflow.escalate_overdue``),
committed and audited before any notice is attempted: a webhook or mail server that
is down never holds it back, and its notice is tried again next round.
"""

from gateway.referrals.rounds import Round, maintain, run_round

__all__ = ["Round", "maintain", "run_round"]
