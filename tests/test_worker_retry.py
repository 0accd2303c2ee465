"""The pure rules of delivery: reply classification, retry schedule, breaker and rate limit."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.delivery.outcomes import Claimed, outcome_for
from digest.delivery.replies import (
    SCHEDULE,
    Stage,
    Verdict,
    backoff,
    classify,
    enhanced_code,
    next_attempt,
)
from digest.delivery.throttle import Breaker, RateLimiter
from digest.delivery.transport import Result
from digest.states import DeliveryStatus

codes = st.integers(min_value=100, max_value=699)
texts = st.text(max_size=120)
stages = st.sampled_from([Stage.MAIL, Stage.RCPT, Stage.DATA])
recipient_stages = st.sampled_from([Stage.RCPT, Stage.DATA])


@given(code=codes, text=texts, stage=recipient_stages)
def test_every_reply_gets_exactly_one_sensible_verdict(code: int, text: str, stage: Stage) -> None:
    c = classify(code, text, stage)
    if 200 <= code < 300:
        assert c.verdict is Verdict.SENT
    elif 500 <= code < 600:
        assert c.verdict is Verdict.BOUNCE
    else:
        assert c.verdict is Verdict.DEFER
    assert not c.hard or c.verdict is Verdict.BOUNCE


@given(text=texts, stage=stages)
def test_a_lost_connection_is_always_retried(text: str, stage: Stage) -> None:
    c = classify(None, text, stage)
    assert c.verdict is Verdict.DEFER and c.systemic


HARD = {(1, 1), (1, 2), (1, 3), (1, 6), (1, 10)}


@given(sub=st.integers(0, 999), detail=st.integers(0, 999), code=st.sampled_from([550, 553, 554]))
def test_hard_bounce_is_exactly_a_bad_recipient_address(sub: int, detail: int, code: int) -> None:
    c = classify(code, f"5.{sub}.{detail} refused", Stage.RCPT)
    if (sub, detail) in {(1, 7), (1, 8)}:  # the sender's address, not the recipient's
        assert c.verdict is Verdict.DEFER and c.systemic
        return
    assert c.verdict is Verdict.BOUNCE
    assert c.hard == ((sub, detail) in HARD)


@pytest.mark.parametrize(
    "reply",
    [
        "5.1.8 <news@bad.example>: Sender address rejected: Domain not found",
        "5.7.1 <r@example.org>: Relay access denied",
        "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        "Sender address rejected: not owned by user",
    ],
)
def test_refusals_of_our_side_at_rcpt_defer_instead_of_bouncing_the_list(reply: str) -> None:
    for code in (550, 553, 554):
        c = classify(code, reply, Stage.RCPT)
        assert c.verdict is Verdict.DEFER and c.systemic and not c.hard


def test_user_unknown_without_enhanced_code_is_hard() -> None:
    assert classify(550, "<x@y>: User unknown in local recipient table", Stage.RCPT).hard
    assert classify(550, "No such user here", Stage.RCPT).hard
    assert not classify(550, "Message rejected as spam", Stage.RCPT).hard
    assert not classify(552, "Mailbox full", Stage.RCPT).hard
    # an enhanced code wins over words
    assert not classify(550, "5.7.1 user unknown to our policy", Stage.RCPT).hard


@given(code=st.integers(400, 599), text=texts, stage=st.sampled_from([Stage.CONNECT, Stage.MAIL]))
def test_refusals_before_any_recipient_never_bounce(code: int, text: str, stage: Stage) -> None:
    # Our sender, TLS or AUTH refused: every message would bounce, so wait and retry instead.
    c = classify(code, text, stage)
    assert c.verdict is Verdict.DEFER and c.systemic and not c.hard


def test_connection_level_failures_are_systemic_not_bounces() -> None:
    assert classify(554, "No SMTP service here", Stage.CONNECT).verdict is Verdict.DEFER
    assert classify(421, "4.7.0 closing", Stage.DATA).systemic
    assert classify(451, "4.3.0 local error", Stage.DATA).systemic
    assert classify(450, "4.2.1 mailbox busy", Stage.RCPT).verdict is Verdict.DEFER
    assert classify(None, "", Stage.LOCAL).verdict is Verdict.FAIL


@given(st.text(max_size=60))
def test_enhanced_code_parser_never_fails(text: str) -> None:
    code = enhanced_code(text)
    assert code is None or code[0] in (2, 4, 5)


def test_enhanced_code_examples() -> None:
    assert enhanced_code("5.1.1 <a@b>: unknown") == (5, 1, 1)
    assert enhanced_code("4.7.0 try later") == (4, 7, 0)
    assert enhanced_code("version 1.5.1.2 here") is None
    assert enhanced_code("no code") is None


@given(attempts=st.integers(1, 50), seed=st.integers(0, 2**32))
def test_backoff_follows_the_schedule_within_jitter(attempts: int, seed: int) -> None:
    wait = backoff(attempts, random.Random(seed))
    base = SCHEDULE[min(attempts, len(SCHEDULE)) - 1]
    assert base * 0.8 <= wait <= base * 1.2


def test_backoff_is_about_1_5_30_120_minutes() -> None:
    rng = random.Random(1)
    minutes = [backoff(n, rng).total_seconds() / 60 for n in range(1, 7)]
    for got, want in zip(minutes, [1, 5, 30, 120, 120, 120], strict=True):
        assert want * 0.8 <= got <= want * 1.2


@given(
    attempts=st.integers(1, 40),
    elapsed=st.floats(0, 30 * 3600),
    hours=st.floats(0.01, 72),
    seed=st.integers(0, 1000),
)
def test_retries_never_pass_the_deadline(
    attempts: int, elapsed: float, hours: float, seed: int
) -> None:
    created = datetime(2026, 11, 29, tzinfo=UTC)
    now = created + timedelta(seconds=elapsed)
    deadline = timedelta(hours=hours)
    at = next_attempt(
        created_at=created, attempts=attempts, now=now, deadline=deadline, rng=random.Random(seed)
    )
    if now >= created + deadline:
        assert at is None
    else:
        assert at is not None and now < at <= created + deadline


def test_the_breaker_opens_after_a_run_of_failures_and_probes() -> None:
    clock = [0.0]
    b = Breaker(threshold=3, cooldown=10, max_cooldown=25, clock=lambda: clock[0])
    b.record(ok=False, systemic=True)
    b.record(ok=False, systemic=False)  # a bounce of one address says nothing of the server
    b.record(ok=False, systemic=True)
    assert not b.is_open
    b.record(ok=True, systemic=False)  # a success resets the run
    for _ in range(3):
        b.record(ok=False, systemic=True)
    assert b.is_open and b.wait() == 10 and b.trips == 1
    clock[0] = 10
    assert b.wait() == 0
    b.start_probe()
    b.record(ok=False, systemic=True)  # the probe failed: wait twice as long
    assert b.is_open and b.wait() == 20
    clock[0] = 30
    b.start_probe()
    b.record(ok=False, systemic=True)
    assert b.wait() == 25  # capped
    clock[0] = 60
    b.start_probe()
    b.record(ok=True, systemic=False)
    assert not b.is_open and b.failures == 0


@given(rate=st.floats(0.5, 500), n=st.integers(1, 400))
def test_the_rate_limiter_never_lets_more_than_rate_times_time_plus_burst(
    rate: float, n: int
) -> None:
    clock = [0.0]
    limiter = RateLimiter(rate, clock=lambda: clock[0])
    for _ in range(n):
        clock[0] += limiter.delay()  # the caller sleeps as told
    # n messages took at least (n - burst) / rate seconds
    assert clock[0] >= (n - limiter.burst) / rate - 1e-6


@given(
    code=st.one_of(st.none(), codes),
    stage=st.sampled_from(list(Stage)),
    attempts=st.integers(min_value=0, max_value=20),
    age=st.integers(min_value=0, max_value=48 * 3600),
    words=st.text(max_size=60),
)
def test_an_outcome_never_schedules_a_try_past_the_deadline(
    code: int | None, stage: Stage, attempts: int, age: int, words: str
) -> None:
    """Whatever the reply, a row ends sent, bounced or failed, or is deferred to a time before
    its deadline; giving up says how many tries it took."""
    now = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    deadline = timedelta(hours=24)
    item = Claimed(
        id=1, kind="digest", subscriber_id=7, to_email="ann@example.com", to_name="Ann",
        body_id=1, message_id="<m@example.com>", attempts=attempts,
        created_at=now - timedelta(seconds=age),
    )  # fmt: skip
    result = Result(code, f"4.2.0 try later {words}" if code else f"connection lost {words}", stage)
    out = outcome_for(item, result, now=now, deadline=deadline)
    assert (out.delivery_id, out.subscriber_id, out.to_email) == (1, 7, "ann@example.com")
    if out.status == DeliveryStatus.DEFERRED.value:
        assert out.next_attempt_at is not None
        assert now < out.next_attempt_at <= item.created_at + deadline
    else:
        assert out.next_attempt_at is None
    if result.classify().verdict is Verdict.DEFER and out.status == DeliveryStatus.FAILED.value:
        assert out.reply.startswith(f"gave up after {attempts + 1} attempts")
    if out.hard_bounce:
        assert out.status == DeliveryStatus.BOUNCED.value
    # The server's words reach `digest status` on a terminal: one line, nothing that controls it.
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", out.reply)
