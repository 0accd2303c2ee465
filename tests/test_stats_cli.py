"""``digest stats``: the contract's JSON keys per edition and in the totals, a readable table,
and one-line errors with non-zero exits for what is not there."""

from __future__ import annotations

import json

import pytest

from digest import subscriptions
from digest.config import Settings
from digest.db import Database
from digest.engagement_report import CONTRACT_KEYS
from digest.posts import store
from tests.support.cli import run
from tests.test_engagement_report import STORY, clicks, make_and_send, unsubscribe


@pytest.fixture
def sent(cli_env: Database, settings: Settings) -> int:
    """Three readers, one of whom left after it; their edition sent, clicked."""
    with cli_env.transaction() as session:
        for email in ("ana@example.com", "ben@example.com", "cy@example.com"):
            subscriptions.add(session, email, confirmed=True)
        store.add_post(session, title="Harbour reopens", url=STORY)
    edition = make_and_send(cli_env, settings)
    unsubscribe(cli_env, "cy@example.com")
    clicks(cli_env, f"e{edition}", {f"{STORY}?utm_source=digest": (2, 4)}, ["h", "m"])
    return edition


def test_one_editions_figures_as_json(capsys: pytest.CaptureFixture[str], sent: int) -> None:
    result = run(capsys, "stats", "--edition", str(sent), "--json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert {k: found[k] for k in CONTRACT_KEYS} == {
        "sent": 3,
        "bounced": 0,
        "complaints": 0,
        "unsubscribes": 1,
        "human_clicks": 2,
        "machine_clicks": 4,
        "unique_clicks": 1,
    }
    assert (found["id"], found["kind"], found["newsletter"]) == (sent, "edition", "digest")
    assert found["click_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert found["top_links"][0]["title"] == "Harbour reopens"


def test_every_mail_and_the_totals_as_json(capsys: pytest.CaptureFixture[str], sent: int) -> None:
    result = run(capsys, "stats", "--json", "--newsletter", "digest", "--days", "2")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert [(e["kind"], e["id"]) for e in found["editions"]] == [("edition", sent)]
    assert set(CONTRACT_KEYS) <= set(found["editions"][0])
    assert {k: found["totals"][k] for k in CONTRACT_KEYS} == {
        k: found["editions"][0][k] for k in CONTRACT_KEYS
    }
    assert len(found["days"]) == 2
    assert (found["days"][0]["joined"], found["days"][0]["unsubscribes"]) == (3, 1)


def test_the_table_reads_for_a_person(capsys: pytest.CaptureFixture[str], sent: int) -> None:
    result = run(capsys, "stats")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:7] == ["mail", "newsletter", "sent", "at", "(UTC)", "sent", "bounced"]
    row = next(line for line in lines if line.startswith(f"e{sent} "))
    assert "33.3%" in row
    one = run(capsys, "stats", "--edition", str(sent))
    assert "unsubscribes after it 1" in one.out
    assert "Harbour reopens" in one.out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--edition", "999"], 66, "error: there is no edition #999"),
        (["--alert", "5", "--json"], 66, "error: there is no alert #5"),
        (["--newsletter", "nope"], 66, "error: no newsletter 'nope'"),
    ],
)
def test_what_is_not_there_is_one_line_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str], cli_env: Database, args: list[str], code: int, message: str
) -> None:
    result = run(capsys, "stats", *args)
    assert (result.code, result.out) == (code, "")
    assert result.err.strip() == message


def test_two_mails_at_once_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], cli_env: Database
) -> None:
    result = run(capsys, "stats", "--edition", "1", "--alert", "1")
    assert result.code == 2
    assert "name one of --edition, --announcement and --alert" in result.err
    assert "Traceback" not in result.err
