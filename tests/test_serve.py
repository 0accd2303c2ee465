"""``digest serve`` as operators run it: a subprocess on a free port, stopped with SIGTERM.

Also its one-line errors (busy port, bad setting) and the log format of ``logs.py``.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import time_machine

from digest import subscriptions
from digest.cli import main
from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.logs import JsonFormatter, KeyValueFormatter, configure_logging
from digest.mail.content import MailContent
from digest.models import Delivery
from digest.posts import store
from digest.states import DeliveryKind
from tests.support.clock import midday
from tests.support.serve import SECRET, serve_env, serving, wait_until

D = Delivery.__table__  # type: ignore[attr-defined]


def statuses(db: Database) -> Counter[str]:
    """Outbox rows by status."""
    with db.transaction() as session:
        rows = session.execute(sa.select(D.c.status, sa.func.count()).group_by(D.c.status))
        return Counter({status: int(n) for status, n in rows})


# -- running and stopping ------------------------------------------------------------------------


@pytest.mark.parametrize("log_json", [False, True], ids=["key-value", "json"])
def test_serve_answers_and_exits_0_on_sigterm(
    sqlite_db: Database, tmp_path: Path, log_json: bool
) -> None:
    env = serve_env(tmp_path, database_url=sqlite_db.url, log_json=str(log_json).lower())
    with serving(tmp_path, env) as served:
        assert httpx.get(f"{served.url}/").status_code == 200
        metrics = httpx.get(f"{served.url}/metrics")
        assert metrics.status_code == 200
        assert "digest_subscribers" in metrics.text
        assert served.terminate() == 0
    lines = served.log_lines()
    assert lines
    if log_json:
        events = [json.loads(line) for line in lines]  # every line is one JSON object
        messages = [e["msg"] for e in events]
        assert all({"ts", "level", "logger", "msg"} <= set(e) for e in events)
    else:
        assert all(line.startswith("ts=") and " level=" in line for line in lines)
        messages = [line.split(" msg=", 1)[1] for line in lines]
    joined = "\n".join(messages)
    for event in ("serving", "scheduler started", "shutting down", "scheduler stopped"):
        assert event in joined
    assert "stopped" in messages[-1]
    assert not any("Traceback" in line for line in lines)


def test_sigterm_mid_send_finishes_in_flight_and_gives_leases_back(
    sqlite_db: Database, tmp_path: Path, faulty_smtp_server
) -> None:
    """A slow server: SIGTERM while messages are on the wire. Nothing stays leased; whatever
    was accepted is recorded sent, the rest is back in the queue for the next start."""
    slow = faulty_smtp_server(
        rcpt_faults=0, data_faults=0, drop_rate=0, stall_rate=1.0, stall_seconds=1.5,
        stall_reply="250 2.0.0 OK, slowly",
    )  # fmt: skip
    with sqlite_db.transaction() as session:
        for i in range(30):
            outbox.enqueue_transactional(
                session, kind=DeliveryKind.CONFIRM.value, to_email=f"n{i}@example.com",
                subscriber_id=None, mail=MailContent("Notice", "hello", "<p>hello</p>"),
                domain="example.com",
            )  # fmt: skip
    env = serve_env(tmp_path, database_url=sqlite_db.url, smtp_url=slow.url, smtp_connections="2")
    with serving(tmp_path, env) as served:
        wait_until(lambda: statuses(sqlite_db)["sending"] > 0, "a message on the wire")
        assert served.terminate() == 0
    after = statuses(sqlite_db)
    assert after["sending"] == 0
    assert after["sent"] + after["queued"] == 30
    assert after["sent"] == len(slow.handler.received)
    assert after["queued"] > 0


def test_two_serve_processes_by_mistake_send_each_digest_once(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """APScheduler #160: two services over one store, both ticking every second."""
    zone, hour = midday(utcnow())  # due now, and still the same day when the test ends
    people = [f"twice{i}@example.com" for i in range(12)]
    # Readers since yesterday: the scheduler holds back one who joined after their hour today.
    yesterday = time_machine.travel(utcnow() - timedelta(days=1), tick=False)
    with yesterday, sqlite_db.transaction() as session:
        for email in people:
            subscriptions.add(session, email, confirmed=True, send_hour=hour, timezone=zone)
    with sqlite_db.transaction() as session:
        store.add_post(session, title="One story", url="https://news.example/one")
    env = serve_env(tmp_path, database_url=sqlite_db.url, schedule_seconds="1")
    with serving(tmp_path, env, "a") as first, serving(tmp_path, env, "b") as second:
        wait_until(lambda: statuses(sqlite_db)["sent"] == 12, "all twelve digests sent")
        time.sleep(3)  # both schedulers tick a few more times over the same period
        assert first.terminate() == 0
        assert second.terminate() == 0
    assert statuses(sqlite_db) == {"sent": 12}
    outbox_dir = tmp_path / "outbox"
    recipients = Counter(
        message_from_bytes(p.read_bytes())["To"].split("<")[-1].rstrip(">")
        for p in outbox_dir.rglob("*.eml")
    )
    assert recipients == dict.fromkeys(people, 1)


# -- one-line errors -----------------------------------------------------------------------------


def test_a_busy_port_is_one_line_and_a_non_zero_exit(
    sqlite_db: Database, make_settings, monkeypatch, capsys
) -> None:
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["serve", "--port", str(port)])
    assert exit_info.value.code == 74
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot listen on 127.0.0.1:{port} (Address already in use)"]


def test_a_bad_setting_stops_serve_with_one_line(make_settings, monkeypatch, capsys) -> None:
    make_settings()
    monkeypatch.setenv("DIGEST_SCHEDULE_SECONDS", "0")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "0"])
    assert exit_info.value.code == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: DIGEST_SCHEDULE_SECONDS: ")


def test_a_bad_port_is_a_usage_error(make_settings, capsys) -> None:
    make_settings()
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "70000" in capsys.readouterr().err


# -- log lines -----------------------------------------------------------------------------------


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "digest.test", "levelname": "INFO", "msg": msg})
    record.__dict__.update(extra)
    return record


def test_key_value_lines_quote_what_needs_it_and_stay_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = _record('said "hi"', edition="daily:2026-11-29T07Z", recipients=3, note="a b")
        record.exc_info = sys.exc_info()
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert ' msg="said \\"hi\\""' in line
    assert " edition=daily:2026-11-29T07Z recipients=3 " in line
    assert ' note="a b"' in line
    assert " exc=" in line
    assert "ValueError: bad\\nthing" in line


def test_json_lines_carry_the_extras() -> None:
    event = json.loads(JsonFormatter().format(_record("edition made", recipients=3)))
    assert event["msg"] == "edition made"
    assert event["recipients"] == 3
    assert event["level"] == "info"


def test_configure_logging_twice_prints_each_line_once(make_settings) -> None:
    settings = make_settings(log_json=True)
    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        configure_logging(settings, stream=stream)
        configure_logging(settings, stream=stream)
        logging.getLogger("digest.test").info("once", extra={"n": 1})
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["once"]


def test_serve_with_the_store_down_is_one_line(make_settings, monkeypatch, capsys) -> None:
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "0"])
    assert exit_info.value.code == 69
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: cannot use the database")
