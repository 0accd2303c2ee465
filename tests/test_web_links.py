"""The links in mail, over HTTP on both stores: confirm, unsubscribe (RFC 8058), preferences."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from sqlmodel import select

from digest import subscribers, subscription_requests, subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.delivery.running import drain
from digest.links import confirm_url, preferences_url, unsubscribe_url
from digest.models import Body, Delivery, Subscriber, Subscription
from digest.periods import period_for
from digest.states import DeliveryStatus
from digest.subscriber_fields import Consent
from digest.tokens import Purpose, sign
from tests.support.smtp_server import RecordingHandler, start_server
from tests.support.web import (
    CONFIRM_LINK,
    HTML,
    JSON,
    client,
    confirm_link,
    confirm_mails,
    make_app,
    path_of,
)


def _status(db: Database, email: str) -> str:
    with db.transaction() as session:
        return subscribers.reader(session, email).status


def _active(db: Database, email: str = "reader@example.com") -> Subscriber:
    with db.transaction() as session:
        return subscriptions.add(session, email, confirmed=True, topics=["World"])


def _queue_digest(db: Database, subscriber: Subscriber) -> int:
    """A digest already in the outbox for this person, as an edition would leave it."""
    with db.transaction() as session:
        body = Body(subject="Today", text="%%UNSUBSCRIBE_URL%%", html="<p>%%UNSUBSCRIBE_URL%%</p>")
        session.add(body)
        session.flush()
        period = period_for(subscriber.cadence, subscriber.timezone, subscriber.send_hour, utcnow())
        delivery = Delivery(
            kind="digest",
            subscriber_id=subscriber.id,
            body_id=body.id,
            to_email=subscriber.email,
            period_key=period.key,
            message_id="<d1@example.com>",
        )
        session.add(delivery)
        session.flush()
        assert delivery.id is not None
        return delivery.id


def _text_of(message: bytes) -> str:
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    part = parsed.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def test_the_whole_life_of_a_subscription(db: Database, make_settings) -> None:
    """Subscribe, get the mail through the real worker and SMTP, confirm, leave in one click."""
    server = start_server(RecordingHandler())
    try:
        settings = make_settings(database_url=db.url, smtp_url=server.url)
        app = make_app(settings, db)
        async with client(app) as http:
            answer = await http.post(
                "/subscribe", data={"email": "reader@example.com", "name": "Rea"}
            )
            assert answer.status_code == 200 and "Check your inbox" in answer.text
            ((mail, _),) = confirm_mails(db, "reader@example.com")
            assert mail.status == DeliveryStatus.QUEUED.value  # nothing sent on the request

            report = await asyncio.to_thread(drain, settings, db)
            assert report.sent == 1
            (received,) = server.handler.received
            assert received.rcpt_tos == ("reader@example.com",)
            assert received.message_id == mail.message_id
            assert b"List-Unsubscribe:" not in received.data.split(b"\r\n\r\n")[0]
            found = CONFIRM_LINK.search(_text_of(received.data))
            assert found, received.data
            link = path_of(found.group(0))

            # A link scanner's GET shows the button and confirms nothing.
            page = await http.get(link)
            assert page.status_code == 200 and 'method="post"' in page.text
            assert f'action="{link}"' in page.text
            assert page.headers["cache-control"] == "no-store"
            assert _status(db, "reader@example.com") == "pending"

            done = await http.post(link)
            assert done.status_code == 200 and "subscribed" in done.text
            assert "/preferences/" in done.text
            assert _status(db, "reader@example.com") == "active"
            again = await http.post(link)  # the button pressed twice
            assert again.status_code == 200

            with db.transaction() as session:
                reader = subscribers.reader(session, "reader@example.com")
            digest_id = _queue_digest(db, reader)

            # The mail client's one-click POST: multipart, no cookie, no redirect followed.
            one_click = path_of(unsubscribe_url(settings, reader.id, reader.email))
            left = await http.post(one_click, files={"List-Unsubscribe": (None, "One-Click")})
            assert left.status_code == 200 and "location" not in left.headers
            assert _status(db, "reader@example.com") == "unsubscribed"
            repeat = await http.post(one_click, data={"List-Unsubscribe": "One-Click"})
            assert repeat.status_code == 200

        # The digest queued before they left never goes out.
        await asyncio.to_thread(drain, settings, db)
        assert len(server.handler.received) == 1
        with db.transaction() as session:
            assert session.get(Delivery, digest_id).status == DeliveryStatus.CANCELLED.value
    finally:
        server.stop()


async def test_unsubscribe_page_asks_and_changes_nothing(db: Database, settings) -> None:
    reader = _active(db)
    path = path_of(unsubscribe_url(settings, reader.id, reader.email))
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        assert page.status_code == 200
        assert f'action="{path}"' in page.text and "/preferences/" in page.text
        assert _status(db, reader.email) == "active"
        pressed = await http.post(path, data={}, headers=HTML)
        assert pressed.status_code == 200 and "unsubscribed" in pressed.text
        api = await http.post(path, headers=JSON)
    assert api.json() == {"status": "unsubscribed"}
    assert _status(db, reader.email) == "unsubscribed"


async def test_erased_subscriber_links_say_so(db: Database, settings) -> None:
    reader = _active(db)
    unsub = path_of(unsubscribe_url(settings, reader.id, reader.email))
    prefs = path_of(preferences_url(settings, reader.id, reader.email))
    confirm = path_of(confirm_url(settings, reader.id, reader.email))
    with db.transaction() as session:
        subscribers.erase(session, reader.email)
        # Someone new gets the next id: an old token must not act on them.
        subscriptions.add(session, "next@example.com", confirmed=True)
    async with client(make_app(settings, db)) as http:
        page = await http.get(unsub)
        click = await http.post(
            unsub,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        pref = await http.get(prefs)
        conf = await http.post(confirm)
    assert page.status_code == 200 and "no longer on our list" in page.text
    assert click.status_code == 200
    assert pref.status_code == 404 and "no longer on our list" in pref.text
    assert conf.status_code == 400
    assert _status(db, "next@example.com") == "active"


async def test_expired_forged_and_misused_tokens_are_refused(db: Database, settings) -> None:
    with db.transaction() as session:
        done = subscription_requests.request_subscription(
            session, "late@example.com", consent=Consent(at=utcnow())
        )
        pending = subscribers.get_by_id(session, done.subscriber_id)
    sid, email = pending.id, pending.email
    old = sign(settings.secret, Purpose.CONFIRM, sid, email, now=utcnow() - timedelta(days=8))
    good = sign(settings.secret, Purpose.CONFIRM, sid, email)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    unsub = sign(settings.secret, Purpose.UNSUBSCRIBE, sid, email)
    async with client(make_app(settings, db)) as http:
        expired_get = await http.get(f"/confirm/{old}")
        expired_post = await http.post(f"/confirm/{old}")
        forged_post = await http.post(f"/confirm/{forged}")
        wrong_purpose = await http.post(f"/confirm/{unsub}")
        confirm_as_unsub = await http.post(f"/unsubscribe/{good}")
        junk = await http.get("/unsubscribe/%00%ff..", headers=JSON)
    assert expired_get.status_code == expired_post.status_code == 400
    assert "expired" in expired_post.text
    # The way out: a form asking for a fresh mail.
    assert 'action="/subscribe"' in expired_post.text and 'name="email"' in expired_post.text
    assert forged_post.status_code == wrong_purpose.status_code == 400
    assert confirm_as_unsub.status_code == 400
    assert junk.status_code == 400 and junk.json() == {"error": "this link is not valid"}
    assert _status(db, email) == "pending"


async def test_an_old_confirm_link_does_not_undo_leaving(db: Database, settings) -> None:
    reader = _active(db)
    link = path_of(confirm_url(settings, reader.id, reader.email))
    with db.transaction() as session:
        subscriptions.unsubscribe(session, subscribers.reader(session, reader.email))
    async with client(make_app(settings, db)) as http:
        r = await http.post(link)
    assert r.status_code == 400 and "subscribe again" in r.text
    assert _status(db, reader.email) == "unsubscribed"


async def test_preferences_change_and_validate(db: Database, settings) -> None:
    reader = _active(db)
    path = path_of(preferences_url(settings, reader.id, reader.email))
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        assert page.status_code == 200
        assert 'value="Europe/Paris"' in page.text and 'name="send_hour"' in page.text
        assert "/unsubscribe/" in page.text
        saved = await http.post(
            path,
            data={
                "cadence-1": "weekly",
                "topics-1": ["Tech", "Sport"],
                "timezone": "Europe/Paris",
                "timezone_other": "",
                "send_hour": "9",
            },
        )
        assert saved.status_code == 200 and "Saved" in saved.text
        other = await http.post(
            path,
            data={
                "cadence-1": "weekly",
                "timezone": "UTC",
                "timezone_other": "America/Bogota",
                "send_hour": "9",
                "topics-1": "Tech",
            },
        )
        assert other.status_code == 200
        bad = await http.post(
            path, data={"cadence-1": "daily", "timezone": "Mars/Olympus", "send_hour": "30"}
        )
        assert bad.status_code == 422 and "timezone" in bad.text
        bad_hour = await http.post(path, data={"cadence-1": "daily", "send_hour": "25"})
        assert bad_hour.status_code == 422 and "0-23" in bad_hour.text
    with db.transaction() as session:
        after = subscribers.reader(session, reader.email)
    # The refused forms changed nothing, not even the cadence they also carried.
    assert (after.cadence, after.topics, after.timezone, after.send_hour) == (
        "weekly",
        ["Tech"],
        "America/Bogota",
        9,
    )


async def test_dont_count_my_clicks_is_a_box_in_the_preference_centre(
    db: Database, settings
) -> None:
    reader = _active(db)
    path = path_of(preferences_url(settings, reader.id, reader.email))

    def opted_out() -> bool:
        with db.transaction() as session:
            return bool(subscribers.get(session, reader.email).tracking_opt_out)

    form = {"cadence-1": "daily", "timezone": "UTC", "send_hour": "7", "privacy": "1"}
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        assert "Don't count my clicks" in page.text and "We count clicks, not who" in page.text
        assert 'name="tracking_opt_out" value="1" aria' in page.text  # not ticked
        ticked = await http.post(path, data={**form, "tracking_opt_out": "1"})
        assert ticked.status_code == 200 and "Saved" in ticked.text
        assert 'name="tracking_opt_out" value="1" checked' in ticked.text
        assert opted_out()
        # A post without the page's marker (an old form, a partial post) leaves it as it is.
        assert (await http.post(path, data={"cadence-1": "weekly"})).status_code == 200
        assert opted_out()
        bad = await http.post(path, data={**form, "tracking_opt_out": "maybe", "send_hour": "8"})
        assert bad.status_code == 422 and opted_out()
        # The page as sent, box unticked: counted again.
        assert (await http.post(path, data=form)).status_code == 200
        assert not opted_out()


@pytest.mark.parametrize("purpose", [Purpose.UNSUBSCRIBE, Purpose.CONFIRM])
async def test_preferences_refuse_other_tokens(sqlite_db: Database, make_settings, purpose) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    reader = _active(sqlite_db)
    token = sign(settings.secret, purpose, reader.id, reader.email)
    async with client(make_app(settings, sqlite_db)) as http:
        r = await http.post(f"/preferences/{token}", data={"cadence-1": "weekly"})
    assert r.status_code == 400
    with sqlite_db.transaction() as session:
        assert session.exec(select(Subscription.cadence)).one() == "daily"


async def test_links_of_an_erased_person_stay_dead_when_the_address_signs_up_again(
    db: Database, settings
) -> None:
    """SQLite once gave the next subscriber the id of the erased one, and the same address
    has the same tag: the erased person's old mail unsubscribed (and opened the preferences
    of) whoever signed that address up afterwards."""
    reader = _active(db, "again@example.com")
    unsub = path_of(unsubscribe_url(settings, reader.id, reader.email))
    prefs = path_of(preferences_url(settings, reader.id, reader.email))
    with db.transaction() as session:
        subscribers.erase(session, reader.email)
    with db.transaction() as session:  # they sign up anew themselves, and confirm
        done = subscription_requests.request_subscription(
            session, "again@example.com", consent=Consent(at=utcnow())
        )
        subscriptions.confirm(session, subscribers.get_by_id(session, done.subscriber_id))
    async with client(make_app(settings, db)) as http:
        page = await http.get(unsub)
        click = await http.post(
            unsub,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        pref = await http.get(prefs)
        changed = await http.post(prefs, data={"cadence": "weekly", "send_hour": "9"})
    assert page.status_code == 200 and "no longer on our list" in page.text
    assert click.status_code == 200 and "no longer on our list" in click.text
    assert pref.status_code == 404 and "again@example.com" not in pref.text
    assert changed.status_code == 404
    with db.transaction() as session:
        now = subscribers.reader(session, "again@example.com")
    assert (now.status, now.cadence, now.send_hour) == ("active", "daily", 7)
    assert now.id != reader.id


def test_subscriber_ids_are_never_reused_after_the_highest_is_deleted(db: Database) -> None:
    with db.transaction() as session:
        first = subscriptions.add(session, "one@example.com").id
        second = subscriptions.add(session, "two@example.com").id
        subscribers.erase(session, "two@example.com")
    with db.transaction() as session:
        third = subscriptions.add(session, "three@example.com").id
    assert first is not None and second is not None and third is not None
    assert third > second > first


async def test_an_old_confirmation_link_answers_only_its_own_request(
    db: Database, settings
) -> None:
    """Subscribe, confirm, leave; then anyone enters the address again. The first mail's link
    once re-activated the subscription without its owner's new consent."""
    async with client(make_app(settings, db)) as http:
        await http.post("/subscribe", data={"email": "twice@example.com"})
        ((_, first_mail),) = confirm_mails(db, "twice@example.com")
        first = path_of(confirm_link(first_mail))
        assert (await http.post(first)).status_code == 200
        with db.transaction() as session:
            reader = subscribers.reader(session, "twice@example.com")
        left = await http.post(path_of(unsubscribe_url(settings, reader.id, reader.email)))
        assert left.status_code == 200 and _status(db, "twice@example.com") == "unsubscribed"

        await http.post("/subscribe", data={"email": "twice@example.com"}, headers=HTML)
        (_, (_, second_mail)) = confirm_mails(db, "twice@example.com")
        second = path_of(confirm_link(second_mail))
        assert second != first
        old_page = await http.get(first, headers=HTML)
        old_press = await http.post(first, headers=HTML)
        assert _status(db, "twice@example.com") == "pending"
        new_press = await http.post(second, headers=HTML)
    for answer in (old_page, old_press):
        assert answer.status_code == 400
        assert "asked for again" in answer.text and "newest mail" in answer.text
        assert 'action="/subscribe"' in answer.text  # a way to a fresh link
    assert new_press.status_code == 200 and "/preferences/" in new_press.text
    assert _status(db, "twice@example.com") == "active"


async def test_a_pending_request_asked_again_keeps_only_the_newest_link(
    db: Database, settings
) -> None:
    async with client(make_app(settings, db)) as http:
        for _ in range(2):
            await http.post("/subscribe", data={"email": "asks@example.com"})
        first, second = (path_of(confirm_link(b)) for _, b in confirm_mails(db, "asks@example.com"))
        old = await http.post(first)
        assert old.status_code == 400 and _status(db, "asks@example.com") == "pending"
        assert (await http.post(second)).status_code == 200
    assert _status(db, "asks@example.com") == "active"


async def test_past_the_cap_the_last_mailed_link_still_works(db: Database, settings) -> None:
    """A request that sends no mail (the daily cap is reached) must not kill the link that the
    owner did get: a bomber re-entering the address would lock them out."""
    async with client(make_app(settings, db)) as http:
        for _ in range(settings.confirm_limit + 2):
            await http.post("/subscribe", data={"email": "bombed@example.com"})
        mails = confirm_mails(db, "bombed@example.com")
        assert len(mails) == settings.confirm_limit
        last = path_of(confirm_link(mails[-1][1]))
        assert (await http.post(last)).status_code == 200
    assert _status(db, "bombed@example.com") == "active"
