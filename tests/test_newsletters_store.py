"""Several newsletters in one store: a reader on two gets two digests a period, each once; a
newsletter draws only from its topics; leaving one keeps the other; a bounce or an erasure is
the person's; the archive shows public newsletters only. Both stores."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from digest import editions, newsletters, subscribers, subscription_requests, subscriptions
from digest.archive import archive_page, web_version
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.errors import InvalidInput, NewsletterBusy, NewsletterRequired, NotFound
from digest.models import Delivery, Subscription
from digest.newsletter_config import configure
from digest.planning import candidates
from digest.posts import store as posts
from digest.subscriber_fields import Consent

D = Delivery.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]


@pytest.fixture
def two(db: Database) -> Database:
    """The first newsletter, and "sport" drawing only from Sport posts; news in both."""
    with db.transaction() as s:
        newsletters.add(s, "sport", name="Sports Weekly", topics=["Sport"])
        for title, slug, topic in (("Cup final tonight", "cup", "Sport"),
                                   ("Budget passes", "budget", "Politics")):  # fmt: skip
            post, _ = posts.add_post(s, title=title, url=f"https://n.example/{slug}")
            post.categories = [topic]
            s.add(post)
    return db


def _now() -> datetime:
    """A little after now: after the posts the test adds are first seen."""
    return utcnow() + timedelta(minutes=5)


def _sport_id(db: Database) -> int:
    with db.transaction() as s:
        return int(newsletters.get(s, "sport").id or 0)


def _keys(db: Database, email: str) -> list[str]:
    with db.transaction() as s:
        person = subscribers.get(s, email)
        rows = s.execute(sa.select(D.c.period_key).where(D.c.subscriber_id == person.id))
        return sorted(k for (k,) in rows if k)


def test_a_reader_on_two_newsletters_gets_one_digest_of_each_per_period(
    two: Database, settings: Settings
) -> None:
    now = _now()
    day = f"{now:%Y-%m-%d}"
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "both@example.com", confirmed=True)
        subscriptions.add(s, "both@example.com", newsletter_id=sport, confirmed=True)
        subscriptions.add(s, "one@example.com", confirmed=True)
    for slug in (None, "sport", "sport"):
        with two.transaction() as s:
            chosen = newsletters.get(s, slug) if slug else newsletters.by_id(s, 1)
            config_slug = chosen.slug
        editions.make_edition(
            two, settings, cadence="daily", now=now, due_only=False, newsletter=config_slug
        )
    assert _keys(two, "both@example.com") == [f"1/daily:{day}", f"{sport}/daily:{day}"]
    assert _keys(two, "one@example.com") == [f"1/daily:{day}"]
    # Running the scheduler's tick as well adds nothing: one digest per period per newsletter.
    editions.run_due(two, settings, now + timedelta(hours=1))
    assert len(_keys(two, "both@example.com")) == 2


def test_a_newsletter_draws_only_from_its_topics(two: Database, settings: Settings) -> None:
    now = _now()
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "fan@example.com", newsletter_id=sport, confirmed=True)
    report = editions.make_edition(
        two, settings, cadence="daily", now=now, due_only=False, newsletter="sport"
    )
    assert report is not None and report.recipients == 1
    with two.transaction() as s:
        html = web_version(s, report.edition_id or 0)
    assert "Cup final tonight" in html and "Budget passes" not in html


def test_leaving_one_newsletter_keeps_the_other_and_cancels_only_its_mail(
    two: Database, settings: Settings
) -> None:
    now = _now()
    day = f"{now:%Y-%m-%d}"
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "both@example.com", confirmed=True)
        subscriptions.add(s, "both@example.com", newsletter_id=sport, confirmed=True)
    for slug in ("digest", "sport"):
        editions.make_edition(
            two, settings, cadence="daily", now=now, due_only=False, newsletter=slug
        )
    with two.transaction() as s:
        assert subscriptions.unsubscribe(s, subscribers.get(s, "both@example.com"), sport)
    with two.transaction() as s:
        states = dict(s.execute(sa.select(D.c.period_key, D.c.status)).all())
        statuses = dict(s.execute(sa.select(U.c.newsletter_id, U.c.status)).all())
    assert states == {f"1/daily:{day}": "queued", f"{sport}/daily:{day}": "cancelled"}
    assert statuses == {1: "active", sport: "unsubscribed"}


def test_a_hard_bounce_stops_every_newsletter_of_the_person(two: Database) -> None:
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "gone@example.com", confirmed=True)
        subscriptions.add(s, "gone@example.com", newsletter_id=sport, confirmed=True)
    with two.transaction() as s:
        assert subscriptions.record_bounce(s, "gone@example.com")
    with two.transaction() as s:
        assert set(s.execute(sa.select(U.c.status)).scalars()) == {"bounced"}


def test_erasing_a_person_takes_every_subscription(two: Database) -> None:
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "me@example.com", confirmed=True)
        subscriptions.add(s, "me@example.com", newsletter_id=sport)
    with two.transaction() as s:
        subscribers.erase(s, "me@example.com")
    with two.transaction() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(U)).scalar_one() == 0


def test_commands_must_name_a_newsletter_once_there_are_two(two: Database) -> None:
    with two.transaction() as s:
        with pytest.raises(NewsletterRequired, match="--newsletter"):
            newsletters.choose(s, None)
        newsletters.archive(s, newsletters.get(s, "sport"))
        assert newsletters.choose(s, None).id == 1  # one live newsletter again


def test_a_renamed_slug_still_finds_its_newsletter(two: Database) -> None:
    with two.transaction() as s:
        newsletters.edit(s, newsletters.get(s, "sport"), slug="sports")
    with two.transaction() as s:
        assert newsletters.get(s, "sport").slug == "sports"
        assert newsletters.get(s, "sports").former_slugs == ["sport"]


def test_archiving_waits_for_an_edition_being_sent(two: Database, settings: Settings) -> None:
    now = _now()
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "fan@example.com", newsletter_id=sport, confirmed=True)
    editions.make_edition(
        two, settings, cadence="daily", now=now, due_only=False, newsletter="sport"
    )
    with two.transaction() as s, pytest.raises(NewsletterBusy, match="being sent"):
        newsletters.archive(s, newsletters.get(s, "sport"))


def test_the_archive_lists_public_newsletters_and_one_at_a_time(
    two: Database, settings: Settings
) -> None:
    now = _now()
    sport = _sport_id(two)
    with two.transaction() as s:
        newsletters.add(s, "staff", name="Staff Notes", public=False)
        staff = int(newsletters.get(s, "staff").id or 0)
        for nid in (1, sport, staff):
            subscriptions.add(s, "r@example.com", newsletter_id=nid, confirmed=True)
    made = {
        slug: editions.make_edition(
            two, settings, cadence="daily", now=now, due_only=False, newsletter=slug
        )
        for slug in ("digest", "sport", "staff")
    }
    with two.transaction() as s:
        listed = {e.id for e in archive_page(s, 1).editions}
        only_sport = [e.id for e in archive_page(s, 1, newsletter_id=sport).editions]
        assert listed == {made["digest"].edition_id, made["sport"].edition_id}  # type: ignore[union-attr]
        assert only_sport == [made["sport"].edition_id]  # type: ignore[union-attr]
        with pytest.raises(NotFound):
            web_version(s, made["staff"].edition_id or 0)  # type: ignore[union-attr]


def test_a_post_featured_in_one_newsletter_is_featured_there_only(
    two: Database, settings: Settings
) -> None:
    now = _now()
    sport = _sport_id(two)
    with two.transaction() as s:
        post = posts.set_featured(s, "https://n.example/cup", True, newsletter_id=sport)
        assert (post.editor_featured, post.featured_in) == (True, [sport])
        configs = {n.id: configure(n, settings) for n in newsletters.listed(s)}
        featured = {
            nid: {p.title for p in candidates(s, config, now).posts if p.featured}
            for nid, config in configs.items()
        }
    assert featured == {1: set(), sport: {"Cup final tonight"}}
    with two.transaction() as s:
        post = posts.set_featured(s, "https://n.example/cup", False, newsletter_id=sport)
        assert (post.editor_featured, post.featured_in) == (None, [])  # the source decides again
        posts.set_featured(s, "https://n.example/cup", True)
        with pytest.raises(InvalidInput, match="every newsletter"):
            posts.set_featured(s, "https://n.example/cup", False, newsletter_id=sport)


def test_a_reader_on_one_newsletter_can_ask_for_another_and_confirm_it(two: Database) -> None:
    """Ticking a new newsletter beside one they already get: the link answers this request."""
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "fan@example.com", confirmed=True)
    with two.transaction() as s:
        done = subscription_requests.request_subscription(
            s, "fan@example.com", consent=Consent(at=utcnow()), newsletter_ids=(1, sport)
        )
    with two.transaction() as s:
        person = subscribers.get(s, "fan@example.com")
        assert subscriptions.confirm(s, person, done.requested_at) == [sport]
        assert dict(s.execute(sa.select(U.c.newsletter_id, U.c.status)).all()) == {
            1: "active",
            sport: "active",
        }


def test_a_weekly_only_newsletter_signs_readers_up_weekly(two: Database) -> None:
    with two.transaction() as s:
        newsletters.add(s, "review", name="The Review", cadences="weekly")
        review = int(newsletters.get(s, "review").id or 0)
        subscription_requests.request_subscription(
            s, "w@example.com", consent=Consent(at=utcnow()), newsletter_ids=(1, review),
            cadence="daily",
        )  # fmt: skip
    with two.transaction() as s:
        cadences = dict(s.execute(sa.select(U.c.newsletter_id, U.c.cadence)).all())
    assert cadences == {1: "daily", review: "weekly"}  # daily where offered, else its default


def test_an_archived_newsletter_gets_no_edition_even_from_a_tick_that_began_before(
    two: Database, settings: Settings
) -> None:
    sport = _sport_id(two)
    with two.transaction() as s:
        subscriptions.add(s, "fan@example.com", newsletter_id=sport, confirmed=True)
        config = configure(newsletters.get(s, "sport"), settings)  # what the tick read
        newsletters.archive(s, newsletters.get(s, "sport"))
    made = editions.make_edition(
        two, settings, cadence="daily", now=_now(), due_only=False, newsletter=config
    )
    assert made is None
    assert _keys(two, "fan@example.com") == []


def test_a_welcome_still_in_the_outbox_holds_the_archiving(two: Database) -> None:
    sport = _sport_id(two)
    with two.transaction() as s:
        person = subscriptions.add(s, "new@example.com", newsletter_id=sport, confirmed=True)
        s.add(
            Delivery(
                kind="welcome",
                subscriber_id=person.id,
                to_email=person.email,
                period_key=f"{sport}/welcome",
                message_id="<w@x>",
            )
        )
    with two.transaction() as s, pytest.raises(NewsletterBusy):
        newsletters.archive(s, newsletters.get(s, "sport"))
