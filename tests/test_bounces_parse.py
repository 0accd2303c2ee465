"""Reading bounce and complaint reports: the samples from the field, RFC 6533, and any bytes.

The reports in ``tests/bounces/`` are shaped like what Postfix, a large mailbox provider and a
feedback loop send.
"""

from __future__ import annotations

import base64
import quopri

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.delivery.dsn import Kind, Report, parse_report
from digest.errors import NotAReport
from tests.support.bounces import dsn, report_file


def test_reports_from_the_field_read_as_what_they_say() -> None:
    (hard,) = parse_report(report_file("postfix-user-unknown.eml"))
    assert hard == Report(
        Kind.HARD,
        "gone@example.com",
        "<e1.2@news.example>",
        "5.1.1",
        "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        original="gone@example.com",
    )
    (full,) = parse_report(report_file("mailbox-full.eml"))
    assert (full.kind, full.recipient, full.message_id) == (
        Kind.SOFT,
        "full@example.org",
        "<e1.4@news.example>",
    )
    (late,) = parse_report(report_file("delayed.eml"))
    assert late.kind is Kind.DELAYED and not late.acts
    (spam,) = parse_report(report_file("arf-abuse.eml"))
    assert (spam.kind, spam.recipient, spam.message_id, spam.status) == (
        Kind.COMPLAINT,
        "ann@example.com",
        "<e1.1@news.example>",
        "abuse",
    )
    with pytest.raises(NotAReport, match="not a multipart/report"):
        parse_report(report_file("out-of-office.eml"))


def test_a_report_about_internationalised_mail_is_read_too() -> None:
    """RFC 6533: the global delivery-status type, with a UTF-8 address in \\x{..} escapes."""
    (report,) = parse_report(report_file("global-dsn.eml"))
    assert (report.kind, report.recipient, report.message_id) == (
        Kind.HARD,
        "josé@bücher.example",
        "<e1.9@news.example>",
    )


@pytest.mark.parametrize("encoding", ["8bit", "base64", "quoted-printable"])
@pytest.mark.parametrize(
    "address", [b"jos\\x{E9}@b\\x{FC}cher.example", "josé@bücher.example".encode()]
)
def test_a_global_report_in_any_transfer_encoding_with_any_address_form(
    encoding: str, address: bytes
) -> None:
    """RFC 6533 allows the address as \\x{..} escapes or as raw UTF-8, and the part in any
    transfer encoding; every combination reads the same."""
    raw = report_file("global-dsn.eml").replace(b"jos\\x{E9}@b\\x{FC}cher.example", address)
    marker = b"Content-Type: message/global-delivery-status\nContent-Transfer-Encoding: 8bit\n\n"
    head, _, rest = raw.partition(marker)
    body, sep, tail = rest.partition(b"\n--G1")
    encode = {"8bit": bytes, "base64": base64.encodebytes, "quoted-printable": quopri.encodestring}
    marker = marker.replace(b"8bit", encoding.encode())
    (report,) = parse_report(head + marker + encode[encoding](body) + sep + tail)
    assert (report.kind, report.recipient, report.message_id) == (
        Kind.HARD,
        "josé@bücher.example",
        "<e1.9@news.example>",
    )


def test_a_failed_recipient_with_a_4xx_status_failed_for_good() -> None:
    """Postfix gives up after its queue lifetime with Action: failed, Status: 4.4.7."""
    (report,) = parse_report(dsn("late@example.com", "<x.1@news.example>", status="4.4.7"))
    assert report.kind is Kind.SOFT


def test_strangers_fields_come_back_short_printable_and_one_recipient_only() -> None:
    many = b"".join(
        b"Final-Recipient: rfc822; victim%d@example.com\nAction: failed\nStatus: 5.1.1\n\n" % i
        for i in range(500)
    )
    raw = (
        dsn("first@example.com", "<a\x00b@news.example>")
        .replace(b"Diagnostic-Code: smtp; 550", b"Diagnostic-Code: smtp; \x1b]0;pwned\x07 550")
        .replace(b"Original-Recipient: rfc822;gone@example.com\n", b"")
        .replace(b"--4F2A81C0.1764399609/mx.news.example\nContent-Description: Undelivered", many
                 + b"--4F2A81C0.1764399609/mx.news.example\nContent-Description: Undelivered")
    )  # fmt: skip
    (report,) = parse_report(raw)
    assert report.recipient == "first@example.com"
    assert report.message_id is None  # the NUL makes it no Message-ID at all
    assert "\x1b" not in report.detail and "\x07" not in report.detail
    encoded_words = b" ".join([b"=?utf-8?q?a?="] * 60_000)
    (long,) = parse_report(
        dsn("x@example.com", "<x.1@n.example>").replace(b"smtp; 550", b"smtp; " + encoded_words)
    )
    assert len(long.detail) <= 1000


def test_a_not_spam_feedback_report_is_no_complaint() -> None:
    raw = report_file("arf-abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    with pytest.raises(NotAReport, match="not a complaint"):
        parse_report(raw)


@given(st.binary(max_size=3000))
def test_any_bytes_are_a_report_or_not_a_report(raw: bytes) -> None:
    try:
        reports = parse_report(raw)
    except NotAReport:
        return
    assert reports and all(isinstance(r, Report) for r in reports)


@given(
    klass=st.sampled_from("245"),
    subject=st.integers(0, 9),
    detail=st.integers(0, 20),
    action=st.sampled_from(["failed", "delayed", "delivered", "relayed"]),
    local=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", fullmatch=True),
)
def test_a_dsn_is_read_by_the_rules(
    klass: str, subject: int, detail: int, action: str, local: str
) -> None:
    """Failed 5.1.{1,2,3,6,10}: hard; any other failed, 4.x.x included: soft (failed is
    final); delayed: delayed; delivered or relayed: not a report. The recipient comes back
    normalised."""
    if ".." in local or local.endswith(".") or local.startswith("."):
        return
    status = f"{klass}.{subject}.{detail}"
    raw = dsn(f"{local}@Example.COM", "<x.1@news.example>", status=status, action=action)
    if action in ("delivered", "relayed"):
        with pytest.raises(NotAReport):
            parse_report(raw)
        return
    (report,) = parse_report(raw)
    assert report.recipient == f"{local}@example.com".lower()
    assert report.message_id == "<x.1@news.example>"
    if action == "delayed":
        assert report.kind is Kind.DELAYED
    elif (subject, detail) in {(1, 1), (1, 2), (1, 3), (1, 6), (1, 10)} and klass == "5":
        assert report.kind is Kind.HARD
    else:
        assert report.kind is Kind.SOFT
