"""A feature's end time reads the same from the CLI's ``--until`` and the desk's form (one rule,
``posts.featuring.parse_until``): a duration works on the desk as on the CLI, and an end time out
of the calendar is one sentence on both, never a traceback or a 500."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest

from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.errors import InvalidInput
from digest.posts.featuring import parse_until
from tests.support.alerts import post
from tests.support.cli import run
from tests.support.desk import desk_client
from tests.support.web import make_app
from tests.test_desk_posts import featured_now
from tests.test_posts_cli import one_line_error

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_one_rule_reads_durations_local_times_and_refuses_the_rest() -> None:
    assert parse_until("", "Europe/Paris", NOW) is None
    assert parse_until("36h", "Europe/Paris", NOW) == NOW + timedelta(hours=36)
    assert parse_until("2026-12-02T08:00", "Europe/Paris", NOW) == datetime(
        2026, 12, 2, 7, 0, tzinfo=UTC
    )
    with pytest.raises(InvalidInput):  # out of the calendar in UTC, or long past
        parse_until("0001-01-01T00:00", "Pacific/Kiritimati", NOW)
    for bad in ("soon", "999999999w", "9999-12-31T23:59-14:00"):
        with pytest.raises(InvalidInput, match="like 2026-12-01T18:00 or a duration"):
            parse_until(bad, "Pacific/Kiritimati", NOW)
    with pytest.raises(InvalidInput, match="--until '2026-11-30T10:00' is in the past"):
        parse_until("2026-11-30T10:00", "UTC", NOW, name="--until")


async def test_the_desk_takes_a_duration_as_the_cli_does(db: Database, make_settings) -> None:  # type: ignore[no-untyped-def]
    cfg: Settings = make_settings(database_url=db.url)
    pid = post(db, "Storm closes bridge")
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        answer = await http.post(
            f"/desk/posts/{pid}/feature", data={"csrf_token": csrf, "until": "36h"}
        )
    assert answer.status_code == 303, answer.text
    featured, until = featured_now(db, pid, cfg)
    assert featured and until is not None
    assert timedelta(hours=35) < until - utcnow() <= timedelta(hours=36)


def test_the_cli_refuses_a_duration_past_the_calendar_in_one_line(
    cli_env: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    added = run(capsys, "posts", "add", "--title", "Pick", "--url", "https://e.com/pick")
    assert added.code == 0, added
    one_line_error(run(capsys, "posts", "feature", "1", "--until", "999999999w"), 65, "--until")
