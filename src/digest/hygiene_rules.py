"""List hygiene's rule (pure): whom to ask "still want this?", whom to retire, whose answer
came as a click.

A newsletter's policy is ``N:M[:D]``: a reader who was sent at least N of its digests over the
last M weeks, had been reading it (active) since before those M weeks began, and made no human
click in that time is asked once; one who was asked and, D days after the question went out,
has neither pressed "Yes, keep sending" nor clicked anything in its mail is retired (status
``inactive``: mail stops, the record stays, they can come back). A click after the question is
an answer too. Clicks are only known per reader under ``DIGEST_TRACKING=per-reader``; the store
(``hygiene.py``) gathers each reader's facts and applies the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from digest.errors import InvalidInput

DEFAULT_GRACE_DAYS = 14
MAX_DIGESTS = 1000
MAX_WEEKS = 520  # ten years
MAX_GRACE_DAYS = 365
OFF = "off"


@dataclass(frozen=True)
class Policy:
    """A newsletter's hygiene: ``digests`` sent over ``weeks`` weeks without a click asks;
    no answer ``grace_days`` after the question retires."""

    digests: int
    weeks: int
    grace_days: int = DEFAULT_GRACE_DAYS

    @classmethod
    def parse(cls, text: str) -> Policy | None:
        """``"N:M"`` or ``"N:M:D"`` as a policy, ``"off"`` (or empty) as None; InvalidInput
        saying what is wrong otherwise."""
        value = (text or "").strip().lower()
        if value in ("", OFF):
            return None
        parts = value.split(":")
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (2, 3):
            raise InvalidInput(
                f"hygiene is N:M[:D] (N digests over M weeks, D days to answer) or off, "
                f"not {text!r}"
            )
        return cls.of(*numbers)

    @classmethod
    def of(cls, digests: int, weeks: int, grace_days: int | None = None) -> Policy:
        """A policy from its three numbers, each checked against its bounds."""
        grace = DEFAULT_GRACE_DAYS if grace_days is None else grace_days
        for label, value, top in (
            ("digests (N)", digests, MAX_DIGESTS),
            ("weeks (M)", weeks, MAX_WEEKS),
            ("days to answer (D)", grace, MAX_GRACE_DAYS),
        ):
            if not 1 <= value <= top:
                raise InvalidInput(f"hygiene {label} must be 1-{top}, not {value}")
        return cls(digests, weeks, grace)

    @property
    def text(self) -> str:
        """As ``--hygiene`` takes it: ``"8:8:14"``."""
        return f"{self.digests}:{self.weeks}:{self.grace_days}"

    def window_start(self, now: datetime) -> datetime:
        """The start of the M weeks looked back over."""
        return now - timedelta(weeks=self.weeks)

    @property
    def grace(self) -> timedelta:
        """How long a reader has to answer."""
        return timedelta(days=self.grace_days)


def stored_policy(digests: int | None, weeks: int | None, grace_days: int | None) -> Policy | None:
    """The policy a newsletter's three columns hold; None (off) while N or M is unset."""
    if digests is None or weeks is None:
        return None
    grace = DEFAULT_GRACE_DAYS if grace_days is None else grace_days
    return Policy(digests, weeks, grace)


@dataclass(frozen=True)
class ReaderFacts:
    """What the rule needs to know about one active reader of the newsletter."""

    joined: datetime | None  # when they last became active on it
    digests: int  # its digests sent to them since the window started
    last_click_at: datetime | None  # their last human click on its mail
    asked_at: datetime | None = None  # when "still want this?" was queued for them
    ask_sent_at: datetime | None = None  # when that mail actually went out
    ask_lost: bool = False  # that mail ended unsent (failed, bounced, cancelled) or is gone


class Verdict(StrEnum):
    """What a hygiene pass does with one reader."""

    KEEP = "keep"  # a reader, or too new to tell: nothing
    ASK = "ask"  # queue "still want this?"
    WAIT = "wait"  # asked; the mail has not gone out, or the days to answer are not over
    ANSWERED = "answered"  # clicked (or became active again) since being asked: closed
    RETIRE = "retire"  # asked, mail went out D days ago or more, no answer
    DROP = "drop"  # the question cannot be judged: cleared unanswered, may be asked again


def judged_from(policy: Policy, tracked_since: datetime | None) -> datetime | None:
    """The first moment a reader can be asked: M weeks wholly under per-reader tracking
    after ``tracked_since``; None while per-reader tracking is not in force."""
    return None if tracked_since is None else tracked_since + timedelta(weeks=policy.weeks)


def verdict(
    facts: ReaderFacts, policy: Policy, now: datetime, tracked_since: datetime | None
) -> Verdict:
    """The verdict on one active reader at ``now``; ``tracked_since`` is when per-reader
    tracking last began (None: not in force), before which nobody's clicks were kept."""
    if facts.asked_at is not None:
        if facts.last_click_at is not None and facts.last_click_at > facts.asked_at:
            return Verdict.ANSWERED
        if facts.joined is not None and facts.joined > facts.asked_at:
            # Active again since (an import, an operator's add): the question is closed,
            # and retiring them for an old one would undo that.
            return Verdict.ANSWERED
        if tracked_since is None or tracked_since > facts.asked_at:
            # A click since the question may not have been kept: retiring would be a guess.
            return Verdict.DROP
        # The days to answer count from when the mail left, not when it was queued: nobody is
        # retired for a question still in the outbox (or one that never reached them).
        if facts.ask_sent_at is not None and now - facts.ask_sent_at >= policy.grace:
            return Verdict.RETIRE
        if facts.ask_lost and facts.ask_sent_at is None and now - facts.asked_at >= policy.grace:
            # Never reached them; dropped D days after asking, so an address whose mail keeps
            # failing gets one question per D days, not one per pass.
            return Verdict.DROP
        return Verdict.WAIT
    start = policy.window_start(now)
    if tracked_since is None or tracked_since > start:
        return Verdict.KEEP  # part of the window was not tracked per reader: silence unknown
    if facts.joined is None or facts.joined > start:
        return Verdict.KEEP  # not reading for the whole window: too early to judge
    if facts.last_click_at is not None and facts.last_click_at >= start:
        return Verdict.KEEP
    if facts.digests < policy.digests:
        return Verdict.KEEP
    return Verdict.ASK
