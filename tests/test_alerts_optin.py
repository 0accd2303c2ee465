"""Readers opting in to breaking-news alerts over HTTP, on both stores: the subscribe page and
``POST /subscribe``, the preference centre, and an alert's one-click alerts-off link."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from digest import newsletters, subscribers, subscriptions
from digest.db import Database
from digest.links import alerts_off_url, preferences_url
from digest.newsletters import FIRST
from digest.states import DeliveryStatus
from tests.support.alert_outbox import queue, statuses
from tests.support.forms import edit, form_fields
from tests.support.web import HTML, JSON, client, confirm_link, confirm_mails, make_app, path_of

FORM = {"content-type": "application/x-www-form-urlencoded", **HTML}
LABEL = "Breaking-news alerts (at most 2 a day, never at night)"


def _world(db: Database) -> dict[str, int]:
    """Newsletter 1 (offers alerts, as every newsletter does by default), Sports (offers none)
    and Science (offers them): their ids."""
    with db.transaction() as session:
        sports = newsletters.add(session, "sports", name="Sports", alerts=False)
        science = newsletters.add(session, "science", name="Science")
        return {"first": FIRST, "sports": int(sports.id or 0), "science": int(science.id or 0)}


def _alerts(db: Database, email: str) -> dict[int, tuple[str, bool]]:
    """The person's subscriptions: newsletter id -> (status, alerts)."""
    with db.transaction() as session:
        person = subscribers.get(session, email)
        subs = subscribers.subscriptions_of(session, int(person.id or 0))
        return {s.newsletter_id: (s.status, bool(s.alerts)) for s in subs}


def _add(db: Database, email: str, newsletter_id: int, *, alerts: bool, active: bool = True) -> int:
    with db.transaction() as session:
        reader = subscriptions.add(
            session, email, newsletter_id=newsletter_id, confirmed=active, alerts=alerts
        )
        return reader.id


