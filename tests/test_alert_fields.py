"""The yes/no parser of the ``alerts`` field (import column, form, API) and the checks of a
newsletter's alert settings: pure, with properties over any text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import InvalidInput
from digest.newsletter_fields import check_fields
from digest.subscriber_fields import FALSY, TRUTHY, parse_flag


def _case(word: str, upper: list[bool]) -> str:
    return (
        "".join(c.upper() if up else c for c, up in zip(word, upper, strict=False))
        + word[len(upper) :]
    )


def _spelled(words: frozenset[str]) -> st.SearchStrategy[str]:
    """One of ``words`` in any case, with spaces around it as a spreadsheet may leave them."""
    return st.builds(
        lambda word, upper, pad: pad + _case(word, upper) + pad,
        st.sampled_from(sorted(words)),
        st.lists(st.booleans(), max_size=5),
        st.text(" \t", max_size=3),
    )


@given(_spelled(TRUTHY))
def test_every_spelling_of_yes_opts_in(cell: str) -> None:
    assert parse_flag(cell) is True


@given(_spelled(FALSY | {""}))
def test_every_spelling_of_no_or_blank_opts_out(cell: str) -> None:
    assert parse_flag(cell) is False


@given(st.text(max_size=30))
def test_anything_else_is_refused_never_guessed(cell: str) -> None:
    word = cell.strip().casefold()
    if word in TRUTHY or word in FALSY or not word:
        assert parse_flag(cell) is (word in TRUTHY)
        return
    with pytest.raises(InvalidInput, match=r"^alerts must be"):
        parse_flag(cell)


def test_booleans_and_numbers_from_json_read_as_they_say() -> None:
    assert (parse_flag(True), parse_flag(False), parse_flag(None)) == (True, False, False)
    assert (parse_flag("1"), parse_flag("0"), parse_flag("true")) == (True, False, True)
    with pytest.raises(InvalidInput):
        parse_flag("2")


@given(st.integers(min_value=-100, max_value=100))
def test_an_alert_budget_is_zero_to_twenty_four(budget: int) -> None:
    if 0 <= budget <= 24:
        assert check_fields({"alert_budget": str(budget)}) == {"alert_budget": budget}
    else:
        with pytest.raises(InvalidInput, match="alert budget must be 0-24"):
            check_fields({"alert_budget": budget})


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_an_alert_expiry_is_more_than_zero_and_at_most_two_days(hours: float) -> None:
    if 0 < hours <= 48:
        assert check_fields({"alert_expiry_hours": hours}) == {"alert_expiry_hours": hours}
    else:
        with pytest.raises(InvalidInput, match="alert expiry must be"):
            check_fields({"alert_expiry_hours": hours})


def test_quiet_hours_are_stored_as_written_off_or_following_the_settings() -> None:
    assert check_fields({"quiet_hours": " 9:05 - 17:30 "}) == {"quiet_hours": "09:05-17:30"}
    assert check_fields({"quiet_hours": "OFF"}) == {"quiet_hours": "off"}
    assert check_fields({"quiet_hours": ""}) == {"quiet_hours": None}
    assert check_fields({"alert_categories": "Breaking; Live,breaking"}) == {
        "alert_categories": ["Breaking", "Live"]
    }
    with pytest.raises(InvalidInput, match="quiet hours are HH:MM-HH:MM"):
        check_fields({"quiet_hours": "22:00-24:00"})
