"""``digest webhooks`` and the webhook queue in ``digest status``, through the real entry point,
against a receiver on loopback. Both stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from digest import audit, subscriptions
from digest.clock import utcnow
from digest.config import load_settings
from digest.db import Database
from digest.webhook_sender import WebhookSender
from digest.webhook_signing import verify
from tests.support.cli import run
from tests.support.webhook_receiver import Receiver, webhook_receiver

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
def private_ok(cli_env: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("DIGEST_ALLOW_PRIVATE_WEBHOOKS", "true")
    return cli_env


@pytest.mark.parametrize(
    ("url", "events", "says"),
    [
        ("ftp://example.org/hook", "edition.sent", "only http:// and https:// webhook URLs"),
        ("http://127.0.0.1:8080/hook", "edition.sent", "DIGEST_ALLOW_PRIVATE_WEBHOOKS"),
        ("http://localhost/hook", "edition.sent", "DIGEST_ALLOW_PRIVATE_WEBHOOKS"),
        ("http://[::1]/hook", "edition.sent", "non-public address"),
        ("https://10.1.2.3/hook", "edition.sent", "private-use"),
        ("https://example.org/hook", "subscriber.left", "unknown event subscriber.left"),
        ("https://example.org/hook", "", "name at least one event"),
        ("not a url", "edition.sent", "webhook URLs are accepted"),
    ],
)
def test_add_refuses_with_one_line(
    cli_env: Database, capsys: Capsys, url: str, events: str, says: str
) -> None:
    result = run(capsys, "webhooks", "add", url, "--events", events)
    assert result.code == 65, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("error: ")
    assert says in result.err
    assert "Traceback" not in result.err
    assert run(capsys, "webhooks", "list", "--json").out.strip() == "[]"


def test_a_host_that_does_not_resolve_yet_is_taken_with_a_note(
    cli_env: Database, capsys: Capsys
) -> None:
    # .invalid never resolves (RFC 2606); the sender checks the address it reaches each time.
    added = run(capsys, "webhooks", "add", "https://hooks.invalid/x", "--events", "edition.sent")
    assert added.code == 0, added.err
    assert "secret: whsec_" in added.out
    assert "does not resolve from here now" in added.err
    refused = run(capsys, "webhooks", "add", "http://127.0.0.1/x", "--events", "edition.sent")
    assert refused.code == 65 and "DIGEST_ALLOW_PRIVATE_WEBHOOKS" in refused.err
    assert "refused to post to 127.0.0.1" in refused.err


def test_add_list_test_remove(private_ok: Database, capsys: Capsys, receiver: Receiver) -> None:
    added = run(
        capsys,
        "webhooks",
        "add",
        receiver.url,
        "--events",
        "subscriber.confirmed,edition.sent",
        "--json",
    )
    assert added.code == 0, added.err
    created = json.loads(added.out)
    assert set(created) == {"id", "secret"} and created["secret"].startswith("whsec_")
    webhook_id, secret = created["id"], created["secret"]

    listed = json.loads(run(capsys, "webhooks", "list", "--json").out)
    assert listed == [
        {
            "id": webhook_id,
            "url": receiver.url,
            "events": ["subscriber.confirmed", "edition.sent"],
            "queue": {"pending": 0, "delivered": 0, "dead": 0},
        }
    ]
    plain = run(capsys, "webhooks", "list")
    assert receiver.url in plain.out and secret not in plain.out

    tested = run(capsys, "webhooks", "test", str(webhook_id))
    assert tested.code == 0, tested.err
    assert "200" in tested.out
    (got,) = receiver.wait_for(1)
    assert got.event["type"] == "webhook.test"
    now = int(utcnow().timestamp())
    assert verify(got.headers["Digest-Signature"], got.body, secret, now=now)

    receiver.status = 500
    failed = run(capsys, "webhooks", "test", str(webhook_id))
    assert failed.code != 0 and "500" in failed.err and failed.err.count("\n") == 1

    with private_ok.transaction() as session:
        entries = [(e.action, e.target) for e in audit.recent(session)]
        assert ("webhook.add", f"webhook #{webhook_id}") in entries
        assert all(
            secret not in json.dumps(audit.as_dict(e), default=str) for e in audit.recent(session)
        )

    removed = run(capsys, "webhooks", "remove", str(webhook_id))
    assert removed.code == 0
    assert run(capsys, "webhooks", "list", "--json").out.strip() == "[]"
    missing = run(capsys, "webhooks", "remove", str(webhook_id))
    assert missing.code == 66 and "no webhook" in missing.err
    with private_ok.transaction() as session:
        assert ("webhook.remove", f"webhook #{webhook_id}") in [
            (e.action, e.target) for e in audit.recent(session)
        ]


def test_url_credentials_stay_out_of_the_audit_log_and_the_list(
    private_ok: Database, capsys: Capsys, receiver: Receiver
) -> None:
    where = receiver.url.split("//", 1)[1]
    url = f"http://hookuser:pa55word@{where}?token=s3cr3t-token&x=1"
    added = run(capsys, "webhooks", "add", url, "--events", "edition.sent", "--json")
    assert added.code == 0, added.err
    webhook_id = json.loads(added.out)["id"]
    listed = json.loads(run(capsys, "webhooks", "list", "--json").out)
    plain = run(capsys, "webhooks", "list").out
    removed = run(capsys, "webhooks", "remove", str(webhook_id))
    assert removed.code == 0, removed.err
    with private_ok.transaction() as session:
        logged = json.dumps([audit.as_dict(e) for e in audit.recent(session)], default=str)
    for shown in (json.dumps(listed), plain, logged):
        assert "pa55word" not in shown and "hookuser" not in shown
        assert "s3cr3t-token" not in shown
    assert listed[0]["url"] == f"http://***@{where}?token=***&x=***"
    assert f"http://***@{where}?token=***&x=***" in plain
    assert f'"url": "http://{where}"' in logged  # scheme, host, port, path


def test_status_shows_the_queue_with_its_dead_letters(
    private_ok: Database, capsys: Capsys, receiver: Receiver
) -> None:
    receiver.status = 500
    added = run(capsys, "webhooks", "add", receiver.url, "--events", "subscriber.confirmed")
    assert added.code == 0, added.err
    with private_ok.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
        subscriptions.add(session, "bob@example.org", confirmed=True)
    settings = load_settings()
    past = utcnow() + timedelta(hours=25)
    asyncio.run(WebhookSender(settings, private_ok, clock=lambda: past).drain())
    with private_ok.transaction() as session:
        subscriptions.add(session, "cy@example.org", confirmed=True)

    status = json.loads(run(capsys, "status", "--json").out)
    assert status["webhooks"] == {"pending": 1, "delivered": 0, "dead": 2}
    shown = run(capsys, "status").out
    assert "webhooks: pending 1, delivered 0, dead 2" in shown
    listed = json.loads(run(capsys, "webhooks", "list", "--json").out)
    assert listed[0]["queue"] == {"pending": 1, "delivered": 0, "dead": 2}


def test_worker_until_empty_sends_due_events(
    private_ok: Database, capsys: Capsys, receiver: Receiver
) -> None:
    assert (
        run(capsys, "webhooks", "add", receiver.url, "--events", "subscriber.confirmed").code == 0
    )
    with private_ok.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
    done = run(capsys, "worker", "--until-empty")
    assert done.code == 0, done.err
    (got,) = receiver.wait_for(1)
    assert got.event["data"]["email"] == "ann@example.org"
