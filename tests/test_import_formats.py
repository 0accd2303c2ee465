"""Reading other tools' subscriber files (pure): their headers, times, tags and booleans."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import import_formats as fmt
from digest.errors import ConsentNotShown, ImportFileError, InvalidInput
from digest.subscribers_csv import COLUMNS

OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=OFFSETS
)
TAGS = st.lists(
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1
    ).filter(lambda t: t == t.strip() and t),
    max_size=6,
)


def _layout(header: str, maps: dict[str, str] | None = None) -> fmt.Layout:
    return fmt.read_header(next(csv.reader([header])), maps or {}, COLUMNS)


def _row(header: str, line: str, maps: dict[str, str] | None = None) -> dict[str, str]:
    return _layout(header, maps).row(next(csv.reader([line])))


@given(INSTANTS)
def test_every_tools_way_of_writing_a_time_reads_back_as_the_same_instant(when: datetime) -> None:
    utc = when.astimezone(UTC)
    offset = when.strftime("%z")
    written = [
        utc.strftime("%Y-%m-%d %H:%M:%S"),  # Mailchimp: UTC, no offset
        utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z",  # Ghost, Substack
        when.strftime("%Y-%m-%d %H:%M:%S.%f ") + f"{offset} ZZZ",  # listmonk (Go's String())
        when.isoformat(),  # digest's own export
    ]
    exact = [utc.replace(microsecond=0), utc.replace(microsecond=utc.microsecond // 1000 * 1000)]
    expected = [*exact, when, when]
    for text, instant in zip(written, expected, strict=True):
        parsed = datetime.fromisoformat(fmt.parse_time(text))
        assert parsed.tzinfo is not None and parsed == instant, text


@given(st.text(max_size=40))
def test_a_value_that_is_no_time_comes_back_unchanged_for_the_row_report(text: str) -> None:
    out = fmt.parse_time(text)
    try:
        datetime.fromisoformat(out)
    except ValueError:
        assert out == text.strip()


@given(TAGS)
def test_mailchimp_tags_read_back_as_written(tags: list[str]) -> None:
    cell = ",".join('"' + t.replace('"', '""') + '"' for t in tags)
    assert fmt.parse_tags(cell) == tags


@given(TAGS.map(lambda ts: [t for t in ts if "," not in t and '"' not in t]))
def test_ghost_labels_read_back_as_written(labels: list[str]) -> None:
    assert fmt.parse_tags(",".join(labels)) == labels


@given(st.text(max_size=30))
def test_any_tag_cell_reads_without_error_into_trimmed_tags(cell: str) -> None:
    assert all(t and t == t.strip() for t in fmt.parse_tags(cell))


@given(st.sampled_from(["true", "TRUE", " True", "yes", "1", "t"]))
def test_true_in_any_spelling(text: str) -> None:
    assert fmt.parse_bool(text) is True


@given(st.sampled_from(["false", "FALSE", "False ", "no", "0", "f"]))
def test_false_in_any_spelling(text: str) -> None:
    assert fmt.parse_bool(text) is False


@given(st.text(max_size=12))
def test_anything_else_is_neither_true_nor_false(text: str) -> None:
    if text.strip().lower() not in {"true", "t", "yes", "y", "1", "false", "f", "no", "n", "0"}:
        assert fmt.parse_bool(text) is None


def test_mailchimp_columns_become_digests_and_the_rest_are_ignored() -> None:
    header = (
        "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,"
        "CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,"
        "NOTES,TAGS"
    )
    layout = _layout(header)
    assert layout.dialect == "mailchimp"
    described = {c.header: c.describe() for c in layout.columns}
    assert described["OPTIN_TIME"] == "consent_at" and described["TAGS"] == "ignored"
    assert described["First Name"] == described["Last Name"] == "name"
    row = layout.row(
        [
            "a@example.com",
            " Ann ",
            "Lee",
            "3",
            "2024-01-05 10:22:01",
            "203.0.113.7",
            "2024-01-05 10:25:00",
            "",
            "",
            "",
            "",
            "",
            "Mars/Base",
            "",
            "",
            "",
            "",
            "",
            "",
            '"Sports","Local"',
        ]
    )
    assert row == {
        "email": "a@example.com",
        "name": "Ann Lee",
        "consent_at": "2024-01-05T10:22:01+00:00",
        "consent_ip": "203.0.113.7",
        "confirmed_at": "2024-01-05T10:25:00+00:00",
        "timezone": "",  # a zone digest does not know: the default, not a rejected row
        "consent_source": "import:mailchimp",
    }


def test_unsubscribed_cleaned_blocklisted_and_disabled_rows_are_kept_from_mail() -> None:
    assert _row("Email Address,UNSUB_TIME", "a@example.com,2023-06-06 12:56:15") == {
        "email": "a@example.com",
        "unsubscribed_at": "2023-06-06T12:56:15+00:00",
        "status": "unsubscribed",
    }
    assert _row("Email Address,CLEAN_TIME", "a@example.com,2020-03-23 17:30:05")["status"] == (
        "bounced"
    )
    listmonk = "uuid,email,name,attributes,status,created_at,updated_at"
    assert _row(listmonk, "u,a@example.com,A,{},blocklisted,,")["status"] == "unsubscribed"
    assert _row(listmonk, "u,a@example.com,A,{},enabled,,")["status"] == ""
    assert _row("email,subscribed_to_emails,labels", "a@example.com,false,")["status"] == (
        "unsubscribed"
    )
    assert _row("email,subscribed_to_emails,labels", "a@example.com,true,")["status"] == ""
    assert _row("email,email_disabled,expiry", "a@example.com,true,")["status"] == "unsubscribed"


def test_the_tool_is_told_by_its_columns() -> None:
    assert _layout("email,name,status").dialect == "digest"
    assert _layout("Topics,E-mail, Name ").dialect == "digest"
    assert _layout("uuid,email,name,attributes,status,created_at,updated_at").dialect == (
        "listmonk"
    )
    assert _layout("email,name,subscribed_to_emails,labels").dialect == "ghost"
    assert _layout("email,active_subscription,expiry,email_disabled,created_at").dialect == (
        "substack"
    )


def test_map_names_other_columns_retargets_known_ones_and_ignores() -> None:
    maps = fmt.parse_maps(["E-Mail Adresse=email", "Vorname=name", "Notiz=ignore"], COLUMNS)
    row = _row("E-Mail Adresse,Vorname,Notiz", "a@example.com,Anna,hi", maps)
    assert row == {"email": "a@example.com", "name": "Anna"}
    maps = fmt.parse_maps(["TAGS=topics"], COLUMNS)
    row = _row("Email Address,TAGS", 'a@example.com,"""Local, City"",""Sports"""', maps)
    assert row["topics"] == "Local  City,Sports"  # one tag stays one topic


@pytest.mark.parametrize(
    ("maps", "error", "words"),
    [
        (["Vorname"], InvalidInput, "'Their Column=field'"),
        (["Vorname=first"], InvalidInput, "none of digest's columns"),
    ],
)
def test_a_bad_map_is_one_line_saying_why(
    maps: list[str], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as caught:
        fmt.parse_maps(maps, COLUMNS)
    assert "\n" not in str(caught.value)


def test_a_header_digest_cannot_use_says_what_it_reads() -> None:
    with pytest.raises(InvalidInput, match="'Nope', which is not a column"):
        _layout("email,name", fmt.parse_maps(["Nope=name"], COLUMNS))
    with pytest.raises(ImportFileError, match="no 'email' column") as caught:
        _layout("name,cadence")
    assert "Mailchimp, listmonk, Ghost and Substack" in str(caught.value)
    with pytest.raises(ImportFileError, match="unknown column 'Phone'") as caught:
        _layout("email,name,Phone")
    assert "--map" in str(caught.value) and "consent_at" in str(caught.value)


def test_rows_without_consent_need_the_operators_status() -> None:
    rows = [
        (2, {"email": "a@example.com", "consent_at": "2024-01-05T10:22:01+00:00"}),
        (3, {"email": "b@example.com", "confirmed_at": "2024-01-05T10:22:01+00:00"}),
        (4, {"email": "c@example.com", "status": "unsubscribed"}),
        (5, {"email": "d@example.com", "status": "pending"}),
        (6, {"email": "e@example.com", "status": "active"}),
        (7, {"email": "f@example.com"}),
    ]
    assert fmt.lacking(rows) == 2
    with pytest.raises(ConsentNotShown, match=r"2 of 6 rows show no consent.*--status"):
        fmt.settle_status([(n, dict(r)) for n, r in rows], None)
    settled = fmt.settle_status([(n, dict(r)) for n, r in rows], "pending")
    assert [r.get("status") for _, r in settled] == [
        None,
        None,
        "unsubscribed",
        "pending",
        "pending",
        "pending",
    ]
