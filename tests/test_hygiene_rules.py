"""List hygiene's rule, pure: who is asked "still want this?", who is retired, and when never.

Properties over any reader's facts at any moment; a few worked examples say the rule in words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import InvalidInput
from digest.hygiene_rules import (
    DEFAULT_GRACE_DAYS,
    Policy,
    ReaderFacts,
    Verdict,
    stored_policy,
    verdict,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
POLICY = Policy(8, 8, 14)
TRACKED = NOW - timedelta(weeks=600)  # per-reader tracking in force longer than any window

moments = st.one_of(
    st.none(),
    st.integers(min_value=-400 * 24, max_value=0).map(lambda h: NOW + timedelta(hours=h)),
)
policies = st.builds(
    Policy,
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=52),
    st.integers(min_value=1, max_value=60),
)
facts = st.builds(
    ReaderFacts,
    joined=moments,
    digests=st.integers(min_value=0, max_value=400),
    last_click_at=moments,
    asked_at=moments,
    ask_sent_at=moments,
    ask_lost=st.booleans(),
)


@given(facts, policies)
def test_a_click_in_the_window_is_never_asked(f: ReaderFacts, policy: Policy) -> None:
    start = policy.window_start(NOW)
    if f.last_click_at is not None and f.last_click_at >= start:
        assert verdict(f, policy, NOW, TRACKED) is not Verdict.ASK


@given(facts, policies)
def test_nobody_is_retired_who_was_not_asked_days_to_answer_ago(
    f: ReaderFacts, policy: Policy
) -> None:
    if verdict(f, policy, NOW, TRACKED) is Verdict.RETIRE:
        assert f.asked_at is not None and f.ask_sent_at is not None
        assert NOW - f.ask_sent_at >= timedelta(days=policy.grace_days)
        # ... and made no click since the question.
        assert f.last_click_at is None or f.last_click_at <= f.asked_at


@given(facts, policies)
def test_a_click_after_the_question_always_answers_it(f: ReaderFacts, policy: Policy) -> None:
    if f.asked_at is not None and f.last_click_at is not None and f.last_click_at > f.asked_at:
        assert verdict(f, policy, NOW, TRACKED) is Verdict.ANSWERED


@given(facts, policies)
def test_whoever_became_active_again_since_the_question_is_never_retired_for_it(
    f: ReaderFacts, policy: Policy
) -> None:
    if f.asked_at is not None and f.joined is not None and f.joined > f.asked_at:
        assert verdict(f, policy, NOW, TRACKED) is Verdict.ANSWERED


@given(facts, policies)
def test_asked_once_is_never_asked_again_until_the_question_is_closed(
    f: ReaderFacts, policy: Policy
) -> None:
    if f.asked_at is not None:
        allowed = (Verdict.WAIT, Verdict.ANSWERED, Verdict.RETIRE, Verdict.DROP)
        assert verdict(f, policy, NOW, TRACKED) in allowed
    else:
        assert verdict(f, policy, NOW, TRACKED) in (Verdict.KEEP, Verdict.ASK)


@given(facts, policies)
def test_whoever_joined_within_the_window_is_too_new_to_judge(
    f: ReaderFacts, policy: Policy
) -> None:
    if f.asked_at is None and (f.joined is None or f.joined > policy.window_start(NOW)):
        assert verdict(f, policy, NOW, TRACKED) is Verdict.KEEP


@given(facts, policies, st.integers(min_value=0, max_value=100))
def test_more_digests_unread_never_turns_a_question_into_nothing(
    f: ReaderFacts, policy: Policy, more: int
) -> None:
    if verdict(f, policy, NOW, TRACKED) is Verdict.ASK:
        heavier = ReaderFacts(f.joined, f.digests + more, f.last_click_at)
        assert verdict(heavier, policy, NOW, TRACKED) is Verdict.ASK


@given(facts, policies)
def test_asking_needs_n_digests(f: ReaderFacts, policy: Policy) -> None:
    if verdict(f, policy, NOW, TRACKED) is Verdict.ASK:
        assert f.digests >= policy.digests


@given(facts, policies, moments)
def test_only_weeks_wholly_under_per_reader_tracking_judge_anyone(
    f: ReaderFacts, policy: Policy, tracked_since: datetime | None
) -> None:
    found = verdict(f, policy, NOW, tracked_since)
    if found is Verdict.ASK:
        assert tracked_since is not None and tracked_since <= policy.window_start(NOW)
    if found is Verdict.RETIRE:
        assert f.asked_at is not None
        assert tracked_since is not None and tracked_since <= f.asked_at


@given(facts, policies)
def test_a_question_that_never_went_out_is_dropped_only_after_d_days(
    f: ReaderFacts, policy: Policy
) -> None:
    if verdict(f, policy, NOW, TRACKED) is Verdict.DROP:
        assert f.asked_at is not None and f.ask_lost and f.ask_sent_at is None
        assert NOW - f.asked_at >= policy.grace


@given(policies)
def test_a_policy_reads_back_as_written(policy: Policy) -> None:
    assert Policy.parse(policy.text) == policy
    assert stored_policy(policy.digests, policy.weeks, policy.grace_days) == policy


def test_the_rule_in_words() -> None:
    long_ago = NOW - timedelta(weeks=20)
    silent = ReaderFacts(joined=long_ago, digests=40, last_click_at=None)
    assert verdict(silent, POLICY, NOW, TRACKED) is Verdict.ASK
    # Seven of the eight digests: not yet.
    assert verdict(ReaderFacts(long_ago, 7, None), POLICY, NOW, TRACKED) is Verdict.KEEP
    # A click nine weeks ago is older than the window: asked; one a week ago: a reader.
    assert (
        verdict(ReaderFacts(long_ago, 40, NOW - timedelta(weeks=9)), POLICY, NOW, TRACKED)
        is Verdict.ASK
    )
    assert (
        verdict(ReaderFacts(long_ago, 40, NOW - timedelta(weeks=1)), POLICY, NOW, TRACKED)
        is Verdict.KEEP
    )
    # Joined seven weeks ago: too new, however many digests.
    assert (
        verdict(ReaderFacts(NOW - timedelta(weeks=7), 49, None), POLICY, NOW, TRACKED)
        is Verdict.KEEP
    )
    asked = NOW - timedelta(days=15)
    sent = asked + timedelta(minutes=2)
    # 14 days after the mail left, unanswered: retired; a day earlier: still waiting.
    assert (
        verdict(ReaderFacts(long_ago, 40, None, asked, sent), POLICY, NOW, TRACKED)
        is Verdict.RETIRE
    )
    day_before = NOW - timedelta(days=1)
    assert (
        verdict(ReaderFacts(long_ago, 40, None, asked, sent), POLICY, day_before, TRACKED)
        is Verdict.WAIT
    )
    # Never went out (still queued, or failed): never retired.
    assert (
        verdict(ReaderFacts(long_ago, 40, None, asked, None), POLICY, NOW, TRACKED) is Verdict.WAIT
    )
    # Failed: the question is dropped D days after asking, so a later pass may ask again.
    lost = ReaderFacts(long_ago, 40, None, asked, None, ask_lost=True)
    assert verdict(lost, POLICY, NOW, TRACKED) is Verdict.DROP
    assert verdict(lost, POLICY, asked + timedelta(days=13), TRACKED) is Verdict.WAIT
    # Per-reader tracking since a week ago: the silent are not judged until eight weeks of it.
    assert verdict(silent, POLICY, NOW, NOW - timedelta(weeks=1)) is Verdict.KEEP
    assert verdict(silent, POLICY, NOW, NOW - timedelta(weeks=8)) is Verdict.ASK
    assert verdict(silent, POLICY, NOW, None) is Verdict.KEEP
    # Asked before per-reader tracking last began: a click since may be lost, never retired.
    unanswered = ReaderFacts(long_ago, 40, None, asked, sent)
    assert verdict(unanswered, POLICY, NOW, asked + timedelta(days=1)) is Verdict.DROP
    clicked = ReaderFacts(long_ago, 40, asked + timedelta(days=1), asked, sent)
    assert verdict(clicked, POLICY, NOW, TRACKED) is Verdict.ANSWERED


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("8:8", Policy(8, 8, DEFAULT_GRACE_DAYS)),
        (" 12:6:30 ", Policy(12, 6, 30)),
        ("off", None),
        ("OFF", None),
        ("", None),
    ],
)
def test_policies_are_written_n_m_d(text: str, wanted: Policy | None) -> None:
    assert Policy.parse(text) == wanted


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("8", "N:M[:D]"),
        ("8:8:14:2", "N:M[:D]"),
        ("eight:8", "N:M[:D]"),
        ("0:8", "digests (N) must be 1-1000"),
        ("8:0", "weeks (M) must be 1-520"),
        ("8:8:0", "days to answer (D) must be 1-365"),
        ("8:8:400", "days to answer (D) must be 1-365"),
    ],
)
def test_a_bad_policy_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        Policy.parse(text)


def test_unset_columns_are_off() -> None:
    assert stored_policy(None, 8, 14) is None
    assert stored_policy(8, None, None) is None
    assert stored_policy(8, 8, None) == Policy(8, 8, DEFAULT_GRACE_DAYS)
