"""DKIM signatures on the messages digest builds, each checked by dkimpy, an independent
verifier, against the TXT record a test publishes: digests, confirmations, non-ASCII names,
UTF-8 addresses, long and folded lines, RSA and Ed25519 together, and tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.compose.render import DigestRenderer
from digest.mail.dkim import canonical_body
from digest.mail.message import NAME, UNSUBSCRIBE_URL, Sender, assemble
from tests.support.dkim import DOMAIN, Keys, dkim_keys, signatures, verify_all  # noqa: F401
from tests.test_message import UNSUB, WHEN
from tests.test_message import _personal as reader
from tests.test_render import NOW, make_selection


@pytest.fixture
def signing(make_settings, dkim_keys: Keys) -> Sender:  # type: ignore[no-untyped-def]  # noqa: F811
    settings = make_settings(DIGEST_FROM=f"The Daily Brief <news@{DOMAIN}>", **dkim_keys.settings())
    return Sender.from_settings(settings)


@pytest.fixture
def digest_body(make_settings):  # type: ignore[no-untyped-def]
    renderer = DigestRenderer(make_settings(site_name="The Daily Brief"))
    return renderer.render_body(make_selection(), cadence="daily", local_date=NOW.date()).content


def test_a_digest_is_signed_and_the_signature_verifies(
    signing: Sender,
    dkim_keys: Keys,  # noqa: F811
    digest_body,  # type: ignore[no-untyped-def]
) -> None:
    message = assemble(digest_body.subject, digest_body.text, digest_body.html, reader(), signing)
    assert verify_all(message, dkim_keys.dns) == [True]
    (tags,) = signatures(message)
    assert tags[b"a"] == b"rsa-sha256" and tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"d"] == DOMAIN.encode() and tags[b"s"] == b"rsa1"
    assert tags[b"t"] == str(int(WHEN.timestamp())).encode()
    signed = tags[b"h"].split(b":")
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                 b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version",
                 b"content-type"):  # fmt: skip
        assert name in signed
    # The rendered body has indentation, runs of spaces the body hash must canonicalise.
    body = message.split(b"\r\n\r\n", 1)[1]
    assert b"  " in body
    expected = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
    assert tags[b"bh"] == expected


def test_a_confirmation_mail_without_list_headers_verifies(
    signing: Sender,
    dkim_keys: Keys,  # noqa: F811
) -> None:
    personal = reader(unsubscribe_url=None, preferences_url=None, to_name="")
    message = assemble("Confirm your subscription", "Confirm: https://x/c/1\n", "<p>x</p>",
                       personal, signing)  # fmt: skip
    assert b"List-Unsubscribe" not in message
    assert verify_all(message, dkim_keys.dns) == [True]
    assert b"list-unsubscribe" not in signatures(message)[0][b"h"]


def test_non_ascii_names_utf8_addresses_and_folded_headers_verify(
    make_settings,  # type: ignore[no-untyped-def]
    dkim_keys: Keys,  # noqa: F811
) -> None:
    settings = make_settings(
        DIGEST_FROM=f'"Ĺa Gazette du Matin, édition spéciale" <news@{DOMAIN}>',
        site_name="Die Morgenpost für Köln und Umgebung, Ausgabe Nord",
        **dkim_keys.settings(),
    )
    sender = Sender.from_settings(settings)
    personal = reader(
        to_email="zoë.müller@exämple.org",  # SMTPUTF8 local part, IDNA domain
        to_name="Zoë Müller-Lüdenscheidt von Großwaltersdorf " * 3,
    )
    subject = "Nachrichten: " + "Öffentlicher Nahverkehr wird ausgebaut, " * 4
    long_line = "word " * 400 + "\n" + "\t tabbed  and   spaced \t \n" * 5
    message = assemble(subject, long_line + f"Hi {NAME}", f"<p>{long_line}</p>", personal, sender)
    head = message.split(b"\r\n\r\n", 1)[0]
    assert "zoë.müller@xn--exmple-cua.org".encode() in head  # raw UTF-8 in the To header
    assert b"\r\n =?utf-8?b?" in head  # the encoded name and subject are folded
    assert verify_all(message, dkim_keys.dns) == [True]


def test_rsa_and_ed25519_signatures_on_one_message_both_verify(
    make_settings,  # type: ignore[no-untyped-def]
    dkim_keys: Keys,  # noqa: F811
) -> None:
    settings = make_settings(
        DIGEST_FROM=f"News <news@{DOMAIN}>", **dkim_keys.settings(ed25519=True)
    )
    message = assemble("Today", "text", "<p>html</p>", reader(), Sender.from_settings(settings))
    assert [s[b"a"] for s in signatures(message)] == [b"rsa-sha256", b"ed25519-sha256"]
    assert verify_all(message, dkim_keys.dns) == [True, True]


@pytest.mark.parametrize(
    ("what", "change"),
    [
        ("a word of the body", lambda m: m.replace(b"Hello", b"Hallo")),
        ("the subject", lambda m: m.replace(b"Subject: Today", b"Subject: Tod4y")),
        ("the unsubscribe link", lambda m: m.replace(f"<{UNSUB}>".encode(), b"<https://x/u>")),
        ("a second From on top", lambda m: b"From: Evil <evil@brief.example>\r\n" + m),
        ("a second Subject on top", lambda m: b"Subject: Win a prize\r\n" + m),
    ],
)
def test_a_message_altered_after_signing_fails(
    make_settings,  # type: ignore[no-untyped-def]
    dkim_keys: Keys,  # noqa: F811
    what: str,
    change,  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(
        DIGEST_FROM=f"News <news@{DOMAIN}>", **dkim_keys.settings(ed25519=True)
    )
    personal = reader()
    message = assemble(
        "Today", f"Hello {NAME}\n", "<p>x</p>", personal, Sender.from_settings(settings)
    )
    assert verify_all(message, dkim_keys.dns) == [True, True]
    altered = change(message)
    assert altered != message, what
    assert verify_all(altered, dkim_keys.dns) == [False, False], what


# Text made of what the body hash shortcut must get right: runs of spaces and tabs, spaces at
# the ends of lines, blank lines, and placeholders right next to white space.
_CHUNK = st.sampled_from(
    ["word", " ", "  ", "\t", " \t ", "\n", "\n\n", "é", f" {NAME} ", f"{NAME}\t",
     f"\t{UNSUBSCRIBE_URL}  ", "x" * 90, "=", "."]
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.lists(_CHUNK, max_size=40).map("".join), name=st.sampled_from(["", " A  b\t", "Zoë"])
)
def test_the_cached_body_hash_equals_canonicalising_the_whole_body(
    signing: Sender,
    dkim_keys: Keys,  # noqa: F811
    text: str,
    name: str,
) -> None:
    message = assemble("S", text, text, reader(to_name=name), signing)
    (tags,) = signatures(message)
    body = message.split(b"\r\n\r\n", 1)[1]
    assert tags[b"bh"] == base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
    assert verify_all(message, dkim_keys.dns) == [True]


def test_canonical_body_follows_rfc_6376_examples() -> None:
    # RFC 6376 3.4.5: " C \r\nD \t E\r\n\r\n\r\n" -> " C\r\nD E\r\n"
    assert canonical_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert canonical_body(b"") == b""
    assert canonical_body(b"\r\n\r\n") == b""
    assert canonical_body(b"last line  ") == b"last line\r\n"


def test_without_keys_nothing_is_signed(make_settings) -> None:  # type: ignore[no-untyped-def]
    sender = Sender.from_settings(make_settings())
    assert sender.signer is None
    assert b"DKIM-Signature" not in assemble("S", "t", "h", reader(), sender)
