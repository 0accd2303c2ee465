"""SNS message signatures: what SNS signed verifies (versions 1 and 2); an altered, forged,
stale or wrongly hosted post is refused, and only a trusted host is ever fetched."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from digest.delivery.sns import MAX_AGE, MAX_SKEW, SnsVerifier, fresh, string_to_sign
from digest.errors import SignatureRefused, SnsUnavailable
from tests.support.sns import FakeSns

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def test_the_string_to_sign_is_name_and_value_lines_in_aws_order() -> None:
    post = {"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "a\nb"}
    post["Timestamp"] = "2026-12-01T12:00:00.000Z"
    assert string_to_sign(post) == (
        b"Message\na\nb\nMessageId\nm\nTimestamp\n2026-12-01T12:00:00.000Z\n"
        b"TopicArn\nt\nType\nNotification\n"
    )
    with_subject = string_to_sign({**post, "Subject": "S"})
    assert b"MessageId\nm\nSubject\nS\nTimestamp\n" in with_subject
    with pytest.raises(SignatureRefused):
        string_to_sign({**post, "MessageId": None})
    with pytest.raises(SignatureRefused):
        string_to_sign({**post, "Type": "Other"})


@given(
    fields=st.fixed_dictionaries(
        {"Message": texts, "MessageId": texts, "Timestamp": texts, "TopicArn": texts}
    ),
    name=st.sampled_from(["Message", "MessageId", "Timestamp", "TopicArn"]),
    extra=st.text(min_size=1, max_size=5),
)
def test_changing_any_signed_field_changes_the_string_to_sign(
    fields: dict[str, str], name: str, extra: str
) -> None:
    post = {"Type": "Notification", **fields}
    changed = {**post, name: post[name] + extra}
    assert string_to_sign(post) != string_to_sign(changed)


@given(st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)))
def test_a_timestamp_is_fresh_only_inside_the_delivery_window(offset: timedelta) -> None:
    stamp = (NOW + offset).isoformat().replace("+00:00", "Z")
    assert fresh(stamp, NOW) == (-MAX_AGE <= offset <= MAX_SKEW)


def test_fresh_refuses_garbage_and_naive_times() -> None:
    assert not fresh("yesterday", NOW)
    assert not fresh("2026-12-01T12:00:00", NOW)
    assert not fresh(None, NOW)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_post_signed_by_sns_verifies_and_an_altered_one_does_not(
    fake_sns: FakeSns, version: str
) -> None:
    verifier = fake_sns.verifier()
    post = fake_sns.sign(fake_sns.notification(json.dumps({"a": 1}), Subject="s"), version=version)
    verifier.verify(post)
    for name, value in [("Message", '{"a": 2}'), ("Subject", "t"), ("TopicArn", "x")]:
        with pytest.raises(SignatureRefused, match="does not match"):
            verifier.verify({**post, name: value})
    with pytest.raises(SignatureRefused, match="SignatureVersion"):
        verifier.verify({**post, "SignatureVersion": "3"})
    with pytest.raises(SignatureRefused, match="does not match"):
        # The same bytes checked as the other version's hash.
        verifier.verify({**post, "SignatureVersion": "2" if version == "1" else "1"})


def test_a_post_signed_with_another_key_is_refused(fake_sns: FakeSns) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = fake_sns.sign(fake_sns.notification("{}"), key=other)
    with pytest.raises(SignatureRefused, match="does not match"):
        fake_sns.verifier().verify(forged)
    with pytest.raises(SignatureRefused, match="base64"):
        fake_sns.verifier().verify({**forged, "Signature": "not base64!"})


def test_a_certificate_off_the_sns_hosts_is_never_fetched(fake_sns: FakeSns) -> None:
    post = fake_sns.sign(fake_sns.notification("{}"))
    # The real verifier trusts only https://sns.REGION.amazonaws.com: the test's server is not.
    with pytest.raises(SignatureRefused, match="SigningCertURL"):
        SnsVerifier().verify(post)
    lookalikes = [
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.co/cert.pem",
    ]
    for url in lookalikes:
        with pytest.raises(SignatureRefused, match="SigningCertURL"):
            SnsVerifier().verify({**post, "SigningCertURL": url})
    assert fake_sns.server.requests == []


def test_stale_and_future_posts_are_refused(fake_sns: FakeSns) -> None:
    post = fake_sns.sign(fake_sns.notification("{}"))
    stamp = datetime.fromisoformat(post["Timestamp"].replace("Z", "+00:00"))
    verifier = fake_sns.verifier()
    verifier.verify(post, now=stamp + MAX_AGE - timedelta(seconds=1))
    with pytest.raises(SignatureRefused, match="too old"):
        verifier.verify(post, now=stamp + MAX_AGE + timedelta(seconds=1))
    with pytest.raises(SignatureRefused, match="too old"):
        verifier.verify(post, now=stamp - MAX_SKEW - timedelta(seconds=1))


def test_an_expired_certificate_is_refused(fake_sns: FakeSns) -> None:
    now = datetime.now(UTC)
    url = fake_sns.serve("/old.pem", fake_sns.key, now - timedelta(days=60), now - timedelta(1))
    post = fake_sns.sign(fake_sns.notification("{}"), cert_url=url)
    with pytest.raises(SignatureRefused, match="expired"):
        fake_sns.verifier().verify(post)


def test_the_certificate_is_fetched_once_and_kept(fake_sns: FakeSns) -> None:
    verifier = fake_sns.verifier()
    for message in ("1", "2", "3"):
        verifier.verify(fake_sns.sign(fake_sns.notification(message)))
    assert [seen.path for seen in fake_sns.server.requests] == ["/cert.pem"]


def test_a_missing_certificate_is_refused_and_an_unreachable_one_is_a_retry(
    fake_sns: FakeSns,
) -> None:
    missing = fake_sns.sign(fake_sns.notification("{}"), cert_url=fake_sns.server.url("/no"))
    with pytest.raises(SignatureRefused, match="404"):
        fake_sns.verifier().verify(missing)
    fake_sns.server.route("/junk.pem", body=b"-----BEGIN NOTHING-----")
    junk = fake_sns.sign(fake_sns.notification("{}"), cert_url=fake_sns.server.url("/junk.pem"))
    with pytest.raises(SignatureRefused, match="certificate"):
        fake_sns.verifier().verify(junk)
    fake_sns.server.stop()
    with pytest.raises(SnsUnavailable):
        fake_sns.verifier().verify(fake_sns.sign(fake_sns.notification("{}")))


def test_confirming_visits_only_an_sns_confirm_url(fake_sns: FakeSns) -> None:
    verifier = fake_sns.verifier()
    post = fake_sns.sign(fake_sns.confirmation())
    verifier.verify(post)
    verifier.confirm(post)
    assert fake_sns.confirmations_seen() == 1
    elsewhere = fake_sns.server.url("/unsubscribe?Action=Unsubscribe")
    with pytest.raises(SignatureRefused, match="SubscribeURL"):
        verifier.confirm({**post, "SubscribeURL": elsewhere})
    with pytest.raises(SignatureRefused, match="SubscribeURL"):
        SnsVerifier().confirm(post)  # loopback is no SNS host for the real verifier
    assert fake_sns.confirmations_seen() == 1