async def _post_form(http: httpx.AsyncClient, path: str, fields: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return await http.post(path, content=urlencode(fields).encode(), headers=FORM)


# -- subscribing ------------------------------------------------------------------------------


async def test_alerts_at_signup_apply_to_the_chosen_newsletters_that_offer_them(
    db: Database, settings
) -> None:
    ids = _world(db)
    async with client(make_app(settings, db)) as http:
        page = await http.get("/", headers=HTML)
        form = await _post_form(
            http,
            "/subscribe",
            [
                ("email", "ann@example.com"),
                ("newsletters", "sports"),
                ("newsletters", "science"),
                ("alerts", "1"),
            ],
        )
        api = await http.post(
            "/subscribe", json={"email": "bob@example.com", "newsletters": "science", "alerts": 1}
        )
        api_bool = await http.post(
            "/subscribe",
            json={"email": "cy@example.com", "newsletters": ["science"], "alerts": True},
        )
        without = await http.post(
            "/subscribe", json={"email": "dee@example.com", "newsletters": ["science"]}
        )
        refused = await http.post(
            "/subscribe", json={"email": "eve@example.com", "alerts": "perhaps"}
        )
        refused_form = await _post_form(
            http, "/subscribe", [("email", "eve@example.com"), ("alerts", "perhaps")]
        )
        # The checkbox is labelled, works without scripts, and says which newsletters send them.
        assert (
            '<input type="checkbox" name="alerts" value="1" aria-describedby="alerts-from"> '
            f"{LABEL}</label>" in page.text
        )
        assert "From digest, Science only." in page.text
        assert form.status_code == 200
        assert api.status_code == api_bool.status_code == without.status_code == 202
        # Sports offers no alerts: the box asked for those of the chosen that do.
        assert _alerts(db, "ann@example.com") == {
            ids["sports"]: ("pending", False),
            ids["science"]: ("pending", True),
        }
        assert _alerts(db, "bob@example.com") == {ids["science"]: ("pending", True)}
        assert _alerts(db, "cy@example.com") == {ids["science"]: ("pending", True)}
        assert _alerts(db, "dee@example.com") == {ids["science"]: ("pending", False)}
        # A value that is neither yes nor no opts nobody in: 422 with the reason by the box.
        assert refused.status_code == 422 and refused.json()["error"].startswith("alerts")
        assert refused_form.status_code == 422 and 'id="alerts-error"' in refused_form.text
        assert 'aria-invalid="true"> ' + LABEL in refused_form.text
        with db.transaction() as session:
            assert subscribers.find(session, "eve@example.com") is None
        # Confirming keeps the choice.
        [(_, mail)] = confirm_mails(db, "ann@example.com")
        confirmed = await http.post(path_of(confirm_link(mail)))
    assert confirmed.status_code == 200
    assert _alerts(db, "ann@example.com") == {
        ids["sports"]: ("active", False),
        ids["science"]: ("active", True),
    }


async def test_the_box_shows_only_where_a_newsletter_offers_alerts(db: Database, settings) -> None:
    with db.transaction() as session:
        newsletters.edit(session, newsletters.by_id(session, FIRST), alerts=False)
    async with client(make_app(settings, db)) as http:
        none_offered = await http.get("/", headers=HTML)
    quiet_off = make_app(settings.model_copy(update={"quiet_hours": "off"}), db)
    with db.transaction() as session:
        newsletters.edit(session, newsletters.by_id(session, FIRST), alerts=True, alert_budget=1)
    async with client(quiet_off) as http:
        offered = await http.get("/", headers=HTML)
    assert 'name="alerts"' not in none_offered.text
    assert "Breaking-news alerts (at most 1 a day)</label>" in offered.text
    # One newsletter, which offers them: no list of which.
    assert "alerts-from" not in offered.text


async def test_a_stranger_cannot_change_an_active_readers_alerts(db: Database, settings) -> None:
    _add(db, "active@example.com", FIRST, alerts=False)
    _add(db, "waiting@example.com", FIRST, alerts=False, active=False)
    async with client(make_app(settings, db)) as http:
        answers = []
        for email in ("active@example.com", "waiting@example.com", "new@example.com"):
            answer = await http.post("/subscribe", json={"email": email, "alerts": "1"})
            answers.append((answer.status_code, answer.json()))
    # The same answer for all three: it does not tell who is subscribed.
    assert len(set(map(str, answers))) == 1
    # The active reader changes their alerts behind their own link, not through this form; a
    # pending request is replaced by the new one, as its cadence would be.
    assert _alerts(db, "active@example.com") == {FIRST: ("active", False)}
    assert _alerts(db, "waiting@example.com") == {FIRST: ("pending", True)}
    assert _alerts(db, "new@example.com") == {FIRST: ("pending", True)}


# -- the preference centre --------------------------------------------------------------------


async def test_preference_centre_turns_alerts_on_and_off_per_newsletter(
    db: Database, settings
) -> None:
    ids = _world(db)
    pid = _add(db, "ann@example.com", ids["science"], alerts=False)
    _add(db, "ann@example.com", ids["sports"], alerts=False)
    queued = queue(db, pid, "ann@example.com", f"{ids['science']}/alert:7")
    path = path_of(preferences_url(settings, pid, "ann@example.com"))
    box = ("alerts-" + str(ids["science"]), "1")
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        # Science offers alerts (a labelled box, its newsletter named for screen readers);
        # Sports does not, so it has none.
        assert f'name="alerts-{ids["science"]}" value="1">' in page.text
        assert '<span class="sr-only">from Science</span>' in page.text
        assert f'name="alerts-{ids["sports"]}"' not in page.text
        on = await _post_form(http, path, edit(form_fields(page.text, path), tick=(box,)))
        assert on.status_code == 200 and "Saved" in on.text
        assert _alerts(db, "ann@example.com")[ids["science"]] == ("active", True)
        assert f'name="alerts-{ids["science"]}" value="1" checked>' in on.text
        off = await _post_form(http, path, edit(form_fields(on.text, path), untick=(box,)))
    assert off.status_code == 200
    assert _alerts(db, "ann@example.com") == {
        ids["science"]: ("active", False),
        ids["sports"]: ("active", False),
    }
    # Turning them off here also stops the alert already waiting in the outbox.
    assert statuses(db, [queued]) == ["cancelled"]


async def test_an_opt_in_outlives_a_newsletter_pausing_its_alerts(db: Database, settings) -> None:
    ids = _world(db)
    pid = _add(db, "ann@example.com", ids["science"], alerts=True)
    path = path_of(preferences_url(settings, pid, "ann@example.com"))
    with db.transaction() as session:
        newsletters.edit(session, newsletters.by_id(session, ids["science"]), alerts=False)
    async with client(make_app(settings, db)) as http:
        page = await http.get(path)
        assert f'name="alerts-{ids["science"]}"' not in page.text
        saved = await _post_form(http, path, form_fields(page.text, path))
        assert saved.status_code == 200
        assert _alerts(db, "ann@example.com") == {ids["science"]: ("active", True)}
        with db.transaction() as session:
            newsletters.edit(session, newsletters.by_id(session, ids["science"]), alerts=True)
        again = await http.get(path)
    assert f'name="alerts-{ids["science"]}" value="1" checked>' in again.text


# -- the alerts-off link ----------------------------------------------------------------------


async def test_one_click_turns_off_one_newsletters_alerts_and_keeps_the_digest(
    db: Database, settings
) -> None:
    ids = _world(db)
    pid = _add(db, "ann@example.com", ids["science"], alerts=True)
    _add(db, "ann@example.com", FIRST, alerts=True)
    science = ids["science"]
    waiting = [
        queue(db, pid, "ann@example.com", f"{science}/alert:1"),
        queue(db, pid, "ann@example.com", f"{science}/alert:2", status="deferred"),
    ]
    kept = [
        queue(db, pid, "ann@example.com", f"{science}/daily:2026-12-01"),
        queue(db, pid, "ann@example.com", f"{FIRST}/alert:1"),
        queue(db, pid, "ann@example.com", f"{science}/alert:3", status="held"),
    ]
    link = path_of(alerts_off_url(settings, pid, "ann@example.com", science))
    async with client(make_app(settings, db)) as http:
        # The mail client's one-click POST (RFC 8058): no cookie, no redirect followed.
        done = await http.post(
            link,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        again = await http.post(link, files={"List-Unsubscribe": (None, "One-Click")})
        api = await http.post(link, headers=JSON)
    assert done.status_code == again.status_code == 200 and "location" not in done.headers
    assert "no more breaking-news alerts from <strong>Science</strong>" in done.text
    assert "You will keep getting the digest" in done.text
    assert api.json() == {"status": "alerts off"}
    # Subscribed still, to both; only Science's alerts are off, and only its waiting alerts go.
    assert _alerts(db, "ann@example.com") == {FIRST: ("active", True), science: ("active", False)}
    assert statuses(db, waiting) == ["cancelled", "cancelled"]
    assert statuses(db, kept) == ["queued", "queued", DeliveryStatus.HELD.value]


async def test_the_alerts_off_page_asks_first_and_its_button_does_it(
    db: Database, settings
) -> None:
    ids = _world(db)
    science = ids["science"]
    pid = _add(db, "ann@example.com", science, alerts=True)
    queued = queue(db, pid, "ann@example.com", f"{science}/alert:9")
    link = path_of(alerts_off_url(settings, pid, "ann@example.com", science))
    async with client(make_app(settings, db)) as http:
        page = await http.get(link)
        # A link scanner's GET changes nothing.
        assert _alerts(db, "ann@example.com") == {science: ("active", True)}
        assert statuses(db, [queued]) == ["queued"]
        fields = form_fields(page.text, link)
        pressed = await _post_form(http, link, fields)
    assert page.status_code == 200
    assert (
        "Turn off breaking-news alerts from <strong>Science</strong>? "
        "You will keep getting the digest" in page.text
    )
    assert "/preferences/" in page.text and "Unsubscribe from" not in page.text
    assert pressed.status_code == 200 and "Alerts turned off" in pressed.text
    assert _alerts(db, "ann@example.com") == {science: ("active", False)}
    assert statuses(db, [queued]) == ["cancelled"]
    async with client(make_app(settings, db)) as http:
        later = await http.get(link)
    assert "is not getting breaking-news alerts from Science" in later.text


async def test_an_erased_readers_alerts_off_link_says_so(db: Database, settings) -> None:
    pid = _add(db, "ann@example.com", FIRST, alerts=True)
    link = path_of(alerts_off_url(settings, pid, "ann@example.com", FIRST))
    with db.transaction() as session:
        subscribers.erase(session, "ann@example.com")
    async with client(make_app(settings, db)) as http:
        page = await http.get(link)
        click = await http.post(link, content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert page.status_code == click.status_code == 200
    assert "no longer on our list" in page.text and "no longer on our list" in click.text
