"""The assembled message parses back cleanly, with the right headers and personal links."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.errors import SettingsError
from digest.mail.message import (
    EMAIL,
    NAME,
    PREFERENCES_URL,
    TRACK,
    UNSUBSCRIBE_URL,
    Personal,
    Sender,
    assemble,
)
from digest.mail.message_id import (
    digest_of,
    digest_prefix,
    header_message_id,
    message_id_in,
    new_message_id,
)

UNSUB = "https://news.example.com/unsubscribe/AbC_-123.xyz"
PREFS = "https://news.example.com/preferences/QqQ_-456.uvw"
WHEN = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)

TEXT = (
    f"Hello {NAME},\n\nSunday, November 29, 2026\n\n"
    "Don't Miss\n\nPM Kishida: Japan & NATO to Release Security Document\n"
    "https://news.example.com/2026/11/kishida-nato\n\n"
    + "Ünïcode summary line with = signs, dots.\n"
    * 40
    + f"\nYou get this at {EMAIL}.\nPreferences: {PREFERENCES_URL}\n"
    f"Unsubscribe: {UNSUBSCRIBE_URL}\n"
)
HTML = (
    "<!doctype html><html><body><p>Hi "
    + NAME
    + "</p>"
    + '<p style="color:#333">Ünïcode = paragraph '
    + "x" * 300
    + "</p>" * 1
    + f'<a href="{PREFERENCES_URL}">Preferences</a> <a href="{UNSUBSCRIBE_URL}">Unsubscribe</a>'
    + f"<p>{EMAIL}</p></body></html>"
)


def _sender(**kw: object) -> Sender:
    values: dict[str, object] = {
        "from_header": "The Daily Brief <news@example.com>",
        "list_id": "The Daily Brief <digest.example.com>",
        "unsubscribe_mailto": None,
        "domain": "example.com",
    }
    values.update(kw)
    return Sender(**values)  # type: ignore[arg-type]


def _personal(**kw: object) -> Personal:
    values: dict[str, object] = {
        "to_email": "ann@example.org",
        "to_name": "Ann",
        "message_id": "<abc123@example.com>",
        "date": WHEN,
        "unsubscribe_url": UNSUB,
        "preferences_url": PREFS,
    }
    values.update(kw)
    return Personal(**values)  # type: ignore[arg-type]


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _check_wire(raw: bytes) -> None:
    """CRLF only, no line over 998 octets, no defects anywhere."""
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = _parse(raw)
    for part in msg.walk():
        assert not part.defects, part.defects
        for name in part:
            assert not part[name].defects, (name, part[name].defects)


def _parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    # Quoted-printable keeps the canonical CRLF line ends; readers show them as line ends.
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def test_digest_message_has_every_header_and_both_parts() -> None:
    raw = assemble("Your digest: 3 new posts", TEXT, HTML, _personal(), _sender())
    _check_wire(raw)
    msg = _parse(raw)
    assert msg["From"] == "The Daily Brief <news@example.com>"
    assert msg["To"] == "Ann <ann@example.org>"
    assert msg["Subject"] == "Your digest: 3 new posts"
    assert msg["Message-ID"] == "<abc123@example.com>"
    assert email.utils.parsedate_to_datetime(msg["Date"]) == WHEN
    assert msg["List-Id"] == "The Daily Brief <digest.example.com>"
    assert msg["List-Unsubscribe"] == f"<{UNSUB}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-Digest-Test"] is None
    text, html = _parts(msg)
    expected_text = (
        TEXT.replace(NAME, "Ann")
        .replace(EMAIL, "ann@example.org")
        .replace(UNSUBSCRIBE_URL, UNSUB)
        .replace(PREFERENCES_URL, PREFS)
    )
    assert text == expected_text
    assert f'href="{UNSUB}"' in html and f'href="{PREFS}"' in html
    assert "%%" not in text and "%%" not in html


def test_mailto_is_listed_after_the_one_click_url_with_the_same_token() -> None:
    sender = _sender(unsubscribe_mailto="mailto:leave@example.com")
    msg = _parse(assemble("s", TEXT, HTML, _personal(), sender))
    assert msg["List-Unsubscribe"] == (
        f"<{UNSUB}>, <mailto:leave@example.com?subject=unsubscribe%20AbC_-123.xyz>"
    )


def test_transactional_mail_has_no_list_unsubscribe() -> None:
    personal = _personal(unsubscribe_url=None, preferences_url=None)
    raw = assemble("Confirm your subscription", "Click: x", "<p>x</p>", personal, _sender())
    _check_wire(raw)
    msg = _parse(raw)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


def test_test_copy_is_marked() -> None:
    msg = _parse(assemble("Digest", TEXT, HTML, _personal(is_test=True), _sender()))
    assert msg["Subject"] == "[TEST] Digest"
    assert msg["X-Digest-Test"] == "yes"


def test_retries_carry_the_same_message_id_and_content() -> None:
    personal = _personal()
    first = _parse(assemble("s", TEXT, HTML, personal, _sender()))
    second = _parse(assemble("s", TEXT, HTML, personal, _sender()))
    assert first["Message-ID"] == second["Message-ID"]
    assert _parts(first) == _parts(second)


def test_non_ascii_subject_and_names_are_encoded() -> None:
    sender = Sender(
        from_header="=?utf-8?b?TGUgUXVvdGlkaWVuIMOpdMOp?= <news@example.com>",
        list_id="<digest.example.com>",
        unsubscribe_mailto=None,
        domain="example.com",
    )
    subject = "Ça va? Les nouvelles du jour — " + "très longues " * 10
    raw = assemble(subject, TEXT, HTML, _personal(to_name="Zoë Ünal"), sender)
    _check_wire(raw)
    assert raw.split(b"\r\n\r\n")[0].isascii()
    msg = _parse(raw)
    assert msg["Subject"] == subject.strip()
    assert msg["To"].addresses[0].display_name == "Zoë Ünal"
    assert msg["From"].addresses[0].display_name == "Le Quotidien été"


def test_html_placeholders_are_escaped() -> None:
    raw = assemble("s", "t", f"<p>{NAME}</p>", _personal(to_name="<b>Bob & Co</b>"), _sender())
    _, html = _parts(_parse(raw))
    assert "<p>&lt;b&gt;Bob &amp; Co&lt;/b&gt;</p>" in html


@pytest.mark.parametrize(
    "bad_name",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nSubject: hijack",
        "=?utf-8?b?RXZlDQpCY2M6IHZpY3RpbUBleGFtcGxlLm5ldA==?=",
        "Eve =?utf-8?q?=0D=0ABcc:_x@example.net?=",
        'Eve" <attacker@example.net>, "x',
    ],
)
def test_names_cannot_add_or_break_headers(bad_name: str) -> None:
    raw = assemble("Digest", TEXT, HTML, _personal(to_name=bad_name), _sender())
    _check_wire(raw)
    msg = _parse(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Digest"
    to = msg["To"].addresses
    assert len(to) == 1 and to[0].addr_spec == "ann@example.org"
    assert "\n" not in to[0].display_name and "\r" not in to[0].display_name


@pytest.mark.parametrize(
    "bad_address", ["a@b.example\r\nBcc: x@y.example", "a b@example.org", "<a@b>", "nobody"]
)
def test_unwritable_addresses_are_refused(bad_address: str) -> None:
    with pytest.raises(ValueError):
        assemble("s", "t", "h", _personal(to_email=bad_address), _sender())


@pytest.mark.parametrize(
    ("domain", "ace"),
    [
        ("bücher.example", "xn--bcher-kva.example"),
        # IDNA 2008: ß and ς are letters of their own, not "ss" and "σ" as IDNA 2003 had it;
        # the old mapping would send the mail to someone else's domain.
        ("straße.de", "xn--strae-oqa.de"),
        ("faß.example", "xn--fa-hia.example"),
    ],
)
def test_idn_domain_is_punycoded_by_idna_2008(domain: str, ace: str) -> None:
    msg = _parse(assemble("s", "t", "h", _personal(to_email=f"ann@{domain}"), _sender()))
    assert msg["To"].addresses[0].domain == ace


def test_new_message_id_is_unique_and_well_formed() -> None:
    first, second = new_message_id("example.com"), new_message_id("example.com")
    assert first != second
    assert first.startswith("<") and first.endswith("@example.com>")


def test_a_digest_message_id_is_read_back_and_no_other_is() -> None:
    assert digest_of(f"<{digest_prefix(12)}.34.0123456789abcdef@example.com>") == (12, 34)
    assert digest_of(new_message_id("example.com")) is None
    assert digest_of("<e0.34.0123456789abcdef@example.com>") is None
    assert digest_of(f"<e{2**31}.1.0123456789abcdef@example.com>") is None  # past int4


def test_message_ids_are_found_in_strangers_text_and_in_a_message() -> None:
    assert message_id_in("see <a.b@example.com> and <c@d>") == "<a.b@example.com>"
    assert message_id_in("<a\x00b@example.com>") is None  # PostgreSQL refuses a NUL
    assert message_id_in(None) is None and message_id_in("no id here") is None
    raw = b"From: a@b\r\nMessage-ID: <x.1@example.com>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert header_message_id(raw) == "x.1@example.com"
    assert header_message_id(b"From: a@b\r\n\r\nMessage-ID: <body@x>\r\n") is None


def test_sender_from_settings(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        DIGEST_FROM="Le Quotidien <News@Example.com>",
        site_name="Le Quotidien",
        unsubscribe_mailto="leave@example.com",
    )
    sender = Sender.from_settings(settings)
    assert sender.domain == "example.com"
    assert sender.list_id == "Le Quotidien <digest.example.com>"
    assert sender.unsubscribe_mailto == "mailto:leave@example.com"
    msg = _parse(assemble("s", "t", "h", _personal(), sender))
    assert msg["From"].addresses[0].display_name == "Le Quotidien"
    assert msg["List-Id"] == "Le Quotidien <digest.example.com>"


names = st.lists(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(["\r", "\n", "\r\n", "=?", "?=", "=?utf-8?b?", '"', "\\", "<", ">", ","]),
    ),
    max_size=40,
).map("".join)
local_parts = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
domains = st.sampled_from(["example.org", "bücher.example", "sub.example.co.uk", "xn--p1ai"])
urls = st.from_regex(
    r"https://news\.example\.com/unsubscribe/[A-Za-z0-9_.-]{1,200}", fullmatch=True
)
body_text = st.lists(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        st.sampled_from(["\n", "=", " ", "\t", ".", "%%", EMAIL, NAME, UNSUBSCRIBE_URL]),
        st.just("x" * 90),
    ),
    max_size=120,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    local=local_parts,
    domain=domains,
    url=urls,
    subject=names,
    text=body_text,
    is_test=st.booleans(),
)
def test_any_recipient_gives_a_clean_message(
    name: str, local: str, domain: str, url: str, subject: str, text: str, is_test: bool
) -> None:
    address = f"{local}@{domain}"
    personal = _personal(to_email=address, to_name=name, unsubscribe_url=url, is_test=is_test)
    raw = assemble(subject, text, "<p>" + text + "</p>", personal, _sender())
    _check_wire(raw)
    msg = _parse(raw)
    assert msg["Bcc"] is None and msg["Cc"] is None
    assert len(msg["To"].addresses) == 1
    assert msg["To"].addresses[0].username == local
    assert msg["List-Unsubscribe"] == f"<{url}>"
    decoded_subject = " ".join(msg["Subject"].split())
    wanted = " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", subject).split())
    assert decoded_subject == (("[TEST] " + wanted).strip() if is_test else wanted)
    plain, _ = _parts(msg)
    expected = text.replace(UNSUBSCRIBE_URL, url).replace(EMAIL, personal.to_email)
    from digest.addresses import clean_name

    expected = expected.replace(NAME, clean_name(name))
    assert plain.rstrip("\n") == expected.replace("\r\n", "\n").rstrip("\n")


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"DIGEST_FROM": "News Desk"}, "DIGEST_FROM"),
        ({"list_id": "no dots here"}, "DIGEST_LIST_ID"),
        ({"unsubscribe_mailto": "not an address"}, "DIGEST_UNSUBSCRIBE_MAILTO"),
    ],
)
def test_bad_mail_settings_name_the_setting(make_settings, override, setting) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError) as caught:
        Sender.from_settings(make_settings(**override))
    assert str(caught.value).startswith(setting + ":")


def test_plain_list_id_gets_its_brackets() -> None:
    msg = _parse(assemble("s", "t", "h", _personal(), _sender(list_id="digest.example.com")))
    assert msg["List-Id"] == "<digest.example.com>"


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead=st.text(st.sampled_from("ab =.\t"), max_size=90),
    path=st.text(st.sampled_from("abc/=-_.~%?&"), min_size=1, max_size=200),
    copy=st.sampled_from([".t", ".abcdefghijkl", ".1z-AbCdEfGhIjKl", ".n"]),
)
def test_a_tracked_link_decodes_whole_in_both_parts(lead: str, path: str, copy: str) -> None:
    # The copy's part is filled inside a URL, wherever quoted-printable cut the line before it:
    # the soft breaks around it are dropped by decoders, so the URL arrives exactly as meant.
    url = "https://digest.example.com/r/" + path
    text = f"{lead}{url}{TRACK}\n{lead}{url}{TRACK} and more\n"
    html = f'<p>{lead}<a href="{url.replace("&", "&amp;")}{TRACK}">x</a></p>'
    raw = assemble("News", text, html, _personal(track=copy), _sender())
    _check_wire(raw)
    got_text, got_html = _parts(_parse(raw))
    assert got_text == text.replace(TRACK, copy)
    assert got_html == html.replace(TRACK, copy)
    # Without a copy part (an untracked fill) the placeholder leaves nothing behind.
    plain_text, _ = _parts(_parse(assemble("News", text, html, _personal(), _sender())))
    assert plain_text == text.replace(TRACK, "")
