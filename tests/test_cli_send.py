"""``digest send``, ``digest preview`` and ``digest demo`` through the real entry point."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from digest import subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.models import Post
from tests.support.cli import run


@pytest.fixture(autouse=True)
def noon() -> Iterator[None]:
    """The clock at noon UTC, still ticking: a test's runs of ``send`` or ``demo`` fall in one
    period in every subscriber's zone, whenever the suite runs (not across a midnight)."""
    with time_machine.travel(datetime(2026, 11, 29, 12, 0, tzinfo=UTC), tick=True):
        yield


@pytest.fixture
def env(db: Database, make_settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", db.url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DIGEST_SMTP_URL", f"file:{tmp_path / 'outbox'}")
    monkeypatch.setenv("DIGEST_FROM", "The Daily Brief <news@brief.example>")
    monkeypatch.setenv("DIGEST_SITE_NAME", "The Daily Brief")
    now = utcnow()
    with db.transaction() as s:
        subscriptions.add(s, "ann@example.com", name="Ann", confirmed=True, timezone="Europe/Paris")
        subscriptions.add(s, "bob@example.com", confirmed=True, topics="Sports")
        for i, cat in enumerate(["World", "Sports", "Don't Miss"]):
            at = now - timedelta(hours=i + 1)
            s.add(
                Post(
                    guid=f"g{i}",
                    title=f"{cat} story",
                    link=f"https://n.example/{i}",
                    summary="A summary.",
                    categories=[cat],
                    published_at=at,
                    first_seen_at=at,
                    updated_at=at,
                )
            )
    return tmp_path / "outbox"


def _messages(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def test_send_delivers_once_per_period(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "send", "--dry-run")
    assert r.code == 0 and "2 would get a digest" in r.out and "Sports story" in r.out
    assert not env.exists() or not list(env.glob("*.eml"))
    r = run(capsys, "send", "--json")
    data = json.loads(r.out)
    assert (data["recipients"], data["delivery"]["sent"]) == (2, 2)
    mails = {m["To"].addresses[0].addr_spec: m for m in _messages(env)}
    assert set(mails) == {"ann@example.com", "bob@example.com"}
    bob = mails["bob@example.com"].get_body(("plain",)).get_content()
    assert "Sports story" in bob and "World story" not in bob and "Don't Miss story" in bob
    assert mails["ann@example.com"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    r = run(capsys, "send")
    assert r.code == 0 and "nothing to send" in r.out
    assert len(_messages(env)) == 2


def test_test_send_and_preview(
    env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    r = run(capsys, "send", "--test", "Editor@Brief.example")
    assert r.code == 0 and "1 sent" in r.out
    (msg,) = _messages(env)
    assert msg["Subject"].startswith("[TEST] ") and msg["X-Digest-Test"] == "yes"
    assert msg["To"].addresses[0].addr_spec == "editor@brief.example"
    r = run(
        capsys,
        "preview",
        "--to",
        "bob@example.com",
        "--format",
        "eml",
        "--output",
        str(tmp_path / "bob.eml"),
    )
    assert r.code == 0
    preview = email.message_from_bytes(
        (tmp_path / "bob.eml").read_bytes(), policy=email.policy.default
    )
    assert preview["To"].addresses[0].addr_spec == "bob@example.com"
    assert "/unsubscribe/" in preview["List-Unsubscribe"]
    html = run(capsys, "preview", "--format", "html").out
    assert html.lstrip().lower().startswith("<!doctype html") and "World story" in html
    assert len(_messages(env)) == 1  # preview sent nothing
    r = run(capsys, "preview", "--to", "nobody@example.com")
    assert r.code == 66 and r.err.startswith("error: no subscriber")
    r = run(capsys, "send", "--test", "not an address")
    assert r.code == 65 and "not a valid email address" in r.err


def test_a_test_copy_with_nothing_new_is_an_error_and_sends_nothing(
    env: Path, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.transaction() as s:
        s.execute(sa.delete(Post))
    r = run(capsys, "send", "--test", "editor@brief.example")
    assert r.code == 1 and r.err.startswith("error: no test sent: ")
    assert not env.exists() or not list(env.glob("*.eml"))


def test_demo_on_the_embedded_defaults(
    make_settings,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    make_settings()  # no DIGEST_* at all: the demo's own var/demo/ in a fresh folder
    r = run(capsys, "demo")
    assert r.code == 0, r.err
    assert "4 sent" in r.out and (tmp_path / "var" / "demo" / "digest.db").exists()
    mails = _messages(tmp_path / "var" / "demo" / "outbox")
    assert len(mails) == 4
    subjects = " ".join(str(m["Subject"]) for m in mails)
    texts = " ".join(m.get_body(("plain",)).get_content() for m in mails)
    assert "Kishida" in texts + subjects  # the seed article is among the sample posts
    again = run(capsys, "demo")
    assert again.code == 0 and "already has this period's digest" in again.out
    assert len(_messages(tmp_path / "var" / "demo" / "outbox")) == 4
