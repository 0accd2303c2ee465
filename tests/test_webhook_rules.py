"""The pure parts of webhooks: the signature, the event names, the bodies, the retry schedule."""

from __future__ import annotations

import hmac
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import webhook_rules as rules
from digest.states import SubscriberStatus
from digest.webhook_signing import parse, sign, verify

secrets_ = st.text(min_size=1, max_size=80)
bodies = st.binary(max_size=2000)
times = st.integers(min_value=0, max_value=2**40)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(secrets_, bodies, times)
def test_the_signature_is_hmac_sha256_of_time_dot_body(secret: str, body: bytes, t: int) -> None:
    # Computed here independently, as a receiver following the README would.
    expected = hmac.new(secret.encode(), str(t).encode() + b"." + body, "sha256").hexdigest()
    assert sign(secret, body, t) == f"t={t},v1={expected}"
    assert parse(sign(secret, body, t)) == (t, [expected])


@given(secrets_, bodies, times, st.integers(min_value=-300, max_value=300))
def test_verify_accepts_what_was_signed_within_tolerance(
    secret: str, body: bytes, t: int, skew: int
) -> None:
    assert verify(sign(secret, body, t), body, secret, now=t + skew)


@given(secrets_, bodies, times, st.binary(min_size=1, max_size=20))
def test_verify_refuses_a_changed_body_or_secret(
    secret: str, body: bytes, t: int, extra: bytes
) -> None:
    header = sign(secret, body, t)
    assert not verify(header, body + extra, secret, now=t)
    assert not verify(header, body, secret + "x", now=t)


@given(secrets_, bodies, times, st.integers(min_value=301, max_value=10**6))
def test_verify_refuses_an_old_or_future_signature(
    secret: str, body: bytes, t: int, skew: int
) -> None:
    header = sign(secret, body, t)
    assert not verify(header, body, secret, now=t + skew)
    assert not verify(header, body, secret, now=t - skew)


@given(st.text(max_size=60))
def test_verify_never_raises_on_a_stranger_s_header(header: str) -> None:
    assert verify(header, b"{}", "s", now=0) in (True, False)


def test_event_names_are_the_contract_s() -> None:
    assert rules.EVENTS == (
        "subscriber.pending",
        "subscriber.confirmed",
        "subscriber.unsubscribed",
        "subscriber.bounced",
        "subscriber.complained",
        "subscriber.erased",
        "edition.sent",
        "alert.sent",
    )
    assert rules.event_for_status(SubscriberStatus.ACTIVE.value) == "subscriber.confirmed"
    assert rules.event_for_status(SubscriberStatus.INACTIVE.value) is None


@given(st.lists(st.sampled_from(rules.EVENTS), min_size=1))
def test_parse_events_keeps_known_ones_once_in_contract_order(asked: list[str]) -> None:
    parsed = rules.parse_events(" , ".join(asked))
    assert parsed == [e for e in rules.EVENTS if e in asked]


@pytest.mark.parametrize("text", ["", " , ", "subscriber.pending,webhook.test", "edition"])
def test_parse_events_refuses_unknown_or_none(text: str) -> None:
    with pytest.raises(ValueError):
        rules.parse_events(text)


@given(st.text(max_size=30), moments, st.dictionaries(st.text(max_size=10), st.integers()))
def test_the_body_is_the_four_keys_in_json(event_id: str, created: datetime, data: dict) -> None:
    parsed = json.loads(rules.body(event_id, "edition.sent", created, data))
    assert list(parsed) == ["id", "type", "created", "data"]
    assert parsed["id"] == event_id and parsed["data"] == data
    assert datetime.fromisoformat(parsed["created"]) == created.replace(
        microsecond=created.microsecond // 1000 * 1000
    )


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=1))
def test_a_retry_waits_30s_doubling_with_jitter_at_most_an_hour(attempts: int, j: float) -> None:
    delay = rules.retry_delay(attempts, j).total_seconds()
    plain = 30 * 2 ** (attempts - 1)
    assert min(0.75 * plain, 3600) <= delay <= min(1.25 * plain, 3600)
    assert delay <= 3600


