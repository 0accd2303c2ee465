"""The reader's timezone over HTTP on both stores: given at signup (form, JSON, or the server's
default), never a way to touch an active reader, and shown and changed on the confirmed page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from digest import subscribers, subscription_requests, subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.errors import InvalidInput
from digest.links import confirm_url, preferences_url
from digest.subscriber_fields import Consent, parse_timezone
from tests.support.web import HTML, client, confirm_link, confirm_mails, make_app, path_of

ZONE_FORM = re.compile(r'action="(/preferences/[^"/]+/timezone)"')


def _zone(db: Database, email: str) -> str:
    with db.transaction() as session:
        return subscribers.get(session, email).timezone


def _exists(db: Database, email: str) -> bool:
    with db.transaction() as session:
        return subscribers.find(session, email) is not None


async def test_the_page_fills_the_zone_with_a_script_of_its_own(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        page = await http.get("/")
        script = await http.get("/assets/timezone.js")
    assert '<input type="hidden" name="timezone" value="">' in page.text
    # One script, from this app, and nothing inline: the policy allows no more than that.
    tags = re.findall(r"<script[^>]*>", page.text)
    assert tags == ['<script src="/assets/timezone.js" defer>']
    assert re.findall(r"<script[^>]*>(.*?)</script>", page.text, re.S) == [""]
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "resolvedOptions().timeZone" in script.text
    assert 'name="timezone"' in script.text


async def test_a_zone_comes_by_form_or_json_and_none_means_the_default(
    db: Database, make_settings
) -> None:
    settings = make_settings(database_url=db.url, timezone="Europe/Paris")
    async with client(make_app(settings, db)) as http:
        form = await http.post(
            "/subscribe", data={"email": "form@example.com", "timezone": "Asia/Tokyo"}, headers=HTML
        )
        api = await http.post(
            "/subscribe", json={"email": "api@example.com", "timezone": "America/New_York"}
        )
        no_script = await http.post(
            "/subscribe", data={"email": "plain@example.com", "timezone": ""}, headers=HTML
        )
        absent = await http.post("/subscribe", json={"email": "old@example.com"})
    assert form.status_code == no_script.status_code == 200
    assert api.status_code == absent.status_code == 202
    assert _zone(db, "form@example.com") == "Asia/Tokyo"
    assert _zone(db, "api@example.com") == "America/New_York"
    assert _zone(db, "plain@example.com") == "Europe/Paris"
    assert _zone(db, "old@example.com") == "Europe/Paris"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "../../etc/passwd", "x" * 300])
async def test_an_unknown_zone_is_refused_with_a_422_naming_the_field(
    db: Database, settings, zone: str
) -> None:
    async with client(make_app(settings, db)) as http:
        api = await http.post("/subscribe", json={"email": "a@example.com", "timezone": zone})
        page = await http.post(
            "/subscribe",
            data={"email": "a@example.com", "name": "Ann", "timezone": zone},
            headers=HTML,
        )
    assert api.status_code == 422
    assert "timezone" in api.json()["error"] and "IANA" in api.json()["error"]
    assert page.status_code == 422
    assert 'id="timezone-error"' in page.text and "Unknown timezone" in page.text
    # The form comes back as typed, its zone emptied for the browser (or the default) to fill.
    assert 'value="a@example.com"' in page.text and 'value="Ann"' in page.text
    assert '<input type="hidden" name="timezone" value="">' in page.text
    assert not _exists(db, "a@example.com")
    assert confirm_mails(db, "a@example.com") == []


async def test_a_zone_never_changes_a_known_reader_and_the_answer_says_nothing(
    db: Database, settings
) -> None:
    with db.transaction() as session:
        subscription_requests.request_subscription(
            session, "pending@example.com", consent=Consent(at=utcnow(), source="test")
        )
        subscriptions.add(session, "active@example.com", confirmed=True, timezone="Europe/Berlin")
    answers = set()
    async with client(make_app(settings, db)) as http:
        for who in ("new", "pending", "active"):
            form = await http.post(
                "/subscribe",
                data={"email": f"{who}@example.com", "timezone": "Asia/Tokyo"},
                headers=HTML,
            )
            api = await http.post(
                "/subscribe", json={"email": f"{who}@example.com", "timezone": "Asia/Tokyo"}
            )
            answers.add((form.status_code, form.text, api.status_code, api.text))
        # A pending reader's second request without a zone (scripts off) keeps the first's.
        await http.post("/subscribe", data={"email": "pending@example.com", "timezone": ""})
    assert len(answers) == 1
    assert _zone(db, "new@example.com") == "Asia/Tokyo"
    # A known address keeps its zone whoever types it: only the reader's own link changes it
    # (the confirmed page offers that at once).
    assert _zone(db, "pending@example.com") == "UTC"
    assert _zone(db, "active@example.com") == "Europe/Berlin"


async def test_the_confirmed_page_shows_the_zone_and_saves_another(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        await http.post("/subscribe", data={"email": "rea@example.com", "timezone": "Asia/Tokyo"})
        ((_, body),) = confirm_mails(db, "rea@example.com")
        done = await http.post(path_of(confirm_link(body)))
        assert done.status_code == 200 and "You're subscribed" in done.text
        assert "Asia/Tokyo time" in done.text
        assert '<label for="timezone">Your time zone</label>' in done.text
        assert '<optgroup label="Asia">' in done.text
        assert '<option value="Asia/Tokyo" selected>Tokyo</option>' in done.text
        assert 'value="America/Argentina/Buenos_Aires"' in done.text
        action = ZONE_FORM.search(done.text)
        assert action, done.text
        path = action.group(1)

        saved = await http.post(path, data={"timezone": "America/Bogota"})
        assert saved.status_code == 200 and "Saved" in saved.text
        assert '<option value="America/Bogota" selected>Bogota</option>' in saved.text
        assert saved.headers["cache-control"] == "no-store"
        assert _zone(db, "rea@example.com") == "America/Bogota"

        bad = await http.post(path, data={"timezone": "Mars/Olympus"})
        assert bad.status_code == 422 and "Unknown timezone" in bad.text
        assert 'aria-invalid="true"' in bad.text
        # A script elsewhere cannot post JSON to it, and a link of another kind does not work.
        as_json = await http.post(path, json={"timezone": "UTC"})
        assert as_json.status_code == 415
        with db.transaction() as session:
            reader = subscribers.get(session, "rea@example.com")
            other = path_of(confirm_url(settings, reader.id, reader.email))
        forged = await http.post(
            other.replace("/confirm/", "/preferences/") + "/timezone", data={"timezone": "UTC"}
        )
        assert forged.status_code == 400
        empty = await http.post(path, data={"timezone": ""})  # keeps what they have
        assert empty.status_code == 200
    assert _zone(db, "rea@example.com") == "America/Bogota"
    # Their other choices stay as they were: this form changes the zone alone.
    with db.transaction() as session:
        reader = subscribers.reader(session, "rea@example.com")
    assert (reader.cadence, reader.send_hour) == ("daily", settings.send_hour)


async def test_the_confirmed_page_says_when_the_first_digest_comes(db: Database, settings) -> None:
    # 05:00 UTC is 14:00 in Tokyo: past the 07:00 send hour, so the first digest is tomorrow's.
    with time_machine.travel(datetime(2026, 6, 1, 5, 0, tzinfo=UTC), tick=False):
        async with client(make_app(settings, db)) as http:
            await http.post(
                "/subscribe", data={"email": "jo@example.com", "timezone": "Asia/Tokyo"}
            )
            ((_, body),) = confirm_mails(db, "jo@example.com")
            done = await http.post(path_of(confirm_link(body)))
            path = ZONE_FORM.search(done.text)
            assert path
            # In New York it is still 01:00 on the 1st: the first digest is this morning's.
            moved = await http.post(path.group(1), data={"timezone": "America/New_York"})
    assert "due on Tuesday 2 June at 07:00, Asia/Tokyo time" in done.text
    assert "due on Monday 1 June at 07:00, America/New_York time" in moved.text


async def test_the_zone_form_of_an_erased_reader_is_gone(db: Database, settings) -> None:
    with db.transaction() as session:
        reader = subscriptions.add(session, "gone@example.com", confirmed=True)
    path = path_of(preferences_url(settings, reader.id, reader.email)) + "/timezone"
    with db.transaction() as session:
        subscribers.erase(session, "gone@example.com")
    async with client(make_app(settings, db)) as http:
        r = await http.post(path, data={"timezone": "UTC"})
    assert r.status_code == 404


@given(st.text(max_size=80))
def test_a_zone_parses_to_a_real_zone_or_says_why(text: str) -> None:
    try:
        zone = parse_timezone(text, "UTC")
    except InvalidInput as exc:
        assert "timezone" in str(exc)
    else:
        ZoneInfo(zone)  # loads: the scheduler can use whatever was stored


@given(st.sampled_from(["Asia/Tokyo", "Europe/Paris", "America/Argentina/Buenos_Aires", "UTC"]))
def test_a_real_zone_parses_to_itself(zone: str) -> None:
    assert parse_timezone(f"  {zone} ", "UTC") == zone
