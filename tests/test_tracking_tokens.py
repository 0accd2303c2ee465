"""The ``/r/`` token: it redirects only to the URL it was made for, in the mail it names, and
nobody without the key can make one, alter one or pin a click on another reader."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import InvalidToken
from digest.tracking import (
    MailKind,
    MailRef,
    TrackedLink,
    aggregate_copy,
    link_token,
    read_token,
    reader_copy,
    tracked_url,
    url_key,
)

KEY = b"k" * 32
OTHER = b"o" * 32
mails = st.builds(MailRef, st.sampled_from(list(MailKind)), st.integers(0, 10**12 - 1))
urls = st.text(min_size=1, max_size=300).map(lambda t: "https://news.example/" + t)


@given(mails, urls)
def test_a_token_names_its_mail_and_url(mail: MailRef, url: str) -> None:
    assert read_token(KEY, link_token(KEY, mail, url)) == TrackedLink(mail, url)


@given(mails, urls, st.integers(0, 10**12))
def test_a_readers_copy_names_the_reader(mail: MailRef, url: str, reader: int) -> None:
    link = read_token(KEY, link_token(KEY, mail, url) + reader_copy(KEY, mail, reader))
    assert (link.reader, link.counted, link.url) == (reader, True, url)


@given(mails, urls)
def test_an_aggregate_copy_names_no_reader(mail: MailRef, url: str) -> None:
    copy = aggregate_copy(KEY, mail)
    link = read_token(KEY, link_token(KEY, mail, url) + copy)
    assert (link.copy, link.reader, link.counted) == (copy[1:], None, True)
    # Another mail's tag, or a tag made up, is redirected but not counted.
    other = MailRef(mail.kind, (mail.id + 1) % 10**12)
    assert not read_token(KEY, link_token(KEY, other, url) + copy).counted
    forged = copy[:-1] + ("a" if copy[-1] != "a" else "b")
    assert not read_token(KEY, link_token(KEY, mail, url) + forged).counted


@settings(max_examples=300)
@given(mails, urls, st.data())
def test_any_change_to_the_link_part_is_refused(
    mail: MailRef, url: str, data: st.DataObject
) -> None:
    token = link_token(KEY, mail, url)
    i = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("ABCabc019-_."))
    altered = token[:i] + char + token[i + 1 :]
    if altered == token:
        return
    try:
        link = read_token(KEY, altered)
    except InvalidToken:
        return
    # Base64's last character has spare bits: an equivalent spelling decodes to the same link.
    assert link == TrackedLink(mail, url)


@given(mails, urls, st.integers(1, 60))
def test_a_truncated_token_is_refused(mail: MailRef, url: str, cut: int) -> None:
    token = link_token(KEY, mail, url)
    with pytest.raises(InvalidToken):
        read_token(KEY, token[: max(0, len(token) - cut)] if cut < len(token) else "")


@given(mails, urls)
def test_another_key_refuses_it(mail: MailRef, url: str) -> None:
    with pytest.raises(InvalidToken):
        read_token(OTHER, link_token(KEY, mail, url))


@given(mails, urls, st.integers(0, 10**9), st.integers(0, 10**9))
def test_a_reader_cannot_be_swapped(mail: MailRef, url: str, reader: int, other: int) -> None:
    copy = reader_copy(KEY, mail, reader)
    number = copy[1:].split("-")[0]
    forged = copy.replace(number, format(other, "x") if other != reader else number + "0", 1)
    link = read_token(KEY, link_token(KEY, mail, url) + forged)
    assert link.reader is None and not link.counted and link.url == url


@given(st.text(max_size=400))
def test_garbage_is_refused_never_an_error(text: str) -> None:
    with pytest.raises(InvalidToken):
        read_token(KEY, text)


def test_test_copies_and_opted_out_readers_are_not_counted() -> None:
    mail = MailRef(MailKind.EDITION, 3)
    for part in (".t", ".n", ".zz", ".ABCDEFGHIJKL", ".abcdefghijklmnop"):
        link = read_token(KEY, link_token(KEY, mail, "https://x.example/") + part)
        assert not link.counted and link.url == "https://x.example/"


def test_the_url_is_under_the_base_and_the_key_is_stable() -> None:
    mail = MailRef(MailKind.ALERT, 9)
    url = tracked_url("https://news.example", KEY, mail, "https://news.example/a?b=1&c=2", ".t")
    assert url.startswith("https://news.example/r/") and url.endswith(".t")
    assert url_key("https://a.example/") == url_key("https://a.example/") != url_key("https://b/")
    assert len(url_key("x")) == 32


@given(st.text(max_size=20))
def test_mail_references_parse_only_their_own_form(text: str) -> None:
    try:
        ref = MailRef.parse(text)
    except ValueError:
        return
    assert str(ref) == text


@given(mails, st.text(min_size=1, max_size=300))
def test_a_url_with_utm_parameters_reads_back_exactly(mail: MailRef, path: str) -> None:
    url = f"https://news.example/{path}?utm_source=daily&utm_medium=email&utm_campaign=daily-2026"
    assert read_token(KEY, link_token(KEY, mail, url)).url == url


def test_a_post_link_with_utm_parameters_travels_in_half_the_characters() -> None:
    # Every tracked link is in every copy: its length is paid for in every message sent.
    url = (
        "https://news.example/2026/12/02/council-votes-on-the-harbour-plan"
        "?utm_source=the-daily-brief&utm_medium=email&utm_campaign=daily-2026-12-02"
    )
    link = link_token(KEY, MailRef(MailKind.EDITION, 1234), url).split(".")[0]
    assert len(link) < 0.6 * len(f"e1234\n{url}".encode()) * 4 / 3


def test_a_link_too_long_for_a_token_is_said_not_to_fit() -> None:
    from digest.tracking import fits_a_token

    mail = MailRef(MailKind.ANNOUNCEMENT, 7)
    assert fits_a_token(KEY, mail, "https://news.example/a?utm_source=x")
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    noise = "".join(random.Random(1).choices(letters, k=3000))  # deflate cannot shrink it
    assert not fits_a_token(KEY, mail, f"https://news.example/{noise}")
    assert not fits_a_token(KEY, mail, "https://news.example/" + "a" * 20000)  # packs, too big
