"""What a server's reply means for a delivery, and when a deferred one is tried again.

Pure functions: no clock unless given one, no I/O. The worker turns each transport result into
a ``Verdict`` with ``classify`` and each deferral into a next attempt time with ``next_attempt``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

#: Waits after the 1st, 2nd, 3rd... failed attempt; the last repeats until the deadline.
SCHEDULE = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
JITTER = 0.2  # +-20 %, so a thousand mails deferred together do not return together

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Words servers use for "this mailbox does not exist" when they give no enhanced code.
_UNKNOWN_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|mailbox (unavailable|not found)"
    r"|does not exist|doesn't exist|unknown recipient|recipient unknown|invalid (recipient|mailbox)"
    r"|no mailbox|not a valid mailbox|address rejected|undeliverable address",
    re.IGNORECASE,
)


# RFC 3463/7505 codes saying the recipient's address itself is bad: bad mailbox, bad system,
# bad syntax, mailbox moved, null MX. 5.1.7 and 5.1.8 are about the *sender*, so not these.
_HARD = {(5, 1, 1), (5, 1, 2), (5, 1, 3), (5, 1, 6), (5, 1, 10)}
_SENDER_CODES = {(5, 1, 7), (5, 1, 8)}
_OUR_SIDE = re.compile(
    r"sender address|relay(ing)? (access )?denied|not permitted to relay|blocked using"
    r"|block ?list|spamhaus|spamcop|client host .{0,40}(rejected|blocked)",
    re.IGNORECASE,
)


def _ours(enhanced: tuple[int, int, int] | None, message: str) -> bool:
    """Whether a 5xx at RCPT/DATA is about the sending side rather than the recipient."""
    return enhanced in _SENDER_CODES or bool(_OUR_SIDE.search(message))


class Stage(StrEnum):
    """Where in the SMTP dialogue a reply came."""

    CONNECT = "connect"  # connecting, greeting, EHLO, STARTTLS, AUTH
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    LOCAL = "local"  # the message could not even be built or written


class Verdict(StrEnum):
    """What becomes of the delivery."""

    SENT = "sent"
    DEFER = "defer"  # temporary: try again later
    BOUNCE = "bounce"  # permanent refusal of this message or address
    FAIL = "fail"  # permanent local problem


@dataclass(frozen=True, slots=True)
class Classified:
    """A verdict, whether a bounce is hard (the address does not exist), and whether the
    failure is the connection's or the server's rather than this message's (feeds the breaker)."""

    verdict: Verdict
    hard: bool = False
    systemic: bool = False


def enhanced_code(message: str) -> tuple[int, int, int] | None:
    """The RFC 3463 enhanced status code at the start of a reply text, e.g. (5, 1, 1)."""
    match = _ENHANCED.search(message[:40])
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def is_hard_status(status: str) -> bool:
    """Whether an RFC 3463 status such as ``5.1.1`` says the recipient's address is bad."""
    try:
        klass, subject, detail = (int(n) for n in status.split("."))
    except ValueError:
        return False
    return (klass, subject, detail) in _HARD


def classify(code: int | None, message: str, stage: Stage) -> Classified:
    """Turn an SMTP reply (``code`` None: no reply, the connection was lost) into a verdict."""
    if stage is Stage.LOCAL:
        return Classified(Verdict.FAIL)
    if code is None:
        return Classified(Verdict.DEFER, systemic=True)
    if 200 <= code < 300:
        return Classified(Verdict.SENT)
    if 400 <= code < 500:
        # 421 means the server is closing on us; 4xx before the envelope means it is not
        # taking mail at all. A 4xx to one recipient or one message may be just that message.
        systemic = code == 421 or stage is Stage.CONNECT or stage is Stage.MAIL
        return Classified(Verdict.DEFER, systemic=systemic or code in (451, 452))
    if 500 <= code < 600:
        if stage is Stage.CONNECT or stage is Stage.MAIL:
            # Refused before any recipient: our setup (TLS, AUTH, the sender address, a
            # blocklist), not the subscriber's address. Bouncing would drop the whole edition.
            return Classified(Verdict.DEFER, systemic=True)
        enhanced = enhanced_code(message)
        if _ours(enhanced, message):
            # The server refuses *us* (our sender, our relay rights, our IP's reputation) at
            # the recipient step; bouncing would suppress every address of the edition.
            return Classified(Verdict.DEFER, systemic=True)
        if enhanced is not None:
            hard = enhanced in _HARD
        else:
            hard = (
                code in (550, 551, 553)
                and stage is Stage.RCPT
                and bool(_UNKNOWN_USER.search(message))
            )
        return Classified(Verdict.BOUNCE, hard=hard)
    return Classified(Verdict.DEFER, systemic=True)


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after ``attempts`` failed tries (1 = the first): ~1 min, 5 min, 30 min, 2 h..."""
    base = SCHEDULE[min(max(attempts, 1), len(SCHEDULE)) - 1]
    factor = 1 + JITTER * (2 * (rng or random).random() - 1)
    return base * factor


def next_attempt(
    *,
    created_at: datetime,
    attempts: int,
    now: datetime,
    deadline: timedelta,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after ``attempts`` failed tries, or None: give up (past the deadline)."""
    at = now + backoff(attempts, rng)
    if at > created_at + deadline:
        # One last try right at the deadline is worth more than giving up early.
        last = created_at + deadline
        return last if last > now else None
    return at
