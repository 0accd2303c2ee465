"""List hygiene end to end on both stores: digests really sent over SMTP, a pass asking the
silent readers, the question sent by the worker to a real aiosmtpd server, its button over
HTTP (GET asks, only POST keeps), retiring after D days, coming back, dry runs, the CLI."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from digest import hygiene, newsletters, schedule, subscriptions, tracking_state
from digest.compose.repermission_mail import RepermissionRenderer
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from digest.errors import HygieneUnavailable
from digest.hygiene_rules import Policy
from digest.models import Delivery, Subscriber, Subscription, TrackingState
from digest.newsletter_config import configure
from digest.states import DeliveryKind
from digest.tracking import TrackingMode
from tests.support.cli import run
from tests.support.outbox import enqueue, make_edition
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.support.web import client, make_app, path_of

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # the first pass
JOINED = T0 - timedelta(weeks=4)
SILENT, READER, NEWCOMER, OPTED_OUT = (
    "silent@example.com",
    "reader@example.com",
    "newcomer@example.com",
    "private@example.com",
)
STAY_LINK = re.compile(r"https?://[^\s\"<>]+/stay/[A-Za-z0-9_.-]+")
U = Subscription.__table__  # type: ignore[attr-defined]
D = Delivery.__table__  # type: ignore[attr-defined]


@pytest.fixture
def server() -> Any:
    started = start_server(RecordingHandler())
    yield started
    started.stop()


def _settings(make_settings: Any, db: Database, server: SmtpServer, **more: Any) -> Settings:
    values: dict[str, Any] = {"tracking": "per-reader"} | more
    return make_settings(database_url=db.url, smtp_url=server.url, **values)  # type: ignore[no-any-return]


def _tracked(db: Database, since: datetime, mode: str = "per-reader") -> None:
    """Mail made under ``mode`` since ``since`` (what the scheduler's ticks note)."""
    with db.transaction() as session:
        session.execute(sa.delete(TrackingState.__table__))  # type: ignore[attr-defined]
        tracking_state.note(session, TrackingMode(mode), since)


def _join(db: Database, email: str, at: datetime) -> int:
    with time_machine.travel(at, tick=False), db.transaction() as session:
        return subscriptions.add(session, email, confirmed=True).id


def _digests(db: Database, settings: Settings, days: list[int]) -> None:
    """A daily digest on each of ``days`` (relative to T0) sent for real to every active
    reader of newsletter 1."""
    for day in days:
        at = T0 + timedelta(days=day)
        with time_machine.travel(at, tick=True):
            edition_id, body_id = make_edition(db, key=f"1/daily:{at.date()}T07Z")
            enqueue(db, edition_id, body_id, period=f"1/daily:{at.date()}", prefix=f"e{day}")
            assert drain(settings, db).failed == 0


def _set(db: Database, email: str, **values: Any) -> None:
    """Set a reader's subscription columns (what the click fold writes, in other tests)."""
    with db.transaction() as session:
        person = session.execute(
            sa.select(Subscriber.id).where(Subscriber.email == email)  # type: ignore[arg-type]
        ).scalar_one()
        session.execute(sa.update(U).where(U.c.subscriber_id == person).values(**values))


def _sub(db: Database, email: str) -> Any:
    with db.transaction() as session:
        person = session.execute(
            sa.select(Subscriber.id).where(Subscriber.email == email)  # type: ignore[arg-type]
        ).scalar_one()
        return session.execute(sa.select(U).where(U.c.subscriber_id == person)).one()


def _questions(db: Database) -> list[Any]:
    with db.transaction() as session:
        return list(
            session.execute(
                sa.select(D.c.to_email, D.c.period_key, D.c.status)
                .where(D.c.kind == DeliveryKind.REPERMISSION.value)
                .order_by(D.c.id)
            ).all()
        )


def _turn_on(db: Database, text: str = "3:2:14") -> None:
    with db.transaction() as session:
        newsletters.edit(session, newsletters.by_id(session, 1), hygiene=text)


def _list(db: Database, make_settings: Any, server: SmtpServer) -> Settings:
    """Four readers who joined four weeks ago (one a week ago), three digests over the last
    two weeks; the reader clicked three days ago, one reader opted out of tracking."""
    settings = _settings(make_settings, db, server)
    _tracked(db, T0 - timedelta(weeks=20))
    for email in (SILENT, READER, OPTED_OUT):
        _join(db, email, JOINED)
    _join(db, NEWCOMER, T0 - timedelta(days=9, hours=12))
    _digests(db, settings, [-10, -9, -8, -2])
    _set(db, READER, last_click_at=T0 - timedelta(days=3))
    with db.transaction() as session:
        session.execute(
            sa.update(Subscriber.__table__)  # type: ignore[attr-defined]
            .where(Subscriber.__table__.c.email == OPTED_OUT)  # type: ignore[attr-defined]
            .values(tracking_opt_out=True)
        )
    server.handler.received.clear()
    return settings


def _asked(
    db: Database, make_settings: Any, server: SmtpServer, hygiene_text: str, sent_at: datetime
) -> Settings:
    """The list above with hygiene on, the silent reader asked at T0 and the question sent by
    the worker at ``sent_at``."""
    settings = _list(db, make_settings, server)
    _turn_on(db, hygiene_text)
    (asked,) = hygiene.run(db, settings, T0)
    assert asked.asked == [SILENT]
    with time_machine.travel(sent_at, tick=True):
        assert drain(settings, db).sent == 1
    return settings


def _parsed(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def _text(data: bytes) -> str:
    return str(_parsed(data).get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]


async def test_a_silent_reader_is_asked_once_and_the_button_keeps_them(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = await asyncio.to_thread(_list, db, make_settings, server)
    _turn_on(db)
    # A dry run says who, and changes nothing.
    (dry,) = hygiene.run(db, settings, T0, dry_run=True)
    assert (dry.asked, dry.retired, dry.dry_run) == ([SILENT], [], True)
    assert _questions(db) == [] and _sub(db, SILENT).repermission_sent_at is None
    # For real, twice: one question, to the silent reader only.
    (first,) = hygiene.run(db, settings, T0)
    (again,) = hygiene.run(db, settings, T0 + timedelta(minutes=5))
    assert first.asked == [SILENT] and again.asked == [] and again.waiting == 1
    assert _questions(db) == [(SILENT, f"1/repermission:{T0.date()}", "queued")]
    with time_machine.travel(T0 + timedelta(minutes=10), tick=True):
        assert (await asyncio.to_thread(drain, settings, db)).sent == 1
    (received,) = server.handler.received
    mail = _parsed(received.data)
    assert received.rcpt_tos == (SILENT,)
    assert mail["Subject"] == "Still want digest?"
    # List mail like a digest: its List-Id and one-click unsubscribe.
    assert mail["List-Id"] == f"digest <{settings.list_identifier}>"
    assert "/unsubscribe/" in str(mail["List-Unsubscribe"]) and mail["List-Unsubscribe-Post"]
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Yes, keep sending" in html and "14 days" in text
    link = STAY_LINK.search(text)
    assert link is not None and link.group(0) in html

    app = make_app(settings, db)
    async with client(app) as http:
        # A link scanner's GET: a page with the button, nothing kept.
        page = await http.get(path_of(link.group(0)))
        assert page.status_code == 200 and "Yes, keep sending" in page.text
        assert 'method="post"' in page.text
        assert _sub(db, SILENT).repermission_sent_at is not None
        kept = await http.post(path_of(link.group(0)))
        assert kept.status_code == 200 and "keep sending it" in kept.text
    row = _sub(db, SILENT)
    assert row.status == "active" and row.repermission_sent_at is None
    assert row.last_click_at is not None
    # The answer starts a fresh window: not asked again at the next pass.
    (later,) = hygiene.run(db, settings, T0 + timedelta(days=1))
    assert later.asked == [] and later.retired == []


async def test_an_unanswered_reader_is_retired_after_d_days_and_can_come_back(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    sent_at = T0 + timedelta(hours=1)
    settings = await asyncio.to_thread(_asked, db, make_settings, server, "3:2:7", sent_at)
    link = STAY_LINK.search(_text(server.handler.received[0].data))
    assert link is not None
    # Six days after it went out: still waiting.
    (early,) = hygiene.run(db, settings, sent_at + timedelta(days=6))
    assert early.retired == [] and early.waiting == 1
    # A digest queued for them, then the seventh day: retired, and that digest cancelled.
    with time_machine.travel(sent_at + timedelta(days=7), tick=True):
        edition_id, body_id = make_edition(db, key="1/daily:late")
        assert enqueue(db, edition_id, body_id, period="1/daily:late", prefix="late") == 4
        dry = hygiene.run(db, settings, sent_at + timedelta(days=7, minutes=1), dry_run=True)
        assert dry[0].retired == [SILENT] and _sub(db, SILENT).status == "active"
        (due,) = hygiene.run(db, settings, sent_at + timedelta(days=7, minutes=1))
    assert due.retired == [SILENT]
    assert _sub(db, SILENT).status == "inactive"
    with db.transaction() as session:
        late = session.execute(
            sa.select(D.c.to_email, D.c.status).where(D.c.period_key == "1/daily:late")
        ).all()
    assert dict(late)[SILENT] == "cancelled" and dict(late)[READER] == "queued"
    # The record stays, counted as inactive.
    with db.transaction() as session:
        from digest import subscribers

        assert subscribers.count_by_status(session, 1)["inactive"] == 1
    # Never asked twice, never retired twice.
    (after,) = hygiene.run(db, settings, sent_at + timedelta(days=8))
    assert after.asked == [] and after.retired == []
    # The same button brings them back.
    async with client(make_app(settings, db)) as http:
        page = await http.get(path_of(link.group(0)))
        assert "start getting it again" in page.text and _sub(db, SILENT).status == "inactive"
        back = await http.post(path_of(link.group(0)))
        assert back.status_code == 200 and "Welcome back" in back.text
    row = _sub(db, SILENT)
    assert row.status == "active" and row.repermission_sent_at is None


async def test_a_click_after_the_question_answers_it_and_a_reader_who_clicked_is_never_asked(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    # Never the reader who clicked, the newcomer or the one opted out of tracking.
    sent_at = T0 + timedelta(minutes=1)
    settings = await asyncio.to_thread(_asked, db, make_settings, server, "3:2:1", sent_at)
    _set(db, SILENT, last_click_at=T0 + timedelta(hours=5))
    (answered,) = hygiene.run(db, settings, T0 + timedelta(days=3))
    assert answered.answered == [SILENT] and answered.retired == []
    assert _sub(db, SILENT).repermission_sent_at is None and _sub(db, SILENT).status == "active"
    assert {r[0] for r in _questions(db)} == {SILENT}


async def test_off_by_default_and_refused_without_per_reader_tracking(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = await asyncio.to_thread(_list, db, make_settings, server)
    assert hygiene.run(db, settings, T0) == []  # no newsletter has it on
    _turn_on(db)
    aggregate = _settings(make_settings, db, server, tracking="aggregate")
    with pytest.raises(HygieneUnavailable, match="DIGEST_TRACKING=per-reader"):
        hygiene.run(db, aggregate, T0)
    assert _questions(db) == []


async def test_a_tampered_or_foreign_token_is_a_clear_4xx(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = _settings(make_settings, db, server)
    _join(db, SILENT, JOINED)
    from digest.links import stay_url, unsubscribe_url

    with db.transaction() as session:
        person_id = int(session.execute(sa.select(Subscriber.id)).scalar_one())  # type: ignore[call-overload]
    good = path_of(stay_url(settings, person_id, SILENT, 1))
    # An unsubscribe token is not a "keep sending" one.
    foreign = "/stay/" + path_of(unsubscribe_url(settings, person_id, SILENT, 1)).split("/")[-1]
    async with client(make_app(settings, db)) as http:
        for path in (good[:-3], good + "x", "/stay/nonsense", foreign):
            for method in ("GET", "POST"):
                answer = await http.request(method, path, headers={"accept": "text/html"})
                assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
                assert "not valid" in answer.text
    assert _sub(db, SILENT).status == "active"


def test_cli_options_dry_run_and_errors(cli_env: Database, capsys: Any) -> None:
    assert run(capsys, "newsletters", "show", "digest", "--json").out.count('"hygiene": "off"') == 1
    # Without per-reader tracking: it refuses in one line, and turning it on warns.
    refused = run(capsys, "hygiene")
    assert refused.code == 78 and refused.err.count("\n") == 1
    assert "DIGEST_TRACKING=per-reader" in refused.err
    on = run(capsys, "newsletters", "edit", "digest", "--hygiene", "8:6")
    assert on.code == 0 and "warning:" in on.err and "does nothing until then" in on.err
    assert '"hygiene": "8:6:14"' in run(capsys, "newsletters", "show", "digest", "--json").out
    listed = run(capsys, "newsletters", "list", "--json").out
    assert '"hygiene": "8:6:14"' in listed
    for bad, says in (
        ("0:6", "digests (N) must be 1-1000"),
        ("8", "N:M[:D]"),
        ("8:6:999", "days to answer (D) must be 1-365"),
    ):
        wrong = run(capsys, "newsletters", "edit", "digest", "--hygiene", bad)
        assert wrong.code == 65 and says in wrong.err and wrong.err.count("\n") == 1
    assert '"hygiene": "8:6:14"' in run(capsys, "newsletters", "show", "digest", "--json").out


def test_cli_runs_a_pass_and_a_dry_run(
    cli_env: Database, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TRACKING", "per-reader")
    off = run(capsys, "hygiene")
    assert off.code == 0 and "off for every newsletter" in off.out
    assert run(capsys, "hygiene", "--newsletter", "nope").code == 66
    named = run(capsys, "hygiene", "--newsletter", "digest")
    assert named.code == 65 and "list hygiene is off for digest" in named.err
    # A silent reader with two digests sent to them over the last week.
    with time_machine.travel(datetime.now(UTC) - timedelta(weeks=3), tick=False):
        assert run(capsys, "subscribers", "add", SILENT, "--confirmed").code == 0
    for day in (2, 1):
        edition_id, body_id = make_edition(cli_env, key=f"1/daily:-{day}")
        enqueue(cli_env, edition_id, body_id, period=f"1/daily:-{day}", prefix=f"d{day}")
    with cli_env.transaction() as session:
        session.execute(sa.update(D).values(status="sent", sent_at=datetime.now(UTC)))
    assert run(capsys, "newsletters", "edit", "digest", "--hygiene", "2:1").code == 0
    # Per-reader tracking only from now on: nobody is judged for a week, and it says so.
    fresh = run(capsys, "hygiene", "--dry-run")
    assert "would ask 0" in fresh.out and "per-reader tracking since " in fresh.out
    assert "readers are judged from " in fresh.out
    (said,) = json.loads(run(capsys, "hygiene", "--json").out)
    assert said["asked"] == [] and "readers are judged from" in said["notice"]
    assert _questions(cli_env) == []
    _tracked(cli_env, datetime.now(UTC) - timedelta(weeks=2))
    dry = run(capsys, "hygiene", "--dry-run")
    assert dry.code == 0 and f"would ask: {SILENT}" in dry.out
    assert "digest (2:1:14) dry run: would ask 1, would retire 0" in dry.out
    assert _questions(cli_env) == []
    done = run(capsys, "hygiene", "--json")
    assert done.code == 0 and '"asked": [\n      "silent@example.com"\n    ]' in done.out
    assert len(_questions(cli_env)) == 1
    assert run(capsys, "newsletters", "edit", "digest", "--hygiene", "off").code == 0
    assert '"hygiene": "off"' in run(capsys, "newsletters", "show", "digest", "--json").out
    assert run(capsys, "hygiene").out.startswith("list hygiene is off")


async def test_the_scheduler_runs_a_pass_hourly_only_under_per_reader_tracking(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = await asyncio.to_thread(_list, db, make_settings, server)
    _turn_on(db)
    aggregate = schedule.Scheduler(
        _settings(make_settings, db, server, tracking="aggregate"), db, poll=False
    )
    aggregate.start()
    assert schedule.HYGIENE_JOB not in {j.id for j in aggregate.scheduler.get_jobs()}
    await aggregate.stop()
    ticking = schedule.Scheduler(settings, db, clock=lambda: T0, poll=False)
    ticking.start()
    job = ticking.scheduler.get_job(schedule.HYGIENE_JOB)
    assert job is not None and job.trigger.interval == timedelta(hours=1)
    await ticking.stop()
    (report,) = await ticking.hygiene_job()
    assert report.asked == [SILENT] and len(_questions(db)) == 1


def test_operators_override_the_mail_and_each_reader_gets_their_own_link(
    db: Database, make_settings: Any, tmp_path: Any
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "repermission_subject.txt").write_text("{{ newsletter_name }}: still there?\n")
    settings = make_settings(database_url=db.url, templates_dir=str(folder))
    with db.transaction() as session:
        config = configure(newsletters.by_id(session, 1), settings)
    policy = Policy(3, 2, 10)
    shared = RepermissionRenderer(settings, config, policy)
    links = [f"https://news.example.com/stay/tok{i}.mac{i}" for i in range(3)]
    made = [shared.render(link) for link in links]
    assert made[0].subject == "digest: still there?"
    for link, mail in zip(links, made, strict=True):
        # Exactly what a renderer of its own makes for that link, and no other reader's link.
        assert mail == RepermissionRenderer(settings, config, policy).render(link)
        assert link in mail.text and link in mail.html
        assert not any(other in mail.text for other in links if other != link)
    assert "10 days" in made[0].text and "2 weeks" in made[0].text


def test_cli_retires_and_status_counts_them(
    cli_env: Database, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TRACKING", "per-reader")
    _tracked(cli_env, datetime.now(UTC) - timedelta(weeks=20))
    with time_machine.travel(datetime.now(UTC) - timedelta(weeks=3), tick=False):
        assert run(capsys, "subscribers", "add", SILENT, "--confirmed").code == 0
    edition_id, body_id = make_edition(cli_env, key="1/daily:old")
    enqueue(cli_env, edition_id, body_id, period="1/daily:old", prefix="old")
    with cli_env.transaction() as session:
        session.execute(sa.update(D).values(status="sent", sent_at=datetime.now(UTC)))
    assert run(capsys, "newsletters", "edit", "digest", "--hygiene", "1:1:3").code == 0
    assert "asked 1" in run(capsys, "hygiene").out
    # The question went out four days ago, unanswered.
    with cli_env.transaction() as session:
        session.execute(
            sa.update(D)
            .where(D.c.kind == DeliveryKind.REPERMISSION.value)
            .values(status="sent", sent_at=datetime.now(UTC) - timedelta(days=4))
        )
    dry = run(capsys, "hygiene", "--dry-run")
    assert f"would retire: {SILENT}" in dry.out and "would retire 1" in dry.out
    assert "inactive 0" in run(capsys, "status").out
    done = run(capsys, "hygiene")
    assert done.code == 0 and "retired 1" in done.out
    assert "inactive 1" in run(capsys, "status").out
    entries = json.loads(run(capsys, "audit", "--json").out)
    passes = [e for e in entries if e["action"] == "hygiene.run"]
    assert sorted((p["after"]["asked"], p["after"]["retired"]) for p in passes) == [(0, 1), (1, 0)]
    assert SILENT not in json.dumps(passes)  # counts, never addresses
    listed = run(capsys, "subscribers", "list", "--json").out
    assert SILENT in listed and '"inactive"' in listed  # the record stays


async def test_the_admin_api_sets_and_shows_it_as_the_command_line_does(
    db: Database, make_settings: Any
) -> None:
    settings = make_settings(database_url=db.url, admin_token="t" * 32)
    auth = {"authorization": f"Bearer {'t' * 32}"}
    async with client(make_app(settings, db)) as http:
        shown = await http.get("/api/newsletters/digest", headers=auth)
        assert shown.json()["hygiene"] == "off"
        on = await http.patch("/api/newsletters/digest", json={"hygiene": "8:6"}, headers=auth)
        assert on.status_code == 200 and on.json()["hygiene"] == "8:6:14"
        bad = await http.patch("/api/newsletters/digest", json={"hygiene": "0:6"}, headers=auth)
        assert bad.status_code == 422 and "digests (N) must be 1-1000" in bad.text
        off = await http.patch("/api/newsletters/digest", json={"hygiene": "off"}, headers=auth)
        assert off.json()["hygiene"] == "off"


async def test_a_retired_reader_brought_back_by_an_operator_or_an_import_is_not_retired_again(
    cli_env: Database, make_settings: Any, server: SmtpServer, tmp_path: Any, capsys: Any
) -> None:
    db = cli_env
    sent_at = T0 + timedelta(hours=1)
    settings = await asyncio.to_thread(_asked, db, make_settings, server, "3:2:7", sent_at)
    gone = sent_at + timedelta(days=8)
    (retired,) = hygiene.run(db, settings, gone)
    assert retired.retired == [SILENT] and _sub(db, SILENT).status == "inactive"
    # An import that makes them active again leaves the question's time as it was; the rule
    # takes their return as the answer instead of retiring them again at the next pass.
    rows = tmp_path / "back.csv"
    rows.write_text(f"email,status\n{SILENT},active\n")
    with time_machine.travel(gone + timedelta(hours=1), tick=False):
        assert run(capsys, "subscribers", "import", str(rows), "--status", "active").code == 0
    assert _sub(db, SILENT).status == "active"
    assert _sub(db, SILENT).repermission_sent_at is not None
    (later,) = hygiene.run(db, settings, gone + timedelta(days=1))
    assert later.retired == [] and later.answered == [SILENT]
    assert _sub(db, SILENT).repermission_sent_at is None
    # An operator's add (as every return to active through the state machine) closes it too.
    _set(db, READER, status="inactive", repermission_sent_at=T0)
    _join(db, READER, gone + timedelta(days=1))
    assert _sub(db, READER).status == "active"
    assert _sub(db, READER).repermission_sent_at is None


def _answer_during_review(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[list[str]]:
    """Make ``answer()`` commit between the pass's review and its writes (what a reader's
    POST or a click fold may do at any moment); the verdicts the review read, returned."""
    read: list[list[str]] = []
    real = hygiene.review

    def review_then_answer(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        read.append([r.verdict.value for r in found])
        answer()
        return found

    monkeypatch.setattr(hygiene, "review", review_then_answer)
    return read


def test_a_reader_who_answers_while_a_pass_runs_is_not_retired(
    db: Database, make_settings: Any, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.links import stay_url

    sent_at = T0 + timedelta(hours=1)
    settings = _asked(db, make_settings, server, "3:2:7", sent_at)
    person_id = _sub(db, SILENT).subscriber_id
    link = path_of(stay_url(settings, person_id, SILENT, 1))
    app = make_app(settings, db)

    async def press() -> None:
        async with client(app) as http:
            (await http.post(link)).raise_for_status()

    # The reader presses "Yes, keep sending" after the pass read them as due.
    read = _answer_during_review(monkeypatch, lambda: asyncio.run(press()))
    due = sent_at + timedelta(days=8)
    (report,) = hygiene.run(db, settings, due)
    assert "retire" in read[0] and report.retired == []
    row = _sub(db, SILENT)
    assert row.status == "active" and row.repermission_sent_at is None
    # A click folded meanwhile answers as well: neither retired nor asked again.
    _set(db, SILENT, repermission_sent_at=T0, last_click_at=None)
    clicked = sent_at + timedelta(days=9)
    monkeypatch.undo()
    _answer_during_review(monkeypatch, lambda: _set(db, SILENT, last_click_at=clicked))
    (report,) = hygiene.run(db, settings, clicked + timedelta(minutes=1))
    assert report.retired == [] and _sub(db, SILENT).status == "active"


def test_a_silent_reader_who_clicks_while_a_pass_runs_is_not_asked(
    db: Database, make_settings: Any, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _list(db, make_settings, server)
    _turn_on(db)
    read = _answer_during_review(
        monkeypatch, lambda: _set(db, SILENT, last_click_at=T0 - timedelta(minutes=1))
    )
    (report,) = hygiene.run(db, settings, T0)
    assert "ask" in read[0] and report.asked == []
    assert _questions(db) == [] and _sub(db, SILENT).repermission_sent_at is None


def test_switching_to_per_reader_tracking_asks_nobody_until_m_weeks_of_it(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = _list(db, make_settings, server)
    _turn_on(db)  # 3 digests over 2 weeks
    # Mail was made under aggregate tracking until now: no reader's clicks were kept.
    aggregate = _settings(make_settings, db, server, tracking="aggregate")
    schedule.run_digests(db, aggregate, T0 - timedelta(weeks=10))
    schedule.run_digests(db, settings, T0)  # the scheduler's tick under per-reader
    with db.transaction() as session:
        assert tracking_state.per_reader_since(session) == T0
    schedule.run_digests(db, settings, T0 + timedelta(minutes=1))  # no change: no move
    (now,) = hygiene.run(db, settings, T0 + timedelta(minutes=5))
    assert now.asked == [] and _questions(db) == []
    assert now.notice == (
        "per-reader tracking since 2026-12-02 09:00 UTC; "
        "readers are judged from 2026-12-16 09:00 UTC"
    )
    # Two weeks of per-reader tracking later, with digests sent in them: the silent are asked.
    _digests(db, settings, [3, 4, 5, 12])
    _set(db, READER, last_click_at=T0 + timedelta(days=10))
    (later,) = hygiene.run(db, settings, T0 + timedelta(weeks=2, hours=1))
    assert later.notice is None and sorted(later.asked) == [NEWCOMER, SILENT]


def test_a_question_that_never_went_out_is_dropped_after_d_days_and_asked_again(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = _list(db, make_settings, server)
    _turn_on(db, "3:2:2")
    (first,) = hygiene.run(db, settings, T0)
    assert first.asked == [SILENT]
    with db.transaction() as session:  # the worker gave up on it
        session.execute(
            sa.update(D).where(D.c.kind == DeliveryKind.REPERMISSION.value).values(status="failed")
        )
    (early,) = hygiene.run(db, settings, T0 + timedelta(days=1))
    assert early.waiting == 1 and early.dropped == [] and early.retired == []
    (due,) = hygiene.run(db, settings, T0 + timedelta(days=2))
    assert due.dropped == [SILENT] and due.retired == []
    assert _sub(db, SILENT).status == "active" and _sub(db, SILENT).repermission_sent_at is None
    (again,) = hygiene.run(db, settings, T0 + timedelta(days=2, minutes=1))
    assert again.asked == [SILENT]
    day = (T0 + timedelta(days=2)).date()
    assert _questions(db)[-1] == (SILENT, f"1/repermission:{day}", "queued")


# SQLite has one writer: there the answer simply waits for the pass.
@pytest.mark.parametrize(
    "db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_keep_sending_pressed_while_a_pass_retires_them_brings_them_back(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    import threading
    import time

    from digest.links import stay_url

    assert db.dialect == "postgresql"
    settings = _asked(db, make_settings, server, "3:2:7", T0 + timedelta(hours=1))
    row = _sub(db, SILENT)
    link = path_of(stay_url(settings, row.subscriber_id, SILENT, 1))
    app, pages = make_app(settings, db), []

    async def press() -> None:
        async with client(app) as http:
            pages.append(await http.post(link))

    reader = threading.Thread(target=lambda: asyncio.run(press()))
    with db.transaction() as session:
        assert subscriptions.retire(session, row.id, row.repermission_sent_at)
        reader.start()
        # The pass commits only once the reader's answer waits on the row it retired.
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(db):
            assert time.monotonic() < deadline and reader.is_alive()
            time.sleep(0.01)
    reader.join(10)
    (page,) = pages
    assert page.status_code == 200 and "Welcome back" in page.text
    assert _sub(db, SILENT).status == "active"


def _waiting_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )
