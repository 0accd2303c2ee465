"""Postmark's fields of a message: the shortcuts taken for speed give what the email package
gives (header values without encoded words, part heads parsed once per body)."""

from __future__ import annotations

import email.policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser, BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery.postmark import _part_shape, _text, fields, read_head

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
folded = st.lists(printable, min_size=1, max_size=3).map("\r\n ".join)


@given(folded)
def test_a_plain_ascii_value_reads_as_the_email_package_reads_it(value: str) -> None:
    slow = str(make_header(decode_header(value.replace("\r\n", ""))))
    assert _text(value) == slow


def test_encoded_words_are_still_decoded() -> None:
    assert _text("=?utf-8?q?Caf=C3=A9?= news") == "Café news"
    assert _text("Grüße") == "Grüße"


def _message(text: str, html: str, boundary: str, charset: str = "utf-8") -> bytes:
    def part(kind: str, body: str) -> bytes:
        return (
            (
                f"--{boundary}\r\nContent-Type: text/{kind}; charset={charset}\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode()
            + body.encode(charset)
            + b"\r\n"
        )

    head = (
        "From: The Brief <news@example.org>\r\nTo: Ann <ann@example.org>\r\nSubject: Today\r\n"
        "List-Id: brief <brief.example.org>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'
    ).encode()
    return head + part("plain", text) + part("html", html) + f"--{boundary}--\r\n".encode()


# Latin-1's characters, so either charset can carry them; no controls (CR, LF included).
body_text = st.text(st.characters(max_codepoint=255, blacklist_categories=["Cs", "Cc"]))


@given(
    text=body_text,
    html=body_text,
    boundary=st.from_regex(r"[A-Za-z0-9]{8,30}", fullmatch=True),
    charset=st.sampled_from(["utf-8", "iso-8859-1"]),
)
def test_fields_read_the_bodies_the_email_package_reads(
    text: str, html: str, boundary: str, charset: str
) -> None:
    data = _message(text, html, boundary, charset)
    parsed = BytesParser(policy=email.policy.default).parsebytes(data)
    want = {p.get_content_type(): p.get_content() for p in parsed.iter_parts()}
    got = fields("ann@example.org", data, "outbound")
    assert (got["TextBody"], got["HtmlBody"]) == (want["text/plain"], want["text/html"])
    assert got["To"] == "Ann <ann@example.org>" and got["Subject"] == "Today"
    assert {"Name": "List-Id", "Value": "brief <brief.example.org>"} in got["Headers"]


def test_part_heads_are_parsed_once_per_body() -> None:
    _part_shape.cache_clear()
    data = _message("hello", "<p>hello</p>", "b0undary")
    for rcpt in ("ann@example.org", "bob@example.org", "cy@example.org"):
        fields(rcpt, data, "outbound")
    info = _part_shape.cache_info()
    assert (info.misses, info.hits) == (2, 4)


field_name = st.from_regex(r"[!-9;-~]{1,20}", fullmatch=True)


@given(st.lists(st.tuples(field_name, folded), min_size=1, max_size=8))
def test_a_head_reads_as_the_email_package_reads_it(pairs: list[tuple[str, str]]) -> None:
    head = "\r\n".join(f"{name}: {value}" for name, value in pairs).encode()
    parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\r\n\r\n")
    assert read_head(head).fields == tuple((n, str(v)) for n, v in parsed.items())


@settings(max_examples=1000)
@given(st.binary(max_size=200) | st.text(" :\r\n\tab", max_size=40).map(str.encode))
def test_any_head_reads_as_the_email_package_reads_it(head: bytes) -> None:
    head = head.replace(b"\r\n\r\n", b"\r\n")
    parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\r\n\r\n")
    want = tuple((n, str(v)) for n, v in parsed.items())
    assert read_head(head).fields == want
