"""Email normalisation and header-safe names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.addresses import clean_name, email_hash, normalize_email, spellings
from digest.errors import InvalidEmail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  ann@example.com\t", "ann@example.com"),
        ("José@Bücher.example", "josé@bücher.example"),
        ("user+tag@sub.example.org", "user+tag@sub.example.org"),
    ],
)
def test_normalised_forms(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "plain",
        "a@",
        "@b.com",
        "a@@b.com",
        "a@b.com\r\nBcc: c@d.com",
        "a b@c.com",
        "a@b.com\x00",
        "x" * 250 + "@b.com",
        "a@localhost",
    ],
)
def test_invalid_addresses(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


@given(st.emails())
def test_normalising_is_idempotent_and_case_blind(email: str) -> None:
    try:
        once = normalize_email(email)
    except InvalidEmail:
        return
    assert normalize_email(once) == once
    assert normalize_email(email.upper()) == once
    assert email_hash(email) == email_hash(once.upper())


@given(st.text())
def test_names_never_carry_line_breaks_or_encoded_words(raw: str) -> None:
    name = clean_name(raw)
    assert not any(c in name for c in "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    assert "=?" not in name or "?=" not in name[name.index("=?") :]
    assert name == name.strip() and len(name) <= 200


def test_encoded_word_trick_is_removed() -> None:
    assert clean_name("Bob =?utf-8?q?=0D=0ABcc:_x@evil?= Smith") == "Bob Smith"
    assert clean_name("Eve\r\nBcc: all@example.com") == "Eve Bcc: all@example.com"


def _slow(raw: str) -> str | None:
    """email-validator alone, the reference the fast path must agree with."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


local_chars = st.sampled_from("abcXYZ019.!#$%&'*+/=?^_`{|}~-é@ ")
domains = st.sampled_from(
    [
        "example.com",
        "Example.COM",
        "xn--bcher-kva.example",
        "x.local",
        "localhost",
        "a.b",
        "x.123",
        "-x.com",
        "bücher.example",
        "[1.2.3.4]",
        "x..com",
        "x-.com",
        "sub.example.org",
        "example",
    ]
)


@given(local=st.text(local_chars, min_size=0, max_size=70), domain=domains)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    raw = f"{local}@{domain}"
    try:
        fast = normalize_email(raw)
    except InvalidEmail:
        fast = None
    if "\x00" not in raw and len(raw.strip()) <= 254:
        assert fast == _slow(raw)


@given(local=st.text(local_chars, min_size=0, max_size=70), domain=domains)
def test_a_stored_spelling_is_what_normalising_names(local: str, domain: str) -> None:
    """``spellings`` tries the typed ASCII spelling before validating: that is sound only if a
    normalised address is its own normal form, and case never changes an ASCII address's."""
    try:
        address = normalize_email(f"{local}@{domain}")
    except InvalidEmail:
        return
    assert normalize_email(address) == address
    if address.isascii():
        assert normalize_email(address.upper()) == address
        assert next(spellings(f" {address.upper()} ")) == address


def test_spellings_validate_only_when_the_typed_one_is_not_enough() -> None:
    assert list(spellings("Ann@Example.COM")) == ["ann@example.com"]
    assert list(spellings(" José@Bücher.example")) == ["josé@bücher.example"]
    first = spellings("not-an-address")
    assert next(first) == "not-an-address"  # looked up as typed, so nothing is validated yet
    with pytest.raises(InvalidEmail):
        next(first)