@given(moments, st.lists(st.floats(min_value=0, max_value=1), min_size=200, max_size=200))
def test_a_receiver_down_all_day_is_tried_until_24h_then_dead(
    created: datetime, jitters: list[float]
) -> None:
    now, tries = created, []
    for attempts, j in enumerate(jitters, start=1):
        tries.append(now)
        later = rules.after_failure(attempts, created, now, j)
        if later is None:
            break
        assert now < later <= created + timedelta(hours=24)
        now = later
    else:
        pytest.fail("never gave up")
    assert tries[-1] == created + timedelta(hours=24)  # the last try at the mark itself
    assert 20 <= len(tries) <= 60
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(tries)]
    assert max(gaps) <= 3600


@given(moments, st.integers(min_value=1, max_value=100), st.floats(min_value=0, max_value=1))
def test_after_24h_a_failure_is_final(created: datetime, attempts: int, j: float) -> None:
    assert rules.after_failure(attempts, created, created + timedelta(hours=24), j) is None
    assert rules.after_failure(attempts, created, created + timedelta(hours=23), j) is not None


def _readme_verifier():  # type: ignore[no-untyped-def]
    """The verification snippet of the README's Webhooks section, as a receiver copies it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # our own README
    return namespace["verified"]


@given(secrets_, bodies)
def test_the_readme_snippet_verifies_what_digest_signs(secret: str, body: bytes) -> None:
    verified = _readme_verifier()
    now = int(time.time())
    assert verified(sign(secret, body, now), body, secret)
    assert not verified(sign(secret, body, now), body + b" ", secret)
    assert not verified(sign(secret, body, now - 3600), body, secret)


@given(moments, st.sampled_from(["daily", "weekly"]), st.integers(min_value=0, max_value=59))
def test_a_scheduled_slot_closes_after_its_hour_and_a_margin(
    at: datetime, cadence: str, minute: int
) -> None:
    # Every tick of the hour (a +5:45 zone joins at :45) shares the key; the slot stays open.
    tick = at.replace(minute=minute)
    key = f"3/{cadence}:{tick:%Y-%m-%dT%H}Z"
    closes = rules.slot_closes(key, tick)
    hour = tick.replace(minute=0, second=0, microsecond=0)
    assert closes == hour + timedelta(hours=1) + rules.SLOT_MARGIN
    assert closes > hour + timedelta(minutes=59, seconds=59)


@given(moments)
def test_an_edition_made_on_demand_closes_when_made(at: datetime) -> None:
    assert rules.slot_closes(f"1/daily:now:{at:%Y-%m-%dT%H:%M:%S}Z", at) == at
    assert rules.slot_closes("preview:1", at) == at


@pytest.mark.parametrize(
    ("url", "audited", "shown"),
    [
        (
            "https://u:p@hooks.example:8443/in?token=abc#f",
            "https://hooks.example:8443/in",
            "https://***@hooks.example:8443/in?token=***",
        ),
        (
            "https://hooks.example/in/T0K3N",
            "https://hooks.example/in/T0K3N",
            "https://hooks.example/in/T0K3N",
        ),
        ("http://[::1]:80/h?a=1&b=", "http://[::1]:80/h", "http://[::1]:80/h?a=***&b=***"),
        ("https://tok@hooks.example/", "https://hooks.example/", "https://***@hooks.example/"),
    ],
)
def test_a_url_without_its_credentials(url: str, audited: str, shown: str) -> None:
    assert rules.audited_url(url) == audited
    assert rules.redacted_url(url) == shown


@given(st.text(max_size=40), st.text(max_size=40))
def test_no_credential_survives_either_form(user: str, token: str) -> None:
    from urllib.parse import quote

    url = f"https://{quote(user, safe='')}:pw@hooks.example/x?t={quote(token, safe='')}"
    for form in (rules.audited_url(url), rules.redacted_url(url)):
        assert form in ("https://hooks.example/x", "https://***@hooks.example/x?t=***")
